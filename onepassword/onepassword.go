// Package onepassword reads API keys from 1Password, through a service
// account and the 1Password SDK, or through a self-hosted 1Password Connect
// server.
//
// # References
//
// A key is named by a 1Password secret reference,
//
//	op://VAULT/ITEM/[SECTION/]FIELD
//
// where VAULT and ITEM are names or IDs, and FIELD (and SECTION) a label or
// an ID. Every reference is checked when the Provider is made, offline, by the
// SDK's own parser ([onepassword.Secrets.ValidateSecretReference] of
// github.com/1password/onepassword-sdk-go); one it rejects is a
// [keyprovider.ErrInvalidKey] error quoting the SDK's reason (see
// [ReferenceError]).
//
// # Two ways in, one Provider
//
// [New] takes a [SecretsAPI]: the Secrets API of an SDK client (client.Secrets()),
// authenticated by a service account token:
//
//	client, err := sdk.NewClient(ctx, sdk.WithServiceAccountToken(token),
//		sdk.WithIntegrationInfo("my-service", "v1.2.3"))
//	...
//	p, err := onepassword.New(client.Secrets(), "op://prod/tessera/credential",
//		onepassword.WithService(keyprovider.Tessera))
//	...
//	defer p.Close()
//
// [NewConnect] takes a Connect client (github.com/1Password/connect-sdk-go)
// and resolves the same reference through the Connect REST API.
// [NewConnectClient] makes a [*ConnectClient], which carries its token so
// that the Provider can scrub it from errors:
//
//	c, err := onepassword.NewConnectClient("http://onepassword-connect:8080", token)
//	...
//	p, err := onepassword.NewConnect(c, "op://prod/tessera/credential")
//
// Every Provider has a [Provider.Close], which waits for a read a Fetch left
// running (see Connect mode).
//
// [FromEnv] chooses for you, as the op CLI does: a Connect server when
// OP_CONNECT_HOST and OP_CONNECT_TOKEN are set, else the SDK with
// OP_SERVICE_ACCOUNT_TOKEN. Importing the package also registers the op://
// scheme with [keyprovider.RegisterScheme], so TESSERA_API_KEY=op://... works
// with [keyprovider.FromEnv].
//
// # Start-up cost
//
// The SDK's core is a WebAssembly module that the process compiles the
// first time it is used: 4.5 s and about 120 MB of memory measured on a
// 2-vCPU machine (some 50 s under the race detector), once per process.
// Every reference is validated with it, in Connect mode too, so the first
// [New], [NewConnect] or [FromEnv] of a process pays that cost; later ones
// take some 80 µs, and no Fetch ever pays it. Call [Preload] early, in
// parallel with the rest of start-up, to take it off the critical path.
//
// # Connect mode
//
// The vault and the item are looked up by ID when the reference gives one
// (26 lower-case letters and digits) and by name otherwise; two vaults or
// two items with the name, two sections or two fields with the label, are an
// [*AmbiguousError], never a guess. Once found, the item's vault and item
// IDs are remembered, so a refresh costs one request (GET item); if the item
// disappears, the next Fetch looks the names up again, which finds an item
// re-created under the same name. [keyprovider.Key.Version] is the item's
// version. A Field is matched by ID first, then by label ignoring case.
//
// connect-sdk-go takes no context: a Fetch returns as soon as its context is
// done, and the request it abandoned is left to finish in the background. A
// Provider keeps at most one request in flight; a Fetch that finds one
// still running waits for it first, and [Provider.Close] waits for it, a
// bounded time ([Options.CloseTimeout]).
//
// In SDK mode the key carries no version: the Secrets API returns the value
// only.
//
// # Errors
//
// Errors are [*keyprovider.Error] values of provider "onepassword": an unknown
// vault, item, section or field is [keyprovider.ErrNotFound] (an ambiguous
// name too: no single secret was found); a bad, expired or revoked token, or
// a token without access to the vault, is [keyprovider.ErrPermission];
// network failures, timeouts, throttling and 5xx answers are
// [keyprovider.ErrUnavailable]; a malformed reference or a value that is not
// a usable key is [keyprovider.ErrInvalidKey]. Every error goes through one
// function that scrubs it of the tokens the Provider knows (the service
// account token of a client [FromEnv] made, the Connect token of a
// [ConnectClient]) and of any text shaped like a key, so that a server or a
// proxy echoing them puts neither in a log. The Provider holds its tokens
// the way [keyprovider.Key] holds a key: no fmt verb, slog or JSON shows
// them.
//
// # Testing
//
// Package onepasswordtest has an emulator of the Connect API that the real
// connect-sdk-go client talks to over HTTP, and a fake [SecretsAPI].
package onepassword

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// providerName is the Provider field of this package's [*keyprovider.Error]s.
const providerName = "onepassword"

// DefaultCloseTimeout is how long [Provider.Close] waits for a read still
// running when [Options.CloseTimeout] is zero.
const DefaultCloseTimeout = 5 * time.Second

// SecretsAPI is the part of the 1Password SDK a [Provider] uses in SDK mode:
// the Secrets API of a client, as client.Secrets() returns it.
type SecretsAPI interface {
	// Resolve returns the secret the reference points to.
	Resolve(ctx context.Context, secretReference string) (string, error)
}

// Options configure a [Provider]. Set them with the With helpers.
type Options struct {
	// Service is the service the key is for; keys are checked with its
	// [keyprovider.Service.ParseKey]. The zero Service checks only that the
	// key is safe in an HTTP header.
	Service keyprovider.Service
	// CloseTimeout bounds how long [Provider.Close] waits for a read still
	// running (a Connect request abandoned by a Fetch whose context ended).
	// Zero means [DefaultCloseTimeout]; a negative value means Close does
	// not wait.
	CloseTimeout time.Duration

	// The fields below are used by [FromEnv] only.

	// IntegrationName identifies the program to 1Password in the SDK client
	// [FromEnv] makes. Zero means "keyprovider".
	IntegrationName string
	// IntegrationVersion is the version of the program IntegrationName
	// names. Zero means the version of this module.
	IntegrationVersion string
	// LookupEnv reads the variables FromEnv configures the client from, and
	// is the only place it reads them: with it set, the process
	// environment is not read. Nil means [os.LookupEnv].
	LookupEnv func(name string) (value string, ok bool)
}

// Option changes [Options].
type Option func(*Options)

// WithService sets [Options.Service].
func WithService(s keyprovider.Service) Option { return func(o *Options) { o.Service = s } }

// WithCloseTimeout sets [Options.CloseTimeout].
func WithCloseTimeout(d time.Duration) Option { return func(o *Options) { o.CloseTimeout = d } }

// WithIntegrationName sets [Options.IntegrationName].
func WithIntegrationName(name string) Option { return func(o *Options) { o.IntegrationName = name } }

// WithIntegrationVersion sets [Options.IntegrationVersion].
func WithIntegrationVersion(version string) Option {
	return func(o *Options) { o.IntegrationVersion = version }
}

// WithLookupEnv sets [Options.LookupEnv].
func WithLookupEnv(lookup func(name string) (string, bool)) Option {
	return func(o *Options) { o.LookupEnv = lookup }
}

// Provider reads a key from one field of a 1Password item, through the SDK
// or a Connect server. It is safe for concurrent use.
type Provider struct {
	ref     string
	parsed  reference
	opts    Options
	backend backend
	// creds are the tokens the Provider knows, to scrub from its errors.
	creds []redact.Secret
	// life is behind a pointer so that a copy of a Provider (printing a
	// dereferenced one) copies no lock.
	life *lifecycle
}

// lifecycle bounds a Provider's background reads and ends them at Close.
// Its fields are set when the Provider is made and never change, so that
// printing a Provider by reflection reads nothing another goroutine
// writes.
type lifecycle struct {
	// inflight holds one token while a backend call runs; see call. Close
	// takes it for good.
	inflight chan struct{}
	// closing is closed by the first Close.
	closing chan struct{}
	close   *closeState
}

// closeState serialises Close calls; drained records that Close holds the
// inflight token.
type closeState struct {
	once    sync.Once
	mu      sync.Mutex
	drained bool
}

var _ keyprovider.Provider = (*Provider)(nil)

// backend is one way of reading a reference: the SDK or Connect.
type backend interface {
	// read returns the value the reference names and its version, or an
	// error classified by kind (one of the keyprovider sentinels).
	read(ctx context.Context, ref string, r reference) (value, version string, kind, err error)
	// supports reports why the backend cannot serve r, if it cannot.
	supports(r reference) error
	// mode names the backend in messages: "sdk" or "connect".
	mode() string
}

// errConfig is the cause of a configuration error.
var errConfig = errors.New("invalid configuration")

// errClosed is the cause of a Fetch after Close.
var errClosed = errors.New("the Provider is closed")

// newError is the one way this package's errors are made: every one goes
// through it, and it scrubs err's text of creds and of any key-shaped text
// (the SDKs' errors quote what the server answered). kind nil means the
// caller's context ended.
func newError(ref string, kind, err error, creds ...redact.Secret) error {
	return &keyprovider.Error{Provider: providerName, Ref: ref, Kind: kind, Err: redact.Error(err, redact.RevealAll(creds)...)}
}

func configError(ref string, format string, args ...any) error {
	return newError(ref, keyprovider.ErrInvalidKey, fmt.Errorf("%w: "+format, append([]any{errConfig}, args...)...))
}

func options(opts []Option) Options {
	var o Options
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// New returns a Provider reading ref through resolver, the Secrets API of an
// SDK client. It validates ref with the SDK (loading its core if this is the
// first use in the process; see the package documentation) but does not
// contact 1Password. It fails, with an error wrapping
// [keyprovider.ErrInvalidKey], if secrets is nil or ref is not a valid
// secret reference. The token of the client behind secrets is unknown to
// the Provider: its errors are scrubbed of key-shaped text only.
func New(secrets SecretsAPI, ref string, opts ...Option) (*Provider, error) {
	if secrets == nil {
		return nil, configError(ref, "nil SecretsAPI")
	}
	return newProvider(context.Background(), &sdkBackend{r: secrets}, ref, options(opts))
}

func newProvider(ctx context.Context, b backend, ref string, o Options, creds ...redact.Secret) (*Provider, error) {
	r, err := parseReference(ctx, ref)
	if err != nil {
		return nil, err
	}
	return assemble(b, ref, r, o, creds...)
}

// assemble makes the Provider of a reference already parsed.
func assemble(b backend, ref string, r reference, o Options, creds ...redact.Secret) (*Provider, error) {
	if err := b.supports(r); err != nil {
		return nil, configError(ref, "%v", err)
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	return &Provider{ref: ref, parsed: r, opts: o, backend: b, creds: creds,
		life: &lifecycle{inflight: make(chan struct{}, 1), closing: make(chan struct{}), close: &closeState{}}}, nil
}

// String describes the Provider by its mode and reference, as in
// "onepassword.Provider(connect op://prod/tessera/credential)".
func (p Provider) String() string {
	if p.backend == nil {
		return "onepassword.Provider(<zero>)"
	}
	return "onepassword.Provider(" + p.backend.mode() + " " + p.ref + ")"
}

// Format prints the Provider as [Provider.String] does, whatever the verb:
// its fields hold the client, and the client holds a token. String and
// Format have value receivers, so that a dereferenced Provider prints the
// same way.
func (p Provider) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// Ref returns the secret reference the Provider reads.
func (p *Provider) Ref() string { return p.ref }

// Mode reports how the Provider reaches 1Password: "sdk" or "connect".
func (p *Provider) Mode() string { return p.backend.mode() }

// Fetch reads the reference once and returns the key it names. See the
// package documentation for the errors it returns.
func (p *Provider) Fetch(ctx context.Context) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, p.fail(nil, err)
	}
	res, err := p.call(ctx)
	switch {
	case errors.Is(err, errClosed):
		return keyprovider.Key{}, p.fail(keyprovider.ErrUnavailable, err)
	case err != nil:
		return keyprovider.Key{}, p.fail(nil, err)
	}
	if res.err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && res.kind == keyprovider.ErrUnavailable {
			// The backend gave up because we cancelled it: say so.
			return keyprovider.Key{}, p.fail(nil, ctxErr)
		}
		return keyprovider.Key{}, p.fail(res.kind, res.err)
	}
	k, err := p.opts.Service.ParseKey(res.value, res.version)
	if err != nil {
		return keyprovider.Key{}, p.fail(keyprovider.ErrInvalidKey, err)
	}
	return k, nil
}

// fail returns an error of the Provider, scrubbed of its tokens.
func (p *Provider) fail(kind, err error) error { return newError(p.ref, kind, err, p.creds...) }

type result struct {
	value, version string
	kind, err      error
}

// errPanic reports a backend that panicked; the panic value is not kept,
// since it may hold anything, secrets included.
var errPanic = errors.New("the 1Password client panicked")

// call runs one backend read in its own goroutine and waits for it on ctx.
// connect-sdk-go takes no context, so the only way to honour ctx is to stop
// waiting: the abandoned read finishes in the background. inflight bounds
// those to one per Provider: a call that finds a read still running waits
// (on ctx) for it to end before it starts its own.
func (p *Provider) call(ctx context.Context) (result, error) {
	select {
	case <-p.life.closing:
		return result{}, errClosed
	default:
	}
	select {
	case p.life.inflight <- struct{}{}:
	case <-p.life.closing:
		return result{}, errClosed
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
	select {
	case <-p.life.closing:
		// Close is waiting for this token: hand it over.
		<-p.life.inflight
		return result{}, errClosed
	default:
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-p.life.inflight }()
		defer func() {
			if recover() != nil {
				done <- result{kind: keyprovider.ErrUnavailable, err: errPanic}
			}
		}()
		var res result
		res.value, res.version, res.kind, res.err = p.backend.read(ctx, p.ref, p.parsed)
		done <- res
	}()
	select {
	case res := <-done:
		return res, nil
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// Close waits for the read a Fetch may have left running (see the package
// documentation), at most [Options.CloseTimeout], and makes every later
// Fetch fail with [keyprovider.ErrUnavailable]. If the read is still running
// when the time is up, Close returns an error saying so, and a later Close
// waits again; once it has returned nil, Close does nothing and returns nil.
// The clients behind the Provider are not closed: connect-sdk-go's uses
// [net/http.DefaultClient], shared by the process, and the SDK's releases
// itself when it is no longer used.
func (p *Provider) Close() error {
	p.life.close.mu.Lock()
	defer p.life.close.mu.Unlock()
	p.life.close.once.Do(func() { close(p.life.closing) })
	if p.life.close.drained {
		return nil
	}
	select {
	case p.life.inflight <- struct{}{}:
		p.life.close.drained = true
		return nil
	default:
	}
	stillRunning := p.fail(keyprovider.ErrUnavailable,
		fmt.Errorf("a 1Password read is still running after %v", max(p.opts.CloseTimeout, 0)))
	if p.opts.CloseTimeout < 0 {
		return stillRunning
	}
	t := time.NewTimer(p.opts.CloseTimeout)
	defer t.Stop()
	select {
	case p.life.inflight <- struct{}{}:
		p.life.close.drained = true
		return nil
	case <-t.C:
		return stillRunning
	}
}
