package vault

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
)

// Scheme returns the reference scheme this package opens:
//
//	vault://MOUNT/PATH[#FIELD][?version=N&namespace=NS]
//
// MOUNT is the secrets engine's mount ("kv"; "team%2Fkv" for the mount
// "team/kv"), PATH the secret's path inside it, FIELD the field holding the
// key, version a KV v2 version (a positive integer) and namespace a Vault
// Enterprise namespace, which wins over VAULT_NAMESPACE. The parser refuses,
// as [keyprovider.ErrInvalidKey] before any request: an empty, "." or ".."
// segment in the mount, the path or the namespace (escaped ones included:
// "..%2F" and "%2E%2E" resolve to another endpoint on the server), and a
// control character (CR, LF...) in any of them.
//
// Importing the package, even blank, registers it with
// [keyprovider.RegisterScheme], so that [keyprovider.FromEnv] and
// [keyprovider.Open] resolve vault:// references:
//
//	import _ "github.com/keyprovider/keyprovider/vault"
//
// A [keyprovider.Resolver] wired by hand registers it itself:
// r.Register(vault.Scheme()).
//
// Opening a reference configures the client as the Vault CLI would, from
// VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and the TLS variables
// (VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
// VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY). When the caller injected an
// environment ([keyprovider.WithLookupEnv]; keyprov --env-file), they are
// read from it alone: an env file that names a server never gets the
// process's token or client certificate.
func Scheme() keyprovider.Scheme {
	return keyprovider.Scheme{
		Name:   schemeName,
		Field:  true,
		Params: []string{"version", "namespace"},
		Parse:  parseRef,
		Format: formatRef,
		Open:   openRef,
	}
}

const schemeName = "vault"

func init() { keyprovider.RegisterScheme(Scheme()) }

// parseRef is the grammar of a vault:// reference's parts: the mount, then
// the path.
func parseRef(parts []string, r *keyprovider.Ref) error {
	if len(parts) < 2 || parts[0] == "" || strings.Join(parts[1:], "") == "" {
		return errors.New("vault:// takes a mount and a path: vault://MOUNT/PATH#FIELD")
	}
	mount, path := parts[0], strings.Join(parts[1:], "/")
	if err := checkSegments("the mount", mount); err != nil {
		return err
	}
	if err := checkSegments("the path", path); err != nil {
		return err
	}
	if v, ok := r.Params["version"]; ok {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil || n == 0 {
			return errors.New("version must be a positive integer (a KV v2 version)")
		}
		r.Params["version"] = strconv.FormatUint(n, 10)
	}
	if ns, ok := r.Params["namespace"]; ok {
		if err := checkSegments("namespace", strings.Trim(ns, "/")); err != nil {
			return err
		}
	}
	r.Mount, r.Path = mount, path
	return nil
}

// formatRef is parseRef's inverse: the mount, then the path's segments.
func formatRef(r keyprovider.Ref) []string {
	return append([]string{r.Mount}, strings.Split(r.Path, "/")...)
}

// checkSegments refuses an empty, "." or ".." segment in p, and control
// characters: Vault's client would send a request for another endpoint, or
// a broken header.
func checkSegments(what, p string) error {
	if strings.ContainsFunc(p, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return errors.New(what + " contains a control character")
	}
	segs := strings.Split(p, "/")
	switch {
	case slices.Contains(segs, ""):
		return errors.New(what + " has an empty segment (a doubled or trailing /)")
	case slices.Contains(segs, "."), slices.Contains(segs, ".."):
		return errors.New(what + ` has a "." or ".." segment`)
	}
	return nil
}

// openRef opens a vault:// reference; see [Scheme].
func openRef(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	ref := req.Ref
	getenv := func(name string) string { return "" }
	if req.LookupEnv != nil {
		getenv = func(name string) string { v, _ := req.LookupEnv(name); return strings.TrimSpace(v) }
	}
	client, err := newClient(req.LookupEnv, getenv)
	if err != nil {
		return nil, &keyprovider.Error{Provider: schemeName, Ref: ref.String(), Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	ns := ref.Params["namespace"]
	if ns == "" && req.LookupEnv != nil {
		ns = getenv("VAULT_NAMESPACE")
	}
	opts := []Option{WithService(req.Service), func(o *Options) { o.Mount = ref.Mount; o.Namespace = ns }}
	if ref.Field != "" {
		opts = append(opts, WithField(ref.Field))
	}
	if v := ref.Params["version"]; v != "" {
		n, _ := strconv.Atoi(v) // parseRef checked it
		opts = append(opts, WithVersion(n))
	}
	return New(client, ref.Path, opts...)
}

// newClient makes the Vault client of a reference. With no injected
// environment (lookup nil), it is the SDK's, configured from the process
// environment. With one, every setting that says where requests go or what
// credentials they carry comes from it alone.
func newClient(lookup func(string) (string, bool), getenv func(string) string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil && lookup == nil {
		return nil, cfg.Error
	}
	if lookup != nil {
		cfg.Error = nil
		cfg.Address = getenv("VAULT_ADDR")
		if cfg.Address == "" {
			cfg.Address = "https://127.0.0.1:8200"
		}
		if tr, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		skip, _ := strconv.ParseBool(getenv("VAULT_SKIP_VERIFY"))
		if err := cfg.ConfigureTLS(&api.TLSConfig{
			CACert: getenv("VAULT_CACERT"), CAPath: getenv("VAULT_CAPATH"),
			ClientCert: getenv("VAULT_CLIENT_CERT"), ClientKey: getenv("VAULT_CLIENT_KEY"),
			TLSServerName: getenv("VAULT_TLS_SERVER_NAME"), Insecure: skip,
		}); err != nil {
			return nil, err
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if lookup != nil {
		client.ClearToken()
		client.ClearNamespace()
		if tok := getenv("VAULT_TOKEN"); tok != "" {
			client.SetToken(tok)
		}
	}
	return client, nil
}
