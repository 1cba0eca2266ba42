package vault

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

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

// checkSegments refuses an empty segment in p (a doubled or trailing /),
// then applies the rules [New] applies to every path (checkPath: no "." or
// ".." segment, escaped or not, no control character), so a reference and
// a path given in code are judged alike.
func checkSegments(what, p string) error {
	if slices.Contains(strings.Split(p, "/"), "") {
		return errors.New(what + " has an empty segment (a doubled or trailing /)")
	}
	return checkPath(what, p)
}

// openRef opens a vault:// reference; see [Scheme]. The reference's parts
// become options of [FromEnv]; an injected environment
// ([keyprovider.WithLookupEnv], keyprov --env-file) is passed on with
// [WithLookupEnv], so that it alone configures the client.
func openRef(ctx context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	ref := req.Ref
	opts := []Option{WithService(req.Service), WithMount(ref.Mount)}
	if ns := ref.Params["namespace"]; ns != "" {
		opts = append(opts, WithNamespace(ns))
	}
	if ref.Field != "" {
		opts = append(opts, WithField(ref.Field))
	}
	if v := ref.Params["version"]; v != "" {
		n, _ := strconv.Atoi(v) // parseRef checked it
		opts = append(opts, WithVersion(n))
	}
	if req.LookupEnv != nil {
		opts = append(opts, WithLookupEnv(req.LookupEnv))
	}
	return FromEnv(ctx, ref.Path, opts...)
}
