package keyprovider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/keyprovider/keyprovider/internal/envread"
)

// EnvSource tells where [FromEnv] finds a service's key. It never holds the
// key, so it is safe to print.
type EnvSource struct {
	// Var is the variable that is set: the service's EnvVar
	// ("TESSERA_API_KEY"), or EnvVar+"_FILE" when the key is in a file.
	Var string
	// Ref is the reference the key is read through: the one Var holds, or,
	// for a _FILE variable, the file:// reference of its (absolute) path.
	// It is the zero Ref when Var holds the key itself.
	Ref Ref
}

// IsLiteral reports whether the variable holds the key itself.
func (s EnvSource) IsLiteral() bool { return s.Ref.IsZero() }

// String describes the source without the key:
// "TESSERA_API_KEY=vault://kv/tessera#api_key",
// "TESSERA_API_KEY_FILE=/run/secrets/tessera", or
// "TESSERA_API_KEY (literal key)".
func (s EnvSource) String() string {
	switch {
	case s.Var == "":
		return ""
	case s.IsLiteral():
		return s.Var + " (literal key)"
	case s.Ref.Scheme == "file" && strings.HasSuffix(s.Var, envread.FileSuffix):
		return s.Var + "=" + s.Ref.Path
	default:
		return s.Var + "=" + s.Ref.String()
	}
}

// SourceFromEnv tells where [FromEnv] would find svc's key, without opening
// any backend or reading any file: which variable is set and the reference
// it holds. Its errors are those of FromEnv about the variables themselves.
func SourceFromEnv(svc Service, opts ...EnvOption) (EnvSource, error) {
	return defaultResolver.SourceFromEnv(svc, opts...)
}

// SourceFromEnv is [SourceFromEnv] with the schemes registered on r.
func (r *Resolver) SourceFromEnv(svc Service, opts ...EnvOption) (EnvSource, error) {
	return r.sourceFromEnv(svc, envOptions(opts))
}

func (r *Resolver) sourceFromEnv(svc Service, o EnvOptions) (EnvSource, error) {
	if svc.EnvVar == "" {
		return EnvSource{}, &Error{Provider: envProviderName, Kind: ErrInvalidKey, Err: errNoEnvVar}
	}
	v, err := envread.Lookup(o.LookupEnv, svc.EnvVar)
	switch {
	case errors.Is(err, envread.ErrNotSet):
		return EnvSource{}, &Error{Provider: envProviderName, Ref: svc.EnvVar, Kind: ErrNotFound, Err: err}
	case err != nil:
		return EnvSource{}, &Error{Provider: envProviderName, Ref: svc.EnvVar, Kind: ErrInvalidKey, Err: err}
	}
	if v.FromFile() {
		path, err := filepath.Abs(v.Path)
		if err != nil {
			return EnvSource{}, &Error{Provider: envProviderName, Ref: v.Var, Kind: ErrInvalidKey, Err: err}
		}
		return EnvSource{Var: v.Var, Ref: Ref{Scheme: "file", Path: path}}, nil
	}
	if isQuoted(v.Text) {
		return EnvSource{}, &Error{Provider: envProviderName, Ref: v.Var, Kind: ErrInvalidKey, Err: errQuoted}
	}
	if !looksLikeRef(v.Text) {
		return EnvSource{Var: v.Var}, nil
	}
	ref, err := r.Parse(v.Text)
	if err != nil {
		var re *RefError
		if errors.As(err, &re) {
			re.Var = v.Var
		}
		return EnvSource{}, err
	}
	if ref.Scheme == "env" && (ref.Path == svc.EnvVar || ref.Path == svc.EnvVar+envread.FileSuffix) {
		return EnvSource{}, &RefError{Var: v.Var, Ref: ref.String(), Reason: "refers to itself"}
	}
	return EnvSource{Var: v.Var, Ref: ref}, nil
}

// FromEnv returns a Provider of svc's key as the environment configures it,
// through the default [Resolver]. The variable svc.EnvVar
// ("TESSERA_API_KEY") holds either the key itself, the way a developer sets
// it on a laptop, or a reference to where it is kept, the way `op run` and
// berglas do it:
//
//	TESSERA_API_KEY=sk-tessera-...                          the key
//	TESSERA_API_KEY=vault://kv/tessera#api_key              a reference (see [Ref])
//	TESSERA_API_KEY_FILE=/run/secrets/tessera               a file holding the key
//
// A value is a reference when it starts with "scheme://"; one of an unknown
// scheme is an error, never taken for a key. Setting both the variable and
// its _FILE variable is an error, as is setting neither ([ErrNotFound]). A
// variable set to the empty string counts as unset. The file named by
// _FILE holds the key itself, never a reference; a relative path is made
// absolute against the working directory, once.
//
// # When the environment is read
//
// FromEnv reads the variables once, to choose the source, and fails fast on
// what it can check without a backend: a malformed reference, a scheme
// whose backend is not linked in, or a literal key that does not pass
// [Service.Validate] (reported by what is wrong with it, never by its
// value). It does not read a key from a file or a backend; the first Fetch
// does. After that:
//
//   - a literal key is re-read from the variable on every Fetch, so a
//     supervisor or a test that changes it is followed;
//   - a _FILE is re-read on every Fetch, so a secret that Kubernetes
//     rotates in its mount is followed;
//   - a reference is opened once, by its backend's [Opener], and the
//     Provider it returns reads the backend on every Fetch.
//
// Turning the variable from a key into a reference, or pointing it at
// another reference, takes effect at the next FromEnv (a restart).
//
// With package rotate and [NewClient], that is all it takes to go from
// nothing to an authenticated client that follows rotations:
//
//	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera)
//	src, err := rotate.New(p)
//	client := keyprovider.NewClient(src, keyprovider.WithService(keyprovider.Tessera))
//
// [WithLookupEnv] replaces the process environment (in tests, or to read an
// env file); the variables backends configure themselves from (VAULT_ADDR,
// AWS_REGION...) are then read through it too.
func FromEnv(ctx context.Context, svc Service, opts ...EnvOption) (*EnvProvider, error) {
	return defaultResolver.FromEnv(ctx, svc, opts...)
}

// FromEnv is [FromEnv] with the schemes registered on r.
func (r *Resolver) FromEnv(ctx context.Context, svc Service, opts ...EnvOption) (*EnvProvider, error) {
	o := envOptions(opts)
	src, err := r.sourceFromEnv(svc, o)
	if err != nil {
		return nil, err
	}
	if src.IsLiteral() {
		name, lookup := src.Var, o.LookupEnv
		if _, err := readVar(lookup, name, svc); err != nil {
			return nil, err
		}
		return &EnvProvider{src: src, p: ProviderFunc(func(ctx context.Context) (Key, error) {
			if err := ctx.Err(); err != nil {
				return Key{}, &Error{Provider: envProviderName, Ref: name, Err: err}
			}
			k, err := readVar(lookup, name, svc)
			if e := (*Error)(nil); errors.As(err, &e) && errors.Is(err, errChainedRef) {
				e.Err = errChangedToRef
			}
			return k, err
		})}, nil
	}
	p, err := r.openRef(ctx, src.Ref, svc, o)
	if err != nil {
		var re *RefError
		if errors.As(err, &re) && re.Var == "" {
			re.Var = src.Var
		}
		return nil, err
	}
	return &EnvProvider{src: src, p: p}, nil
}

// EnvProvider is the [Provider] [FromEnv] returns: the key of a service,
// from the source its variables name. It is safe for concurrent use.
type EnvProvider struct {
	src EnvSource
	p   Provider
}

// Fetch reads the key from the source; see [FromEnv] for what is re-read.
func (p *EnvProvider) Fetch(ctx context.Context) (Key, error) { return p.p.Fetch(ctx) }

// Source tells where the key comes from, without the key.
func (p *EnvProvider) Source() EnvSource { return p.src }

// Close closes the backend's Provider if it has a Close method (one that
// owns a client or a goroutine); otherwise it does nothing.
func (p *EnvProvider) Close() error {
	if c, ok := p.p.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// String describes the provider by its source; it never shows a key.
func (p *EnvProvider) String() string { return fmt.Sprintf("keyprovider.FromEnv(%s)", p.src) }

var (
	errNoEnvVar     = errors.New("the service has no EnvVar")
	errChangedToRef = errors.New("the variable held a key when the provider was made and now holds a reference; references are opened once, at start-up: restart to use it")
)
