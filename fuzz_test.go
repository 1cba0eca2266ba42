package keyprovider_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyprovider/keyprovider"
)

// FuzzValidate checks Service.Validate and Service.ParseKey against their
// documented rules for the Tessera, Tesseral and zero services. Its seed
// corpus runs with every `go test`; `go test -fuzz=FuzzValidate` explores.
func FuzzValidate(f *testing.F) {
	for _, tc := range validateCases() {
		f.Add(tc.value)
	}
	for _, s := range []string{
		"tesseral_secret_key_abc", " sk-tessera-abc\n", "\tsk-tessera-abc\r\n", "\u00a0sk-tessera-x\u0085",
		"sk-tessera-\u2028", "sk-tessera-a\x80", "\xef\xbb\xbfsk-tessera-bom", "sk-tessera-" + strings.Repeat("z", 2000),
	} {
		f.Add(s)
	}
	services := []keyprovider.Service{keyprovider.Tessera, keyprovider.Tesseral, {}}
	f.Fuzz(func(t *testing.T, x string) {
		for _, svc := range services {
			err := svc.Validate(x)
			if err == nil {
				if len(x) == 0 || len(x) > keyprovider.MaxKeyLen {
					t.Fatalf("%s accepted a value of %d bytes", svc.Name, len(x))
				}
				for i := 0; i < len(x); i++ {
					if c := x[i]; c <= ' ' || c >= 0x7f {
						t.Fatalf("%s accepted %q, with byte %#02x at %d", svc.Name, x, c, i)
					}
				}
				if !strings.HasPrefix(x, svc.KeyPrefix) || len(x) == len(svc.KeyPrefix) {
					t.Fatalf("%s accepted %q without its prefix %q and more", svc.Name, x, svc.KeyPrefix)
				}
			} else {
				if !errors.Is(err, keyprovider.ErrInvalidKey) {
					t.Fatalf("%s: Validate(%q) = %v, not ErrInvalidKey", svc.Name, x, err)
				}
				checkValidateMessage(t, err)
			}

			k, perr := svc.ParseKey(x, "v")
			trimmed := strings.TrimSpace(x)
			if (perr == nil) != (svc.Validate(trimmed) == nil) {
				t.Fatalf("%s: ParseKey(%q) error %v, but Validate(TrimSpace) error %v", svc.Name, x, perr, svc.Validate(trimmed))
			}
			if perr == nil {
				if k.Reveal() != trimmed || k.Version() != "v" {
					t.Fatalf("%s: ParseKey(%q) = %v version %q, want %s version v", svc.Name, x, k, k.Version(), keyprovider.NewKey(trimmed, "").Fingerprint())
				}
				if fp := k.Fingerprint(); !fingerprintRE.MatchString(fp) {
					t.Fatalf("fingerprint %q of an accepted key is not prefix…12hex", fp)
				}
			} else if !k.IsZero() {
				t.Fatalf("ParseKey returned a key with its error")
			}
		}
	})
}

// FuzzCheckResponseRedaction puts a key of a known service, or a bearer
// token, anywhere in an error body (plain text or a JSON message) and checks
// that no part of it survives in the error CheckResponse returns: the key
// itself, and the credential after its prefix or after "bearer". (A prefix
// followed by punctuation alone, as in `start with "sk-tessera-".`, is not
// a key and is left as it is.) kind
// chooses the shape: a Tessera key, a Tesseral key, or a token after
// "bearer" in the case pattern of kind's upper bits, separated by sep.
func FuzzCheckResponseRedaction(f *testing.F) {
	f.Add("key ", "abc!def:ghi", " given", " ", uint8(0), false)
	f.Add(`said "`, `x"y'z`, `"`, " ", uint8(1), true)
	f.Add("header ", "opaqueToken0123456789", ".", "  ", uint8(2|0x50), false)
	f.Add("Authorization:", "tok.en/with+=~*pad", "", ":\t", uint8(2|0xa8), true)
	f.Add("glued", "sk-tessera-inner", "sk-tessera-", "=", uint8(0), false)
	f.Fuzz(func(t *testing.T, before, secret, after, sep string, kind uint8, asJSON bool) {
		secret = keyBytes(secret)
		var text, cred string
		switch kind % 3 {
		case 0, 1:
			if !strings.ContainsFunc(secret, isAlnum) {
				return // punctuation alone after a prefix is not a key (a quoted prefix)
			}
			text = []string{keyprovider.Tessera.KeyPrefix, keyprovider.Tesseral.KeyPrefix}[kind%3] + secret
			cred = secret
		case 2:
			sep = strings.Map(func(r rune) rune {
				if strings.ContainsRune(" \t\r\n:=", r) {
					return r
				}
				return -1
			}, sep)
			if len(secret) < 8 || sep == "" {
				return // shorter tokens are words, not credentials
			}
			word := []byte("bearer")
			for i := range word {
				if kind>>(2+i)&1 == 1 {
					word[i] -= 'a' - 'A'
				}
			}
			text = string(word) + sep + secret
			cred = secret
		}
		msg := before + text + after
		body := msg
		if asJSON {
			b, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg, "code": "c"}})
			body = string(b)
		}
		resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}
		err := keyprovider.CheckResponse(resp)
		if err == nil {
			t.Fatal("no error for a 401")
		}
		out := err.Error()
		elsewhere := strings.Contains(before, cred) || strings.Contains(after, cred) || strings.Contains(sep, cred) ||
			strings.Contains("keyprovider: 401 Unauthorized (invalid key): [c] bearer BEARER", cred)
		if strings.Contains(out, text) || (!elsewhere && len(cred) >= 8 && strings.Contains(out, cred)) {
			t.Fatalf("the credential survives redaction (kind %d, JSON %v): %q", kind%3, asJSON, redactedFor(out, cred))
		}
	})
}

func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

// keyBytes keeps the bytes of s that Validate accepts in a key.
func keyBytes(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > ' ' && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// redactedFor shows where cred survived in out without printing it.
func redactedFor(out, cred string) string {
	return strings.ReplaceAll(out, cred, "<CRED>")
}
