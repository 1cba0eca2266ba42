package standin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const embedBody = `{"model":"Qwen/Qwen3-Embedding-8B","input":"hello"}`

// answer is one response of the stand-in, read whole.
type answer struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// call sends one request to path under the stand-in's base URL. auth is the
// Authorization header's values (none if nil).
func call(t *testing.T, s *standin.Server, method, path string, auth []string, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.BaseURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
	}
	return a
}

func bearer(key string) []string { return []string{"Bearer " + key} }

// embed posts an embeddings call with key and returns the status.
func embed(t *testing.T, s *standin.Server, key string) int {
	t.Helper()
	return call(t, s, http.MethodPost, "/embeddings", bearer(key), embedBody).status
}

// errorCode returns the error code of a body in either API's shape.
func errorCode(body map[string]any) any {
	if e, ok := body["error"].(map[string]any); ok {
		return e["code"]
	}
	return body["code"]
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestAuthorizationMustBeExactlyBearerAndAKnownKey(t *testing.T) {
	key, other := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key))
	tests := []struct {
		name string
		auth []string
		want int
	}{
		{"the key", bearer(key), http.StatusOK},
		{"no header", nil, http.StatusUnauthorized},
		{"another scheme", []string{"Basic " + key}, http.StatusUnauthorized},
		{"lower-case scheme", []string{"bearer " + key}, http.StatusUnauthorized},
		{"two spaces", []string{"Bearer  " + key}, http.StatusUnauthorized},
		{"something after the key", []string{"Bearer " + key + " x"}, http.StatusUnauthorized},
		{"empty token", []string{"Bearer "}, http.StatusUnauthorized},
		{"two headers", append(bearer(key), bearer(key)...), http.StatusUnauthorized},
		{"unknown key", bearer(other), http.StatusUnauthorized},
		{"key prefix only", bearer(keyprovider.Tessera.KeyPrefix), http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct{ method, path, body, code string }{
				{http.MethodPost, "/embeddings", embedBody, "invalid_api_key"},
				{http.MethodGet, "/models", "", "invalid_api_key"},
				{http.MethodGet, "/organizations", "", "unauthenticated"},
			} {
				got := call(t, s, r.method, r.path, tc.auth, r.body)
				if got.status != tc.want {
					t.Fatalf("%s %s: status %d, want %d", r.method, r.path, got.status, tc.want)
				}
				if tc.want != http.StatusUnauthorized {
					continue
				}
				if c := errorCode(got.body); c != r.code {
					t.Errorf("%s %s: error code %v, want %q", r.method, r.path, c, r.code)
				}
				if h := got.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
					t.Errorf("%s %s: WWW-Authenticate %q, want a Bearer challenge", r.method, r.path, h)
				}
			}
		})
	}
}

func TestErrorBodiesFollowEachAPIsShape(t *testing.T) {
	s := standin.New(t)
	tessera := call(t, s, http.MethodPost, "/embeddings", bearer("sk-tessera-unknown"), embedBody)
	e, ok := tessera.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("Tessera error body %s has no error object", tessera.raw)
	}
	for _, field := range []string{"message", "type", "param", "code"} {
		if _, ok := e[field]; !ok {
			t.Errorf("Tessera error body %s lacks %q", tessera.raw, field)
		}
	}
	if e["message"] != "Authorization header missing or key invalid" {
		t.Errorf("Tessera 401 message %v", e["message"])
	}
	tesseral := call(t, s, http.MethodGet, "/organizations", bearer("tesseral_secret_key_unknown"), "")
	if tesseral.body["code"] != "unauthenticated" || tesseral.body["message"] == "" {
		t.Errorf("Tesseral error body %s, want {code: unauthenticated, message: ...}", tesseral.raw)
	}
}

func TestRotateImmediatelyRefusesTheOldKey(t *testing.T) {
	old, next := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(old))
	s.Rotate(next, 0)
	if got := embed(t, s, old); got != http.StatusUnauthorized {
		t.Errorf("old key after Rotate(next, 0): %d, want 401", got)
	}
	if got := embed(t, s, next); got != http.StatusOK {
		t.Errorf("new key: %d, want 200", got)
	}
	if got, want := s.ValidKeys(), []string{standin.Fingerprint(next)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ValidKeys = %v, want %v", got, want)
	}
}

func TestRotateWithGraceKeepsTheOldKeyUntilItEnds(t *testing.T) {
	clock := newFakeClock()
	old, next := standin.NewKey(keyprovider.Tesseral), standin.NewKey(keyprovider.Tesseral)
	s := standin.New(t, standin.WithKeys(old), standin.WithClock(clock.Now))
	s.Rotate(next, time.Minute)

	steps := []struct {
		advance  time.Duration
		old, new int
	}{
		{0, http.StatusOK, http.StatusOK},
		{time.Minute - time.Nanosecond, http.StatusOK, http.StatusOK},
		{time.Nanosecond, http.StatusUnauthorized, http.StatusOK},
		{time.Hour, http.StatusUnauthorized, http.StatusOK},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		gotOld := call(t, s, http.MethodGet, "/organizations", bearer(old), "").status
		gotNew := call(t, s, http.MethodGet, "/organizations", bearer(next), "").status
		if gotOld != st.old || gotNew != st.new {
			t.Errorf("step %d: old key %d, new key %d; want %d, %d", i, gotOld, gotNew, st.old, st.new)
		}
	}
}

func TestRevoke(t *testing.T) {
	clock := newFakeClock()
	a, b := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(a, b), standin.WithClock(clock.Now))

	s.Revoke(a)
	if got := embed(t, s, a); got != http.StatusUnauthorized {
		t.Errorf("revoked key: %d, want 401", got)
	}
	if got := embed(t, s, b); got != http.StatusOK {
		t.Errorf("other key: %d, want 200", got)
	}

	s.RevokeAfter(b, time.Hour)
	s.RevokeAfter(b, 2*time.Hour) // a later end does not extend the earlier one
	clock.Advance(time.Hour)
	if got := embed(t, s, b); got != http.StatusUnauthorized {
		t.Errorf("key an hour after RevokeAfter(1h), then (2h): %d, want 401", got)
	}

	s.AddKey(a) // adding again makes it valid
	if got := embed(t, s, a); got != http.StatusOK {
		t.Errorf("re-added key: %d, want 200", got)
	}
	s.Revoke("sk-tessera-neverAdded") // nothing to revoke: no effect, no panic
	if got := len(s.ValidKeys()); got != 1 {
		t.Errorf("%d valid keys, want 1", got)
	}
}

func TestDenyAnswers403InEachAPIsShape(t *testing.T) {
	key, unknown := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key))
	s.Deny(key, standin.RouteEmbeddings)
	s.Deny(unknown)

	emb := call(t, s, http.MethodPost, "/embeddings", bearer(key), embedBody)
	if emb.status != http.StatusForbidden || errorCode(emb.body) != "permission_denied" {
		t.Errorf("denied route: %d %s, want 403 permission_denied", emb.status, emb.raw)
	}
	if got := call(t, s, http.MethodGet, "/models", bearer(key), "").status; got != http.StatusOK {
		t.Errorf("route not denied: %d, want 200", got)
	}
	if got := call(t, s, http.MethodPost, "/embeddings", bearer(unknown), embedBody).status; got != http.StatusUnauthorized {
		t.Errorf("denied but unknown key: %d, want 401 (401 comes first)", got)
	}

	s.Deny(key)
	orgs := call(t, s, http.MethodGet, "/organizations", bearer(key), "")
	if orgs.status != http.StatusForbidden || orgs.body["code"] != "permission_denied" {
		t.Errorf("denied everywhere, Tesseral route: %d %s, want 403 permission_denied", orgs.status, orgs.raw)
	}

	s.Allow(key)
	if got := embed(t, s, key); got != http.StatusOK {
		t.Errorf("after Allow: %d, want 200", got)
	}
}

func TestThrottleAnswersTheNextNWith429AndRetryAfter(t *testing.T) {
	key, denied := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key, denied))
	s.Deny(denied)
	s.Throttle(2, 1500*time.Millisecond)

	if got := embed(t, s, "sk-tessera-unknown"); got != http.StatusUnauthorized {
		t.Fatalf("unknown key while throttled: %d, want 401", got)
	}
	if got := embed(t, s, denied); got != http.StatusForbidden {
		t.Fatalf("denied key while throttled: %d, want 403", got)
	}
	for i := range 2 {
		got := call(t, s, http.MethodPost, "/embeddings", bearer(key), embedBody)
		if got.status != http.StatusTooManyRequests || errorCode(got.body) != "rate_limit_exceeded" {
			t.Fatalf("throttled request %d: %d %s, want 429 rate_limit_exceeded", i, got.status, got.raw)
		}
		if ra := got.header.Get("Retry-After"); ra != "2" {
			t.Errorf("Retry-After %q, want \"2\" (1.5s rounded up)", ra)
		}
	}
	if got := embed(t, s, key); got != http.StatusOK {
		t.Errorf("third request: %d, want 200 (the 401 and the 403 did not use up the throttle)", got)
	}

	s.Throttle(1, 0)
	orgs := call(t, s, http.MethodGet, "/organizations", bearer(key), "")
	if orgs.status != http.StatusTooManyRequests || orgs.body["code"] != "resource_exhausted" || orgs.header.Get("Retry-After") != "0" {
		t.Errorf("Tesseral route throttled: %d %s Retry-After %q, want 429 resource_exhausted, \"0\"",
			orgs.status, orgs.raw, orgs.header.Get("Retry-After"))
	}

	s.Throttle(5, time.Second)
	s.Throttle(0, 0) // ends it
	if got := embed(t, s, key); got != http.StatusOK {
		t.Errorf("after Throttle(0, 0): %d, want 200", got)
	}
}

// TestRefusalsAsTheLibraryReadsThem checks that keyprovider.CheckResponse
// maps each refusal onto its sentinel, with the API's code and Retry-After.
func TestRefusalsAsTheLibraryReadsThem(t *testing.T) {
	key := standin.NewKey(keyprovider.Tessera)
	s := standin.New(t, standin.WithKeys(key), standin.WithKeys("sk-tessera-denied0000"))
	s.Deny("sk-tessera-denied0000")
	tests := []struct {
		name      string
		key       string
		throttle  bool
		wantKind  error
		wantCode  string
		wantAfter time.Duration
	}{
		{"401", "sk-tessera-unknown0000", false, keyprovider.ErrInvalidKey, "invalid_api_key", 0},
		{"403", "sk-tessera-denied0000", false, keyprovider.ErrPermission, "permission_denied", 0},
		{"429", key, true, keyprovider.ErrUnavailable, "rate_limit_exceeded", 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.throttle {
				s.Throttle(1, 3*time.Second)
			}
			req, err := http.NewRequest(http.MethodGet, s.BaseURL()+"/models", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.key)
			resp, err := s.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			err = keyprovider.CheckResponse(resp)
			var apiErr *keyprovider.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("CheckResponse = %v, want an *APIError", err)
			}
			if apiErr.Kind != tc.wantKind || apiErr.Code != tc.wantCode || apiErr.RetryAfter != tc.wantAfter {
				t.Errorf("got kind %v, code %q, retry after %v; want %v, %q, %v",
					apiErr.Kind, apiErr.Code, apiErr.RetryAfter, tc.wantKind, tc.wantCode, tc.wantAfter)
			}
		})
	}
}

func jsonUnmarshal(raw string, v any) error { return json.Unmarshal([]byte(raw), v) }
