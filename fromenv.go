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
	// It is the zero Ref (Scheme "") when Var holds the key itself.
	Ref Ref
}

// String describes the source without the key:
// "TESSERA_API_KEY=vault://kv/tessera#api_key",
// "TESSERA_API_KEY_FILE=/run/secrets/tessera", or
// "TESSERA_API_KEY (literal key)". A part of the reference that could be a
// key is shown as its fingerprint, as in a [*RefError].
func (s EnvSource) String() string {
	switch {
	case s.Var == "":
		return ""
	case s.Ref.Scheme == "":
		return s.Var + " (literal key)"
	case s.Ref.Scheme == "file" && strings.HasSuffix(s.Var, envread.FileSuffix):
		return s.Var + "=" + safeRef(s.Ref.Path)
	default:
		return s.Var + "=" + safeRef(s.Ref.String())
	}
}

func (r *Resolver) sourceFromEnv(svc Service, o EnvOptions) (EnvSource, error) {
	if svc.EnvVar == "" {
		return EnvSource{}, &Error{Provider: envProviderName, Kind: ErrInvalidKey, Err: errNoEnvVar}
	}
	v, err := envread.Lookup(o.LookupEnv, svc.EnvVar)
	if err != nil {
		return EnvSource{}, &Error{Provider: envProviderName, Ref: v.Var, Kind: envread.Kind(err), Err: err}
	}
	if v.FromFile() {
		path, err := filepath.Abs(v.Path)
		if err != nil {
			return EnvSource{}, &Error{Provider: envProviderName, Ref: v.Var, Kind: ErrInvalidKey, Err: err}
		}
		return EnvSource{Var: v.Var, Ref: Ref{Scheme: "file", Path: path}}, nil
	}
	if !envread.IsRef(v.Text) {
		if err := envread.CheckKeyText(v.Text); err != nil {
			return EnvSource{}, &Error{Provider: envProviderName, Ref: v.Var, Kind: envread.Kind(err), Err: err}
		}
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
		re := newRefError(ref.String(), "refers to itself", nil)
		re.Var = v.Var
		return EnvSource{}, re
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
// scheme is an error, never taken for a key. The variables follow the rules
// of package env, read by the same code: setting neither is [ErrNotFound];
// a variable set to the empty string (or white space) yields to its twin,
// and is [ErrInvalidKey] without one (TESSERA_API_KEY="" alone: something
// is configured, and it is no key); setting both the variable and its
// _FILE variable is [ErrInvalidKey]. The file named by _FILE holds the key
// itself, never a reference; a relative path is made absolute against the
// working directory, once.
//
// # When the environment is read
//
// FromEnv reads the variables once, to choose the source, and fails fast on
// what it can check without a backend: a malformed reference, a scheme
// whose backend is not linked in ([ErrSchemeNotLinked]), or a literal key
// that does not pass [Service.Validate] (reported by what is wrong with it,
// never by its value). It does not read a key from a file or a backend; the
// first Fetch does. After that:
//
//   - a literal key is re-read from the variable on every Fetch, so a
//     supervisor or a test that changes it is followed;
//   - a _FILE is re-read on every Fetch, so a secret that Kubernetes
//     rotates in its mount is followed;
//   - a reference is opened once, by its backend's [Scheme], and the
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
// VAULT_TOKEN, AWS_REGION...) are then read through it alone, never from the
// process.
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
	if src.Ref.Scheme == "" {
		name, lookup := src.Var, o.LookupEnv
		ref := safeRef(name)
		if _, err := readVar(lookup, name, ref, svc); err != nil {
			return nil, err
		}
		return &EnvProvider{src: src, p: ProviderFunc(func(ctx context.Context) (Key, error) {
			if err := ctx.Err(); err != nil {
				return Key{}, &Error{Provider: envProviderName, Ref: name, Err: err}
			}
			k, err := readVar(lookup, name, ref, svc)
			if e := (*Error)(nil); errors.As(err, &e) && errors.Is(err, envread.ErrReference) {
				e.Err = errChangedToRef
			}
			return k, err
		})}, nil
	}
	p, err := r.open(ctx, src.Ref, svc, o)
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
//
// When the key is in a file (a _FILE variable, or a file:// reference), it
// also has the Watch method of package rotate's Watcher, so that a
// rotate.Source over it picks up a change of the file at once.
type EnvProvider struct {
	src EnvSource
	p   Provider // the Provider it reads through
}

// Watch is the method of package rotate's Watcher (documented there;
// package rotate imports this one, so the interface cannot be named here):
// it forwards to the Provider the key is read through, and returns nil when
// that Provider cannot be watched (a literal key, a Vault secret...).
func (p *EnvProvider) Watch(ctx context.Context) <-chan struct{} {
	if wp, ok := p.p.(interface {
		Watch(context.Context) <-chan struct{}
	}); ok {
		return wp.Watch(ctx)
	}
	return nil
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

// The built-in schemes.

// envProviderName and fileProviderName are the Provider fields of the
// errors of env:// and file:// references.
const (
	envProviderName  = "env"
	fileProviderName = "file"
)

// envScheme is env://NAME: the variable NAME holds the key.
var envScheme = Scheme{
	Name: "env",
	Parse: func(parts []string, r *Ref) error {
		if len(parts) != 1 || !isVarName(parts[0]) {
			return errors.New("env:// takes a variable name (letters, digits and _, not starting with a digit): env://OTHER_VAR")
		}
		r.Path = parts[0]
		return nil
	},
	Open: func(_ context.Context, req OpenRequest) (Provider, error) {
		name, svc, lookup := req.Ref.Path, req.Service, req.LookupEnv
		ref := safeRef(name)
		return ProviderFunc(func(ctx context.Context) (Key, error) {
			if err := ctx.Err(); err != nil {
				return Key{}, &Error{Provider: envProviderName, Ref: ref, Err: err}
			}
			return readVar(lookup, name, ref, svc)
		}), nil
	},
}

// fileScheme is file:///ABSOLUTE/PATH: the file holds the key.
var fileScheme = Scheme{
	Name: "file",
	Parse: func(parts []string, r *Ref) error {
		p := strings.Join(parts, "/")
		if !strings.HasPrefix(p, "/") {
			return errors.New("file:// takes an absolute path, after three slashes: file:///run/secrets/tessera")
		}
		if strings.IndexByte(p, 0) >= 0 {
			return errors.New("the path contains a NUL byte")
		}
		r.Path = p
		return nil
	},
	Open: func(_ context.Context, req OpenRequest) (Provider, error) {
		return fileProvider{path: req.Ref.Path, ref: safeRef(req.Ref.Path), svc: req.Service}, nil
	},
}

// fileProvider reads the key in the file at path on every Fetch, and
// watches it for package rotate (its Watch is rotate.Watcher's).
type fileProvider struct {
	path string
	ref  string // path as errors show it, scrubbed once
	svc  Service
}

func (p fileProvider) Fetch(ctx context.Context) (Key, error) {
	if err := ctx.Err(); err != nil {
		return Key{}, &Error{Provider: fileProviderName, Ref: p.ref, Err: err}
	}
	raw, err := envread.KeyText(envread.Value{Var: p.path, Path: p.path})
	if err != nil {
		return Key{}, &Error{Provider: fileProviderName, Ref: p.ref, Kind: envread.Kind(err), Err: scrubError(err)}
	}
	return parseKey(fileProviderName, p.ref, p.svc, raw)
}

// Watch watches the file through its directory (see envread.Watch).
func (p fileProvider) Watch(ctx context.Context) <-chan struct{} { return envread.Watch(ctx, p.path) }

// readVar reads the key held literally in the variable name, by the rules
// of package envread: unset is ErrNotFound, blank ErrInvalidKey. ref is
// name as errors show it (safeRef(name)).
func readVar(lookup func(string) (string, bool), name, ref string, svc Service) (Key, error) {
	v, err := envread.Var(lookup, name)
	if err == nil {
		v, err = envread.KeyText(envread.Value{Var: name, Text: v})
	}
	if err != nil {
		return Key{}, &Error{Provider: envProviderName, Ref: ref, Kind: envread.Kind(err), Err: scrubError(err)}
	}
	return parseKey(envProviderName, ref, svc, v)
}

func parseKey(provider, ref string, svc Service, raw string) (Key, error) {
	k, err := svc.ParseKey(raw, "")
	if err != nil {
		return Key{}, &Error{Provider: provider, Ref: ref, Kind: ErrInvalidKey, Err: err}
	}
	return k, nil
}

// isVarName reports whether s is a portable environment variable name.
func isVarName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

var (
	errNoEnvVar     = errors.New("the service has no EnvVar")
	errChangedToRef = errors.New("the variable held a key when the provider was made and now holds a reference; references are opened once, at start-up: restart to use it")
)
