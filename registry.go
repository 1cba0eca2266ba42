package keyprovider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/keyprovider/keyprovider/internal/envread"
)

// An Opener turns a reference of one scheme into a [Provider]. Backend
// packages register one for their scheme with [RegisterScheme] when they are
// imported; see [Resolver].
type Opener interface {
	// OpenRef returns a Provider reading the key req.Ref names. It may do
	// I/O (load a configuration, log in), bounded by ctx, but should not read
	// the key: that is Fetch's job. It reports a reference it cannot serve
	// as a [*RefError] or a [*Error] wrapping [ErrInvalidKey].
	OpenRef(ctx context.Context, req OpenRequest) (Provider, error)
}

// OpenerFunc adapts an ordinary function to the [Opener] interface.
type OpenerFunc func(ctx context.Context, req OpenRequest) (Provider, error)

// OpenRef calls f(ctx, req).
func (f OpenerFunc) OpenRef(ctx context.Context, req OpenRequest) (Provider, error) {
	return f(ctx, req)
}

// OpenRequest is what an [Opener] is asked to open.
type OpenRequest struct {
	// Ref is the parsed reference, of the opener's scheme.
	Ref Ref
	// Service is the service the key is for: the Provider checks keys with
	// its [Service.ParseKey]. The zero Service checks header safety only.
	Service Service
	// LookupEnv reads the environment the backend configures its client
	// from (VAULT_ADDR, AWS_REGION, OP_CONNECT_HOST...); it is never nil.
	// It is the process environment unless the caller injected another
	// with [WithLookupEnv] (an env file checked by keyprov, a test), so
	// openers use it rather than [os.Getenv].
	LookupEnv func(name string) (value string, ok bool)
}

// Getenv returns the variable name of req's environment, or "" if it is
// unset.
func (req OpenRequest) Getenv(name string) string {
	if req.LookupEnv == nil {
		return os.Getenv(name)
	}
	v, _ := req.LookupEnv(name)
	return v
}

// EnvOptions configure [FromEnv], [SourceFromEnv] and [Open].
type EnvOptions struct {
	// LookupEnv reads a variable: the service's variable and its _FILE
	// variable, the variable an env:// reference names, and the variables
	// backends configure themselves from. Zero means [os.LookupEnv]. Tests
	// inject a map here instead of calling t.Setenv; keyprov injects an env
	// file.
	LookupEnv func(name string) (value string, ok bool)
}

// EnvOption changes [EnvOptions].
type EnvOption func(*EnvOptions)

// WithLookupEnv sets [EnvOptions.LookupEnv].
func WithLookupEnv(lookup func(name string) (value string, ok bool)) EnvOption {
	return func(o *EnvOptions) { o.LookupEnv = lookup }
}

func envOptions(opts []EnvOption) EnvOptions {
	var o EnvOptions
	for _, fn := range opts {
		fn(&o)
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	return o
}

// Resolver maps reference schemes to the [Opener]s that open them. Every
// Resolver opens env:// and file:// references itself; other schemes must be
// registered.
//
// The package-level functions [RegisterScheme], [Open], [FromEnv] and
// [SourceFromEnv] use a default Resolver that backend packages register
// into when they are imported, the way database/sql drivers do:
//
//	import _ "github.com/keyprovider/keyprovider/vault" // registers vault://
//
// A program that prefers to wire by hand, or a test that wants no global
// state, makes its own with [NewResolver] and registers each backend's
// opener on it:
//
//	r := keyprovider.NewResolver()
//	r.Register("vault", keyprovider.OpenerFunc(vault.OpenRef))
//	p, err := r.FromEnv(ctx, keyprovider.Tessera)
//
// A Resolver is safe for concurrent use.
type Resolver struct {
	mu      sync.RWMutex
	openers map[string]Opener
}

// NewResolver returns a Resolver that knows env:// and file:// only.
func NewResolver() *Resolver {
	return &Resolver{openers: map[string]Opener{
		"env":  OpenerFunc(openEnvRef),
		"file": OpenerFunc(openFileRef),
	}}
}

var defaultResolver = NewResolver()

// Register makes o open the references of scheme. scheme is one of
// vault, awssm and op, or a new scheme, whose references then follow the
// generic grammar SCHEME://PATH[#FIELD][?NAME=VALUE...]. Like
// database/sql's Register, it panics if o is nil, if scheme is not a valid
// lower-case scheme name, or if scheme already has an opener, env and file
// included: two packages claiming one scheme is a bug to find at start-up,
// not a choice to make silently.
func (r *Resolver) Register(scheme string, o Opener) {
	if o == nil {
		panic("keyprovider: Register of scheme " + scheme + " with a nil Opener")
	}
	if s, rest, ok := splitScheme(scheme + "://"); !ok || rest != "" || s != strings.ToLower(s) {
		panic(fmt.Sprintf("keyprovider: Register of invalid scheme %q (want lower-case letters, digits, +, - and .)", scheme))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.openers[scheme]; dup {
		panic("keyprovider: Register called twice for scheme " + scheme)
	}
	r.openers[scheme] = o
}

// Schemes returns the schemes r can open, sorted.
func (r *Resolver) Schemes() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.openers))
}

func (r *Resolver) opener(scheme string) Opener {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.openers[scheme]
}

// Parse parses a reference as [ParseRef] does, also accepting the custom
// schemes registered on r.
func (r *Resolver) Parse(s string) (Ref, error) {
	return parseRef(s, func(scheme string) bool { return r.opener(scheme) != nil })
}

// Open parses ref and opens it: see [Resolver.OpenRef].
func (r *Resolver) Open(ctx context.Context, ref string, svc Service, opts ...EnvOption) (Provider, error) {
	parsed, err := r.Parse(ref)
	if err != nil {
		return nil, err
	}
	return r.OpenRef(ctx, parsed, svc, opts...)
}

// OpenRef returns a Provider reading the key ref names, for svc, through
// the opener registered for ref's scheme. A scheme with no opener is a
// [*RefError] naming the package whose import registers it.
func (r *Resolver) OpenRef(ctx context.Context, ref Ref, svc Service, opts ...EnvOption) (Provider, error) {
	o := envOptions(opts)
	return r.openRef(ctx, ref, svc, o)
}

func (r *Resolver) openRef(ctx context.Context, ref Ref, svc Service, o EnvOptions) (Provider, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	op := r.opener(ref.Scheme)
	if op == nil {
		return nil, notLinked(ref, r == defaultResolver)
	}
	return op.OpenRef(ctx, OpenRequest{Ref: ref, Service: svc, LookupEnv: o.LookupEnv})
}

// ErrSchemeNotLinked is wrapped by the [*RefError] of a reference whose
// scheme has no opener in the [Resolver]: its backend package was not
// imported (or, on a Resolver made by [NewResolver], not registered).
var ErrSchemeNotLinked = errors.New("scheme not linked in")

func notLinked(ref Ref, isDefault bool) error {
	sp := builtinSpecs[ref.Scheme]
	var hint string
	switch {
	case sp != nil && sp.pkg != "" && isDefault:
		hint = fmt.Sprintf("%s:// needs its backend: add import _ %q to the program", ref.Scheme, sp.pkg)
	case sp != nil && sp.pkg != "":
		hint = fmt.Sprintf("%s:// is not registered on this Resolver: Register the opener of package %s", ref.Scheme, sp.pkg)
	default:
		hint = fmt.Sprintf("no opener is registered for %s://", ref.Scheme)
	}
	return &RefError{Ref: ref.String(), Reason: hint, Err: ErrSchemeNotLinked}
}

// RegisterScheme registers o for scheme on the default [Resolver], the one
// [Open] and [FromEnv] use. Backend packages call it from init, so that a
// blank import links their scheme in; it panics as [Resolver.Register] does,
// in particular when two packages register the same scheme.
func RegisterScheme(scheme string, o Opener) { defaultResolver.Register(scheme, o) }

// Schemes returns the schemes the default [Resolver] can open, sorted:
// env and file, and those of the backend packages linked in.
func Schemes() []string { return defaultResolver.Schemes() }

// Open parses ref and returns a Provider for the key it names, for svc,
// through the default [Resolver]. The Provider reads the backend on every
// Fetch. Opening a reference whose backend package is not imported fails
// with an error naming the package to import, wrapping
// [ErrSchemeNotLinked] and [ErrInvalidKey].
func Open(ctx context.Context, ref string, svc Service, opts ...EnvOption) (Provider, error) {
	return defaultResolver.Open(ctx, ref, svc, opts...)
}

// The built-in openers.

// envProviderName and fileProviderName are the Provider fields of the
// errors of env:// and file:// references.
const (
	envProviderName  = "env"
	fileProviderName = "file"
)

func openEnvRef(_ context.Context, req OpenRequest) (Provider, error) {
	name, svc, lookup := req.Ref.Path, req.Service, req.LookupEnv
	return ProviderFunc(func(ctx context.Context) (Key, error) {
		if err := ctx.Err(); err != nil {
			return Key{}, &Error{Provider: envProviderName, Ref: name, Err: err}
		}
		return readVar(lookup, name, svc)
	}), nil
}

func openFileRef(_ context.Context, req OpenRequest) (Provider, error) {
	path, svc := req.Ref.Path, req.Service
	return ProviderFunc(func(ctx context.Context) (Key, error) {
		if err := ctx.Err(); err != nil {
			return Key{}, &Error{Provider: fileProviderName, Ref: path, Err: err}
		}
		return readFile(path, svc)
	}), nil
}

// readVar reads the key held literally in the variable name. An unset
// variable is ErrNotFound; one set to a blank value is ErrInvalidKey, as a
// blank secret is in every backend.
func readVar(lookup func(string) (string, bool), name string, svc Service) (Key, error) {
	v, ok := lookup(name)
	if !ok {
		return Key{}, &Error{Provider: envProviderName, Ref: name, Kind: ErrNotFound, Err: errVarNotSet}
	}
	if looksLikeRef(strings.TrimSpace(v)) {
		return Key{}, &Error{Provider: envProviderName, Ref: name, Kind: ErrInvalidKey, Err: errChainedRef}
	}
	k, err := parseKey(svc, v)
	if err != nil {
		return Key{}, &Error{Provider: envProviderName, Ref: name, Kind: ErrInvalidKey, Err: err}
	}
	return k, nil
}

// parseKey is svc.ParseKey, after refusing a value wrapped in quotes with
// a message that says so.
func parseKey(svc Service, raw string) (Key, error) {
	if isQuoted(strings.TrimSpace(raw)) {
		return Key{}, errQuoted
	}
	return svc.ParseKey(raw, "")
}

// isQuoted reports whether v is wrapped in a pair of single or double
// quotes, which `docker run --env-file` and some .env loaders keep.
func isQuoted(v string) bool {
	return len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]
}

// readFile reads the key held in the file at path.
func readFile(path string, svc Service) (Key, error) {
	raw, err := envread.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// The kubelet swaps a mounted secret by pointing a symbolic link at
		// a new directory and then removing the old one; a lookup that
		// followed the old link may find its directory gone. Looking again
		// follows the new link.
		raw, err = envread.ReadFile(path)
	}
	if err != nil {
		return Key{}, &Error{Provider: fileProviderName, Ref: path, Kind: envread.FileErrKind(err), Err: err}
	}
	k, err := parseKey(svc, raw)
	if err != nil {
		return Key{}, &Error{Provider: fileProviderName, Ref: path, Kind: ErrInvalidKey, Err: err}
	}
	return k, nil
}

var (
	errVarNotSet  = errors.New("variable not set")
	errQuoted     = errors.New("the value is wrapped in quotes, which are not part of a key (docker run --env-file keeps them): remove them")
	errChainedRef = errors.New("the variable holds a reference; an env:// reference must name a variable holding the key itself")
)
