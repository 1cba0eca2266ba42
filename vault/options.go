package vault

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyprovider/keyprovider"
)

// DefaultField is the field of the secret read when [Options.Field] is
// empty.
const DefaultField = "api_key"

// Options configure a [Provider], through the With… helpers below. The zero
// value of every field means its default, so a zero Options is a good
// configuration.
type Options struct {
	// Field is the field of the secret holding the key. Empty means
	// DefaultField.
	Field string
	// Mount is the KV engine's mount path ("secret"); with it, the path is
	// relative to the mount. Empty means: found from the path, as the CLI
	// does (sys/internal/ui/mounts), on the first fetch.
	Mount string
	// KVVersion forces the engine's version, 1 or 2. Zero means: read it
	// from the mount's options on the first fetch.
	KVVersion int
	// Version pins a KV v2 version. Zero means the latest.
	Version int
	// Namespace is the Vault Enterprise namespace. Empty means the
	// client's namespace; for [FromEnv], VAULT_NAMESPACE.
	Namespace string
	// Service, when set, checks keys against it with its ParseKey; the
	// zero Service checks only that the key can go in a header.
	Service keyprovider.Service
	// Auth, when set, logs the client in before the first read and again
	// when a read is refused with 403. Nil means the client's token is used
	// as it is.
	Auth api.AuthMethod
	// LookupEnv is how [FromEnv] reads the environment: VAULT_ADDR,
	// VAULT_TOKEN, VAULT_NAMESPACE and the TLS settings come from it and
	// from nowhere else. Nil means os.LookupEnv. New, which is given a
	// client, does not read the environment and ignores it.
	LookupEnv func(name string) (string, bool)
	// Addresses are the Vault servers [FromEnv]'s client tries in turn,
	// "scheme://host:port" each: a request that cannot reach one (refused,
	// unreachable, timed out, or 503 from a sealed node) goes to the next,
	// and the first that answers is tried first from then on. Empty means
	// VAULT_ADDR, whose value may list several addresses separated by
	// commas. New, whose client is the caller's, rejects it.
	Addresses []string
}

// Option changes [Options].
type Option func(*Options)

// WithField sets Options.Field.
func WithField(field string) Option { return func(o *Options) { o.Field = field } }

// WithMount sets Options.Mount.
func WithMount(mount string) Option { return func(o *Options) { o.Mount = mount } }

// WithKVVersion sets Options.KVVersion.
func WithKVVersion(v int) Option { return func(o *Options) { o.KVVersion = v } }

// WithVersion sets Options.Version.
func WithVersion(v int) Option { return func(o *Options) { o.Version = v } }

// WithNamespace sets Options.Namespace.
func WithNamespace(ns string) Option { return func(o *Options) { o.Namespace = ns } }

// WithService sets Options.Service.
func WithService(svc keyprovider.Service) Option { return func(o *Options) { o.Service = svc } }

// WithAuth sets Options.Auth.
func WithAuth(auth api.AuthMethod) Option { return func(o *Options) { o.Auth = auth } }

// WithLookupEnv sets Options.LookupEnv.
func WithLookupEnv(lookup func(name string) (string, bool)) Option {
	return func(o *Options) { o.LookupEnv = lookup }
}

// WithAddresses sets Options.Addresses.
func WithAddresses(addrs ...string) Option {
	return func(o *Options) { o.Addresses = append([]string(nil), addrs...) }
}

// collect applies opts to zero Options.
func collect(opts []Option) Options {
	var o Options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// configError is a configuration New or FromEnv refuses: ErrInvalidKey.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

func badConfig(format string, args ...any) error {
	return &configError{msg: fmt.Sprintf(format, args...)}
}

// check validates o and path (already trimmed of slashes) and fills in the
// defaults. Every refusal is a *configError.
func (o *Options) check(path string) error {
	if o.Field == "" {
		o.Field = DefaultField
	}
	switch {
	case path == "":
		return badConfig("empty path")
	case o.KVVersion != 0 && o.KVVersion != 1 && o.KVVersion != 2:
		return badConfig("KV version %d: want 1 or 2", o.KVVersion)
	case o.Version < 0:
		return badConfig("negative version %d", o.Version)
	case o.Version > 0 && o.KVVersion == 1:
		return badConfig("a version is pinned, but KV v1 has no versions")
	}
	if err := checkPath("the path", path); err != nil {
		return err
	}
	if err := checkPath("the mount", strings.Trim(o.Mount, "/")); err != nil {
		return err
	}
	if hasControl(o.Namespace) {
		return badConfig("the namespace holds a control character (CR, LF...)")
	}
	return nil
}

// checkPath refuses a path that would not name the secret it seems to: a
// "." or ".." segment, also percent-encoded ("..%2F" or "%2e%2e"), which
// the client resolves to another endpoint (kv/..%2F..%2Fsys/...), and
// control characters. The value is not quoted: it may be pasted text.
func checkPath(what, p string) error {
	if hasControl(p) {
		return badConfig("%s contains a control character", what)
	}
	decoded := p
	for range 4 { // undo nested encodings ("%252e")
		d, err := url.PathUnescape(decoded)
		if err != nil || d == decoded {
			break
		}
		decoded = d
	}
	for _, s := range []string{p, decoded} {
		for seg := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '/' || r == '\\' }) {
			if seg == "." || seg == ".." {
				return badConfig(`%s has a "." or ".." segment`, what)
			}
		}
	}
	if hasControl(decoded) {
		return badConfig("%s contains an encoded control character", what)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
