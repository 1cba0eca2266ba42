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
// *api.ResponseError stays reachable with errors.As.
package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
)

// DefaultField is the field of the secret read when [Options.Field] is
// empty.
const DefaultField = "api_key"

// Options configure a [Provider]. The zero value of every field means its
// default.
type Options struct {
	// Field is the field of the secret holding the key. Empty means
	// DefaultField.
	Field string
	// Mount is the KV engine's mount path ("secret"); with it, path is
	// relative to the mount. Empty means: found from the path, as the CLI
	// does.
	Mount string
	// KVVersion forces the engine's version, 1 or 2. Zero means: read it
	// from the mount's options.
	KVVersion int
	// Version pins a KV v2 version. Zero means the latest.
	Version int
	// Namespace is the Vault Enterprise namespace. Empty means the
	// client's (VAULT_NAMESPACE).
	Namespace string
	// Service, when set, checks keys against it; the zero Service checks
	// only that the key can go in a header.
	Service keyprovider.Service
	// Auth, when set, logs the client in before the first read and again
	// when a read is refused with 403. Nil means the client's token is used
	// as it is.
	Auth api.AuthMethod
}

// Option changes [Options].
type Option func(*Options)

// WithField sets Options.Field.
func WithField(field string) Option { return func(o *Options) { o.Field = field } }

// WithVersion sets Options.Version.
func WithVersion(v int) Option { return func(o *Options) { o.Version = v } }

// WithService sets Options.Service.
func WithService(svc keyprovider.Service) Option { return func(o *Options) { o.Service = svc } }

// WithAuth sets Options.Auth.
func WithAuth(auth api.AuthMethod) Option { return func(o *Options) { o.Auth = auth } }

// Provider reads a key from Vault. It is safe for concurrent use.
type Provider struct {
	c    *api.Client
	path string
	o    Options

	mu       sync.Mutex // guards the fields below
	resolved bool       // mount and KV version known
	mount    string     // without slashes
	rel      string     // the secret's path below the mount
	kv       int
	loggedIn bool
	watcher  *api.LifetimeWatcher // renews the login token; nil if none
	closed   bool
	wg       sync.WaitGroup // the watcher's goroutine
}

// New returns a Provider reading path ("secret/prod/tessera", as given to
// "vault kv get") through client. It does no I/O.
func New(client *api.Client, path string, opts ...Option) (*Provider, error) {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	if o.Field == "" {
		o.Field = DefaultField
	}
	path = strings.Trim(path, "/")
	bad := func(format string, args ...any) error {
		return &keyprovider.Error{Provider: "vault", Ref: path, Kind: keyprovider.ErrInvalidKey, Err: fmt.Errorf(format, args...)}
	}
	switch {
	case client == nil:
		return nil, bad("nil client")
	case path == "":
		return nil, bad("empty path")
	case o.KVVersion != 0 && o.KVVersion != 1 && o.KVVersion != 2:
		return nil, bad("KV version %d: want 1 or 2", o.KVVersion)
	case o.Version < 0:
		return nil, bad("negative version %d", o.Version)
	case o.Version > 0 && o.KVVersion == 1:
		return nil, bad("a version is pinned, but KV v1 has no versions")
	}
	if o.Namespace != "" {
		client = client.WithNamespace(o.Namespace)
	}
	p := &Provider{c: client, path: path, o: o}
	if o.Mount != "" && o.KVVersion != 0 {
		p.mount, p.rel, p.kv, p.resolved = strings.Trim(o.Mount, "/"), path, o.KVVersion, true
	}
	return p, nil
}

// FromEnv returns a Provider over a client configured from the environment
// (VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT and the other
// variables the Vault CLI reads).
func FromEnv(path string, opts ...Option) (*Provider, error) {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		return nil, &keyprovider.Error{Provider: "vault", Ref: path, Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	return New(client, path, opts...)
}

// String describes the provider without its token: "vault(secret/prod/tessera#api_key)".
func (p *Provider) String() string { return "vault(" + p.ref() + ")" }

func (p *Provider) ref() string { return p.path + "#" + p.o.Field }

// Fetch reads the key.
func (p *Provider) Fetch(ctx context.Context) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, p.fail(err)
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
		return keyprovider.Key{}, &keyprovider.ValidationError{Service: p.o.Service.Name, Reason: fmt.Sprintf("field %q is a %T, not a string", p.o.Field, raw)}
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
		return "", "", 0, &keyprovider.ValidationError{Reason: "a version is pinned, but the mount is KV v1"}
	}
	p.mount, p.rel, p.kv, p.resolved = mount, rel, kv, true
	return mount, rel, kv, nil
}

// login logs the client in with Options.Auth, before the first read or, with
// again set, after a 403.
func (p *Provider) login(ctx context.Context, again bool) error {
	if p.o.Auth == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loggedIn && !again {
		return nil
	}
	secret, err := p.c.Auth().Login(ctx, p.o.Auth)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	p.loggedIn = true
	p.renewLocked(secret)
	return nil
}

// renewLocked keeps a renewable login token alive with Vault's
// LifetimeWatcher, on a goroutine the Provider owns (Close stops it and
// waits). When the token can be renewed no more (its max TTL), the next
// Fetch logs in again. p.mu is held.
func (p *Provider) renewLocked(secret *api.Secret) {
	if p.watcher != nil {
		p.watcher.Stop()
		p.watcher = nil
	}
	if p.closed || secret == nil || secret.Auth == nil || !secret.Auth.Renewable {
		return
	}
	w, err := p.c.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		return // not renewable after all: the next 403 logs in again
	}
	p.watcher = w
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		w.Start() // returns when the token is past renewal, or on Stop
		<-w.DoneCh()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.watcher == w {
			p.watcher = nil
			p.loggedIn = false
		}
	}()
}

// Close stops renewing the login token, if one is being renewed, and waits
// for the goroutine that does it. It is idempotent and returns nil. A
// Provider without Options.Auth starts no goroutine and need not be closed.
func (p *Provider) Close() error {
	p.mu.Lock()
	p.closed = true
	w := p.watcher
	p.watcher = nil
	p.mu.Unlock()
	if w != nil {
		w.Stop()
	}
	p.wg.Wait()
	return nil
}

type secretGone struct {
	version int
	how     string
}

func (e *secretGone) Error() string {
	return fmt.Sprintf("the latest version (%d) is %s", e.version, e.how)
}

type missingField struct{ field string }

func (e *missingField) Error() string { return fmt.Sprintf("the secret has no field %q", e.field) }

type missingMount struct{}

func (e *missingMount) Error() string { return "no secrets engine is mounted at this path" }

func isForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// fail wraps err with the provider and reference, classified by kind.
func (p *Provider) fail(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &keyprovider.Error{Provider: "vault", Ref: p.ref(), Err: err}
	}
	return &keyprovider.Error{Provider: "vault", Ref: p.ref(), Kind: kind(err), Err: err}
}

// kind maps a failure onto the sentinel it belongs to: the one place where
// Vault's answers are classified.
func kind(err error) error {
	var (
		re   *api.ResponseError
		ve   *keyprovider.ValidationError
		ne   net.Error
		gone *secretGone
		mf   *missingField
		mm   *missingMount
	)
	switch {
	case errors.As(err, &ve):
		return keyprovider.ErrInvalidKey
	case errors.Is(err, api.ErrSecretNotFound), errors.As(err, &gone), errors.As(err, &mf), errors.As(err, &mm):
		return keyprovider.ErrNotFound
	case errors.As(err, &re):
		switch {
		case re.StatusCode == http.StatusNotFound:
			return keyprovider.ErrNotFound
		case re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized:
			return keyprovider.ErrPermission
		case re.StatusCode == http.StatusBadRequest:
			return keyprovider.ErrInvalidKey
		default: // 429, 5xx, 503 sealed or standby
			return keyprovider.ErrUnavailable
		}
	case errors.As(err, &ne):
		return keyprovider.ErrUnavailable
	default:
		return keyprovider.ErrUnavailable
	}
}
