package keyprovider_test

import (
	"errors"
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
					t.Fatalf("%s: ParseKey(%q) = %q, want %q", svc.Name, x, k.Reveal(), trimmed)
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
