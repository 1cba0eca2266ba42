package keyprovider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/keyprovider/keyprovider/internal/envread"
)

// Scheme is one kind of reference: its grammar and how its references are
// opened. Package keyprovider defines env and file; each backend package
// defines its own and registers it when imported (vault, awssm, op), the way
// gocloud.dev's URL openers do, so the rules of a backend's references live
// with the backend. The root keeps the grammar all schemes share (see
// [Ref]): the parts between "/", "#FIELD", "?QUERY", escapes, and the
// canonical text.
type Scheme struct {
	// Name is the lower-case scheme: "vault". Required.
	Name string
	// Field tells whether references take "#FIELD". Zero: they take none.
	Field bool
	// Params are the query parameters references may take, in the order of
	// the canonical text. Zero: none.
	Params []string
	// Opaque makes the text after "://" and the query values taken as
	// written: no "%" escapes, and spaces allowed (1Password's own syntax).
	// Zero: "%XX" escapes apply and a space must be written %20.
	Opaque bool
	// Parse fills r.Mount and r.Path from parts, the text between "://" and
	// the first "#" or "?" split at "/", each unescaped (as written when
	// Opaque). r.Scheme, r.Field and r.Params are already set: Parse checks
	// what only the backend knows (a version's shape, an ARN, a path's
	// segments) and may normalise Params. Its error's text becomes the
	// Reason of a [*RefError]; it must not quote a part that could be a key.
	// Zero: Path is the parts joined by "/", which must not be empty.
	Parse func(parts []string, r *Ref) error
	// Format is Parse's inverse: the parts, unescaped, that Parse reads
	// back into r. Zero: r.Path split at "/".
	Format func(r Ref) []string
	// Open returns a Provider reading the key req.Ref names. It may do I/O
	// (load a configuration, log in), bounded by ctx, but should not read
	// the key: that is Fetch's job. It reports a reference it cannot serve
	// as a [*RefError] or a [*Error] wrapping [ErrInvalidKey]. Required.
	Open func(ctx context.Context, req OpenRequest) (Provider, error)
}

func (s *Scheme) parse(parts []string, r *Ref) error {
	if s.Parse != nil {
		return s.Parse(parts, r)
	}
	r.Path = strings.Join(parts, "/")
	if r.Path == "" {
		return errors.New("empty path")
	}
	return nil
}

func (s *Scheme) format(r Ref) []string {
	if s.Format != nil {
		return s.Format(r)
	}
	return strings.Split(r.Path, "/")
}

// OpenRequest is what a [Scheme]'s Open is asked to open.
type OpenRequest struct {
	// Ref is the parsed reference, of the opener's scheme.
	Ref Ref
	// Service is the service the key is for: the Provider checks keys with
	// its [Service.ParseKey]. The zero Service checks header safety only.
	Service Service
	// LookupEnv is the environment the caller injected with
	// [WithLookupEnv] (an env file checked by keyprov, a test), or nil for
	// the process environment. An opener passes it to its backend, which
	// then configures its client (address, region, credentials) from that
	// environment only: an env file that names a server must never receive
	// the credentials of the process that reads the file.
	LookupEnv func(name string) (value string, ok bool)
}

// EnvOptions configure [FromEnv], [Open] and the methods of [Resolver].
type EnvOptions struct {
	// LookupEnv reads a variable: the service's variable and its _FILE
	// variable, the variable an env:// reference names, and every variable
	// backends configure themselves from (VAULT_ADDR, VAULT_TOKEN,
	// AWS_REGION...), which are then read through it alone. Zero means the
	// process environment ([os.LookupEnv]), with each backend's own
	// defaults. Tests inject a map here instead of calling t.Setenv;
	// keyprov injects an env file.
	LookupEnv func(name string) (value string, ok bool)
}

// EnvOption sets a field of [EnvOptions].
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
	return o
}

// Resolver maps reference schemes to their [Scheme]. Every Resolver knows
// env:// and file://; other schemes must be registered.
//
// The package-level functions [RegisterScheme], [ParseRef], [Open],
// and [FromEnv] use a default Resolver that backend packages
// register into when they are imported, the way database/sql drivers do:
//
//	import _ "github.com/keyprovider/keyprovider/vault" // registers vault://
//
// A reference to a scheme whose backend is not linked in (vault://, awssm://
// or op:// without the import, or not registered on a Resolver made by
// [NewResolver]) is a [*RefError] wrapping [ErrSchemeNotLinked], naming the
// package to import, at parse time: [FromEnv] fails at start-up, not at the
// first Fetch.
//
// A program that prefers to wire by hand, or a test that wants no global
// state, makes its own Resolver and registers each backend's Scheme on it:
//
//	r := keyprovider.NewResolver()
//	r.Register(vault.Scheme())
//	p, err := r.FromEnv(ctx, keyprovider.Tessera)
//
// A Resolver is safe for concurrent use.
type Resolver struct {
	mu      sync.RWMutex
	schemes map[string]*Scheme
}

// NewResolver returns a Resolver that knows env:// and file:// only.
func NewResolver() *Resolver {
	return &Resolver{schemes: map[string]*Scheme{"env": &envScheme, "file": &fileScheme}}
}

var defaultResolver = NewResolver()

// Register adds s to r. Like database/sql's Register, it panics if s.Name
// is not a valid lower-case scheme name, if s.Open is nil, if r already
// has a scheme of that name, env and file included, or if a Resolver of the
// process has one of that name with another grammar (Field, Params, Opaque,
// Parse or Format set or not): two packages claiming one scheme is a bug to find at
// start-up, not a choice to make silently. Open may differ between
// Resolvers.
func (r *Resolver) Register(s Scheme) {
	if got, rest, ok := envread.SplitScheme(s.Name + "://"); !ok || rest != "" || got != strings.ToLower(got) {
		panic(fmt.Sprintf("keyprovider: Register of invalid scheme %q (want lower-case letters, digits, +, - and .)", s.Name))
	}
	if s.Open == nil {
		panic("keyprovider: Register of scheme " + s.Name + " with a nil Open")
	}
	s.Params = slices.Clone(s.Params)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.schemes[s.Name]; dup {
		panic("keyprovider: Register called twice for scheme " + s.Name)
	}
	if g, loaded := grammars.LoadOrStore(s.Name, &s); loaded && !sameGrammar(g.(*Scheme), &s) {
		panic("keyprovider: Register of scheme " + s.Name + " with another grammar than it was registered with before")
	}
	r.schemes[s.Name] = &s
}

// schemeNames returns the names of the schemes r knows, sorted.
func (r *Resolver) schemeNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.schemes))
}

func (r *Resolver) scheme(name string) *Scheme {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.schemes[name]
}

// grammars holds the first Scheme registered under each name on any
// Resolver, so that [Ref.String] writes a Ref in its scheme's grammar. A
// name has one grammar in a process: Register refuses another.
var grammars sync.Map // name → *Scheme

// sameGrammar reports whether a and b can be the same grammar: the same
// flags and parameters, and Parse and Format set alike. (Functions cannot be
// compared: an inlined constructor makes a new closure each time.)
func sameGrammar(a, b *Scheme) bool {
	return a.Field == b.Field && a.Opaque == b.Opaque && slices.Equal(a.Params, b.Params) &&
		(a.Parse == nil) == (b.Parse == nil) && (a.Format == nil) == (b.Format == nil)
}

// genericScheme is the grammar of a Ref whose scheme no Resolver knows.
var genericScheme = Scheme{Field: true}

func grammarOf(name string) *Scheme {
	switch name {
	case "env":
		return &envScheme
	case "file":
		return &fileScheme
	}
	if s, ok := grammars.Load(name); ok {
		return s.(*Scheme)
	}
	return &genericScheme
}

// Parse parses a reference of a scheme r knows; see [ParseRef].
func (r *Resolver) Parse(s string) (Ref, error) {
	scheme, rest, ok := envread.SplitScheme(s)
	if !ok {
		return Ref{}, &RefError{Reason: `not a reference: it does not start with "scheme://"`}
	}
	scheme = strings.ToLower(scheme)
	sch := r.scheme(scheme)
	if sch == nil {
		if pkg, known := backendPackages[scheme]; known {
			return Ref{}, r.notLinked(s, scheme, pkg)
		}
		return Ref{}, &RefError{Reason: unknownSchemeReason(scheme, r.knownNames())}
	}
	return parseRef(s, scheme, rest, sch)
}

// knownNames lists the schemes r knows and those of the backend packages,
// for an error.
func (r *Resolver) knownNames() []string {
	names := r.schemeNames()
	for name := range backendPackages {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// backendPackages are the packages of this module whose blank import
// registers a scheme, for the hint of [ErrSchemeNotLinked].
var backendPackages = map[string]string{
	"vault": modulePath + "/vault",
	"awssm": modulePath + "/awssm",
	"op":    modulePath + "/onepassword",
}

// Import path of this module, for the hint naming the package to import.
const modulePath = "github.com/keyprovider/keyprovider"

// ErrSchemeNotLinked is wrapped by the [*RefError] of a reference whose
// scheme is not registered in the [Resolver]: its backend package was not
// imported (or, on a Resolver made by [NewResolver], not registered).
var ErrSchemeNotLinked = errors.New("scheme not linked in")

func (r *Resolver) notLinked(ref, scheme, pkg string) error {
	hint := fmt.Sprintf("%s:// needs its backend: add import _ %q to the program", scheme, pkg)
	if r != defaultResolver {
		hint = fmt.Sprintf("%s:// is not registered on this Resolver: Register the Scheme of package %s", scheme, pkg)
	}
	return newRefError(ref, hint, ErrSchemeNotLinked)
}

// Open parses ref and returns a Provider for the key it names, for svc,
// through the Scheme r registered for it; see [Open].
func (r *Resolver) Open(ctx context.Context, ref string, svc Service, opts ...EnvOption) (Provider, error) {
	parsed, err := r.Parse(ref)
	if err != nil {
		return nil, err
	}
	return r.open(ctx, parsed, svc, envOptions(opts))
}

func (r *Resolver) open(ctx context.Context, ref Ref, svc Service, o EnvOptions) (Provider, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sch := r.scheme(ref.Scheme)
	if sch == nil {
		return nil, r.notLinked(ref.String(), ref.Scheme, backendPackages[ref.Scheme])
	}
	return sch.Open(ctx, OpenRequest{Ref: ref, Service: svc, LookupEnv: o.LookupEnv})
}

// Schemes returns the schemes the default [Resolver] knows, sorted: env and
// file, and those of the backend packages linked in (keyprov exec resolves
// only values of these schemes and passes any other scheme:// through).
func Schemes() []string { return defaultResolver.schemeNames() }

// RegisterScheme registers s on the default [Resolver], the one [ParseRef],
// [Open] and [FromEnv] use. Backend packages call it from init, so that a
// blank import links their scheme in; it panics as [Resolver.Register] does,
// in particular when two packages register the same scheme.
func RegisterScheme(s Scheme) { defaultResolver.Register(s) }

// Open parses ref and returns a Provider for the key it names, for svc,
// through the default [Resolver]. The Provider reads the backend on every
// Fetch. Opening a reference whose backend package is not imported fails
// with an error naming the package to import, wrapping
// [ErrSchemeNotLinked] and [ErrInvalidKey].
func Open(ctx context.Context, ref string, svc Service, opts ...EnvOption) (Provider, error) {
	return defaultResolver.Open(ctx, ref, svc, opts...)
}
