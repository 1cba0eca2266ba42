package keyprovider

import (
	"errors"
	"strings"

	"github.com/keyprovider/keyprovider/internal/kinds"
)

// The classes every failure of this module falls into. Test for them with
// [errors.Is]; they are never returned bare, always wrapped with the provider
// and reference that failed (see [Error]).
var (
	// ErrNotFound: the secret, its version or the field holding the key
	// does not exist, or the environment variable is not set.
	ErrNotFound = kinds.ErrNotFound

	// ErrInvalidKey: a value was found but is not a usable key (empty, wrong
	// prefix, too long, a character that cannot go in an HTTP header), or
	// the configuration naming it is malformed.
	ErrInvalidKey = kinds.ErrInvalidKey

	// ErrPermission: the backend refused to give us the secret (denied by
	// policy, bad credentials), or the API refused the key for this
	// resource (HTTP 403).
	ErrPermission = kinds.ErrPermission

	// ErrUnavailable: a transient failure that retrying may cure: network
	// errors, timeouts, 5xx answers, throttling, a sealed Vault.
	ErrUnavailable = kinds.ErrUnavailable
)

var errNoKey = errors.New("no key configured")

// Error is the error type every provider of this module returns. It names
// the provider and the reference it read, classifies the failure with one of
// the sentinels ([ErrNotFound], [ErrInvalidKey], [ErrPermission],
// [ErrUnavailable]) and keeps the backend's own error for [errors.As].
//
// Neither field may hold a key: providers put only references (variable
// names, paths, ARNs) and backend errors in it.
type Error struct {
	// Provider names the backend: "env", "vault", "awssm", "onepassword"...
	Provider string
	// Ref is what was read: a variable name, a path, a secret ID. It may be
	// empty.
	Ref string
	// Kind is one of the sentinel errors of this package, or nil when the
	// failure is the context's (cancelled or past its deadline).
	Kind error
	// Err is the underlying cause. It may be nil.
	Err error
}

// Error formats as "keyprovider: <provider> <ref>: <kind>: <cause>",
// leaving out what is empty. The kind is left out too when the cause already
// wraps it (a [Service.Validate] error says "invalid key" itself), so that no
// message says the same thing twice.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keyprovider:")
	for _, s := range []string{e.Provider, e.Ref} {
		if s != "" {
			b.WriteString(" ")
			b.WriteString(s)
		}
	}
	sep := func() {
		if b.Len() > len("keyprovider:") {
			b.WriteString(":")
		}
		b.WriteString(" ")
	}
	if e.Kind != nil && (e.Err == nil || !errors.Is(e.Err, e.Kind)) {
		sep()
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		sep()
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the kind and the cause, so that [errors.Is] matches the
// sentinel and [errors.As] reaches the backend's own error.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
