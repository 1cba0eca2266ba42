package keyprovider_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/keyprovider/keyprovider"
)

type Ref = keyprovider.Ref

// testSchemes are schemes with the shapes the backends give theirs, so the
// generic grammar is tested without linking a backend into the root tests:
// "mnt" has a first part of its own (as Vault's mount), "raw" is opaque (as
// 1Password's), "plain" takes no field and no parameter.
var testSchemes = []keyprovider.Scheme{
	{
		Name: "mnt", Field: true, Params: []string{"version", "namespace"},
		Parse: func(parts []string, r *Ref) error {
			if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
				return errors.New("mnt:// takes a mount and a path")
			}
			r.Mount, r.Path = parts[0], strings.Join(parts[1:], "/")
			return nil
		},
		Format: func(r Ref) []string { return append([]string{r.Mount}, strings.Split(r.Path, "/")...) },
		Open:   openFixed,
	},
	{Name: "raw", Opaque: true, Params: []string{"attribute"}, Open: openFixed},
	{Name: "plain", Open: openFixed},
}

func openFixed(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	return keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return req.Service.ParseKey(keyA, "7")
	}), nil
}

// testResolver returns a Resolver knowing env, file and testSchemes.
func testResolver() *keyprovider.Resolver {
	r := keyprovider.NewResolver()
	for _, s := range testSchemes {
		r.Register(s)
	}
	return r
}

func TestParseRefValid(t *testing.T) {
	tests := []struct {
		in        string
		want      Ref
		canonical string // "" means in
	}{
		// env
		{in: "env://OTHER_VAR", want: Ref{Scheme: "env", Path: "OTHER_VAR"}},
		{in: "env://_x9", want: Ref{Scheme: "env", Path: "_x9"}},
		{in: "ENV://A", want: Ref{Scheme: "env", Path: "A"}, canonical: "env://A"},
		// file
		{in: "file:///run/secrets/tessera", want: Ref{Scheme: "file", Path: "/run/secrets/tessera"}},
		{in: "file:///a%20b/c%23d%3Fe%25f", want: Ref{Scheme: "file", Path: "/a b/c#d?e%f"}},
		{in: "file:///caf%C3%A9", want: Ref{Scheme: "file", Path: "/café"}, canonical: "file:///café"},
		{in: "file:///café", want: Ref{Scheme: "file", Path: "/café"}},
		{in: "file:///x:y=z&w", want: Ref{Scheme: "file", Path: "/x:y=z&w"}},
		{in: "file:///a%2Fb", want: Ref{Scheme: "file", Path: "/a/b"}, canonical: "file:///a/b"},
		// a scheme with a mount
		{in: "mnt://kv/apps/tessera/prod#api_key", want: Ref{Scheme: "mnt", Mount: "kv", Path: "apps/tessera/prod", Field: "api_key"}},
		{
			in:        "MNT://secret/tessera?namespace=team-a/prod&version=12#api_key",
			want:      Ref{Scheme: "mnt", Mount: "secret", Path: "tessera", Field: "api_key", Params: map[string]string{"version": "12", "namespace": "team-a/prod"}},
			canonical: "mnt://secret/tessera#api_key?version=12&namespace=team-a/prod",
		},
		{in: "mnt://team%2Fkv/app#key", want: Ref{Scheme: "mnt", Mount: "team/kv", Path: "app", Field: "key"}},
		{in: "mnt://kv/a%2Fb", want: Ref{Scheme: "mnt", Mount: "kv", Path: "a/b"}, canonical: "mnt://kv/a/b"},
		{in: "mnt://kv/app#we%23ird%3Ffield", want: Ref{Scheme: "mnt", Mount: "kv", Path: "app", Field: "we#ird?field"}},
		{in: "mnt://k/t#a%26b%3Dc?namespace=my%26ns", want: Ref{Scheme: "mnt", Mount: "k", Path: "t", Field: "a&b=c", Params: map[string]string{"namespace": "my&ns"}}, canonical: "mnt://k/t#a&b=c?namespace=my%26ns"},
		// an opaque scheme
		{in: "raw://Prod Vault/Tessera API/keys/api key", want: Ref{Scheme: "raw", Path: "Prod Vault/Tessera API/keys/api key"}},
		{in: "raw://v/i/f%20x?attribute=otp", want: Ref{Scheme: "raw", Path: "v/i/f%20x", Params: map[string]string{"attribute": "otp"}}},
		// the default grammar
		{in: "plain://a/b%20c", want: Ref{Scheme: "plain", Path: "a/b c"}},
	}
	r := testResolver()
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := r.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse = %#v, want %#v", got, tc.want)
			}
			canonical := tc.canonical
			if canonical == "" {
				canonical = tc.in
			}
			if got.String() != canonical {
				t.Errorf("String = %q, want %q", got.String(), canonical)
			}
			again, err := r.Parse(got.String())
			if err != nil {
				t.Fatalf("the canonical text must parse: %v", err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("parse → String → parse = %#v, want %#v", again, got)
			}
		})
	}
}

func TestParseRefInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string // a part of the message
	}{
		{"", `does not start with "scheme://"`},
		{"sk-tessera-abc", `does not start with "scheme://"`},
		{"vault:/kv/x", `does not start with "scheme://"`},
		{"://x", `does not start with "scheme://"`},
		{"1abc://x", `does not start with "scheme://"`},
		{"foo://bar", `unknown scheme "foo"; known: awssm, env, file, mnt, op, plain, raw, vault`},
		{"mtn://kv/x", `(did you mean mnt://?)`},
		{"http://example.com/key", `unknown scheme "http"`},
		// env
		{"env://", "takes a variable name"},
		{"env://1X", "takes a variable name"},
		{"env://A-B", "takes a variable name"},
		{"env://A/B", "takes a variable name"},
		{"env://A#f", "take no #field"},
		{"env://A?x=1", `unknown parameter "x": this scheme takes none`},
		// file
		{"file://", "absolute path"},
		{"file://run/secrets/x", "absolute path, after three slashes"},
		{"file://localhost/x", "absolute path"},
		{"file:///a b", "space at byte 9 (write it as %20)"},
		{"file:///a%zz", "bad escape"},
		{"file:///a%2", "bad escape"},
		{"file:///a%00", "NUL"},
		{"file:///a%ff", "invalid UTF-8"},
		{"file:///a\nb", "control character 0x0a"},
		{"file:///a#b", "take no #field"},
		// the generic grammar
		{"mnt://kv", "takes a mount and a path"},
		{"mnt://kv/x#", "empty #field"},
		{"mnt://kv/x?", `"?" with no parameters`},
		{"mnt://kv/x#f?version=1&version=2", "given twice"},
		{"mnt://kv/x#f?version=", "parameter version is empty"},
		{"mnt://kv/x#f?version", `must be "name=value"`},
		{"mnt://kv/x#f?verison=1", `unknown parameter "verison" (allowed: version, namespace)`},
		{"mnt://kv/x#f#g", `a second '#'`},
		{"mnt://kv/x?version=1?namespace=a", `a second '?'`},
		{"mnt://kv/x#f?version=1#g", `a second '#'`},
		{"raw://v/i/f#x", "take no #field"},
		{"raw://v/i/f?field=x", `unknown parameter "field" (allowed: attribute)`},
		{"plain://", "empty path"},
	}
	r := testResolver()
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := r.Parse(tc.in)
			var re *keyprovider.RefError
			if !errors.As(err, &re) || !errors.Is(err, keyprovider.ErrInvalidKey) {
				t.Fatalf("err = %v, want a *RefError wrapping ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// A reference to a backend's scheme, whose package is not linked in, is an
// error at parse time that names the package to import.
func TestParseRefNotLinked(t *testing.T) {
	for _, tc := range []struct{ ref, pkg string }{
		{"vault://kv/tessera#api_key", "github.com/keyprovider/keyprovider/vault"},
		{"awssm://prod/tessera", "github.com/keyprovider/keyprovider/awssm"},
		{"op://Private/Tessera/credential", "github.com/keyprovider/keyprovider/onepassword"},
	} {
		_, err := keyprovider.ParseRef(tc.ref)
		if !errors.Is(err, keyprovider.ErrSchemeNotLinked) || !errors.Is(err, keyprovider.ErrInvalidKey) {
			t.Errorf("ParseRef(%q) = %v, want ErrSchemeNotLinked and ErrInvalidKey", tc.ref, err)
			continue
		}
		if want := `import _ "` + tc.pkg + `"`; !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRef(%q) = %q, want it to contain %s", tc.ref, err, want)
		}
	}
}

// A value before "://" may be the start of a key that happens to contain
// "://": the error must not show it.
func TestParseRefUnknownSchemeDoesNotEchoKeys(t *testing.T) {
	for _, in := range []string{
		"sk-tessera-AbCdEf012345://x",
		"sk-tess://x", // a prefix of a known key prefix, short enough to show otherwise
		"Zq9x7Lm2Pr4T://rest-of-a-key",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := keyprovider.ParseRef(in)
			var re *keyprovider.RefError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RefError", err)
			}
			scheme, _, _ := strings.Cut(in, "://")
			if msg := strings.ToLower(err.Error()); strings.Contains(msg, strings.ToLower(scheme)) || !strings.Contains(msg, "not shown") {
				t.Errorf("err = %q: must not show %q, and must say so", err, scheme)
			}
			if re.Ref != "" {
				t.Errorf("Ref = %q, want empty", re.Ref)
			}
		})
	}
}

// Text whose "scheme" has characters no scheme has is not a reference at
// all: a Tesseral key containing "://" stays a literal key.
func TestParseRefNotASchemeIsNotAReference(t *testing.T) {
	_, err := keyprovider.ParseRef("tesseral_secret_key_0123://x")
	if err == nil || !strings.Contains(err.Error(), "not a reference") || strings.Contains(err.Error(), "0123") {
		t.Fatalf("err = %v", err)
	}
}

// A reference can be a pasted key, or hold one (a query value, a path): no
// part of a RefError that could be a key is printed, with any verb, and what
// is printed is bounded.
func TestRefErrorNeverPrintsAKey(t *testing.T) {
	const (
		prefixed = "sk-tessera-Zq9x7Lm2Pr4TkV8wQ3nB"
		entropy  = "Zq9x7Lm2Pr4TkV8wQ3nB5yH1"
	)
	r := testResolver()
	tests := []struct{ in, secret string }{
		{"file://" + prefixed, prefixed},     // not absolute
		{"file://" + entropy, entropy},       // not absolute
		{"env://" + prefixed, prefixed},      // not a variable name
		{"env://" + entropy + "#x", entropy}, // no field
		{"mnt://kv/x?version=" + prefixed + "&version=1", prefixed},
		{"mnt://kv/x?" + prefixed + "=1", prefixed}, // an unknown parameter's name
		{"mnt://kv/x?" + entropy + "=1", entropy},
		{"raw://v/" + prefixed + "/f#x", prefixed},
		{"vault://kv/" + prefixed, prefixed},         // not linked
		{"vault://kv/x?version=" + entropy, entropy}, // not linked
	}
	for _, tc := range tests {
		t.Run(tc.in[:min(len(tc.in), 40)], func(t *testing.T) {
			_, err := r.Parse(tc.in)
			var re *keyprovider.RefError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RefError", err)
			}
			re.Var = "TESSERA_API_KEY"
			for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", re), fmt.Sprintf("%v", *re), re.Ref, re.Reason} {
				if strings.Contains(msg, tc.secret) || strings.Contains(msg, tc.secret[len(tc.secret)-8:]) {
					t.Errorf("printed the secret: %s", msg)
				}
			}
		})
	}

	// What is printed of a long reference is bounded.
	_, err := r.Parse("file:///" + strings.Repeat("a/", 200) + "x y")
	var re *keyprovider.RefError
	if !errors.As(err, &re) || len(re.Ref) > 100 || len(err.Error()) > 200 {
		t.Errorf("a long reference is shown in %d bytes: %v", len(re.Ref), err)
	}

	// A RefError built by hand is scrubbed when printed.
	e := &keyprovider.RefError{Ref: "file://" + prefixed, Reason: "holds " + entropy, Err: errors.New("cause " + prefixed)}
	if msg := e.Error(); strings.Contains(msg, prefixed) || strings.Contains(msg, entropy) {
		t.Errorf("Error() = %q", msg)
	}
}

// A reference with nothing secret in it is shown as written, so the
// operator can see what to fix.
func TestRefErrorShowsAnOrdinaryReference(t *testing.T) {
	_, err := testResolver().Parse("mnt://kv/tessera/prod#api_key?verison=2")
	want := `keyprovider: reference "mnt://kv/tessera/prod#api_key?verison=2": unknown parameter "verison"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want %s...", err, want)
	}
}

func TestRefStringZeroAndParam(t *testing.T) {
	if s := (Ref{}).String(); s != "" {
		t.Errorf("zero Ref String = %q", s)
	}
	r, err := testResolver().Parse("mnt://kv/x?version=2")
	if err != nil {
		t.Fatal(err)
	}
	if r.Params["version"] != "2" || r.Params["namespace"] != "" {
		t.Errorf("Params: %q, %q", r.Params["version"], r.Params["namespace"])
	}
	// A scheme no Resolver knows is written in the generic grammar.
	if s := (Ref{Scheme: "nowhere", Path: "a b/c", Field: "f", Params: map[string]string{"z": "1", "a": "&"}}).String(); s != "nowhere://a%20b/c#f?a=%26&z=1" {
		t.Errorf("String = %q", s)
	}
}

// A Ref built by hand, with characters that need escaping, prints as text
// that parses back to it.
func TestRefStringEscapes(t *testing.T) {
	r := testResolver()
	for _, want := range []Ref{
		{Scheme: "file", Path: "/dir with space/#hash?q%pct\ttab"},
		{Scheme: "mnt", Mount: "team/kv", Path: "a b/c#d", Field: "f?g#h%i", Params: map[string]string{"namespace": "n&s=x", "version": "4"}},
	} {
		t.Run(want.String(), func(t *testing.T) {
			got, err := r.Parse(want.String())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestSchemesOfTheRoot(t *testing.T) {
	for _, ref := range []string{"vault://kv/x", "awssm://x", "op://v/i/f"} {
		if _, err := keyprovider.ParseRef(ref); !errors.Is(err, keyprovider.ErrSchemeNotLinked) {
			t.Errorf("ParseRef(%q) = %v: the root package links in no backend, so want ErrSchemeNotLinked", ref, err)
		}
	}
	for _, ref := range []string{"env://X", "file:///x"} {
		if _, err := keyprovider.ParseRef(ref); err != nil {
			t.Errorf("ParseRef(%q) = %v: env and file are built in", ref, err)
		}
	}
}

func BenchmarkParseRef(b *testing.B) {
	r := testResolver()
	for _, in := range []string{
		"env://OTHER_VAR",
		"mnt://secret/apps/tessera#api_key?version=3&namespace=team-a",
		"file:///run/secrets/tessera",
	} {
		b.Run(strings.SplitN(in, ":", 2)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Parse(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
