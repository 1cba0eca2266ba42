package vault

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
)

// Scheme is the reference scheme this package opens:
//
//	vault://MOUNT/PATH[#FIELD][?version=N&namespace=NS]
//
// Importing the package, even blank, registers it with
// [keyprovider.RegisterScheme], so that [keyprovider.FromEnv] and
// [keyprovider.Open] resolve vault:// references:
//
//	import _ "github.com/keyprovider/keyprovider/vault"
const Scheme = "vault"

func init() { keyprovider.RegisterScheme(Scheme, keyprovider.OpenerFunc(OpenRef)) }

// OpenRef is the [keyprovider.Opener] of vault:// references, for a
// [keyprovider.Resolver] wired by hand. The client is configured as the
// Vault CLI would be, with VAULT_ADDR, VAULT_TOKEN and VAULT_NAMESPACE read
// from req's environment (the process environment unless the caller
// injected another); the TLS variables come from the process environment.
// The reference's namespace parameter wins over VAULT_NAMESPACE.
func OpenRef(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	ref := req.Ref
	getenv := func(name string) string { v, _ := req.LookupEnv(name); return v }
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, &keyprovider.Error{Provider: "vault", Ref: ref.String(), Kind: keyprovider.ErrInvalidKey, Err: cfg.Error}
	}
	if addr := getenv("VAULT_ADDR"); addr != "" {
		cfg.Address = addr
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, &keyprovider.Error{Provider: "vault", Ref: ref.String(), Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	if tok := getenv("VAULT_TOKEN"); tok != "" {
		client.SetToken(tok)
	}
	ns := ref.Param("namespace")
	if ns == "" {
		ns = getenv("VAULT_NAMESPACE")
	}
	opts := []Option{WithService(req.Service), func(o *Options) { o.Mount = ref.Mount; o.Namespace = ns }}
	if ref.Field != "" {
		opts = append(opts, WithField(ref.Field))
	}
	if v := ref.Param("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, &keyprovider.Error{Provider: "vault", Ref: ref.String(), Kind: keyprovider.ErrInvalidKey, Err: fmt.Errorf("version %q is not a positive number", v)}
		}
		opts = append(opts, WithVersion(n))
	}
	return New(client, ref.Path, opts...)
}
