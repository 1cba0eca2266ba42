package keyprovider

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/keyprovider/keyprovider/internal/redact"
)

// Key is an API key and the metadata that came with it. It is immutable and
// cheap to copy; the zero Key holds no key (see [Key.IsZero]).
//
// A Key never shows its value: [Key.String], every fmt verb (%v, %+v, %#v,
// %s, %q, %x...), [log/slog] (through [Key.LogValue]), [encoding/json] and
// [encoding.TextMarshaler] all render its [Key.Fingerprint]. Use
// [Key.Reveal] to get the value, at the one place it goes on the wire.
//
// Compare keys with [Key.Equal], never with ==, and do not use a Key as a
// map key: the value sits behind a pointer (so that fmt cannot print it by
// reflection, as it prints an unexported struct field), and == compares the
// pointers, so two Keys read separately with the same value are not ==.
//
// In tests, compare keys with [Key.Equal] and print them with %v, which
// shows fingerprints, or compare what [Key.Fingerprint] returns:
//
//	if !got.Equal(want) {
//		t.Errorf("key %v, want %v", got, want)
//	}
//
// Never hand a Key, or a struct holding one, to a deep-equality assertion
// that prints a diff: testify's assert.Equal formats values with go-spew,
// which reads unexported fields through pointers and ignores [Key.Format],
// so its failure message prints the key.
type Key struct {
	// d is behind a pointer so that reflection (fmt printing a struct that
	// holds a Key in an unexported field, where Format is not called)
	// shows an address, never the value; it also makes a Key one word to
	// copy on the hot path. nil is the zero Key.
	d *keyData
}

type keyData struct {
	// value is behind a pointer of its own: fmt's bad-verb path prints a
	// pointer to a struct as &{...}, but a *string as an address.
	value   *string
	version string
	fp      string
}

// NewKey returns a Key holding value, taken as it is (no trimming, no
// validation: use [Service.ParseKey] for input from a backend). version is
// the backend's version of the secret ("3" for a Vault KV v2 version, an AWS
// VersionId, ...) and may be empty.
func NewKey(value, version string) Key {
	if value == "" {
		if version == "" {
			return Key{}
		}
		return Key{&keyData{version: version}}
	}
	return Key{&keyData{value: &value, version: version, fp: redact.Fingerprint(value)}}
}

// Reveal returns the key itself. Call it only where the key is sent to the
// API it authenticates against, and never log what it returns.
func (k Key) Reveal() string {
	if k.d == nil || k.d.value == nil {
		return ""
	}
	return *k.d.value
}

// Version returns the backend's version of the secret the key was read from,
// or "" if the backend has no versions.
func (k Key) Version() string {
	if k.d == nil {
		return ""
	}
	return k.d.version
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return k.d == nil || k.d.value == nil }

// Equal reports whether k and other hold the same key value. The comparison
// takes time independent of the contents (it leaks only whether the lengths
// differ). Versions are not compared: the same key stored twice is the same
// credential. Two zero Keys are equal.
func (k Key) Equal(other Key) bool {
	return subtle.ConstantTimeCompare([]byte(k.Reveal()), []byte(other.Reveal())) == 1
}

// noKey is what a zero Key renders as.
const noKey = "<no key>"

// Fingerprint returns a short, stable, non-reversible identifier of the key,
// safe for logs: the key's well-known prefix (if it has the prefix of a
// [KnownServices] entry) followed by "…" and the first 12 hex digits of the
// SHA-256 of the whole key, as in "sk-tessera-…3f9a1c2b7d4e" (48 bits:
// enough to tell apart the handful of keys a service sees, far too few to
// help anyone recover a key). A zero Key renders as "<no key>".
func (k Key) Fingerprint() string {
	if k.IsZero() {
		return noKey
	}
	return k.d.fp
}

// String returns the key's fingerprint.
func (k Key) String() string { return k.Fingerprint() }

// goString is a Go-syntax-like rendering with the fingerprint in place of
// the value, for %#v.
func (k Key) goString() string {
	return "keyprovider.Key{Fingerprint:" + strconv.Quote(k.Fingerprint()) +
		", Version:" + strconv.Quote(k.Version()) + "}"
}

// Format implements [fmt.Formatter] so that no verb or flag can print the
// value: %#v prints keyprovider.Key{Fingerprint:"…", Version:"…"}, %+v
// adds the version, %q quotes the fingerprint, and every other verb prints
// the fingerprint. A width pads the result (on the left, or on the right
// with the '-' flag); a precision is ignored.
func (k Key) Format(f fmt.State, verb rune) {
	var s string
	switch {
	case verb == 'v' && f.Flag('#'):
		s = k.goString()
	case verb == 'v' && f.Flag('+'):
		s = k.Fingerprint()
		if k.Version() != "" {
			s += " version=" + k.Version()
		}
	case verb == 'q':
		s = strconv.Quote(k.Fingerprint())
	default:
		s = k.Fingerprint()
	}
	pad := ""
	if w, ok := f.Width(); ok {
		if n := w - utf8.RuneCountInString(s); n > 0 {
			pad = strings.Repeat(" ", n)
		}
	}
	if f.Flag('-') {
		s += pad
	} else {
		s = pad + s
	}
	_, _ = io.WriteString(f, s)
}

// LogValue implements [slog.LogValuer]: a key logs as a group of its
// fingerprint and, when it has one, its version.
func (k Key) LogValue() slog.Value {
	if k.Version() == "" {
		return slog.GroupValue(slog.String("fingerprint", k.Fingerprint()))
	}
	return slog.GroupValue(slog.String("fingerprint", k.Fingerprint()), slog.String("version", k.Version()))
}

// MarshalText implements [encoding.TextMarshaler]; it returns the
// fingerprint. [encoding/json] uses it too: a key encodes as its
// fingerprint, a JSON string.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.Fingerprint()), nil }

// errNotDecodable is returned by UnmarshalText: a fingerprint cannot be
// turned back into a key.
var errNotDecodable = errors.New("a Key cannot be decoded from text; load it through a Provider")

// UnmarshalText implements [encoding.TextUnmarshaler] only to refuse: a key
// is never read from configuration text, whose marshalled form is a
// fingerprint. It returns an error wrapping [ErrInvalidKey], so that decoding
// a config struct that holds a Key fails loudly instead of leaving it zero.
func (k *Key) UnmarshalText([]byte) error {
	return &Error{Provider: "decode", Kind: ErrInvalidKey, Err: errNotDecodable}
}
