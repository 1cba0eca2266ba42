package keyprovider

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	scrubber "github.com/keyprovider/keyprovider/internal/redact"
)

// Ref is a parsed secret reference: where a key is kept rather than the key
// itself, such as "vault://kv/tessera#api_key?version=3". [ParseRef] makes
// one from text and [Ref.String] turns it back into its canonical text;
// the two round-trip.
//
// This package knows the generic grammar every scheme shares,
//
//	SCHEME://PART/PART...[#FIELD][?NAME=VALUE&...]
//
// and the schemes env://NAME (the variable NAME holds the key) and
// file:///ABSOLUTE/PATH (the file holds it). Each backend package knows the
// parts of its own scheme and registers them, with its opener, as a
// [Scheme]: vault://MOUNT/PATH (package vault), awssm://NAME-OR-ARN
// (package awssm), op://VAULT/ITEM/[SECTION/]FIELD (package onepassword).
//
// The scheme is case-insensitive ("Vault://" is "vault://"). "#FIELD" and
// "?QUERY" may come in either order; the canonical text puts the field
// first. In a part, a field and a query value, "%XX" escapes a byte: write
// "%23" for "#", "%3F" for "?", "%25" for "%", "%26" for "&" in a query
// value, and "%2F" for a "/" inside a part (a Vault mount "team%2Fkv"). A
// scheme registered as [Scheme.Opaque] takes its text as written, spaces
// included, with no escapes.
//
// A query parameter the scheme does not list, one given twice, or an empty
// one is an error.
type Ref struct {
	// Scheme is the lower-case scheme: "env", "file", or that of a
	// registered [Scheme].
	Scheme string
	// Mount is the first part of a scheme that has one, unescaped: the mount
	// path of a Vault secrets engine ("kv", "team/kv"); empty for the
	// others.
	Mount string
	// Path is what the reference names, unescaped: the variable name (env),
	// the absolute file path (file), or what the scheme's backend reads
	// (a Vault path inside the mount, a secret's name or ARN, a 1Password
	// "VAULT/ITEM/[SECTION/]FIELD").
	Path string
	// Field is the field of the secret holding the key, or "" for the
	// backend's default.
	Field string
	// Params are the query parameters, unescaped. Nil and empty are the
	// same; reading an absent one gives "".
	Params map[string]string
}

// RefError reports a reference that cannot be parsed or opened. It wraps
// [ErrInvalidKey] (and Err, when set).
//
// A reference can be a pasted key (TESSERA_API_KEY=file://sk-tessera-…), so
// a RefError never holds one: every part of Ref and Reason that could be a
// key (a known key prefix, or long high-entropy text) is replaced by its
// fingerprint, and Ref is cut to 96 bytes; Error scrubs again, so a
// RefError built by hand prints no key either.
type RefError struct {
	// Var is the variable the reference was read from, if any:
	// "TESSERA_API_KEY".
	Var string
	// Ref is the reference as written, scrubbed and bounded as said above,
	// or "" when none of it is safe to show.
	Ref string
	// Reason says what is wrong, in words safe to log.
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

// Error implements error.
func (e *RefError) Error() string {
	var b strings.Builder
	b.WriteString("keyprovider: ")
	if e.Var != "" {
		b.WriteString(e.Var)
		b.WriteString(": ")
	}
	b.WriteString("reference")
	if ref := safeRef(e.Ref); ref != "" {
		b.WriteString(" ")
		b.WriteString(strconv.Quote(ref))
	}
	b.WriteString(": ")
	b.WriteString(scrub(e.Reason))
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(scrub(e.Err.Error()))
	}
	return b.String()
}

// Unwrap returns [ErrInvalidKey] and the cause.
func (e *RefError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidKey}
	}
	return []error{ErrInvalidKey, e.Err}
}

// newRefError returns a RefError about ref, scrubbed at construction so
// that not even its fields hold a key.
func newRefError(ref, reason string, err error) *RefError {
	return &RefError{Ref: safeRef(ref), Reason: scrub(reason), Err: err}
}

// maxShownRef is the most bytes of a reference an error shows.
const maxShownRef = 96

// safeRef is ref with every part that could be a key replaced by its
// fingerprint, cut to maxShownRef bytes.
func safeRef(ref string) string {
	s := scrub(ref)
	if len(s) <= maxShownRef {
		return s
	}
	cut := maxShownRef
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// scrub replaces, in s, every run of key bytes carrying a known key prefix,
// and every token (between the separators of a reference and white space)
// that [scrubber.LooksSecret] takes for a key, by its fingerprint.
func scrub(s string) string {
	s = scrubber.String(s)
	var b strings.Builder
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && !isSeparator(s[i]) {
			continue
		}
		tok := s[start:i]
		if !strings.Contains(tok, "…") && scrubber.LooksSecret(tok) {
			tok = scrubber.Fingerprint(tok)
		}
		b.WriteString(tok)
		if i < len(s) {
			b.WriteByte(s[i])
		}
		start = i + 1
	}
	return b.String()
}

// scrubError returns err with its text passed through scrub, keeping
// errors.Is and errors.As working through the chain.
func scrubError(err error) error {
	if msg, clean := err.Error(), scrub(err.Error()); clean != msg {
		return &scrubbed{msg: clean, err: err}
	}
	return err
}

// scrubbed is an error whose text was scrubbed; Unwrap reaches the original.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

func isSeparator(c byte) bool { return strings.IndexByte("/.:#?&=\"' \t\r\n", c) >= 0 }

// ParseRef parses a secret reference of a scheme the default [Resolver]
// knows: env, file, and those of the backend packages linked in (see
// [Ref]). A reference to vault://, awssm:// or op:// whose backend package
// is not imported is a [*RefError] wrapping [ErrSchemeNotLinked] naming the
// package to import; any other unknown "scheme://" is an error, as is text
// with no "scheme://" at all: ParseRef never takes text for a literal key.
// Every error is a [*RefError] wrapping [ErrInvalidKey].
func ParseRef(s string) (Ref, error) { return defaultResolver.Parse(s) }

// parseRef parses s with sch, the grammar of its scheme.
func parseRef(s, scheme, rest string, sch *Scheme) (Ref, error) {
	bad := func(format string, args ...any) error {
		return newRefError(s, fmt.Sprintf(format, args...), nil)
	}
	if !utf8.ValidString(rest) {
		return Ref{}, bad("not valid UTF-8")
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c < 0x20 || c == 0x7f {
			return Ref{}, bad("control character %#02x at byte %d", c, len(scheme)+3+i)
		}
		if c == ' ' && !sch.Opaque {
			return Ref{}, bad("space at byte %d (write it as %%20)", len(scheme)+3+i)
		}
	}
	body, field, query, hasField, hasQuery, err := splitRest(rest)
	if err != nil {
		return Ref{}, bad("%v", err)
	}
	r := Ref{Scheme: scheme}
	if hasField {
		if !sch.Field {
			return Ref{}, bad("%s:// references take no #field", scheme)
		}
		if field == "" {
			return Ref{}, bad("empty #field")
		}
		if r.Field, err = unescape(field); err != nil {
			return Ref{}, bad("field: %v", err)
		}
	}
	if hasQuery {
		if r.Params, err = parseQuery(query, sch); err != nil {
			return Ref{}, bad("%v", err)
		}
	}
	segs := strings.Split(body, "/")
	if !sch.Opaque {
		for i, seg := range segs {
			if segs[i], err = unescape(seg); err != nil {
				return Ref{}, bad("%v", err)
			}
		}
	}
	if err := sch.parse(segs, &r); err != nil {
		return Ref{}, bad("%v", err)
	}
	return r, nil
}

// String returns the canonical text of the reference, which [ParseRef]
// parses back into the same Ref. The zero Ref is "". A scheme that no
// [Resolver] has registered is written in the generic grammar.
func (r Ref) String() string {
	if r.Scheme == "" {
		return ""
	}
	sch := grammarOf(r.Scheme)
	var b strings.Builder
	b.WriteString(r.Scheme)
	b.WriteString("://")
	for i, seg := range sch.format(r) {
		if i > 0 {
			b.WriteByte('/')
		}
		if sch.Opaque {
			b.WriteString(seg)
		} else {
			b.WriteString(escape(seg, "/"))
		}
	}
	if r.Field != "" {
		b.WriteByte('#')
		b.WriteString(escape(r.Field, ""))
	}
	for i, name := range paramOrder(r.Params, sch.Params) {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(escape(name, "&="))
		b.WriteByte('=')
		if sch.Opaque {
			b.WriteString(r.Params[name])
		} else {
			b.WriteString(escape(r.Params[name], "&"))
		}
	}
	return b.String()
}

// paramOrder returns the names of params: those of known in their order,
// then the others sorted.
func paramOrder(params map[string]string, known []string) []string {
	names := make([]string, 0, len(params))
	for _, name := range known {
		if _, ok := params[name]; ok {
			names = append(names, name)
		}
	}
	var extra []string
	for name := range params {
		if !slices.Contains(known, name) {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	return append(names, extra...)
}

// maxShownScheme is the longest unknown scheme an error shows. Text before
// "://" may be the start of a literal key that happens to contain "://";
// every known key prefix is longer than this, and a short word is a typo
// ("vualt") worth showing.
const maxShownScheme = 10

func unknownSchemeReason(scheme string, known []string) string {
	list := strings.Join(known, ", ")
	if len(scheme) > maxShownScheme {
		return fmt.Sprintf(`unknown scheme (%d characters before "://"; not shown, in case this is a key); known: %s`, len(scheme), list)
	}
	for _, p := range scrubber.Prefixes {
		if strings.HasPrefix(p, scheme) {
			return fmt.Sprintf(`unknown scheme (not shown, in case this is a key); known: %s`, list)
		}
	}
	reason := fmt.Sprintf("unknown scheme %q; known: %s", scheme, list)
	if near := nearestScheme(scheme, known); near != "" {
		reason += fmt.Sprintf(" (did you mean %s://?)", near)
	}
	return reason
}

// nearestScheme returns the scheme of known within two edits of s, if any.
func nearestScheme(s string, known []string) string {
	best, bestD := "", 3
	for _, name := range known {
		if d := editDistance(s, name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// splitRest splits what follows "://" into the body, the field and the
// query, which may come as "#field?query" or "?query#field".
func splitRest(rest string) (body, field, query string, hasField, hasQuery bool, err error) {
	i := strings.IndexAny(rest, "#?")
	if i < 0 {
		return rest, "", "", false, false, nil
	}
	body = rest[:i]
	first, after := rest[i], rest[i+1:]
	var a, b string
	j := strings.IndexAny(after, "#?")
	if j < 0 {
		a = after
	} else {
		if after[j] == first {
			return "", "", "", false, false, fmt.Errorf("a second %q (escape it as %%%02X)", first, first)
		}
		a, b = after[:j], after[j+1:]
		if k := strings.IndexAny(b, "#?"); k >= 0 {
			return "", "", "", false, false, fmt.Errorf("a second %q (escape it as %%%02X)", b[k], b[k])
		}
	}
	if first == '#' {
		return body, a, b, true, j >= 0, nil
	}
	return body, b, a, j >= 0, true, nil
}

func parseQuery(query string, sch *Scheme) (map[string]string, error) {
	if query == "" {
		return nil, errors.New(`"?" with no parameters`)
	}
	params := make(map[string]string)
	for part := range strings.SplitSeq(query, "&") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, errors.New(`a query parameter must be "name=value"`)
		}
		if !sch.Opaque {
			var err error
			if name, err = unescape(name); err != nil {
				return nil, err
			}
			if value, err = unescape(value); err != nil {
				return nil, fmt.Errorf("parameter %s: %w", name, err)
			}
		}
		if !slices.Contains(sch.Params, name) {
			if len(sch.Params) == 0 {
				return nil, fmt.Errorf("unknown parameter %q: this scheme takes none", name)
			}
			return nil, fmt.Errorf("unknown parameter %q (allowed: %s)", name, strings.Join(sch.Params, ", "))
		}
		if _, dup := params[name]; dup {
			return nil, fmt.Errorf("parameter %s given twice", name)
		}
		if value == "" {
			return nil, fmt.Errorf("parameter %s is empty", name)
		}
		params[name] = value
	}
	return params, nil
}

// unescape decodes "%XX" escapes. The result must be valid UTF-8.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf(`bad escape at byte %d ("%%" must be followed by two hex digits; write %%25 for "%%")`, i)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	out := b.String()
	if !utf8.ValidString(out) {
		return "", errors.New("escapes decode to invalid UTF-8")
	}
	return out, nil
}

// escape writes s with "%XX" for "%", "#", "?", space, control characters,
// invalid UTF-8 and the bytes of extra.
func escape(s, extra string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		c := s[i]
		if r == utf8.RuneError && size == 1 || c < 0x21 || c == 0x7f || c == '%' || c == '#' || c == '?' || strings.IndexByte(extra, c) >= 0 && c < utf8.RuneSelf {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
			i++
			continue
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	default:
		return c - '0'
	}
}
