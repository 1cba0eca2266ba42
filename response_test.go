package keyprovider

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func errorResponse(t *testing.T, code int, body string, header ...string) *http.Response {
	t.Helper()
	resp := answer(code, header...)
	resp.Body = io.NopCloser(strings.NewReader(body))
	resp.Request = mustRequest(t, http.MethodPost, "https://user:pw@api.tesseraai.cloud/v1/embeddings?api_key=secret#frag", nil)
	return resp
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
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.code, apiErr.StatusCode)
			assert.Equal(t, tt.want, apiErr.Kind)
			for _, s := range sentinels {
				assert.Equal(t, s == tt.want, errors.Is(err, s), "errors.Is(%v)", s)
			}
		})
	}
}

func TestCheckResponseSuccess(t *testing.T) {
	for _, code := range []int{200, 201, 204, 301, 304, 399} {
		assert.NoError(t, CheckResponse(answer(code)), "status %d", code)
	}
	assert.Error(t, CheckResponse(nil))
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
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			assert.Equal(t, tt.wantMsg, apiErr.Message)
			assert.Equal(t, "POST", apiErr.Method)
			assert.Equal(t, "https://api.tesseraai.cloud/v1/embeddings", apiErr.URL)
			if tt.wantError != "" {
				assert.Equal(t, tt.wantError, err.Error())
			}
			for _, secret := range []string{"secret", "pw", "frag"} {
				assert.NotContains(t, err.Error(), secret)
			}
			// The caller still reads the whole body.
			b, rerr := io.ReadAll(resp.Body)
			require.NoError(t, rerr)
			assert.Equal(t, tt.body, string(b))
		})
	}
}

func TestCheckResponseKeepsLongBodyReadable(t *testing.T) {
	body := strings.Repeat("x", maxErrorBody+1000)
	closed := &countingBody{Reader: strings.NewReader(body)}
	resp := answer(http.StatusBadGateway)
	resp.Body = closed
	require.Error(t, CheckResponse(resp))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, len(body), len(b))
	require.NoError(t, resp.Body.Close())
	assert.EqualValues(t, 1, closed.closes.Load(), "closing the replaced body must close the original")
}

func TestCheckResponseRedactsKeys(t *testing.T) {
	tessera := "sk-tessera-Tj7mZJ8X2qKmRnGYpA4LbZqW8c3hN1JrV5fH9pK0"
	tesseral := "tesseral_secret_key_abcdefABCDEF0123456789"
	bearer := "opaque.token-value_123"
	body := `{"error":{"message":"key ` + tessera + ` and ` + tesseral + ` rejected; header was Bearer ` + bearer + `, see sk-tessera-… docs"}}`
	err := CheckResponse(errorResponse(t, http.StatusUnauthorized, body))
	require.Error(t, err)
	msg := err.Error()
	for _, secret := range []string{tessera, tesseral, bearer, "Tj7mZJ8X2q", "abcdefABCDEF"} {
		assert.NotContains(t, msg, secret)
	}
	for _, fp := range []string{NewKey(tessera, "").Fingerprint(), NewKey(tesseral, "").Fingerprint(), "Bearer " + NewKey(bearer, "").Fingerprint()} {
		assert.Contains(t, msg, fp)
	}
	assert.Contains(t, msg, "see sk-tessera-… docs", "a bare prefix is not a key")
}

func TestCheckResponseRetryAfter(t *testing.T) {
	err := CheckResponse(errorResponse(t, http.StatusTooManyRequests, "", "Retry-After", "12"))
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 12*time.Second, apiErr.RetryAfter)
	assert.ErrorIs(t, err, ErrUnavailable)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999999999999", 0, false}, // more than uint64 holds
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			h := http.Header{}
			if tt.value != "" {
				h.Set("Retry-After", tt.value)
			}
			got, ok := retryAfter(h, now)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("huge but parseable", func(t *testing.T) {
		h := http.Header{"Retry-After": {"18446744073709551615"}}
		got, ok := retryAfter(h, now)
		assert.True(t, ok)
		assert.Greater(t, got, 100*365*24*time.Hour)
	})
}
