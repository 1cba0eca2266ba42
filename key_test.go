package keyprovider_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// The key these tests try to leak. secretPart is what must never show up;
// the prefix is not secret.
const (
	secretPart = "S3cr3tV4lue0123456789abcdef"
	secretKey  = "sk-tessera-" + secretPart
)

// shown is s for a failure message, or a placeholder when s shows the
// secret: a failing test must not print the key it caught.
func shown(s string) string {
	if how := leaks(s); how != "" {
		return "<withheld: it shows " + how + ">"
	}
	return s
}

// leaks reports how s shows the secret, if it does: as it is, hex-encoded
// (what %x of the string would print) or in any case.
func leaks(s string) string {
	switch {
	case strings.Contains(s, secretPart):
		return "the secret"
	case strings.Contains(strings.ToLower(s), strings.ToLower(secretPart)):
		return "the secret, case changed"
	case strings.Contains(strings.ToLower(s), hex.EncodeToString([]byte(secretPart))[:16]):
		return "the secret, hex-encoded"
	}
	return ""
}

func assertNoLeak(t *testing.T, what, s string) {
	t.Helper()
	if how := leaks(s); how != "" {
		t.Errorf("%s shows %s (%d bytes, withheld from this message)", what, how, len(s))
	}
}

func TestKeyAccessors(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "7")
	if got := k.Reveal(); got != secretKey {
		t.Errorf("Reveal() = %s, want the value given to NewKey", redact.Fingerprint(got))
	}
	if got := k.Version(); got != "7" {
		t.Errorf("Version() = %q, want %q", got, "7")
	}
	if k.IsZero() {
		t.Error("IsZero() = true for a key with a value")
	}
	if got := keyprovider.NewKey(" "+secretKey+"\n", "").Reveal(); got != " "+secretKey+"\n" {
		t.Errorf("NewKey trimmed or changed its value: Reveal() = %s (%d bytes)", redact.Fingerprint(got), len(got))
	}
}

func TestKeyZero(t *testing.T) {
	for name, k := range map[string]keyprovider.Key{
		"zero value":              {},
		"NewKey of empty":         keyprovider.NewKey("", ""),
		"NewKey of empty with v3": keyprovider.NewKey("", "3"),
	} {
		t.Run(name, func(t *testing.T) {
			if !k.IsZero() {
				t.Error("IsZero() = false")
			}
			if got := k.Reveal(); got != "" {
				t.Errorf("Reveal() = %s, want empty", redact.Fingerprint(got))
			}
			for what, got := range map[string]string{
				"Fingerprint()": k.Fingerprint(),
				"String()":      k.String(),
				"%v":            fmt.Sprintf("%v", k),
			} {
				if got != "<no key>" {
					t.Errorf("%s = %q, want %q", what, got, "<no key>")
				}
			}
			if !k.Equal(keyprovider.Key{}) {
				t.Error("a zero Key is not Equal to another zero Key")
			}
			if k.Equal(keyprovider.NewKey(secretKey, "")) {
				t.Error("a zero Key is Equal to a real one")
			}
			b, err := json.Marshal(k)
			if err != nil || string(b) != `"\u003cno key\u003e"` {
				t.Errorf("json.Marshal = %s, %v; want the no-key marker", b, err)
			}
		})
	}
	if got := keyprovider.NewKey("", "3").Version(); got != "3" {
		t.Errorf("NewKey(\"\", \"3\").Version() = %q, want the version kept", got)
	}
}

func TestKeyEqual(t *testing.T) {
	a := keyprovider.NewKey(secretKey, "1")
	tests := []struct {
		name  string
		other keyprovider.Key
		want  bool
	}{
		{"same value, same version", keyprovider.NewKey(secretKey, "1"), true},
		{"same value, other version", keyprovider.NewKey(secretKey, "2"), true},
		{"same value, no version", keyprovider.NewKey(secretKey, ""), true},
		{"itself", a, true},
		{"one byte different", keyprovider.NewKey(secretKey[:len(secretKey)-1]+"X", "1"), false},
		{"a prefix of it", keyprovider.NewKey(secretKey[:len(secretKey)-1], "1"), false},
		{"longer", keyprovider.NewKey(secretKey+"0", "1"), false},
		{"zero", keyprovider.Key{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Equal(tc.other); got != tc.want {
				t.Errorf("a.Equal(other) = %v, want %v", got, tc.want)
			}
			if got := tc.other.Equal(a); got != tc.want {
				t.Errorf("other.Equal(a) = %v, want %v (Equal must be symmetric)", got, tc.want)
			}
		})
	}
}

// The fingerprints Key shows come from internal/redact, whose list of key
// prefixes must be that of KnownServices: a service added to one and not
// the other would get keys fingerprinted or redacted without their prefix.
func TestRedactPrefixesAreTheKnownServices(t *testing.T) {
	var want []string
	for _, svc := range keyprovider.KnownServices() {
		if svc.KeyPrefix != "" {
			want = append(want, svc.KeyPrefix)
		}
	}
	if !slices.Equal(redact.Prefixes, want) {
		t.Errorf("redact.Prefixes = %q, want the KnownServices prefixes %q", redact.Prefixes, want)
	}
	for _, v := range []string{secretKey, "tesseral_secret_key_abc", "ghp_x", "sk-tessera-"} {
		if got, want := keyprovider.NewKey(v, "").Fingerprint(), redact.Fingerprint(v); got != want {
			t.Errorf("Fingerprint() = %q, redact.Fingerprint = %q", got, want)
		}
	}
}

var fingerprintRE = regexp.MustCompile(`^(sk-tessera-|tesseral_secret_key_)?…[0-9a-f]{12}$`)

func TestKeyFingerprint(t *testing.T) {
	sha12 := func(v string) string {
		// The documented format: the first 12 hex digits of SHA-256.
		return fmt.Sprintf("%x", sha256Sum(v))[:12]
	}
	tests := []struct {
		name, value, want string
	}{
		{"tessera key shows its prefix", secretKey, "sk-tessera-…" + sha12(secretKey)},
		{"tesseral key shows its prefix", "tesseral_secret_key_abc123", "tesseral_secret_key_…" + sha12("tesseral_secret_key_abc123")},
		{"unknown kind of key shows no prefix", "ghp_abcdef0123456789", "…" + sha12("ghp_abcdef0123456789")},
		{"a bare prefix is not shown", "sk-tessera-", "…" + sha12("sk-tessera-")},
		{"a prefix elsewhere is not shown", "xsk-tessera-abc", "…" + sha12("xsk-tessera-abc")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keyprovider.NewKey(tc.value, "v").Fingerprint()
			if got != tc.want {
				t.Errorf("Fingerprint() = %q, want %q", got, tc.want)
			}
			if !fingerprintRE.MatchString(got) {
				t.Errorf("Fingerprint() = %q, not of the form prefix…12hex", got)
			}
		})
	}

	t.Run("stable across copies and versions", func(t *testing.T) {
		a, b := keyprovider.NewKey(secretKey, "1"), keyprovider.NewKey(secretKey, "2")
		if a.Fingerprint() != b.Fingerprint() {
			t.Errorf("same value, fingerprints %q and %q", a.Fingerprint(), b.Fingerprint())
		}
	})
	t.Run("short and without the secret", func(t *testing.T) {
		fp := keyprovider.NewKey(secretKey, "").Fingerprint()
		if n := len([]rune(fp)) - len("sk-tessera-"); n > 13 {
			t.Errorf("fingerprint %q has %d characters after the prefix, want at most 13", fp, n)
		}
		assertNoLeak(t, "Fingerprint()", fp)
	})
	t.Run("distinct", func(t *testing.T) {
		seen := make(map[string]string)
		for i := range 2000 {
			v := fmt.Sprintf("sk-tessera-%08d", i)
			fp := keyprovider.NewKey(v, "").Fingerprint()
			if prev, ok := seen[fp]; ok {
				t.Fatalf("%s and %s share the fingerprint %s", prev, v, fp)
			}
			seen[fp] = v
		}
	})
}

// formatCases are printing directives applied to every value in
// TestKeyRedactedByFmt.
var formatCases = []string{
	"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%T",
	"%10v", "%-60v", "%060s", "%.5s", "%+q", "%#q", "% x", "%#x", "%U", "%c", "%e",
	"%[1]v %[1]s",
}

func TestKeyRedactedByFmt(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "42")
	type exported struct {
		Name string
		Key  keyprovider.Key
		Ptr  *keyprovider.Key
	}
	values := map[string]any{
		"Key":                     k,
		"*Key":                    &k,
		"struct with Key fields":  exported{Name: "x", Key: k, Ptr: &k},
		"*struct with Key fields": &exported{Key: k, Ptr: &k},
		"[]Key":                   []keyprovider.Key{k, k},
		"[]*Key":                  []*keyprovider.Key{&k},
		"[2]Key":                  [2]keyprovider.Key{k},
		"map[string]Key":          map[string]keyprovider.Key{"a": k},
		"map[Key]int":             map[keyprovider.Key]int{k: 1},
		"[]any":                   []any{k, "x"},
		"nested":                  map[string][]exported{"a": {{Key: k}}},
	}
	for name, v := range values {
		for _, verb := range formatCases {
			got := fmt.Sprintf(verb, v)
			assertNoLeak(t, fmt.Sprintf("Sprintf(%q, %s)", verb, name), got)
		}
		assertNoLeak(t, "Sprint("+name+")", fmt.Sprint(v))
		assertNoLeak(t, "Sprintln("+name+")", fmt.Sprintln(v, v))
		var buf bytes.Buffer
		fmt.Fprint(&buf, v)
		fmt.Fprintf(&buf, "%v %+v %#v", v, v, v)
		assertNoLeak(t, "Fprint/Fprintf("+name+")", buf.String())
		//lint:ignore S1028 the pattern people write is what is under test
		assertNoLeak(t, "errors.New(Sprintf(%v))", errors.New(fmt.Sprintf("bad: %v", v)).Error())
		assertNoLeak(t, "fmt.Errorf(%v, %w)", fmt.Errorf("loading %v: %w", v, errors.New("x")).Error())
	}
}

// TestKeyRedactedByReflection covers the paths where fmt prints a Key
// without calling its methods: as an unexported struct field (fmt may not
// call methods on it) and under %p (fmt prints its fields to explain the bad
// verb).
func TestKeyRedactedByReflection(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "42")
	type client struct {
		key  keyprovider.Key
		name string
	}
	c := client{key: k, name: "x"}
	for _, verb := range formatCases {
		assertNoLeak(t, fmt.Sprintf("Sprintf(%q, struct with an unexported Key)", verb), fmt.Sprintf(verb, c))
		assertNoLeak(t, fmt.Sprintf("Sprintf(%q, *struct with an unexported Key)", verb), fmt.Sprintf(verb, &c))
	}
	for name, v := range map[string]any{
		"Key":         k,
		"[1]Key":      [1]keyprovider.Key{k},
		"struct{Key}": struct{ K keyprovider.Key }{k},
		"map[int]Key": map[int]keyprovider.Key{1: k},
		"[]Key":       []keyprovider.Key{k},
		"**Key":       new(&k),
		"interface":   any(k),
	} {
		for _, verb := range []string{"%p", "%!", "%z", "%w"} {
			assertNoLeak(t, fmt.Sprintf("Sprintf(%q, %s)", verb, name), fmt.Sprintf(verb, v))
		}
	}
}

func TestKeyFormatExact(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "42")
	fp := k.Fingerprint()
	tests := []struct{ format, want string }{
		{"%v", fp},
		{"%s", fp},
		{"%d", fp},
		{"%x", fp},
		{"%+v", fp + " version=42"},
		{"%q", `"` + fp + `"`},
		{"%#v", `keyprovider.Key{Fingerprint:"` + fp + `", Version:"42"}`},
		{"%30v", strings.Repeat(" ", 30-len([]rune(fp))) + fp},
		{"%-30v|", fp + strings.Repeat(" ", 30-len([]rune(fp))) + "|"},
		{"%3v", fp},
		{"%T", "keyprovider.Key"},
	}
	for _, tc := range tests {
		if got := fmt.Sprintf(tc.format, k); got != tc.want {
			t.Errorf("Sprintf(%q) = %q, want %q", tc.format, shown(got), tc.want)
		}
	}
	if got := fmt.Sprintf("%+v", keyprovider.NewKey(secretKey, "")); got != fp {
		t.Errorf("%%+v of a key without version = %q, want just the fingerprint", got)
	}
	if got := k.String(); got != fp {
		t.Errorf("String() = %q, want the fingerprint", got)
	}
}

func TestKeyRedactedBySlog(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "42")
	type config struct {
		Name string
		Key  keyprovider.Key
		Ptr  *keyprovider.Key
	}
	log := func(l *slog.Logger) {
		l.Info("as attr", "key", k)
		l.Info("as pointer", "key", &k)
		l.Info("slog.Any", slog.Any("key", k))
		l.Info("in a group", slog.Group("auth", slog.Any("key", k), "n", 1))
		l.With("key", k).Info("in With")
		l.WithGroup("g").Info("under WithGroup", "key", k)
		l.Info("in a struct", "cfg", config{Name: "x", Key: k, Ptr: &k})
		l.Info("in a slice", "keys", []keyprovider.Key{k})
		l.Info("in a map", "keys", map[string]keyprovider.Key{"a": k})
		l.Info("formatted " + fmt.Sprint(k))
	}
	for _, tc := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log(slog.New(tc.new(&buf)))
			out := buf.String()
			assertNoLeak(t, tc.name+" handler output", out)
			if n := strings.Count(out, k.Fingerprint()); n < 10 {
				t.Errorf("the fingerprint appears %d times in\n%s\nwant it in every line", n, shown(out))
			}
		})
	}
	t.Run("LogValue", func(t *testing.T) {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "key", k)
		var rec struct {
			Key map[string]string `json:"key"`
		}
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"fingerprint": k.Fingerprint(), "version": "42"}
		if fmt.Sprint(rec.Key) != fmt.Sprint(want) {
			t.Errorf("logged key = %v, want %v", rec.Key, want)
		}
	})
}

func TestKeyJSONAndText(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "42")
	fp := k.Fingerprint()
	type holder struct {
		Key   keyprovider.Key            `json:"key"`
		Ptr   *keyprovider.Key           `json:"ptr"`
		Nil   *keyprovider.Key           `json:"nil"`
		Map   map[string]keyprovider.Key `json:"map"`
		Slice []keyprovider.Key          `json:"slice"`
		Zero  keyprovider.Key            `json:"zero"`
	}
	b, err := json.Marshal(holder{Key: k, Ptr: &k, Map: map[string]keyprovider.Key{"a": k}, Slice: []keyprovider.Key{k}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"key":%[1]q,"ptr":%[1]q,"nil":null,"map":{"a":%[1]q},"slice":[%[1]q],"zero":"\u003cno key\u003e"}`, fp)
	if string(b) != want {
		t.Errorf("json.Marshal =\n%s\nwant\n%s", shown(string(b)), want)
	}
	assertNoLeak(t, "json.Marshal", string(b))

	// A Key as a JSON object key goes through MarshalText.
	b, err = json.Marshal(map[keyprovider.Key]int{k: 1})
	if err != nil || string(b) != fmt.Sprintf(`{%q:1}`, fp) {
		t.Errorf("json.Marshal(map[Key]int) = %s, %v", b, err)
	}

	text, err := k.MarshalText()
	if err != nil || string(text) != fp {
		t.Errorf("MarshalText() = %q, %v; want the fingerprint", text, err)
	}

	t.Run("decoding is refused", func(t *testing.T) {
		var h holder
		err := json.Unmarshal([]byte(`{"key":"`+secretKey+`"}`), &h)
		if !errors.Is(err, keyprovider.ErrInvalidKey) {
			t.Errorf("json.Unmarshal into a Key: err = %v, want ErrInvalidKey", err)
		}
		if err != nil {
			assertNoLeak(t, "the decoding error", err.Error())
		}
		if !h.Key.IsZero() {
			t.Errorf("json.Unmarshal filled the Key: %v", h.Key)
		}
		var k2 keyprovider.Key
		if err := k2.UnmarshalText([]byte(secretKey)); !errors.Is(err, keyprovider.ErrInvalidKey) {
			t.Errorf("UnmarshalText: err = %v, want ErrInvalidKey", err)
		}
	})
}

func TestKeyRedactedInPanic(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "42")
	t.Run("recovered", func(t *testing.T) {
		var recovered any
		func() {
			defer func() { recovered = recover() }()
			panic(k)
		}()
		assertNoLeak(t, "fmt.Sprint(recovered)", fmt.Sprint(recovered))
		assertNoLeak(t, "fmt.Sprintf(%#v, recovered)", fmt.Sprintf("%#v", recovered))
		if s, ok := recovered.(fmt.Stringer); !ok || s.String() != k.Fingerprint() {
			t.Errorf("recovered value is not a Stringer showing the fingerprint: %v", recovered)
		}
	})
	t.Run("crash", func(t *testing.T) {
		// The runtime prints an unrecovered panic's value itself, through
		// String for a Stringer; run a child process that dies of one.
		if os.Getenv("KEYPROVIDER_TEST_PANIC_KEY") == "1" {
			panic(k)
		}
		// The child's own deadline, far below the package timeout.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKeyRedactedInPanic$/^crash$", "-test.count=1")
		cmd.Env = append(os.Environ(), "KEYPROVIDER_TEST_PANIC_KEY=1")
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("the child did not crash:\n%s", shown(string(out)))
		}
		assertNoLeak(t, "the crash output", string(out))
		if !bytes.Contains(out, []byte(k.Fingerprint())) {
			t.Errorf("the crash output does not show the fingerprint:\n%s", shown(string(out)))
		}
	})
}

func sha256Sum(v string) [32]byte { return sha256.Sum256([]byte(v)) }

// BenchmarkNewKey measures making a key, fingerprint included: what every
// Fetch pays.
func BenchmarkNewKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = keyprovider.NewKey(secretKey, "1")
	}
}
