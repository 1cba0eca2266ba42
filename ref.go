package keyprovider

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ref is a parsed secret reference: where a key is kept rather than the key
// itself, such as "vault://kv/tessera#api_key?version=3". [ParseRef] makes
// one from text and [Ref.String] turns it back into its canonical text;
// the two round-trip.
//
// The grammar, scheme by scheme:
//
//	env://NAME                                   the variable NAME holds the key
//	file:///ABSOLUTE/PATH                        the file holds the key
//	vault://MOUNT/PATH[#FIELD][?version=N&namespace=NS]
//	awssm://NAME-OR-ARN[#FIELD][?region=R&stage=S&version-id=V]
//	op://VAULT/ITEM/[SECTION/]FIELD[?attribute=A&ssh-format=F]
//
// The scheme is case-insensitive ("Vault://" is "vault://"). "#FIELD" and
// "?QUERY" may come in either order; the canonical text puts the field first.
// In a file path, a Vault mount, path or field, an AWS field and a query
// value, "%XX" escapes a byte: write "%23" for "#", "%3F" for "?", "%25" for
// "%", "%26" for "&" in a query value, and "%2F" for a "/" inside a Vault
// mount ("vault://team%2Fkv/app" is the mount "team/kv"). A Secrets Manager
// name or ARN is taken as written: its characters (letters, digits and
// "/_+=.@-:") never need escaping. A 1Password reference is 1Password's own
// syntax, passed to package onepassword as written (spaces included), with
// no escapes.
//
// Every part shown without brackets is required; a query parameter not
// listed for the scheme, a parameter given twice, or an empty one is an
// error.
type Ref struct {
	// Scheme is the lower-case scheme: "env", "file", "vault", "awssm", "op",
	// or one registered with [RegisterScheme].
	Scheme string
	// Mount is the mount path of a Vault secrets engine ("kv", "secret",
	// "team/kv"); empty for every other scheme.
	Mount string
	// Path is what the reference names, unescaped: the variable name (env),
	// the absolute file path (file), the secret's path inside the mount
	// (vault), the secret's name or ARN (awssm), or the 1Password reference
	// without its "op://" and query, "VAULT/ITEM/[SECTION/]FIELD" (op).
	Path string
	// Field is the field of the secret holding the key (vault, awssm), or
	// "" for the backend's default.
	Field string
	// Params are the query parameters, unescaped. Nil and empty are the
	// same.
	Params map[string]string
}

// Param returns the query parameter name, or "" if it is not set.
func (r Ref) Param(name string) string { return r.Params[name] }

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool {
	return r.Scheme == "" && r.Mount == "" && r.Path == "" && r.Field == "" && len(r.Params) == 0
}

// RefError reports a reference that cannot be parsed or opened. It wraps
// [ErrInvalidKey] (and Err, when set). It never holds a key: when the text
// might have been a literal key rather than a reference, Ref is empty.
type RefError struct {
	// Var is the variable the reference was read from, if any:
	// "TESSERA_API_KEY".
	Var string
	// Ref is the reference as written, or "" when it is not safe to show.
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
	if e.Ref != "" {
		b.WriteString("reference ")
		b.WriteString(strconv.Quote(e.Ref))
	} else {
		b.WriteString("reference")
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
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

// spec is the grammar of one scheme.
type spec struct {
	// pkg is the package whose blank import registers the scheme; "" for
	// the schemes built into this package and for custom ones.
	pkg string
	// parseBody fills r.Mount and r.Path from the text between "://" and the
	// first "#" or "?".
	parseBody func(body string, r *Ref) error
	// formatBody is parseBody's inverse.
	formatBody func(r Ref) string
	// field tells whether "#FIELD" is allowed.
	field bool
	// params are the allowed query parameters, in canonical order; nil with
	// anyParam means any parameter is allowed (custom schemes).
	params   []string
	anyParam bool
	// opaque schemes take their text as written: no "%" escapes.
	opaque bool
	// check validates the whole Ref once it is parsed; may be nil.
	check func(r *Ref) error
}

// Import path of this module, for the hint naming the package to import.
const modulePath = "github.com/keyprovider/keyprovider"

// builtinSpecs are the schemes whose grammar this package knows.
var builtinSpecs = map[string]*spec{
	"env": {
		parseBody: func(body string, r *Ref) error {
			if !isVarName(body) {
				return errors.New("env:// takes a variable name (letters, digits and _, not starting with a digit): env://OTHER_VAR")
			}
			r.Path = body
			return nil
		},
		formatBody: func(r Ref) string { return r.Path },
	},
	"file": {
		parseBody: func(body string, r *Ref) error {
			if !strings.HasPrefix(body, "/") {
				return errors.New("file:// takes an absolute path, after three slashes: file:///run/secrets/tessera")
			}
			p, err := unescape(body)
			if err != nil {
				return err
			}
			if strings.IndexByte(p, 0) >= 0 {
				return errors.New("the path contains a NUL byte")
			}
			r.Path = p
			return nil
		},
		formatBody: func(r Ref) string { return escape(r.Path, "") },
	},
	"vault": {
		pkg: modulePath + "/vault",
		parseBody: func(body string, r *Ref) error {
			mount, path, ok := strings.Cut(body, "/")
			if !ok || mount == "" || path == "" {
				return errors.New("vault:// takes a mount and a path: vault://MOUNT/PATH#FIELD")
			}
			m, err := unescape(mount)
			if err != nil {
				return err
			}
			p, err := unescape(path)
			if err != nil {
				return err
			}
			if hasEmptySegment(m) {
				return errors.New("the mount has an empty segment")
			}
			if hasEmptySegment(p) {
				return errors.New("the path has an empty segment (a doubled or trailing /)")
			}
			r.Mount, r.Path = m, p
			return nil
		},
		formatBody: func(r Ref) string { return escape(r.Mount, "/") + "/" + escape(r.Path, "") },
		field:      true,
		params:     []string{"version", "namespace"},
		check: func(r *Ref) error {
			if v, ok := r.Params["version"]; ok {
				n, err := strconv.ParseUint(v, 10, 31)
				if err != nil || n == 0 {
					return errors.New("version must be a positive integer (a KV v2 version)")
				}
				r.Params["version"] = strconv.FormatUint(n, 10)
			}
			if ns, ok := r.Params["namespace"]; ok && hasEmptySegment(strings.Trim(ns, "/")) {
				return errors.New("namespace has an empty segment")
			}
			return nil
		},
	},
	"awssm": {
		pkg: modulePath + "/awssm",
		parseBody: func(body string, r *Ref) error {
			if body == "" {
				return errors.New("awssm:// takes a secret name or ARN: awssm://prod/tessera#api_key")
			}
			for i := 0; i < len(body); i++ {
				if !isSecretNameByte(body[i]) {
					return fmt.Errorf("byte %d is not allowed in a secret name or ARN (letters, digits and /_+=.@-: only)", i)
				}
			}
			if strings.HasPrefix(body, "arn:") {
				if _, err := arnRegion(body); err != nil {
					return err
				}
			}
			r.Path = body
			return nil
		},
		formatBody: func(r Ref) string { return r.Path },
		field:      true,
		params:     []string{"region", "stage", "version-id"},
		check: func(r *Ref) error {
			region, hasRegion := r.Params["region"]
			if hasRegion {
				for i := 0; i < len(region); i++ {
					if c := region[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
						return errors.New("region must be an AWS region name such as eu-west-1")
					}
				}
				if arnReg, err := arnRegion(r.Path); err == nil && arnReg != region {
					return fmt.Errorf("region %s differs from the ARN's region %s", region, arnReg)
				}
			}
			if r.Params["stage"] != "" && r.Params["version-id"] != "" {
				return errors.New("stage and version-id select a version each; give one")
			}
			return nil
		},
	},
	"op": {
		pkg:    modulePath + "/onepassword",
		opaque: true,
		parseBody: func(body string, r *Ref) error {
			segs := strings.Split(body, "/")
			if len(segs) < 3 || len(segs) > 4 || slices.Contains(segs, "") {
				return errors.New("op:// takes a vault, an item, an optional section and a field: op://VAULT/ITEM/[SECTION/]FIELD")
			}
			r.Path = body
			return nil
		},
		formatBody: func(r Ref) string { return r.Path },
		params:     []string{"attribute", "ssh-format"},
	},
}

// genericSpec is the grammar of a scheme registered with [RegisterScheme]
// that this package does not know: SCHEME://PATH[#FIELD][?ANY=PARAMS],
// escaped as a file path.
var genericSpec = &spec{
	parseBody: func(body string, r *Ref) error {
		p, err := unescape(body)
		if err != nil {
			return err
		}
		if p == "" {
			return errors.New("empty path")
		}
		r.Path = p
		return nil
	},
	formatBody: func(r Ref) string { return escape(r.Path, "") },
	field:      true,
	anyParam:   true,
}

// ParseRef parses a secret reference; see [Ref] for the grammar. It knows the
// schemes env, file, vault, awssm and op, whether or not their backends are
// linked in (see [Open] for that). Any other "scheme://" is an error, as is
// text with no "scheme://" at all: ParseRef never takes text for a literal
// key. Errors are [*RefError] values wrapping [ErrInvalidKey].
func ParseRef(s string) (Ref, error) { return parseRef(s, nil) }

// parseRef parses s, with the grammar of custom for schemes this package
// does not know (nil: none).
func parseRef(s string, custom func(scheme string) bool) (Ref, error) {
	scheme, rest, ok := splitScheme(s)
	if !ok {
		return Ref{}, &RefError{Reason: `not a reference: it does not start with "scheme://"`}
	}
	scheme = strings.ToLower(scheme)
	sp := builtinSpecs[scheme]
	if sp == nil && custom != nil && custom(scheme) {
		sp = genericSpec
	}
	if sp == nil {
		return Ref{}, &RefError{Reason: unknownSchemeReason(scheme, custom)}
	}
	bad := func(format string, args ...any) error {
		return &RefError{Ref: s, Reason: fmt.Sprintf(format, args...)}
	}
	if !utf8.ValidString(rest) {
		return Ref{}, bad("not valid UTF-8")
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if c < 0x20 || c == 0x7f {
			return Ref{}, bad("control character %#02x at byte %d", c, len(scheme)+3+i)
		}
		if c == ' ' && !sp.opaque {
			return Ref{}, bad("space at byte %d (write it as %%20)", len(scheme)+3+i)
		}
	}

	body, field, query, hasField, hasQuery, err := splitRest(rest)
	if err != nil {
		return Ref{}, bad("%v", err)
	}
	r := Ref{Scheme: scheme}
	if err := sp.parseBody(body, &r); err != nil {
		return Ref{}, bad("%v", err)
	}
	if hasField {
		if !sp.field {
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
		if r.Params, err = parseQuery(query, sp); err != nil {
			return Ref{}, bad("%v", err)
		}
	}
	if sp.check != nil {
		if err := sp.check(&r); err != nil {
			return Ref{}, bad("%v", err)
		}
	}
	return r, nil
}

// String returns the canonical text of the reference, which [ParseRef]
// parses back into the same Ref. The zero Ref is "".
func (r Ref) String() string {
	if r.Scheme == "" {
		return ""
	}
	sp := builtinSpecs[r.Scheme]
	if sp == nil {
		sp = genericSpec
	}
	var b strings.Builder
	b.WriteString(r.Scheme)
	b.WriteString("://")
	b.WriteString(sp.formatBody(r))
	if r.Field != "" {
		b.WriteByte('#')
		b.WriteString(escape(r.Field, ""))
	}
	if len(r.Params) > 0 {
		names := make([]string, 0, len(r.Params))
		for _, name := range sp.params {
			if _, ok := r.Params[name]; ok {
				names = append(names, name)
			}
		}
		var extra []string
		for name := range r.Params {
			if !slices.Contains(sp.params, name) {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		names = append(names, extra...)
		for i, name := range names {
			if i == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(escape(name, "&="))
			b.WriteByte('=')
			if sp.opaque {
				b.WriteString(r.Params[name])
			} else {
				b.WriteString(escape(r.Params[name], "&"))
			}
		}
	}
	return b.String()
}

// splitScheme splits "scheme://rest". ok is false if s does not start with
// a syntactically valid scheme (RFC 3986: a letter, then letters, digits,
// "+", "-" and ".") followed by "://".
func splitScheme(s string) (scheme, rest string, ok bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return s[:i], s[i+3:], true
}

// looksLikeRef reports whether s has the shape of a reference
// ("scheme://..."), known scheme or not.
func looksLikeRef(s string) bool {
	_, _, ok := splitScheme(s)
	return ok
}

// maxShownScheme is the longest unknown scheme an error shows. Text before
// "://" may be the start of a literal key that happens to contain "://";
// every known key prefix is longer than this, and a short word is a typo
// ("vualt") worth showing.
const maxShownScheme = 10

func unknownSchemeReason(scheme string, custom func(string) bool) string {
	known := "env, file, vault, awssm, op"
	if len(scheme) > maxShownScheme {
		return fmt.Sprintf(`unknown scheme (%d characters before "://"; not shown, in case this is a key); known: %s`, len(scheme), known)
	}
	for _, s := range KnownServices() {
		if s.KeyPrefix != "" && strings.HasPrefix(s.KeyPrefix, scheme) {
			return fmt.Sprintf(`unknown scheme (not shown, in case this is a key); known: %s`, known)
		}
	}
	reason := fmt.Sprintf("unknown scheme %q; known: %s", scheme, known)
	if near := nearestScheme(scheme); near != "" {
		reason += fmt.Sprintf(" (did you mean %s://?)", near)
	}
	return reason
}

// nearestScheme returns the built-in scheme within two edits of s, if any.
func nearestScheme(s string) string {
	best, bestD := "", 3
	for name := range builtinSpecs {
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

func parseQuery(query string, sp *spec) (map[string]string, error) {
	if query == "" {
		return nil, errors.New(`"?" with no parameters`)
	}
	params := make(map[string]string)
	for part := range strings.SplitSeq(query, "&") {
		name, value, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, errors.New(`a query parameter must be "name=value"`)
		}
		if !sp.opaque {
			var err error
			if name, err = unescape(name); err != nil {
				return nil, err
			}
			if value, err = unescape(value); err != nil {
				return nil, fmt.Errorf("parameter %s: %w", name, err)
			}
		}
		if !sp.anyParam && !slices.Contains(sp.params, name) {
			if len(sp.params) == 0 {
				return nil, fmt.Errorf("unknown parameter %q: this scheme takes none", name)
			}
			return nil, fmt.Errorf("unknown parameter %q (allowed: %s)", name, strings.Join(sp.params, ", "))
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

func hasEmptySegment(p string) bool { return slices.Contains(strings.Split(p, "/"), "") }

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

// isSecretNameByte reports whether c may appear in a Secrets Manager secret
// name or ARN.
func isSecretNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/_+=.@-:", c) >= 0
}

// arnRegion returns the region of a Secrets Manager secret ARN,
// "arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME".
func arnRegion(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 7)
	if len(parts) != 7 || parts[1] == "" || parts[2] != "secretsmanager" || parts[3] == "" || parts[4] == "" || parts[5] != "secret" || parts[6] == "" {
		return "", errors.New("not a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)")
	}
	return parts[3], nil
}
