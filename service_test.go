package keyprovider_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/keyprovider/keyprovider"
)

func TestServicePresets(t *testing.T) {
	tests := []struct {
		svc                              keyprovider.Service
		name, envVar, prefix, base, host string
	}{
		{keyprovider.Tesseral, "tesseral", "TESSERAL_API_KEY", "tesseral_secret_key_", "https://api.tesseral.com/v1", "api.tesseral.com"},
		{keyprovider.Tessera, "tessera", "TESSERA_API_KEY", "sk-tessera-", "https://api.tesseraai.cloud/v1", "api.tesseraai.cloud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.svc
			want := keyprovider.Service{Name: tc.name, EnvVar: tc.envVar, KeyPrefix: tc.prefix, BaseURL: tc.base}
			if got != want {
				t.Errorf("preset = %+v, want %+v", got, want)
			}
			if h := got.Host(); h != tc.host {
				t.Errorf("Host() = %q, want %q", h, tc.host)
			}
		})
	}
	if got := keyprovider.KnownServices(); len(got) != 2 || got[0] != keyprovider.Tesseral || got[1] != keyprovider.Tessera {
		t.Errorf("KnownServices() = %+v", got)
	}
}

func TestServiceHost(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"", ""},
		{"https://api.example.com", "api.example.com"},
		{"http://127.0.0.1:8080/v1", "127.0.0.1:8080"},
		{"https://[::1]:9/v1", "[::1]:9"},
		{"://bad", ""},
		{"api.example.com/v1", ""},
	} {
		if got := (keyprovider.Service{BaseURL: tc.base}).Host(); got != tc.want {
			t.Errorf("Service{BaseURL: %q}.Host() = %q, want %q", tc.base, got, tc.want)
		}
	}
}

// validateCases are the values of TestServiceValidate, checked for Tessera;
// reason is a fragment of the error's words, "" for a value accepted.
func validateCases() []struct{ name, value, reason string } {
	const p = "sk-tessera-"
	maxBody := strings.Repeat("a", keyprovider.MaxKeyLen-len(p))
	return []struct{ name, value, reason string }{
		{"a good key", p + "Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0", ""},
		{"every printable ASCII but space", p + "!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~", ""},
		{"exactly MaxKeyLen", p + maxBody, ""},
		{"one byte past MaxKeyLen", p + maxBody + "a", "1025 bytes long, more than the 1024 allowed"},
		{"a whole file", p + strings.Repeat("a", 1<<20), "bytes long, more than the 1024 allowed"},
		{"empty", "", "empty"},
		{"prefix only", p, `nothing after the prefix "sk-tessera-"`},
		{"no prefix", "Tj7mZJ8X2qKmRnGYpA4L", `does not start with "sk-tessera-"`},
		{"prefix in other case", "SK-TESSERA-abc", `does not start with "sk-tessera-"`},
		{"prefix not at the start", "xsk-tessera-abc", `does not start with "sk-tessera-"`},
		{"the other service's prefix", "tesseral_secret_key_abc", "it looks like a tesseral key"},
		{"CR", p + "abc\rdef", "control character 0x0d at byte 14"},
		{"LF", p + "abc\ndef", "control character 0x0a at byte 14"},
		{"CRLF header injection", p + "abc\r\nX-Evil: 1", "control character 0x0d at byte 14"},
		{"trailing LF (not trimmed here)", p + "abc\n", "control character 0x0a at byte 14"},
		{"NUL", p + "abc\x00def", "control character 0x00 at byte 14"},
		{"BEL", p + "\x07", "control character 0x07 at byte 11"},
		{"ESC", p + "a\x1b[31m", "control character 0x1b at byte 12"},
		{"unit separator", p + "a\x1f", "control character 0x1f at byte 12"},
		{"DEL", p + "a\x7f", "control character 0x7f at byte 12"},
		{"tab", p + "a\tb", "control character 0x09 at byte 12"},
		{"space inside", p + "abc def", "space at byte 14"},
		{"leading space (not trimmed here)", " " + p + "abc", "space at byte 0"},
		{"trailing space (not trimmed here)", p + "abc ", "space at byte 14"},
		{"non-ASCII letter", p + "abcé", "non-ASCII byte at byte 14"},
		{"no-break space", p + "a\u00a0b", "non-ASCII byte at byte 12"},
		{"invalid UTF-8", p + "a\xff", "non-ASCII byte at byte 12"},
		{"zero-width space", p + "a\u200bb", "non-ASCII byte at byte 12"},
		{"byte order mark", "\ufeff" + p + "abc", "starts with a UTF-8 byte order mark"},
	}
}

func TestServiceValidate(t *testing.T) {
	for _, tc := range validateCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := keyprovider.Tessera.Validate(tc.value)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, keyprovider.ErrInvalidKey) {
				t.Fatalf("Validate = %v, want an error wrapping ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("Validate = %q, want it to say %q", err, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "invalid tessera key: ") {
				t.Errorf("Validate = %q, want it to start with %q", err, "invalid tessera key: ")
			}
			checkValidateMessage(t, err)
		})
	}
}

func TestServiceValidateOtherServices(t *testing.T) {
	tests := []struct {
		name   string
		svc    keyprovider.Service
		value  string
		reason string
	}{
		{"tesseral accepts its own", keyprovider.Tesseral, "tesseral_secret_key_abc", ""},
		{"tesseral refuses a tessera key", keyprovider.Tesseral, "sk-tessera-abc", "it looks like a tessera key"},
		{"tesseral: prefix only", keyprovider.Tesseral, "tesseral_secret_key_", "nothing after the prefix"},
		{"zero Service takes any prefix", keyprovider.Service{}, "anything-goes_123", ""},
		{"zero Service takes a bare known prefix", keyprovider.Service{}, "sk-tessera-", ""},
		{"zero Service still refuses CR", keyprovider.Service{}, "abc\rdef", "control character"},
		{"zero Service still refuses empty", keyprovider.Service{}, "", "empty"},
		{"zero Service still bounds length", keyprovider.Service{}, strings.Repeat("a", keyprovider.MaxKeyLen+1), "more than the 1024 allowed"},
		{"zero Service, max length", keyprovider.Service{}, strings.Repeat("a", keyprovider.MaxKeyLen), ""},
		{"custom service", keyprovider.Service{Name: "acme", KeyPrefix: "acme_"}, "sk-tessera-abc", `does not start with "acme_" (it looks like a tessera key)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.svc.Validate(tc.value)
			switch {
			case tc.reason == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.reason != "" && (!errors.Is(err, keyprovider.ErrInvalidKey) || !strings.Contains(err.Error(), tc.reason)):
				t.Errorf("Validate = %v, want ErrInvalidKey saying %q", err, tc.reason)
			}
			if err != nil {
				checkValidateMessage(t, err)
			}
		})
	}
	if got := (keyprovider.Service{}).Validate(""); got == nil || got.Error() != "invalid key: empty" {
		t.Errorf("the zero Service's Validate(\"\") = %v, want \"invalid key: empty\"", got)
	}
}

// validateMessage is every message Validate may produce. None of its parts
// comes from the value, which is how Validate never quotes a key.
var validateMessage = regexp.MustCompile(`^invalid (\w+ )?key: (` + strings.Join([]string{
	`empty`,
	`\d+ bytes long, more than the \d+ allowed`,
	`space at byte \d+`,
	`control character 0x[0-9a-f]{2} at byte \d+`,
	`non-ASCII byte at byte \d+`,
	`starts with a UTF-8 byte order mark`,
	`does not start with "[^"]*"( \(it looks like a \w+ key\))?`,
	`nothing after the prefix "[^"]*"`,
}, "|") + `)$`)

func checkValidateMessage(t testing.TB, err error) {
	t.Helper()
	if !validateMessage.MatchString(err.Error()) {
		t.Errorf("Validate's message %q is not one of the fixed forms", err)
	}
}

func TestServiceParseKey(t *testing.T) {
	const good = "sk-tessera-abc123"
	tests := []struct {
		name, raw string
		wantErr   bool
	}{
		{"as it is", good, false},
		{"trailing newline", good + "\n", false},
		{"trailing CRLF", good + "\r\n", false},
		{"surrounding blanks and tabs", " \t " + good + "\t ", false},
		{"Unicode space around", "\u00a0" + good + "\u2028", false},
		{"blank", " \n\t", true},
		{"empty", "", true},
		{"space inside is kept and refused", "sk-tessera-abc 123", true},
		{"newline inside is kept and refused", "sk-tessera-abc\n123\n", true},
		{"wrong prefix after trimming", "  tesseral_secret_key_abc\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := keyprovider.Tessera.ParseKey(tc.raw, "v9")
			if tc.wantErr {
				if !errors.Is(err, keyprovider.ErrInvalidKey) {
					t.Errorf("ParseKey = (%v, %v), want ErrInvalidKey", k, err)
				}
				if !k.IsZero() {
					t.Errorf("ParseKey returned a key %v with its error", k)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if k.Reveal() != good || k.Version() != "v9" {
				t.Errorf("ParseKey = %v version %q, want %s version v9", k, k.Version(), keyprovider.NewKey(good, "").Fingerprint())
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	v := "sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0"
	b.ReportAllocs()
	for b.Loop() {
		if err := keyprovider.Tessera.Validate(v); err != nil {
			b.Fatal(err)
		}
	}
}
