package keyprovider

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyprovider/keyprovider/internal/redact"
	"github.com/keyprovider/keyprovider/retry"
)

// APIError is an error answer (HTTP status 400 or more) of an API, as
// [CheckResponse] reports it. It unwraps to the sentinel of its status
// class, so callers decide with [errors.Is] and read the details with
// [errors.As]:
//
//   - 401: [ErrInvalidKey] (the key is unknown, revoked or rotated away);
//   - 403: [ErrPermission] (the key is valid but may not do this);
//   - 408, 429 and 5xx: [ErrUnavailable] (retrying later may succeed);
//   - any other status: no sentinel (Kind is nil).
//
// An APIError never holds a key: its URL has no query or user info, and in
// the URL, the code and the server's message anything that could be a key
// is replaced by a fingerprint: a run of the bytes [Service.Validate]
// accepts that starts with the prefix of a [KnownServices] entry, wherever
// it stands, and the token after the word "bearer" in any case and after
// any spacing.
type APIError struct {
	// StatusCode is the HTTP status code: 403.
	StatusCode int
	// Method and URL are those of the request, the URL without user info,
	// query or fragment: "GET", "https://api.tesseral.com/v1/organizations".
	// Both are empty when the response has no Request.
	Method, URL string
	// Code is the API's own error code, when its JSON error body has one:
	// "invalid_api_key", "unauthenticated". It may be empty.
	Code string
	// Message is the API's error message from a JSON error body (OpenAI's
	// {"error": {"message": ...}} and Tesseral's {"message": ...} shapes),
	// or the start of a plain-text body, redacted and cut to 512 bytes. It
	// may be empty.
	Message string
	// RetryAfter is how long the server asked the client to wait (its
	// Retry-After header, in seconds or as an HTTP date), or zero.
	RetryAfter time.Duration
	// Kind is the sentinel the status maps to, or nil; Unwrap returns it.
	Kind error
}

// Error formats as "keyprovider: <method> <url>: <status> [(<kind>)]: <message>".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("keyprovider: ")
	if e.Method != "" || e.URL != "" {
		b.WriteString(e.Method)
		b.WriteString(" ")
		b.WriteString(e.URL)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Kind != nil {
		b.WriteString(" (")
		b.WriteString(e.Kind.Error())
		b.WriteString(")")
	}
	if e.Code != "" || e.Message != "" {
		b.WriteString(":")
	}
	if e.Code != "" {
		b.WriteString(" [")
		b.WriteString(e.Code)
		b.WriteString("]")
	}
	if e.Message != "" {
		b.WriteString(" ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns Kind.
func (e *APIError) Unwrap() error { return e.Kind }

// statusKind maps an HTTP status onto the sentinels: the one table of this
// package for API answers.
func statusKind(code int) error {
	switch {
	case code == http.StatusUnauthorized:
		return ErrInvalidKey
	case code == http.StatusForbidden:
		return ErrPermission
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return ErrUnavailable
	}
	return nil
}

// maxErrorBody is how much of an error response CheckResponse reads.
const maxErrorBody = 64 << 10

// maxMessage is the longest Message an APIError holds.
const maxMessage = 512

// CheckResponse returns nil if resp's status is below 400, and otherwise an
// [*APIError] describing it. It reads up to 64 KiB of an error response's
// body to find the API's message, then puts back a body that reads the whole
// of it again, so the caller still owns resp.Body and closes it as usual.
//
//	resp, err := client.Do(req)
//	if err != nil {
//		return err
//	}
//	defer resp.Body.Close()
//	if err := keyprovider.CheckResponse(resp); err != nil {
//		if errors.Is(err, keyprovider.ErrPermission) {
//			// 403: the key is fine, the plan does not cover this call.
//		}
//		return err
//	}
func CheckResponse(resp *http.Response) error {
	if resp == nil {
		return errors.New("keyprovider: CheckResponse: nil response")
	}
	if resp.StatusCode < 400 {
		return nil
	}
	e := &APIError{StatusCode: resp.StatusCode, Kind: statusKind(resp.StatusCode)}
	if r := resp.Request; r != nil && r.URL != nil {
		e.Method = r.Method
		if e.Method == "" {
			e.Method = http.MethodGet
		}
		u := &url.URL{Scheme: r.URL.Scheme, Host: r.URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
		e.URL = redact.String(u.String())
	}
	if d, ok := retry.After(resp.Header, time.Now()); ok {
		e.RetryAfter = d
	}
	if resp.Body != nil && resp.Body != http.NoBody {
		buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body = &rereadBody{Reader: io.MultiReader(bytes.NewReader(buf), resp.Body), Closer: resp.Body}
		e.Code, e.Message = errorMessage(buf)
		e.Code = truncate(redact.String(e.Code), 64)
		e.Message = truncate(redact.String(e.Message), maxMessage)
	}
	return e
}

// rereadBody is a response body whose first bytes were read ahead.
type rereadBody struct {
	io.Reader
	io.Closer
}

// errorMessage finds the code and message of an error body in the shapes
// the APIs of this module use, or takes a plain-text body as the message.
func errorMessage(body []byte) (code, msg string) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "", ""
	}
	if body[0] != '{' {
		if !isText(body) {
			return "", ""
		}
		return "", string(body)
	}
	var v struct {
		Error   json.RawMessage `json:"error"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) != nil {
		return "", ""
	}
	var nested struct {
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
	}
	var s string
	switch {
	case json.Unmarshal(v.Error, &nested) == nil && nested.Message != "":
		return rawString(nested.Code), nested.Message
	case json.Unmarshal(v.Error, &s) == nil && s != "":
		return rawString(v.Code), s
	}
	return rawString(v.Code), v.Message
}

// rawString renders a JSON code, which APIs give as a string or a number.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// isText reports whether b looks like text worth quoting: no control bytes
// but tabs and newlines.
func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Back off to a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
