package keyprovider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyprovider/keyprovider"
)

// FuzzParseRef checks that parsing never panics, that every error is a
// *RefError wrapping ErrInvalidKey, and that every accepted reference
// round-trips: parse → String → parse gives the same Ref, and String is a
// fixed point. It runs the generic grammar through env, file and the test
// schemes of ref_test.go (a mount, an opaque scheme, the default grammar);
// cmd/keyprov's FuzzParseLinkedRef runs the backends' own grammars.
func FuzzParseRef(f *testing.F) {
	for _, seed := range []string{
		"env://OTHER_VAR",
		"file:///run/secrets/tessera",
		"file:///a%20b/c%23d",
		"mnt://kv/tessera#api_key?version=3",
		"mnt://secret/t?namespace=a/b&version=2#f",
		"mnt://team%2Fkv/app#key",
		"raw://Prod Vault/Tessera/keys/api key?attribute=otp",
		"plain://a%2Fb/c",
		"vault://kv/x",
		"foo://bar",
		"sk-tessera-abc",
		"mnt://kv/x#f#g",
		"file:///%ff",
		"MNT://kv/x?version=007",
	} {
		f.Add(seed)
	}
	res := testResolver()
	f.Fuzz(func(t *testing.T, s string) {
		r, err := res.Parse(s)
		if err != nil {
			var re *keyprovider.RefError
			if !errors.As(err, &re) || !errors.Is(err, keyprovider.ErrInvalidKey) {
				t.Fatalf("ParseRef(%q): error %v is not a *RefError wrapping ErrInvalidKey", s, err)
			}
			return
		}
		text := r.String()
		again, err := res.Parse(text)
		if err != nil {
			t.Fatalf("ParseRef(%q) = %#v, whose String %q does not parse: %v", s, r, text, err)
		}
		if !sameRef(r, again) {
			t.Fatalf("round trip of %q: %#v → %q → %#v", s, r, text, again)
		}
		if again.String() != text {
			t.Fatalf("String is not canonical: %q then %q", text, again.String())
		}
		if !strings.HasPrefix(text, r.Scheme+"://") {
			t.Fatalf("String %q does not start with the scheme %q", text, r.Scheme)
		}
	})
}

func sameRef(a, b keyprovider.Ref) bool {
	if a.Scheme != b.Scheme || a.Mount != b.Mount || a.Path != b.Path || a.Field != b.Field || len(a.Params) != len(b.Params) {
		return false
	}
	for k, v := range a.Params {
		if w, ok := b.Params[k]; !ok || w != v {
			return false
		}
	}
	return true
}
