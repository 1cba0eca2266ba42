package keyprovider

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider/internal/redact"
)

func errorResponse(t *testing.T, code int, body string, header ...string) *http.Response {
	t.Helper()
	resp := answer(code, header...)
	resp.Body = io.NopCloser(strings.NewReader(body))
	resp.Request = mustRequest(t, http.MethodPost, "https://user:pw@api.tesseraai.cloud/v1/embeddings?api_key=secret#frag", nil)
	return resp
}

func apiError(t *testing.T, err error) *APIError {
	t.Helper()
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("CheckResponse = %v, want an *APIError", err)
	}
	return apiErr
}

func TestCheckResponseKinds(t *testing.T) {
	tests := []struct {
		code int
		want error // nil: no sentinel
	}{
		{401, ErrInvalidKey},
		{403, ErrPermission},
		{408, ErrUnavailable},
		{429, ErrUnavailable},
		{500, ErrUnavailable},
		{502, ErrUnavailable},
		{503, ErrUnavailable},
		{400, nil},
		{404, nil},
		{422, nil},
	}
	sentinels := []error{ErrNotFound, ErrInvalidKey, ErrPermission, ErrUnavailable}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			err := CheckResponse(errorResponse(t, tt.code, ""))
			apiErr := apiError(t, err)
			if apiErr.StatusCode != tt.code || apiErr.Kind != tt.want {
				t.Errorf("StatusCode %d, Kind %v; want %d, %v", apiErr.StatusCode, apiErr.Kind, tt.code, tt.want)
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v) = %v", s, got)
				}
			}
		})
	}
}

func TestCheckResponseSuccess(t *testing.T) {
	for _, code := range []int{200, 201, 204, 301, 304, 399} {
		if err := CheckResponse(answer(code)); err != nil {
			t.Errorf("status %d: %v", code, err)
		}
	}
	if CheckResponse(nil) == nil {
		t.Error("CheckResponse(nil) = nil")
	}
}

func TestCheckResponseMessage(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantCode  string
		wantMsg   string
		wantError string
	}{
		{
			name:      "OpenAI shape (Tessera)",
			body:      `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key","param":null}}`,
			wantCode:  "invalid_api_key",
			wantMsg:   "Incorrect API key provided",
			wantError: "keyprovider: POST https://api.tesseraai.cloud/v1/embeddings: 401 Unauthorized (invalid key): [invalid_api_key] Incorrect API key provided",
		},
		{
			name:      "Tesseral shape",
			body:      `{"code":"unauthenticated","message":"invalid backend api key"}`,
			wantCode:  "unauthenticated",
			wantMsg:   "invalid backend api key",
			wantError: "keyprovider: POST https://api.tesseraai.cloud/v1/embeddings: 401 Unauthorized (invalid key): [unauthenticated] invalid backend api key",
		},
		{name: "error as a string", body: `{"error":"bad token","code":401}`, wantCode: "401", wantMsg: "bad token"},
		{name: "plain text", body: "  upstream timed out\n", wantMsg: "upstream timed out"},
		{name: "binary body", body: "\x00\x01\x02", wantMsg: ""},
		{name: "malformed JSON", body: `{"error":`, wantMsg: ""},
		{name: "empty", body: "", wantError: "keyprovider: POST https://api.tesseraai.cloud/v1/embeddings: 401 Unauthorized (invalid key)"},
		{name: "long message cut", body: strings.Repeat("é", 400), wantMsg: strings.Repeat("é", 256) + "…"},
		{name: "long message cut at a rune boundary", body: "a" + strings.Repeat("é", 400), wantMsg: "a" + strings.Repeat("é", 255) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := errorResponse(t, http.StatusUnauthorized, tt.body)
			err := CheckResponse(resp)
			apiErr := apiError(t, err)
			if apiErr.Code != tt.wantCode || apiErr.Message != tt.wantMsg {
				t.Errorf("Code %q, Message %q; want %q, %q", apiErr.Code, apiErr.Message, tt.wantCode, tt.wantMsg)
			}
			if apiErr.Method != "POST" || apiErr.URL != "https://api.tesseraai.cloud/v1/embeddings" {
				t.Errorf("Method %q, URL %q", apiErr.Method, apiErr.URL)
			}
			if tt.wantError != "" && err.Error() != tt.wantError {
				t.Errorf("Error() = %q, want %q", err, tt.wantError)
			}
			checkNoSecret(t, "the error", err.Error(), "secret", "pw", "frag")
			// The caller still reads the whole body.
			if b, rerr := io.ReadAll(resp.Body); rerr != nil || string(b) != tt.body {
				t.Errorf("body read again: %q, %v; want %q", b, rerr, tt.body)
			}
		})
	}
}

func TestCheckResponseKeepsLongBodyReadable(t *testing.T) {
	body := strings.Repeat("x", maxErrorBody+1000)
	closed := &countingBody{Reader: strings.NewReader(body)}
	resp := answer(http.StatusBadGateway)
	resp.Body = closed
	if CheckResponse(resp) == nil {
		t.Fatal("no error for a 502")
	}
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != len(body) {
		t.Errorf("read %d bytes, %v; want %d", len(b), err, len(body))
	}
	if err := resp.Body.Close(); err != nil || closed.closes.Load() != 1 {
		t.Errorf("closing the replaced body: %v, original closed %d times; want once", err, closed.closes.Load())
	}
}

func TestCheckResponseRedactsKeys(t *testing.T) {
	tessera := "sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0"
	tesseral := "tesseral_secret_key_abcdefABCDEF0123456789"
	bearer := "opaque.token-value_123"
	body := `{"error":{"message":"key ` + tessera + ` and ` + tesseral + ` rejected; header was Bearer ` + bearer + `, see sk-tessera-… docs"}}`
	err := CheckResponse(errorResponse(t, http.StatusUnauthorized, body))
	if err == nil {
		t.Fatal("no error for a 401")
	}
	msg := err.Error()
	checkNoSecret(t, "the error", msg, tessera, tesseral, bearer, "Tj7mZJ8X2q", "abcdefABCDEF")
	for _, fp := range []string{NewKey(tessera, "").Fingerprint(), NewKey(tesseral, "").Fingerprint(), "Bearer " + redact.Fingerprint(bearer+",")} {
		if !strings.Contains(msg, fp) {
			t.Errorf("the error lacks %q: %s", fp, msg)
		}
	}
	if !strings.Contains(msg, "see sk-tessera-… docs") {
		t.Errorf("a bare prefix is not a key, yet it was redacted: %s", msg)
	}
}

// Every shape a key or a token takes in a server's message is redacted
// whole: keys with the punctuation Validate accepts, keys glued to other
// text, "bearer" in any case and after any spacing, in the message, the
// code and the URL's path.
func TestCheckResponseRedactsEveryShape(t *testing.T) {
	const tok = "opaqueToken0123456789"
	tests := []struct {
		name   string
		body   string
		path   string
		secret string // must not survive, nor its part after the prefix
	}{
		{"key with ! and :", `{"message":"key sk-tessera-abc!def:ghi given"}`, "", "sk-tessera-abc!def:ghi"},
		{"key with every punctuation Validate accepts", `key sk-tessera-a!"#$%&'()*+,-./:;<=>?@[\]^_` + "`" + `{|}~z end`, "", `sk-tessera-a!"#$%&'()*+,-./:;<=>?@[\]^_` + "`" + `{|}~z`},
		{"tesseral key glued to a word", "badtesseral_secret_key_x:y!z1 rejected", "", "tesseral_secret_key_x:y!z1"},
		{"key in the code", `{"code":"sk-tessera-c0de!x","message":"m"}`, "", "sk-tessera-c0de!x"},
		{"bearer in lower case", "header was bearer " + tok, "", tok},
		{"bearer in mixed case", "header was bEaReR " + tok, "", tok},
		{"two spaces after Bearer", "header was Bearer  " + tok, "", tok},
		{"tab and colon after Bearer", "authorization: Bearer:\t" + tok, "", tok},
		{"bearer token with punctuation", "Bearer " + tok + "!:x", "", tok + "!:x"},
		{"key in the URL path", `{"message":"no"}`, "/v1/keys/sk-tessera-inpath!1", "sk-tessera-inpath!1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := errorResponse(t, http.StatusUnauthorized, tt.body)
			if tt.path != "" {
				resp.Request.URL.Path = tt.path
			}
			err := CheckResponse(resp)
			if err == nil {
				t.Fatal("no error for a 401")
			}
			_, rest, _ := strings.Cut(tt.secret, "_key_")
			if rest == "" {
				rest = strings.TrimPrefix(tt.secret, "sk-tessera-")
			}
			checkNoSecret(t, "the error", err.Error(), tt.secret, rest[1:])
		})
	}
}

func TestCheckResponseRetryAfter(t *testing.T) {
	err := CheckResponse(errorResponse(t, http.StatusTooManyRequests, "", "Retry-After", "12"))
	if apiErr := apiError(t, err); apiErr.RetryAfter != 12*time.Second {
		t.Errorf("RetryAfter %v, want 12s", apiErr.RetryAfter)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v does not match ErrUnavailable", err)
	}
}
