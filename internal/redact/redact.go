// Package redact is the one place that decides what text could be a key or
// a credential, and replaces it by a fingerprint. Package keyprovider's
// [Key] fingerprints with [Fingerprint]; the transport's error answers, the
// reference errors and every backend's errors go through [String] or
// [Error], so that a key or a token a server echoes back, or an operator
// pastes where a reference belongs, never reaches a log line.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Prefixes are the key prefixes of the services package keyprovider knows
// (keyprovider.KnownServices); a test there checks that the two lists
// agree. A fingerprint keeps the prefix, so a reader still sees which
// service a key was for.
var Prefixes = []string{"tesseral_secret_key_", "sk-tessera-"}

// fingerprintHexLen is how many hex digits of the SHA-256 a fingerprint
// shows.
const fingerprintHexLen = 12

// Fingerprint returns a short, stable, non-reversible identifier of value:
// its known prefix (when it has one and something after it), "…", and the
// first 12 hex digits of the SHA-256 of the whole value.
func Fingerprint(value string) string {
	sum := sha256.Sum256([]byte(value))
	prefix := ""
	for _, p := range Prefixes {
		if strings.HasPrefix(value, p) && len(value) > len(p) {
			prefix = p
			break
		}
	}
	return prefix + "…" + hex.EncodeToString(sum[:fingerprintHexLen/2])
}

// IsKeyByte reports whether c can be part of a key: keyprovider's
// Service.Validate accepts every printable ASCII byte but the space, so
// redaction treats every such byte as part of the key it is in.
func IsKeyByte(c byte) bool { return c > 0x20 && c < 0x7f }

// minSecretLen is the shortest credential String replaces where it appears
// verbatim. Shorter strings would match ordinary words; no real token is
// this short.
const minSecretLen = 8

// String returns s with every secret in secrets (each of at least 8
// bytes), every run of key bytes that starts with a known prefix and holds
// a letter or a digit after it, and every token of at least 8 bytes that
// follows the word "bearer" (in any case, after any white space, ":" or
// "="), replaced by its fingerprint. Text that looks like none of them is
// left as it is, so two redacted messages can still be compared.
func String(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Fingerprint(sec))
		}
	}
	for _, p := range Prefixes {
		s = replaceAfter(s, p, true)
	}
	return redactBearer(s)
}

// replaceAfter replaces each run of key bytes that follows marker by its
// fingerprint; with inKey the marker is part of the run (a key prefix).
func replaceAfter(s, marker string, inKey bool) string {
	var b strings.Builder
	for {
		i := strings.Index(s, marker)
		if i < 0 {
			if b.Len() == 0 {
				return s
			}
			b.WriteString(s)
			return b.String()
		}
		start := i + len(marker)
		end := start
		for end < len(s) && IsKeyByte(s[end]) {
			end++
		}
		if end == start || strings.HasPrefix(s[start:], "…") || !hasAlnum(s[start:end]) {
			// The marker alone, an existing fingerprint, or the marker
			// quoted or followed by punctuation only (`start with
			// "sk-tessera-".`): nothing secret.
			b.WriteString(s[:start])
			s = s[start:]
			continue
		}
		from := start
		if inKey {
			from = i
		}
		b.WriteString(s[:from])
		b.WriteString(Fingerprint(s[from:end]))
		s = s[end:]
	}
}

// redactBearer replaces the token after each "bearer" (any case) followed by
// white space.
func redactBearer(s string) string {
	// Lower-case ASCII only: strings.ToLower turns an invalid UTF-8 byte
	// into U+FFFD, three bytes, and the offsets found in its result would
	// no longer be offsets in s.
	lower := asciiLower(s)
	if !strings.Contains(lower, "bearer") {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; ; {
		j := strings.Index(lower[i:], "bearer")
		if j < 0 {
			break
		}
		start := i + j + len("bearer")
		k := start
		for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n' || s[k] == ':' || s[k] == '=') {
			k++
		}
		end := k
		for end < len(s) && IsKeyByte(s[end]) {
			end++
		}
		if k == start || end-k < minSecretLen || strings.HasPrefix(s[k:], "…") || startsWithFingerprint(s[k:]) {
			i = start
			continue
		}
		b.WriteString(s[last:k])
		b.WriteString(Fingerprint(s[k:end]))
		last, i = end, end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// hasAlnum reports whether s holds an ASCII letter or digit: no key is made
// of punctuation alone.
func hasAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			return true
		}
	}
	return false
}

// asciiLower returns s with its ASCII letters lower-cased and every other
// byte as it is, so that offsets in the result are offsets in s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// startsWithFingerprint reports whether s starts with a fingerprint String
// made of a prefixed key (the "…" is not a key byte, so the run of key bytes
// before it is the bare prefix: s itself must be checked, not that run).
func startsWithFingerprint(tok string) bool {
	for _, p := range Prefixes {
		if strings.HasPrefix(tok, p+"…") {
			return true
		}
	}
	return false
}

// LooksSecret reports whether s could be a key or a credential rather than a
// name: it carries a known key prefix, or it holds a run of 20 key bytes or
// more (between the separators a path or a URL has: "/.:#?&") that mixes
// letters and digits the way generated secrets do: upper case, lower case
// and digits together, or 32 bytes or more, or no "_" or "-" at all (names
// such as "tessera_api_key_2024" have them). Reference errors use it to
// decide whether a part of a reference may be quoted.
func LooksSecret(s string) bool {
	for _, p := range Prefixes {
		if strings.Contains(s, p) {
			return true
		}
	}
	for _, run := range strings.FieldsFunc(s, func(r rune) bool {
		return r > 0x7e || r <= 0x20 || strings.ContainsRune("/.:#?&", r)
	}) {
		if looksGenerated(run) {
			return true
		}
	}
	return false
}

// looksGenerated applies LooksSecret's rule to one run.
func looksGenerated(run string) bool {
	const minLen, longLen = 20, 32
	if len(run) < minLen {
		return false
	}
	var upper, lower, digit, joiner bool
	for i := 0; i < len(run); i++ {
		switch c := run[i]; {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '_' || c == '-':
			joiner = true
		}
	}
	if !(upper || lower) || !digit {
		return false
	}
	return upper && lower || len(run) >= longLen || !joiner
}

// Error returns err with its message passed through [String] with secrets,
// keeping errors.Is and errors.As working through the chain. A nil err is
// nil; an err whose message needs no change is returned as it is.
func Error(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := String(msg, secrets...)
	if clean == msg {
		return err
	}
	return &redacted{msg: clean, err: err}
}

// redacted is an error whose text was cleaned; Unwrap still reaches the
// original, for errors.Is and errors.As. Callers that print what they
// unwrap to must redact it themselves.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
