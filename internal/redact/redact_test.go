package redact

import (
	"encoding/json"
	"errors"
	"fmt"
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
		"kv/tessera":                         false,
		"/run/secrets/tessera":               false,
		"TESSERA_API_KEY":                    false,
		"sk-tessera-x":                       true,
		"a1B2c3D4e5F6g7H8i9J0k":              true,
		"prod-tessera-api-key-for-payments":  false,
		"tessera_api_key_2024":               false,
		"kv/apps/tessera_api_key_2024_prod":  false,
		"hvs.CAESIJ1a2b3c4d5e6f7g8h9i0jKLMN": true,
		"0123456789abcdef0123456789abcdef":   true,
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

func TestSecretPrintsOnlyItsFingerprint(t *testing.T) {
	const v = "hvs.CAESIJ1token000secret"
	type holder struct {
		S Secret
		p Secret
	}
	sec := NewSecret(v)
	for _, got := range []string{
		fmt.Sprintf("%v %+v %#v %s %q %x", sec, sec, sec, sec, sec, sec),
		fmt.Sprintf("%v %+v %#v", holder{sec, sec}, holder{sec, sec}, &holder{sec, sec}),
		sec.String(), sec.GoString(),
	} {
		if strings.Contains(got, v) || strings.Contains(got, "CAESIJ1") {
			t.Fatalf("printed the secret: %s", got)
		}
	}
	if b, _ := json.Marshal(holder{S: sec}); strings.Contains(string(b), v) {
		t.Fatalf("JSON holds the secret: %s", b)
	}
	if sec.Reveal() != v || NewSecret("").Reveal() != "" || len(RevealAll([]Secret{sec, {}})) != 1 {
		t.Fatal("Reveal or RevealAll lost the value")
	}
}
