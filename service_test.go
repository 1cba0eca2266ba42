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
		svc                                       keyprovider.Service
		name, envVar, prefix, base, baseVar, host string
	}{
		{keyprovider.Tesseral, "tesseral", "TESSERAL_API_KEY", "tesseral_secret_key_", "https://api.tesseral.com/v1", "TESSERAL_BASE_URL", "api.tesseral.com"},
		{keyprovider.Tessera, "tessera", "TESSERA_API_KEY", "sk-tessera-", "https://api.tesseraai.cloud/v1", "TESSERA_BASE_URL", "api.tesseraai.cloud"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.svc
			want := keyprovider.Service{Name: tc.name, EnvVar: tc.envVar, KeyPrefix: tc.prefix, BaseURL: tc.base, BaseURLEnvVar: tc.baseVar}
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

func TestServiceResolveBaseURL(t *testing.T) {
	const field = "https://api.tesseraai.cloud/v1"
	tests := []struct {
		name string
		// env is TESSERA_BASE_URL's value; unset when nil.
		env *string
		// base is the Service's BaseURL.
		base string
		// want is the resolved BaseURL, "" when an error is wanted.
		want string
		// msg is a fragment of the error's words.
		msg string
	}{
		{name: "variable unset: the field", base: field, want: field},
		{name: "variable blank: the field", env: ptr(" \t\n"), base: field, want: field},
		{name: "variable set: the variable", env: ptr("https://proxy.internal.example/v1"), base: field, want: "https://proxy.internal.example/v1"},
		{name: "variable trimmed", env: ptr("  https://proxy.example/v1\n"), base: field, want: "https://proxy.example/v1"},
		{name: "scheme lower-cased", env: ptr("HTTPS://Proxy.Example/V1"), base: field, want: "https://Proxy.Example/V1"},
		{name: "loopback IPv4 with port", env: ptr("http://127.0.0.1:8787/v1"), want: "http://127.0.0.1:8787/v1"},
		{name: "loopback 127/8", env: ptr("http://127.1.2.3/v1"), want: "http://127.1.2.3/v1"},
		{name: "localhost", env: ptr("http://localhost/v1"), want: "http://localhost/v1"},
		{name: "loopback IPv6", env: ptr("http://[::1]:9/v1"), want: "http://[::1]:9/v1"},
		{name: "http to a public host", env: ptr("http://api.example.com/v1"), base: field, msg: "TESSERA_BASE_URL: the key goes only over HTTPS, or plain HTTP to a loopback host (got http://api.example.com)"},
		{name: "http to a LAN address", env: ptr("http://10.0.0.1/v1"), msg: "only over HTTPS"},
		{name: "http to a name that merely says localhost", env: ptr("http://localhost.example.com/v1"), msg: "only over HTTPS"},
		{name: "another scheme", env: ptr("ftp://api.example.com/v1"), msg: "got ftp://api.example.com"},
		{name: "credentials", env: ptr("https://admin:hunter2secret@api.example.com/v1"), msg: "credentials"},
		{name: "a user alone", env: ptr("https://admin@api.example.com/v1"), msg: "credentials"},
		{name: "query", env: ptr("https://api.example.com/v1?token=abc"), msg: "no query or fragment"},
		{name: "empty query", env: ptr("https://api.example.com/v1?"), msg: "no query or fragment"},
		{name: "fragment", env: ptr("https://api.example.com/v1#s3cr3tfrag"), msg: "no query or fragment"},
		{name: "relative", env: ptr("api.example.com/v1"), msg: "not an absolute URL"},
		{name: "opaque", env: ptr("https:api.example.com"), msg: "not an absolute URL"},
		{name: "no host", env: ptr("https://:443/v1"), msg: "not an absolute URL"},
		{name: "garbage", env: ptr("::not a url::"), msg: "not an absolute URL"},
		{name: "a key pasted in", env: ptr("sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0"), msg: "TESSERA_BASE_URL: not an absolute URL"},
		{name: "a token as the host", env: ptr("ftp://ghp_Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH/x"), msg: "got ftp://"},
		{name: "bad field", base: "http://api.example.com/v1", msg: "tessera's base URL: the key goes only over HTTPS"},
		{name: "nothing at all", msg: "tessera's base URL: empty: there is nowhere to send the key (TESSERA_BASE_URL is not set either)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.env != nil {
				env["TESSERA_BASE_URL"] = *tc.env
			}
			svc := keyprovider.Tessera
			svc.BaseURL = tc.base
			got, err := svc.ResolveBaseURL(keyprovider.WithLookupEnv(mapEnv(env)))
			if tc.want != "" {
				if err != nil {
					t.Fatalf("ResolveBaseURL: %v", err)
				}
				want := svc
				want.BaseURL = tc.want
				if got != want {
					t.Errorf("ResolveBaseURL = %+v, want %+v", got, want)
				}
				return
			}
			if !errors.Is(err, keyprovider.ErrHostNotAllowed) {
				t.Fatalf("ResolveBaseURL error = %v, want one wrapping ErrHostNotAllowed", err)
			}
			if got != (keyprovider.Service{}) {
				t.Errorf("ResolveBaseURL returned %+v with its error, want the zero Service", got)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			// Nothing of a refused value is quoted but its scheme and host.
			for _, secret := range []string{"admin", "hunter2secret", "token=abc", "s3cr3tfrag", "not a url", "Tj7mZJ8X2qKmRnGYpA4L", "/v1"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes %q", err, secret)
				}
			}
		})
	}
}

func TestServiceResolveBaseURLEnvironment(t *testing.T) {
	t.Run("no variable: the environment is not read", func(t *testing.T) {
		t.Setenv("TESSERA_BASE_URL", "http://api.example.com/v1")
		svc := keyprovider.Tessera
		svc.BaseURLEnvVar = ""
		lookup := func(name string) (string, bool) {
			t.Errorf("the environment was read (%s)", name)
			return "", false
		}
		got, err := svc.ResolveBaseURL(keyprovider.WithLookupEnv(lookup))
		if err != nil || got.BaseURL != keyprovider.Tessera.BaseURL {
			t.Errorf("ResolveBaseURL = %q, %v; want the field", got.BaseURL, err)
		}
		if _, err := svc.ResolveBaseURL(); err != nil {
			t.Errorf("ResolveBaseURL without a lookup read the process environment: %v", err)
		}
	})
	t.Run("no lookup: the process environment", func(t *testing.T) {
		t.Setenv("TESSERAL_BASE_URL", "http://127.0.0.1:9/v1")
		got, err := keyprovider.Tesseral.ResolveBaseURL()
		if err != nil || got.BaseURL != "http://127.0.0.1:9/v1" {
			t.Errorf("ResolveBaseURL() = %q, %v; want TESSERAL_BASE_URL's", got.BaseURL, err)
		}
		got, err = keyprovider.Tesseral.ResolveBaseURL(keyprovider.WithLookupEnv(nil))
		if err != nil || got.BaseURL != "http://127.0.0.1:9/v1" {
			t.Errorf("ResolveBaseURL(WithLookupEnv(nil)) = %q, %v; want TESSERAL_BASE_URL's", got.BaseURL, err)
		}
	})
	t.Run("an injected lookup replaces the process environment", func(t *testing.T) {
		t.Setenv("TESSERAL_BASE_URL", "http://127.0.0.1:9/v1")
		got, err := keyprovider.Tesseral.ResolveBaseURL(keyprovider.WithLookupEnv(mapEnv(nil)))
		if err != nil || got.BaseURL != keyprovider.Tesseral.BaseURL {
			t.Errorf("ResolveBaseURL = %q, %v; want the field", got.BaseURL, err)
		}
	})
	t.Run("the zero Service", func(t *testing.T) {
		_, err := keyprovider.Service{}.ResolveBaseURL()
		if !errors.Is(err, keyprovider.ErrHostNotAllowed) || !strings.Contains(err.Error(), "the service's base URL: empty") {
			t.Errorf("zero Service: %v", err)
		}
	})
}

func ptr(s string) *string { return &s }
