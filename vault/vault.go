// Package vault is a [keyprovider.Provider] that reads an API key from
// HashiCorp Vault's KV secrets engine, version 1 or 2.
//
// # Addressing a key
//
// A key is addressed as the Vault CLI addresses it with "vault kv get": a
// path that starts with the engine's mount ("secret/prod/tessera"), and a
// field of the secret (default "api_key"). The mount and its KV version are
// found the way the CLI finds them (sys/internal/ui/mounts), once, on the
// first fetch; [Options.Mount] and [Options.KVVersion] skip that look-up.
// On KV v2 the latest version is read unless [Options.Version] pins one,
// and [keyprovider.Key.Version] reports the version read. A latest version
// that was deleted or destroyed is an error (ErrNotFound), never the
// previous value.
//
// # Clients
//
// [New] reads through a client the caller made and owns. [FromEnv] builds
// one, and owns it, from VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and the
// TLS variables, read only through [Options.LookupEnv]; given several
// addresses ([Options.Addresses], or a comma-separated VAULT_ADDR), its
// client tries them in turn, so that the death of the one node it points
// at does not stop reads while the cluster has a leader.
//
// # Authentication
//
// The client's token is used as it is (VAULT_TOKEN, or whatever the caller
// set). With [Options.Auth] (an AppRole or Kubernetes login from
// github.com/hashicorp/vault/api/auth/...), the provider logs in before the
// first read, renews a renewable login token with Vault's LifetimeWatcher
// on a goroutine it owns ([Provider.Close] stops it), logs in again once the
// token can be renewed no more, and logs in again when a read is refused
// with 403, as it is once a token has expired, then retries the read once.
//
// # Errors
//
// 404 and a missing field map to [keyprovider.ErrNotFound]; 403 to
// [keyprovider.ErrPermission]; a sealed Vault, 5xx, connection failures and
// timeouts to [keyprovider.ErrUnavailable]; a value that is not a string,
// empty, or not a valid key to [keyprovider.ErrInvalidKey]. The client's
// *api.ResponseError stays reachable with errors.As. Vault's messages are
// quoted, scrubbed of every token the provider holds and of anything
// shaped like a key. A path with a "." or ".." segment or a namespace with
// a control character is ErrInvalidKey from New, before any request.
package vault

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// Provider reads a key from Vault. It is safe for concurrent use.
type Provider struct {
	c     *api.Client
	path  string
	o     Options
	owned interface{ CloseIdleConnections() } // the transport FromEnv made; nil for New

	mu       sync.Mutex // guards the fields below
	resolved bool       // mount and KV version known
	mount    string     // without slashes
	rel      string     // the secret's path below the mount
	kv       int
	loggedIn bool
	tokens   []string             // tokens held before the current one, to scrub
	watcher  *api.LifetimeWatcher // renews the login token; nil if none
	closed   bool
	wg       sync.WaitGroup // the watcher's goroutine
}

// New returns a Provider reading path ("secret/prod/tessera", as given to
// "vault kv get") through client, which stays the caller's: [Provider.Close]
// does not close it. New does no I/O. A bad configuration (a nil client, a
// path with a "." or ".." segment, plain or percent-encoded, a namespace
// with CR or LF, an out-of-range version) is an error wrapping
// keyprovider.ErrInvalidKey, so such a path never reaches the client, which
// would resolve "kv/..%2F..%2Fsys/..." to another endpoint.
func New(client *api.Client, path string, opts ...Option) (*Provider, error) {
	o := collect(opts)
	if len(o.Addresses) > 0 {
		return nil, failure(strings.Trim(path, "/")+"#"+cmp.Or(o.Field, DefaultField),
			badConfig("Addresses need a client FromEnv builds; New uses the client's own address"))
	}
	return newProvider(client, path, o)
}

// newProvider checks o and makes the Provider.
func newProvider(client *api.Client, path string, o Options) (*Provider, error) {
	path = strings.Trim(path, "/")
	if err := o.check(path); err != nil {
		return nil, failure(path+"#"+o.Field, err)
	}
	if client == nil {
		return nil, failure(path+"#"+o.Field, badConfig("nil client"))
	}
	if o.Namespace != "" {
		client = client.WithNamespace(o.Namespace) // a shallow copy: the caller's client is untouched
	}
	p := &Provider{c: client, path: path, o: o}
	if o.Mount != "" && o.KVVersion != 0 {
		p.mount, p.rel, p.kv, p.resolved = strings.Trim(o.Mount, "/"), path, o.KVVersion, true
	}
	return p, nil
}

// String describes the provider without its token:
// "vault(secret/prod/tessera#api_key)", scrubbed as errors are.
func (p *Provider) String() string { return "vault(" + printable(redact.String(p.ref())) + ")" }

func (p *Provider) ref() string { return p.path + "#" + p.o.Field }

// Fetch reads the key.
func (p *Provider) Fetch(ctx context.Context) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, p.fail(err)
	}
	if p.isClosed() {
		return keyprovider.Key{}, p.fail(errClosed)
	}
	k, err := p.read(ctx)
	if err != nil && p.o.Auth != nil && isForbidden(err) && ctx.Err() == nil {
		// The token may have expired: log in again, then retry once.
		if lerr := p.login(ctx, true); lerr != nil {
			return keyprovider.Key{}, p.fail(lerr)
		}
		k, err = p.read(ctx)
	}
	if err != nil {
		return keyprovider.Key{}, p.fail(err)
	}
	return k, nil
}

func (p *Provider) read(ctx context.Context) (keyprovider.Key, error) {
	if err := p.login(ctx, false); err != nil {
		return keyprovider.Key{}, err
	}
	mount, rel, kv, err := p.resolve(ctx)
	if err != nil {
		return keyprovider.Key{}, err
	}
	var s *api.KVSecret
	switch {
	case kv == 1:
		s, err = p.c.KVv1(mount).Get(ctx, rel)
	case p.o.Version > 0:
		s, err = p.c.KVv2(mount).GetVersion(ctx, rel, p.o.Version)
	default:
		s, err = p.c.KVv2(mount).Get(ctx, rel)
	}
	if err != nil {
		return keyprovider.Key{}, err
	}
	version := ""
	if m := s.VersionMetadata; m != nil {
		version = strconv.Itoa(m.Version)
		switch {
		case m.Destroyed:
			return keyprovider.Key{}, &secretGone{version: m.Version, how: "destroyed"}
		case !m.DeletionTime.IsZero() || s.Data == nil:
			return keyprovider.Key{}, &secretGone{version: m.Version, how: "deleted"}
		}
	}
	raw, ok := s.Data[p.o.Field]
	if !ok {
		return keyprovider.Key{}, &missingField{field: p.o.Field}
	}
	str, ok := raw.(string)
	if !ok {
		return keyprovider.Key{}, fmt.Errorf("field %q is a %T, not a string: %w", p.o.Field, raw, keyprovider.ErrInvalidKey)
	}
	return p.o.Service.ParseKey(str, version)
}

// resolve finds the mount and KV version of the path, once.
func (p *Provider) resolve(ctx context.Context) (mount, rel string, kv int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.resolved {
		return p.mount, p.rel, p.kv, nil
	}
	mount, rel, kv = strings.Trim(p.o.Mount, "/"), p.path, p.o.KVVersion
	if mount == "" || kv == 0 {
		full := p.path
		if mount != "" {
			full = mount + "/" + p.path
		}
		s, err := p.c.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+full)
		if err != nil {
			return "", "", 0, err
		}
		if s == nil || s.Data == nil {
			return "", "", 0, &missingMount{}
		}
		m, _ := s.Data["path"].(string)
		if mount == "" {
			mount = strings.Trim(m, "/")
		}
		if kv == 0 {
			kv = 1
			if opts, ok := s.Data["options"].(map[string]any); ok && opts["version"] == "2" {
				kv = 2
			}
		}
	}
	if o := strings.Trim(p.o.Mount, "/"); o == "" {
		rel = strings.TrimPrefix(strings.TrimPrefix(p.path, mount), "/")
	}
	if rel == "" {
		return "", "", 0, &missingMount{}
	}
	if p.o.Version > 0 && kv == 1 {
		return "", "", 0, fmt.Errorf("a version is pinned, but the mount is KV v1: %w", keyprovider.ErrInvalidKey)
	}
	p.mount, p.rel, p.kv, p.resolved = mount, rel, kv, true
	return mount, rel, kv, nil
}

// fail wraps err with the provider and reference, classified and scrubbed
// of every token the provider holds, through failure.
func (p *Provider) fail(err error) error {
	return failure(p.ref(), err, p.secrets()...)
}
