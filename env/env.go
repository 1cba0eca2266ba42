// Package env reads an API key from an environment variable, or from the file
// that the variable's _FILE twin names. It is the embedded default backend of
// keyprovider: no server, no SDK, nothing to configure.
//
//	p := env.ForService(keyprovider.Tessera) // TESSERA_API_KEY or TESSERA_API_KEY_FILE
//	k, err := p.Fetch(ctx)
//
// # Where the key is read
//
// For a variable NAME, [Provider.Fetch] looks at NAME and NAME_FILE, by the
// same rules, and through the same code, as [keyprovider.FromEnv] reads a
// service's variables, so one input gives one error in both:
//
//   - NAME set: its value is the key.
//   - NAME_FILE set: the key is the contents of the file it names, the
//     convention of Docker and Kubernetes secrets. The path is trimmed of
//     surrounding white space; a relative one is relative to the working
//     directory.
//   - a variable set to the empty string, or to white space, yields to the
//     other one (Compose and Kubernetes manifests often pass "NAME=" through):
//     NAME="" alone is [keyprovider.ErrInvalidKey], since something is
//     configured and it is not a key.
//   - both set (to something other than white space): a configuration error
//     naming both, wrapping [keyprovider.ErrInvalidKey] and a
//     [*ConflictError].
//   - neither set: [keyprovider.ErrNotFound], naming both variables.
//
// The value is trimmed of surrounding white space (a secret file usually
// ends with a newline) and then checked with [keyprovider.Service.Validate]
// for the provider's service. A blank file, a value wrapped in quotes (as
// `docker run --env-file` passes KEY="..." on), or a reference such as
// "vault://kv/tessera#key" (which [keyprovider.FromEnv] follows, and this
// package does not), is [keyprovider.ErrInvalidKey].
//
// # Rotation
//
// Nothing is cached: every Fetch reads the variables again, and the file
// again, so a supervisor or a test that changes the environment, or a kubelet
// that swaps a mounted secret, is seen by the next Fetch. Put package rotate
// in front of the provider to fetch in the background rather than on every
// request: a key file is then also watched ([Provider.Watch]), so that a
// change is picked up within a fraction of a second rather than at the next
// scheduled refresh. A Kubernetes Secret mounted with subPath is never
// updated by the kubelet, so there is no change to see.
//
// # Files
//
// The file must be a regular file (a symbolic link to one, as Kubernetes
// mounts secrets, is fine) of at most [MaxFileSize] bytes; a directory, FIFO,
// device or larger file is refused before it is read (it is opened without
// blocking and checked as opened, so a FIFO swapped in never blocks), as
// [keyprovider.ErrInvalidKey], as is a path that cannot be resolved (a
// symbolic link loop, a name too long). A missing file is looked up once more (the
// kubelet removes the old copy of a secret just after it links in the new
// one, so a lookup can cross the swap), then is [keyprovider.ErrNotFound],
// one we may not read [keyprovider.ErrPermission], any other failure to read
// it [keyprovider.ErrUnavailable]. The error names the _FILE variable and the
// path, and keeps the [*io/fs.PathError] reachable with [errors.As].
//
// # Errors
//
// Every error is a [*keyprovider.Error] with Provider "env" and, as Ref, the
// variable that was read. No error, log line or printed form of this package
// ever holds a key or a part of one.
package env

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/envread"
)

// providerName is the Provider field of every error of this package.
const providerName = "env"

// FileSuffix is appended to a variable's name to name its twin, which holds
// the path of a file holding the key: TESSERA_API_KEY_FILE.
const FileSuffix = envread.FileSuffix

// MaxFileSize is the largest key file Fetch reads, in bytes (64 KiB): far
// more than a key of [keyprovider.MaxKeyLen] bytes with any white space
// around it, far less than a log file or a disk image named by mistake.
const MaxFileSize = envread.MaxFileSize

// Options configures a [Provider].
type Options struct {
	// Service is the service whose keys the variable holds: the key is
	// checked with its Validate (so a Tesseral key in TESSERA_API_KEY is
	// refused), and its Name appears in validation errors. Zero (the
	// default of [New]): only the checks that keep the key safe in an HTTP
	// header; [ForService] sets it.
	Service keyprovider.Service

	// LookupEnv reads a variable, as [os.LookupEnv] does. Zero means
	// os.LookupEnv, the process environment. Inject an environment here (a test's map, a supervisor's
	// view) rather than changing the process's. It is called on every Fetch,
	// possibly from several goroutines at once.
	LookupEnv func(name string) (value string, ok bool)
}

// Option sets a field of [Options].
type Option func(*Options)

// WithService sets [Options.Service].
func WithService(svc keyprovider.Service) Option {
	return func(o *Options) { o.Service = svc }
}

// WithLookupEnv sets [Options.LookupEnv].
func WithLookupEnv(lookup func(name string) (value string, ok bool)) Option {
	return func(o *Options) { o.LookupEnv = lookup }
}

// Provider is a [keyprovider.Provider] reading one variable and its _FILE
// twin. It holds no key and no state beyond its configuration, so it is safe
// for concurrent use and needs no Close.
type Provider struct {
	name string
	opts Options
}

var _ keyprovider.Provider = (*Provider)(nil)

// New returns a Provider of the key in the variable name, or in the file
// that name+"_FILE" names. It reads nothing until [Provider.Fetch].
func New(name string, opts ...Option) *Provider {
	p := &Provider{name: name}
	for _, o := range opts {
		o(&p.opts)
	}
	if p.opts.LookupEnv == nil {
		p.opts.LookupEnv = os.LookupEnv
	}
	return p
}

// ForService returns a Provider of svc's key from its conventional variable,
// svc.EnvVar ("TESSERA_API_KEY"), checked with svc.Validate. Options given
// are applied after, so they may change the service.
func ForService(svc keyprovider.Service, opts ...Option) *Provider {
	return New(svc.EnvVar, append([]Option{WithService(svc)}, opts...)...)
}

// Var returns the name of the variable holding the key.
func (p *Provider) Var() string { return p.name }

// FileVar returns the name of the variable holding the path of a file
// holding the key: [Provider.Var] + "_FILE".
func (p *Provider) FileVar() string { return p.name + FileSuffix }

// String describes the provider, as "env(TESSERA_API_KEY)".
func (p *Provider) String() string { return "env(" + p.name + ")" }

// Fetch reads the key from the variable or its file, as the package
// documentation describes. The key has no version (Version returns ""): the
// environment keeps none, and a rotation shows as a key that is not
// [keyprovider.Key.Equal] to the last one.
//
// Fetch returns the context's error, wrapped, if ctx is done when it is
// called. Reading a local file is not interrupted once started.
func (p *Provider) Fetch(ctx context.Context) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, &keyprovider.Error{Provider: providerName, Ref: p.name, Err: err}
	}
	if p.name == "" {
		return keyprovider.Key{}, p.fail("", keyprovider.ErrInvalidKey, errNoName)
	}
	v, err := envread.Lookup(p.opts.LookupEnv, p.name)
	if errors.Is(err, envread.ErrBothSet) {
		err = &ConflictError{Var: p.name, FileVar: p.FileVar()}
	}
	if err != nil {
		return keyprovider.Key{}, p.fail(v.Var, envread.Kind(err), err)
	}
	raw, err := envread.KeyText(v)
	if errors.Is(err, envread.ErrReference) {
		err = fmt.Errorf("%w; this provider reads keys only: use keyprovider.FromEnv to follow references", err)
	}
	if err != nil {
		return keyprovider.Key{}, p.fail(v.Var, envread.Kind(err), err)
	}
	k, err := p.opts.Service.ParseKey(raw, "")
	if err != nil {
		if v.FromFile() {
			err = fmt.Errorf("%s: %w", v.Path, err)
		}
		return keyprovider.Key{}, p.fail(v.Var, keyprovider.ErrInvalidKey, err)
	}
	return k, nil
}

// Watch implements rotate.Watcher (package rotate subscribes to it): when
// the key is in a file (the _FILE variable is set when Watch is called), it
// watches the file through its directory, so that a kubelet's swap of a
// mounted secret, a rename over the file and a write in place are each
// signalled at once, and returns the channel of those hints, closed once
// ctx is done and the watch has stopped. A file that cannot be watched (no
// inotify, too many watches) is polled every second instead, with one
// warning logged. When the key is in the variable itself, Watch returns
// nil: there is nothing to watch.
func (p *Provider) Watch(ctx context.Context) <-chan struct{} {
	v, err := envread.Lookup(p.opts.LookupEnv, p.name)
	if err != nil || !v.FromFile() {
		return nil
	}
	return envread.Watch(ctx, v.Path)
}

func (p *Provider) fail(ref string, kind, err error) error {
	return &keyprovider.Error{Provider: providerName, Ref: ref, Kind: kind, Err: err}
}

// ConflictError reports that a variable and its _FILE twin are both set, so
// that it is unclear which holds the key. It names the variables, never
// their values. Fetch returns it wrapped in a [*keyprovider.Error] of kind
// [keyprovider.ErrInvalidKey].
type ConflictError struct {
	Var     string // "TESSERA_API_KEY"
	FileVar string // "TESSERA_API_KEY_FILE"
}

// Error implements error.
func (e *ConflictError) Error() string {
	return e.Var + " and " + e.FileVar + " are both set; set only one"
}

// Unwrap lets the error be classified with the other errors of the shared
// reader.
func (e *ConflictError) Unwrap() error { return envread.ErrBothSet }

var errNoName = errors.New("no variable name given")
