package redact

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Secret holds a credential a backend needs (a Vault or Connect token, an
// AWS secret access key or session token) the way keyprovider.Key holds a
// key: the value sits behind a pointer, so that fmt printing a struct that
// holds one (where fmt cannot call its methods, in an unexported field)
// shows an address, and every way of printing or encoding it that does call
// its methods shows its fingerprint. The zero Secret holds nothing.
type Secret struct{ v *string }

// NewSecret returns a Secret holding s; an empty s holds nothing.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the value, for the one place that sends it.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// String returns the value's fingerprint, or "<none>".
func (s Secret) String() string {
	if s.v == nil {
		return "<none>"
	}
	return Fingerprint(*s.v)
}

// GoString returns the fingerprint, for %#v.
func (s Secret) GoString() string { return "secret(" + s.String() + ")" }

// Format prints the fingerprint whatever the verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// LogValue implements [slog.LogValuer] with the fingerprint.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the fingerprint.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the fingerprint.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// RevealAll returns the values of secrets that hold one, for [String] and
// [Error].
func RevealAll(secrets []Secret) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if v := s.Reveal(); v != "" {
			out = append(out, v)
		}
	}
	return out
}
