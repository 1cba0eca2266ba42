package redact

import (
	"errors"
	"strings"
	"testing"
)

func TestStringRemovesEveryKeyShape(t *testing.T) {
	const key = "sk-tessera-AbC!d:e\"f"
	const tok = "hvs.CAESIJ1token000"
	cases := []struct{ name, in, secret string }{
		{"prefixed key with punctuation", "bad key " + key + " given", key},
		{"bearer lower", "header bearer " + tok, tok},
		{"bearer mixed case, two spaces", "BeArEr  " + tok + ".", tok},
		{"bearer after colon", "authorization: Bearer:" + tok, tok},
		{"bearer after an invalid UTF-8 byte", "\xfdbeaRer " + tok, tok},
		{"bearer after multi-byte runes", "ÉÉÉ İ BEARER " + tok, tok},
		{"held secret verbatim", "token " + tok + " rejected", tok},
		{"tesseral key in JSON", `{"k":"tesseral_secret_key_zz9"}`, "tesseral_secret_key_zz9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := String(c.in, tok)
			if strings.Contains(got, c.secret) || strings.Contains(got, c.secret[4:]) {
				t.Fatalf("String(%q) = %q: secret survives", c.in, got)
			}
		})
	}
}

func TestStringIsIdempotentAndKeepsPlainText(t *testing.T) {
	plain := `the bearer of bad news; sk-tessera- alone; keys start with "sk-tessera-". (tesseral_secret_key_!) no key here`
	if got := String(plain); got != plain {
		t.Fatalf("String(%q) = %q, want unchanged", plain, got)
	}
	once := String("key sk-tessera-abc123 and Bearer tok123456")
	if twice := String(once); twice != once {
		t.Fatalf("not idempotent: %q then %q", once, twice)
	}
}

// A prefixed key after "Bearer" keeps its prefix in the fingerprint, and
// is not fingerprinted twice.
func TestStringBearerPrefixedKey(t *testing.T) {
	const key = "sk-tessera-abcdefgh"
	want := "Bearer " + Fingerprint(key)
	if got := String("Bearer " + key); got != want {
		t.Fatalf("String(Bearer <key>) = %q, want %q", got, want)
	}
}

func TestLooksSecret(t *testing.T) {
	for s, want := range map[string]bool{
		"kv/tessera":                        false,
		"/run/secrets/tessera":              false,
		"TESSERA_API_KEY":                   false,
		"sk-tessera-x":                      true,
		"a1B2c3D4e5F6g7H8i9J0k":             true,
		"prod-tessera-api-key-for-payments": false,
	} {
		if got := LooksSecret(s); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	sentinel := errors.New("sentinel")
	err := Error(errors.Join(sentinel, errors.New("echo sk-tessera-secret1")))
	if strings.Contains(err.Error(), "sk-tessera-secret1") {
		t.Fatalf("Error kept the key: %v", err)
	}
	if !errors.Is(err, sentinel) {
		t.Fatal("errors.Is lost the sentinel")
	}
	if Error(nil) != nil {
		t.Fatal("Error(nil) != nil")
	}
}
