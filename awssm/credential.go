package awssm

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/keyprovider/keyprovider/internal/redact"
)

// credential holds an AWS secret (a secret access key, a session token) the way [keyprovider.Key] holds a key: the value
// sits behind a pointer, so that fmt printing a struct that holds one (where
// fmt cannot call its methods, in an unexported field) shows an address,
// and every way of printing or encoding it that does call its methods shows
// its fingerprint.
type credential struct{ v *string }

// newCredential returns a credential holding s; an empty s holds nothing.
func newCredential(s string) credential {
	if s == "" {
		return credential{}
	}
	return credential{v: &s}
}

// reveal returns the secret, for the one place it is used.
func (c credential) reveal() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

// String returns the secret's fingerprint.
func (c credential) String() string {
	if c.v == nil {
		return "<none>"
	}
	return redact.Fingerprint(*c.v)
}

// GoString returns the secret's fingerprint, for %#v.
func (c credential) GoString() string { return "credential(" + c.String() + ")" }

// Format prints the fingerprint whatever the verb.
func (c credential) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, c.GoString())
		return
	}
	_, _ = io.WriteString(f, c.String())
}

// LogValue implements [slog.LogValuer] with the fingerprint.
func (c credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes the fingerprint.
func (c credential) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// MarshalText encodes the fingerprint.
func (c credential) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// revealAll returns the values of creds that hold one, for redaction.
func revealAll(creds []credential) []string {
	out := make([]string, 0, len(creds))
	for _, c := range creds {
		if v := c.reveal(); v != "" {
			out = append(out, v)
		}
	}
	return out
}
