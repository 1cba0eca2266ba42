package keyprovider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider/internal/redact"
	"github.com/keyprovider/keyprovider/retry"
)

// The keys these tests send. Failure messages show their fingerprints
// (see authFP), never the keys: no test output holds a key.
const (
	key1 = "sk-tessera-key1AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	key2 = "sk-tessera-key2BBBBBBBBBBBBBBBBBBBBBBBBBBBB"
)

// leakcheck fails t if goroutines started during it outlive it. Register it
// first, so that it runs after every other cleanup.
func leakcheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// authFP renders an Authorization header value with the credential as its
// fingerprint, for failure messages.
func authFP(v string) string {
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok {
		return redact.String(v, v)
	}
	return scheme + " " + redact.Fingerprint(cred)
}

// checkAuth fails t unless got is "Bearer " + key ("" for no header).
func checkAuth(t *testing.T, got, key string) {
	t.Helper()
	want := ""
	if key != "" {
		want = "Bearer " + key
	}
	if got != want {
		t.Errorf("Authorization %q, want %q", authFP(got), authFP(want))
	}
}

// checkNoSecret fails t if s holds any of secrets; it says which by
// fingerprint, never quoting s.
func checkNoSecret(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s holds the secret %s", what, redact.Fingerprint(sec))
		}
	}
}

// rotatingSource hands out keys[i]. Invalidate(stale) moves to the next key
// when stale is the current one and there is a next key; with one key it
// never changes, like a source whose backend still holds the rejected key.
type rotatingSource struct {
	mu          sync.Mutex
	keys        []Key
	i           int
	tokens      int
	invalidated []string // fingerprints
	err         error
}

func newRotating(keys ...string) *rotatingSource {
	s := &rotatingSource{}
	for _, k := range keys {
		s.keys = append(s.keys, NewKey(k, ""))
	}
	return s
}

func (s *rotatingSource) Token(ctx context.Context) (Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens++
	if s.err != nil {
		return Key{}, s.err
	}
	return s.keys[s.i], nil
}

func (s *rotatingSource) Invalidate(stale Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, stale.Fingerprint())
	if stale.Equal(s.keys[s.i]) && s.i+1 < len(s.keys) {
		s.i++
	}
}

func (s *rotatingSource) invalidations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.invalidated)
}

// countingBody is a response or request body that counts its Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

// seen is what a base round tripper or a server saw of one request.
type seen struct {
	method, url, auth, body string
}

// fakeBase is an in-memory http.RoundTripper that answers with respond,
// records every request and closes every request body as net/http does,
// and counts the closes of the bodies it answers with. With clone set it
// answers with a clone of the request it was given, as tracing middleware
// (otelhttp) does.
type fakeBase struct {
	respond func(n int, r *http.Request) *http.Response
	clone   bool

	mu     sync.Mutex
	seen   []seen
	bodies []*countingBody
}

func (f *fakeBase) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		_ = r.Body.Close()
	}
	f.mu.Lock()
	n := len(f.seen)
	f.seen = append(f.seen, seen{r.Method, r.URL.String(), r.Header.Get("Authorization"), string(body)})
	f.mu.Unlock()
	var resp *http.Response
	if f.respond != nil {
		resp = f.respond(n, r)
	} else {
		resp = answer(http.StatusOK)
	}
	cb := &countingBody{Reader: resp.Body}
	resp.Body = cb
	resp.Request = r
	if f.clone {
		resp.Request = r.Clone(r.Context())
	}
	f.mu.Lock()
	f.bodies = append(f.bodies, cb)
	f.mu.Unlock()
	return resp, nil
}

func (f *fakeBase) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// closes returns how many times each answered body was closed.
func (f *fakeBase) closes() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c []int32
	for _, b := range f.bodies {
		c = append(c, b.closes.Load())
	}
	return c
}

// answer returns a response with status code, the given header pairs, and
// a body naming the status.
func answer(code int, header ...string) *http.Response {
	h := make(http.Header)
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &http.Response{
		StatusCode: code,
		Status:     strconv.Itoa(code) + " " + http.StatusText(code),
		Header:     h,
		Body:       io.NopCloser(strings.NewReader("status " + strconv.Itoa(code))),
	}
}

// server starts an httptest server that records what it sees and answers
// with h (200 "ok" when h is nil).
type server struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, seen{r.Method, r.URL.String(), r.Header.Get("Authorization"), string(body)})
		s.mu.Unlock()
		if h == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

func (s *server) host() string { return strings.TrimPrefix(s.URL, "http://") }

// testTimeout bounds every request a test sends to a local server, far
// below the package timeout, so that a hang fails one test quickly.
const testTimeout = 10 * time.Second

// client returns an http.Client whose transport is a NewTransport of src
// and opts over a fresh http.Transport, whose idle connections are closed
// at cleanup. Its requests time out after testTimeout.
func client(tb testing.TB, src TokenSource, opts ...Option) *http.Client {
	base := &http.Transport{}
	tb.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: NewTransport(src, append(opts, WithBase(base))...), Timeout: testTimeout}
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

type tokenFunc func(context.Context) (Key, error)

func (f tokenFunc) Token(ctx context.Context) (Key, error) { return f(ctx) }

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func roundTrip(t *testing.T, rt http.RoundTripper, req *http.Request) *http.Response {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// assertClosedButLast checks that every response body but the last (the
// one returned to the caller, still open) was closed exactly once.
func assertClosedButLast(t *testing.T, closes []int32) {
	t.Helper()
	if len(closes) == 0 {
		t.Fatal("no response answered")
	}
	for i, c := range closes[:len(closes)-1] {
		if c != 1 {
			t.Errorf("response %d closed %d times, want 1", i, c)
		}
	}
	if c := closes[len(closes)-1]; c != 0 {
		t.Errorf("the returned response was closed %d times", c)
	}
}

func TestTransportSetsHeader(t *testing.T) {
	leakcheck(t)
	srv := newServer(t, nil)
	c := client(t, StaticSource(NewKey(key1, "")), WithAllowedHosts(srv.host()))

	for name, header := range map[string]string{
		"no header":                  "",
		"caller's Authorization":     "Authorization",
		"non-canonical header entry": "authorization",
	} {
		t.Run(name, func(t *testing.T) {
			req := mustRequest(t, http.MethodGet, srv.URL+"/x", nil)
			if header != "" {
				req.Header[header] = []string{"Bearer something-else"}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			got := srv.requests()
			checkAuth(t, got[len(got)-1].auth, key1)
		})
	}
}

// A request built by hand may have no header map at all.
func TestTransportRequestWithoutHeader(t *testing.T) {
	base := &fakeBase{}
	u, err := url.Parse("https://api.tesseraai.cloud/v1")
	if err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: http.MethodGet, URL: u}
	roundTrip(t, NewTransport(StaticSource(NewKey(key1, "")), WithBase(base), WithAllowAnyHost(true)), req)
	if req.Header != nil {
		t.Error("the caller's request got a header map")
	}
	checkAuth(t, base.requests()[0].auth, key1)
}

func TestTransportNilBaseIsDefaultTransport(t *testing.T) {
	leakcheck(t)
	srv := newServer(t, nil)
	tr := NewTransport(StaticSource(NewKey(key1, "")), WithAllowedHosts(srv.host()), WithBase(nil))
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	resp := get(t, &http.Client{Transport: tr, Timeout: testTimeout}, srv.URL)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	checkAuth(t, srv.requests()[0].auth, key1)
}

func TestTransportLeavesCallersRequestUntouched(t *testing.T) {
	base := &fakeBase{}
	tr := NewTransport(StaticSource(NewKey(key1, "")), WithBase(base), WithAllowedHosts("api.tesseraai.cloud"))

	const payload = `{"input":"hello"}`
	req := mustRequest(t, http.MethodPut, "https://api.tesseraai.cloud/v1/x?a=1", strings.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	wantHeader := req.Header.Clone()
	wantURL := *req.URL
	body := req.Body

	resp := roundTrip(t, tr, req)

	if fmt.Sprint(req.Header) != fmt.Sprint(wantHeader) {
		t.Errorf("caller's header map changed: %v, want %v", req.Header, wantHeader)
	}
	if *req.URL != wantURL {
		t.Errorf("caller's URL changed: %v", req.URL)
	}
	if body != req.Body {
		t.Error("caller's Body replaced")
	}
	again, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(again); string(b) != payload {
		t.Errorf("GetBody gives %q, want %q", b, payload)
	}
	if resp.Request != req {
		t.Error("the response must point at the caller's request, not the copy holding the key")
	}

	got := base.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests sent, want 1", len(got))
	}
	checkAuth(t, got[0].auth, key1)
	if got[0].body != payload {
		t.Errorf("body sent %q, want %q", got[0].body, payload)
	}
}

// A Base that answers with a request of its own (otelhttp clones the
// request it is given) must not hand the caller a request holding the key:
// the response's Request is always the caller's, on every path.
func TestTransportResponseRequestIsCallersWhenBaseClones(t *testing.T) {
	for _, tt := range []struct {
		name    string
		src     TokenSource
		url     string
		respond func(n int, r *http.Request) *http.Response
	}{
		{"authenticated", StaticSource(NewKey(key1, "")), "https://api.tesseraai.cloud/v1", nil},
		{"key withheld from another host", StaticSource(NewKey(key1, "")), "https://cdn.example.com/f", nil},
		{"replayed after a 401", newRotating(key1, key2), "https://api.tesseraai.cloud/v1", func(n int, r *http.Request) *http.Response {
			if n == 0 {
				return answer(http.StatusUnauthorized)
			}
			return answer(http.StatusOK)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{clone: true, respond: tt.respond}
			for name, rt := range map[string]http.RoundTripper{
				"NewTransport": NewTransport(tt.src, WithBase(base), WithAllowedHosts(Tessera.Host())),
				"NewClient":    NewClient(tt.src, WithBase(base), WithAllowedHosts(Tessera.Host())).Transport,
			} {
				req := mustRequest(t, http.MethodGet, tt.url, nil)
				resp := roundTrip(t, rt, req)
				if resp.Request != req {
					t.Errorf("%s: resp.Request is not the caller's request (its Authorization: %q)",
						name, authFP(resp.Request.Header.Get("Authorization")))
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d", name, resp.StatusCode)
				}
			}
		})
	}
}

// A Base that breaks the RoundTripper contract is an error, not a panic.
func TestTransportBaseReturningNothing(t *testing.T) {
	body := &countingBody{Reader: strings.NewReader("")}
	boom := errors.New("boom")
	for _, tt := range []struct {
		name string
		rt   func(*http.Request) (*http.Response, error)
		want error
	}{
		{"nil response, nil error", func(*http.Request) (*http.Response, error) { return nil, nil }, errNilResponse},
		{"response and error", func(*http.Request) (*http.Response, error) { return &http.Response{Body: body}, boom }, boom},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTransport(StaticSource(NewKey(key1, "")), WithBase(roundTripFunc(tt.rt)), WithAllowAnyHost(true))
			resp, err := tr.RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil))
			if resp != nil || !errors.Is(err, tt.want) {
				t.Errorf("RoundTrip = %v, %v; want nil, %v", resp, err, tt.want)
			}
		})
	}
	if body.closes.Load() != 1 {
		t.Error("the response returned beside an error was not closed")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hostConfig is the part of the Options that decides where the key goes.
type hostConfig struct {
	hosts     []string
	any, fail bool
}

func TestTransportAllowList(t *testing.T) {
	const sent, withheld, fails = "sent", "withheld", "fails"
	tests := []struct {
		name    string
		tr      hostConfig
		url     string
		want    string
		wantWhy string
	}{
		{"service host", hostConfig{hosts: []string{Tessera.Host()}}, "https://api.tesseraai.cloud/v1/embeddings", sent, ""},
		{"service host, explicit default port", hostConfig{hosts: []string{Tessera.Host()}}, "https://api.tesseraai.cloud:443/v1", sent, ""},
		{"entry with default port", hostConfig{hosts: []string{"api.tesseraai.cloud:443"}}, "https://api.tesseraai.cloud/v1", sent, ""},
		{"host in other case", hostConfig{hosts: []string{"API.TesseraAI.cloud"}}, "https://api.tesseraai.cloud/v1", sent, ""},
		{"other port", hostConfig{hosts: []string{Tessera.Host()}}, "https://api.tesseraai.cloud:8443/v1", withheld, reasonNotAllow},
		{"other host", hostConfig{hosts: []string{Tessera.Host()}}, "https://api.tesseral.com/v1", withheld, reasonNotAllow},
		{"suffix of allowed host", hostConfig{hosts: []string{Tessera.Host()}}, "https://evil-api.tesseraai.cloud/v1", withheld, reasonNotAllow},
		{"allowed host as a subdomain", hostConfig{hosts: []string{Tessera.Host()}}, "https://api.tesseraai.cloud.evil.com/v1", withheld, reasonNotAllow},
		{"plain http to allowed host", hostConfig{hosts: []string{Tessera.Host()}}, "http://api.tesseraai.cloud/v1", withheld, reasonNotTLS},
		{"plain http, any host", hostConfig{any: true}, "http://api.tesseraai.cloud/v1", withheld, reasonNotTLS},
		{"other scheme", hostConfig{any: true}, "ftp://api.tesseraai.cloud/v1", withheld, reasonNotTLS},
		{"https, any host", hostConfig{any: true}, "https://example.com/", sent, ""},
		{"loopback v4 over http", hostConfig{hosts: []string{"127.0.0.1:8080"}}, "http://127.0.0.1:8080/v1", sent, ""},
		{"loopback 127/8 over http", hostConfig{any: true}, "http://127.3.2.1:8080/v1", sent, ""},
		{"loopback v6 over http", hostConfig{hosts: []string{"[::1]:8080"}}, "http://[::1]:8080/v1", sent, ""},
		{"loopback v4-in-v6 over http", hostConfig{any: true}, "http://[::ffff:127.0.0.1]:8080/v1", sent, ""},
		{"localhost over http", hostConfig{hosts: []string{"localhost:8080"}}, "http://localhost:8080/v1", sent, ""},
		{"localhost without port", hostConfig{hosts: []string{"localhost"}}, "http://localhost/v1", sent, ""},
		{"localhost entry, other port", hostConfig{hosts: []string{"localhost"}}, "http://localhost:8080/v1", withheld, reasonNotAllow},
		{"name that looks local over http", hostConfig{any: true}, "http://localhost.example.com/v1", withheld, reasonNotTLS},
		{"name resolving to loopback over http", hostConfig{any: true}, "http://127.0.0.1.nip.io/v1", withheld, reasonNotTLS},
		{"private address over http", hostConfig{any: true}, "http://10.0.0.1/v1", withheld, reasonNotTLS},
		{"withheld fails when asked", hostConfig{hosts: []string{Tessera.Host()}, fail: true}, "https://api.tesseral.com/v1", fails, reasonNotAllow},
		{"no allowed host at all", hostConfig{}, "https://api.tesseraai.cloud/v1", fails, reasonNoHosts},
		{"only empty entries", hostConfig{hosts: []string{"", " "}}, "https://api.tesseraai.cloud/v1", fails, reasonNoHosts},
		{"a service without BaseURL", hostConfig{hosts: []string{Service{}.Host()}}, "https://api.tesseraai.cloud/v1", fails, reasonNoHosts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{}
			tr := NewTransport(StaticSource(NewKey(key1, "")), WithBase(base),
				WithAllowedHosts(tt.tr.hosts...), WithAllowAnyHost(tt.tr.any), WithFailDisallowedHost(tt.tr.fail))
			body := &countingBody{Reader: strings.NewReader("x")}
			req := mustRequest(t, http.MethodPost, tt.url, body)
			resp, err := tr.RoundTrip(req)
			switch tt.want {
			case fails:
				var he *hostError
				if !errors.As(err, &he) || !errors.Is(err, ErrHostNotAllowed) {
					t.Fatalf("err = %v, want a host error matching ErrHostNotAllowed", err)
				}
				if he.reason != tt.wantWhy || he.host != req.URL.Host {
					t.Errorf("refused %s for %q, want %s for %q", he.host, he.reason, req.URL.Host, tt.wantWhy)
				}
				if want := req.URL.Scheme + "://" + req.URL.Host + ": " + tt.wantWhy; !strings.HasSuffix(err.Error(), want) {
					t.Errorf("message %q does not end in %q", err, want)
				}
				if n := len(base.requests()); n != 0 {
					t.Errorf("%d requests sent, want none", n)
				}
				if body.closes.Load() != 1 {
					t.Error("request body not closed")
				}
				return
			case sent:
				if err != nil {
					t.Fatal(err)
				}
				checkAuth(t, base.requests()[0].auth, key1)
			case withheld:
				if err != nil {
					t.Fatal(err)
				}
				checkAuth(t, base.requests()[0].auth, "")
				if got := tr.withhold(req.URL); got != tt.wantWhy {
					t.Errorf("withheld for %q, want %q", got, tt.wantWhy)
				}
			}
			_ = resp.Body.Close()
		})
	}
}

func TestOptions(t *testing.T) {
	l := slog.New(slog.DiscardHandler)
	base := &fakeBase{}
	src := StaticSource(NewKey(key1, ""))
	hosts := []string{Tessera.Host(), "127.0.0.1:9", ""}
	tr := NewTransport(src,
		WithAllowedHosts(hosts...), WithAllowedHosts("[::1]"),
		WithBase(base), WithFailDisallowedHost(true), WithLogger(l), WithAllowAnyHost(true), WithAllowAnyHost(false))
	hosts[0] = "evil.example.com" // the Transport keeps its own copy

	want := []hostPort{{"api.tesseraai.cloud", ""}, {"127.0.0.1", "9"}, {"::1", ""}}
	if tr.src != src || tr.base != base || !slices.Equal(tr.allow, want) || !tr.fail || tr.any || tr.logger != l {
		t.Errorf("NewTransport with every option: %+v", tr)
	}
	if !NewTransport(src, WithAllowAnyHost(true)).any {
		t.Error("WithAllowAnyHost(true) not applied")
	}
	if NewTransport(src).base != http.DefaultTransport {
		t.Error("no Base is not http.DefaultTransport")
	}

	c := NewClient(src, WithAllowedHosts(Tesseral.Host()))
	if _, ok := c.Transport.(*retry.Transport); !ok {
		t.Fatalf("NewClient's transport is a %T, want a *retry.Transport", c.Transport)
	}
	if c.Timeout != 0 {
		t.Errorf("NewClient timeout %v, want none", c.Timeout)
	}
	idle := &idleCloser{}
	NewClient(src, WithBase(idle)).CloseIdleConnections()
	if !idle.closed {
		t.Error("NewClient's CloseIdleConnections does not reach Base")
	}
}

// NewClient retries a throttled request; the retry carries the current
// key, and a 401 before it is replayed by the Transport underneath.
func TestNewClientRetriesThrottledRequests(t *testing.T) {
	leakcheck(t)
	var n atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.WriteHeader(http.StatusUnauthorized)
		case 2:
			w.Header().Set("Retry-After", "0") // no wait: the real clock sleeps not
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	c := NewClient(newRotating(key1, key2), WithAllowedHosts(srv.host()), WithBase(base))
	c.Timeout = testTimeout
	if resp := get(t, c, srv.URL); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	got := srv.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3 (401, replay throttled, retry)", len(got))
	}
	for i, want := range []string{key1, key2, key2} {
		checkAuth(t, got[i].auth, want)
	}

	// The Transport alone does not retry: a client that retries itself
	// (openai-go) takes it without NewClient's retrier.
	n.Store(1)
	c = &http.Client{Transport: NewTransport(StaticSource(NewKey(key2, "")), WithAllowedHosts(srv.host()), WithBase(base)), Timeout: testTimeout}
	if resp := get(t, c, srv.URL); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the bare Transport: status %d, want the 429", resp.StatusCode)
	}
}

// A redirect to another host, followed by http.Client, must never carry
// the key: the client builds the next request from the caller's headers,
// and the transport decides again for the new host.
func TestTransportRedirectToOtherHostNeverGetsKey(t *testing.T) {
	leakcheck(t)
	for _, tt := range []struct {
		name string
		// otherURL turns the other server's URL into the redirect target.
		otherURL func(string) string
		status   int
	}{
		{"other port on 127.0.0.1", func(u string) string { return u }, http.StatusFound},
		{"localhost instead of 127.0.0.1", func(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }, http.StatusFound},
		{"307 keeps method and body", func(u string) string { return u }, http.StatusTemporaryRedirect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			other := newServer(t, nil)
			target := tt.otherURL(other.URL) + "/landing"
			api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/same-host":
					http.Redirect(w, r, "/done", tt.status)
				case "/done":
					_, _ = io.WriteString(w, "done")
				default:
					http.Redirect(w, r, target, tt.status)
				}
			})
			c := client(t, StaticSource(NewKey(key1, "")), WithAllowedHosts(api.host()))

			if resp := get(t, c, api.URL+"/start"); resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
			if got := api.requests(); len(got) != 1 {
				t.Fatalf("api saw %d requests, want 1", len(got))
			}
			checkAuth(t, api.requests()[0].auth, key1)
			if got := other.requests(); len(got) != 1 {
				t.Fatalf("the redirect was not followed: other saw %d requests", len(got))
			}
			checkAuth(t, other.requests()[0].auth, "")

			// A redirect within the allowed host keeps the key.
			if resp := get(t, c, api.URL+"/same-host"); resp.StatusCode != http.StatusOK {
				t.Errorf("status %d", resp.StatusCode)
			}
			got := api.requests()
			if len(got) != 3 || got[2].url != "/done" {
				t.Fatalf("api saw %d requests, want 3 ending in /done", len(got))
			}
			checkAuth(t, got[2].auth, key1)
		})
	}

	t.Run("FailDisallowedHost stops the redirect", func(t *testing.T) {
		other := newServer(t, nil)
		api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL, http.StatusFound)
		})
		c := client(t, StaticSource(NewKey(key1, "")), WithAllowedHosts(api.host()), WithFailDisallowedHost(true))
		_, err := c.Get(api.URL)
		if !errors.Is(err, ErrHostNotAllowed) {
			t.Errorf("err = %v, want ErrHostNotAllowed", err)
		}
		checkNoSecret(t, "the error", fmt.Sprint(err), key1)
		if n := len(other.requests()); n != 0 {
			t.Errorf("other saw %d requests", n)
		}
	})
}

// Wrapping an existing client's transport: here the TLS test server's
// client, whose transport trusts the server's certificate.
func TestTransportWrapsExistingClient(t *testing.T) {
	leakcheck(t)
	var auth atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
	}))
	t.Cleanup(srv.Close)

	c := srv.Client()
	c.Transport = NewTransport(StaticSource(NewKey(key1, "")), WithBase(c.Transport), WithAllowedHosts(strings.TrimPrefix(srv.URL, "https://")))
	c.Timeout = testTimeout
	t.Cleanup(c.CloseIdleConnections)

	if resp := get(t, c, srv.URL); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
	got, _ := auth.Load().(string)
	checkAuth(t, got, key1)
}

func TestTransport401(t *testing.T) {
	const payload = `{"input":"hello"}`
	type want struct {
		status      int
		sent        []string // fingerprint of the key each request the base saw carried
		invalidated []string // fingerprints reported to Invalidate
	}
	k1, k2 := NewKey(key1, "").Fingerprint(), NewKey(key2, "").Fingerprint()
	tests := []struct {
		name    string
		src     *rotatingSource
		accept  string // the key the server accepts; "" accepts none
		noReset bool   // request body without GetBody
		method  string
		want    want
	}{
		{
			name: "replayed once with the fresh key", src: newRotating(key1, key2), accept: key2, method: http.MethodPost,
			want: want{http.StatusOK, []string{k1, k2}, []string{k1}},
		},
		{
			name: "fresh key refused too: no second replay", src: newRotating(key1, key2, "sk-tessera-key3"), accept: "", method: http.MethodGet,
			want: want{http.StatusUnauthorized, []string{k1, k2}, []string{k1}},
		},
		{
			name: "key unchanged: 401 returned", src: newRotating(key1), accept: key2, method: http.MethodPost,
			want: want{http.StatusUnauthorized, []string{k1}, []string{k1}},
		},
		{
			name: "body not replayable: 401 returned, key still reported", src: newRotating(key1, key2), accept: key2, noReset: true, method: http.MethodPost,
			want: want{http.StatusUnauthorized, []string{k1}, []string{k1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
				if tt.accept != "" && r.Header.Get("Authorization") == "Bearer "+tt.accept {
					return answer(http.StatusOK)
				}
				return answer(http.StatusUnauthorized, "Www-Authenticate", "Bearer")
			}}
			tr := NewTransport(tt.src, WithBase(base), WithAllowAnyHost(true))
			var body io.Reader
			if tt.method == http.MethodPost {
				body = strings.NewReader(payload)
				if tt.noReset {
					body = io.NopCloser(body) // http.NewRequest sets no GetBody for it
				}
			}
			resp, err := tr.RoundTrip(mustRequest(t, tt.method, "https://api.tesseraai.cloud/v1/embeddings", body))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want.status)
			}
			b, err := io.ReadAll(resp.Body)
			if want := "status " + strconv.Itoa(tt.want.status); err != nil || string(b) != want {
				t.Errorf("returned body %q, %v; want %q", b, err, want)
			}
			assertClosedButLast(t, base.closes())
			_ = resp.Body.Close()

			var sent []string
			for _, s := range base.requests() {
				sent = append(sent, NewKey(strings.TrimPrefix(s.auth, "Bearer "), "").Fingerprint())
				if tt.method == http.MethodPost && s.body != payload {
					t.Errorf("body not replayed whole: %q", s.body)
				}
			}
			if !slices.Equal(sent, tt.want.sent) {
				t.Errorf("keys sent %v, want %v", sent, tt.want.sent)
			}
			if got := tt.src.invalidations(); !slices.Equal(got, tt.want.invalidated) {
				t.Errorf("invalidated %v, want %v", got, tt.want.invalidated)
			}
		})
	}

	t.Run("a source that is not an Invalidator is asked again", func(t *testing.T) {
		var calls atomic.Int32
		src := tokenFunc(func(context.Context) (Key, error) {
			if calls.Add(1) == 1 {
				return NewKey(key1, ""), nil
			}
			return NewKey(key2, ""), nil
		})
		base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
			if n == 0 {
				return answer(http.StatusUnauthorized)
			}
			return answer(http.StatusOK)
		}}
		resp := roundTrip(t, NewTransport(src, WithBase(base), WithAllowAnyHost(true)), mustRequest(t, http.MethodGet, "https://h/", nil))
		if resp.StatusCode != http.StatusOK || len(base.requests()) != 2 {
			t.Errorf("status %d after %d requests, want 200 after 2", resp.StatusCode, len(base.requests()))
		}
	})

	t.Run("source fails after the 401: 401 returned", func(t *testing.T) {
		src := newRotating(key1, key2)
		base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
			src.mu.Lock()
			src.err = &Error{Provider: "test", Kind: ErrUnavailable}
			src.mu.Unlock()
			return answer(http.StatusUnauthorized)
		}}
		resp := roundTrip(t, NewTransport(src, WithBase(base), WithAllowAnyHost(true)), mustRequest(t, http.MethodGet, "https://h/", nil))
		if resp.StatusCode != http.StatusUnauthorized || len(base.requests()) != 1 {
			t.Errorf("status %d after %d requests, want 401 after 1", resp.StatusCode, len(base.requests()))
		}
	})

	t.Run("fresh key unsafe for a header: an error, the 401 closed", func(t *testing.T) {
		src := newRotating(key1, "sk-tessera-abc\r\nX-Evil: 1")
		base := &fakeBase{respond: func(int, *http.Request) *http.Response { return answer(http.StatusUnauthorized) }}
		resp, err := NewTransport(src, WithBase(base), WithAllowAnyHost(true)).RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil))
		if resp != nil || !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("RoundTrip = %v, %v; want nil, ErrInvalidKey", resp, err)
		}
		if got := base.closes(); !slices.Equal(got, []int32{1}) {
			t.Errorf("response closes %v, want [1]", got)
		}
	})

	t.Run("through a server and http.Client", func(t *testing.T) {
		leakcheck(t)
		src := newRotating(key1, key2)
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+key2 {
				w.WriteHeader(http.StatusUnauthorized)
			}
		})
		resp, err := client(t, src, WithAllowedHosts(srv.host())).Post(srv.URL, "application/json", bytes.NewBufferString(payload))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		got := srv.requests()
		if resp.StatusCode != http.StatusOK || len(got) != 2 || got[1].body != payload {
			t.Errorf("status %d after %d requests, want 200 after 2 with the body replayed", resp.StatusCode, len(got))
		}
	})
}

func TestTransport403NeverRefreshes(t *testing.T) {
	src := newRotating(key1, key2)
	base := &fakeBase{respond: func(int, *http.Request) *http.Response {
		r := answer(http.StatusForbidden)
		r.Body = io.NopCloser(strings.NewReader(`{"error":{"message":"your tier does not cover this endpoint","type":"invalid_request_error","code":"tier"}}`))
		return r
	}}
	resp := roundTrip(t, NewTransport(src, WithBase(base), WithAllowAnyHost(true)),
		mustRequest(t, http.MethodGet, "https://api.tesseraai.cloud/v1/models?page=2", nil))

	if resp.StatusCode != http.StatusForbidden || len(base.requests()) != 1 || len(src.invalidations()) != 0 || src.tokens != 1 {
		t.Errorf("status %d, %d requests, %d invalidations, %d tokens; want 403, 1, 0, 1",
			resp.StatusCode, len(base.requests()), len(src.invalidations()), src.tokens)
	}

	err := CheckResponse(resp)
	var apiErr *APIError
	if !errors.Is(err, ErrPermission) || errors.Is(err, ErrInvalidKey) || !errors.As(err, &apiErr) {
		t.Fatalf("CheckResponse = %v, want an *APIError matching ErrPermission only", err)
	}
	if apiErr.StatusCode != http.StatusForbidden || apiErr.URL != "https://api.tesseraai.cloud/v1/models" ||
		apiErr.Message != "your tier does not cover this endpoint" {
		t.Errorf("APIError %+v", apiErr)
	}
	checkNoSecret(t, "the error", err.Error(), key1)
}

func TestTransportClosesRequestBodyOnEarlyReturn(t *testing.T) {
	srcErr := &Error{Provider: "test", Kind: ErrUnavailable, Err: errors.New("backend down")}
	anyHost := WithAllowAnyHost(true)
	tests := []struct {
		name    string
		tr      func(base http.RoundTripper) *Transport
		url     string
		wantErr error
	}{
		{"zero Transport", func(http.RoundTripper) *Transport { return &Transport{} }, "https://h/", errNoSource},
		{"nil source", func(b http.RoundTripper) *Transport { return NewTransport(nil, WithBase(b), anyHost) }, "https://h/", errNoSource},
		{"source error", func(b http.RoundTripper) *Transport {
			return NewTransport(tokenFunc(func(context.Context) (Key, error) { return Key{}, srcErr }), WithBase(b), anyHost)
		}, "https://h/", ErrUnavailable},
		{"zero key", func(b http.RoundTripper) *Transport {
			return NewTransport(tokenFunc(func(context.Context) (Key, error) { return Key{}, nil }), WithBase(b), anyHost)
		}, "https://h/", ErrNotFound},
		{"key unsafe for a header", func(b http.RoundTripper) *Transport {
			return NewTransport(StaticSource(NewKey("sk-tessera-abc\r\nX-Evil: 1", "")), WithBase(b), anyHost)
		}, "https://h/", ErrInvalidKey},
		{"no host allowed", func(b http.RoundTripper) *Transport { return NewTransport(StaticSource(NewKey(key1, "")), WithBase(b)) }, "https://h/", ErrHostNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{}
			body := &countingBody{Reader: strings.NewReader("x")}
			resp, err := tt.tr(base).RoundTrip(mustRequest(t, http.MethodPost, tt.url, body))
			if resp != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("RoundTrip = %v, %v; want nil, %v", resp, err, tt.wantErr)
			}
			checkNoSecret(t, "the error", err.Error(), "X-Evil")
			if body.closes.Load() != 1 {
				t.Error("request body not closed")
			}
			if n := len(base.requests()); n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}
	t.Run("no URL", func(t *testing.T) {
		body := &countingBody{Reader: strings.NewReader("x")}
		_, err := NewTransport(StaticSource(NewKey(key1, "")), WithAllowAnyHost(true)).RoundTrip(&http.Request{Body: body})
		if !errors.Is(err, errNoURL) || body.closes.Load() != 1 {
			t.Errorf("err = %v, body closed %d times", err, body.closes.Load())
		}
	})
}

func TestTransportLogsFingerprintsOnly(t *testing.T) {
	var logs bytes.Buffer
	src := newRotating(key1, key2)
	base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
		if n == 0 {
			return answer(http.StatusUnauthorized)
		}
		return answer(http.StatusOK)
	}}
	tr := NewTransport(src, WithBase(base), WithAllowedHosts("api.tesseraai.cloud"),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	for _, u := range []string{"https://api.tesseraai.cloud/v1?token=secret-query", "https://cdn.example.com/file?sig=secret-query"} {
		roundTrip(t, tr, mustRequest(t, http.MethodGet, u, nil))
	}
	out := logs.String()
	checkNoSecret(t, "the log", out, key1, key2, "secret-query")
	for _, want := range []string{"key rejected (401)", NewKey(key1, "").Fingerprint(), NewKey(key2, "").Fingerprint(), "key withheld", "cdn.example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q: %s", want, redact.String(out, key1, key2))
		}
	}
}

// A source whose refresh fails with an error repeating a key (a backend
// echoing it) does not put the key in the 401 log record.
func TestTransportLogRedactsSourceError(t *testing.T) {
	const echoed = "sk-tessera-echoedByTheBackend0123"
	var logs bytes.Buffer
	src := newRotating(key1)
	base := &fakeBase{respond: func(int, *http.Request) *http.Response {
		src.mu.Lock()
		src.err = &Error{Provider: "test", Kind: ErrUnavailable, Err: errors.New("server said: bad key " + echoed)}
		src.mu.Unlock()
		return answer(http.StatusUnauthorized)
	}}
	tr := NewTransport(src, WithBase(base), WithAllowAnyHost(true), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	roundTrip(t, tr, mustRequest(t, http.MethodGet, "https://h/", nil))
	out := logs.String()
	checkNoSecret(t, "the log", out, echoed, key1)
	if !strings.Contains(out, redact.Fingerprint(echoed)) {
		t.Errorf("the log lacks the echoed key's fingerprint: %s", redact.String(out, echoed))
	}
}

func TestTransportHeaderCacheFollowsKey(t *testing.T) {
	var cur atomic.Pointer[Key]
	k := NewKey(key1, "")
	cur.Store(&k)
	src := tokenFunc(func(context.Context) (Key, error) { return *cur.Load(), nil })
	base := &fakeBase{}
	tr := NewTransport(src, WithBase(base), WithAllowAnyHost(true))
	send := func() { roundTrip(t, tr, mustRequest(t, http.MethodGet, "https://h/", nil)) }
	send()
	send()
	k2 := NewKey(key2, "")
	cur.Store(&k2)
	send()
	got := base.requests()
	for i, want := range []string{key1, key1, key2} {
		checkAuth(t, got[i].auth, want)
	}
}

// Many goroutines share one Transport while the key rotates under them.
func TestTransportConcurrentUse(t *testing.T) {
	leakcheck(t)
	var cur atomic.Pointer[Key]
	k := NewKey(key1, "")
	cur.Store(&k)
	src := tokenFunc(func(context.Context) (Key, error) { return *cur.Load(), nil })
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if a := r.Header.Get("Authorization"); a != "Bearer "+key1 && a != "Bearer "+key2 {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	c := client(t, src, WithAllowedHosts(srv.host()))
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 20 {
		wg.Go(func() {
			for i := range 20 {
				if g == 0 && i == 10 {
					k2 := NewKey(key2, "")
					cur.Store(&k2)
				}
				resp, err := c.Get(srv.URL + "/" + url.PathEscape(strconv.Itoa(i)))
				if err != nil {
					errs <- err
					continue
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- errors.New(resp.Status)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(srv.requests()); n != 400 {
		t.Errorf("%d requests, want 400", n)
	}
}

func TestTransportCloseIdleConnections(t *testing.T) {
	base := &idleCloser{}
	NewTransport(nil, WithBase(base)).CloseIdleConnections()
	if !base.closed {
		t.Error("CloseIdleConnections not passed on")
	}
	NewTransport(nil, WithBase(&fakeBase{})).CloseIdleConnections() // no such method: no panic
}

type idleCloser struct {
	fakeBase
	closed bool
}

func (c *idleCloser) CloseIdleConnections() { c.closed = true }

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string][2]string{
		"api.example.com":      {"api.example.com", ""},
		"api.example.com:8443": {"api.example.com", "8443"},
		"[::1]:80":             {"::1", "80"},
		"[::1]":                {"::1", ""},
		"::1":                  {"::1", ""},
		"[::1":                 {"[::1", ""},
	} {
		if h, p := splitHostPort(in); h != want[0] || p != want[1] {
			t.Errorf("splitHostPort(%q) = %q, %q; want %q, %q", in, h, p, want[0], want[1])
		}
	}
}

// canned is a base RoundTripper that answers every request from memory,
// without allocating, so that the benchmark measures the transport alone.
type canned struct{ resp http.Response }

func (c *canned) RoundTrip(*http.Request) (*http.Response, error) { return &c.resp, nil }

func newCanned() *canned {
	return &canned{resp: http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}}
}

func benchRequest(b *testing.B) *http.Request {
	req := mustRequest(b, http.MethodGet, "https://api.tesseraai.cloud/v1/models", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "application/json")
	return req
}

// BenchmarkTransport measures the per-request cost of authenticating a
// request, with a canned in-memory base. "hand-written" is the reference
// the issue quotes: req.Clone plus Header.Set with "Bearer "+key.
func BenchmarkTransport(b *testing.B) {
	src := StaticSource(NewKey(key1, ""))
	b.Run("keyprovider", func(b *testing.B) {
		tr := NewTransport(src, WithBase(newCanned()), WithAllowedHosts(Tessera.Host()))
		req := benchRequest(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand-written", func(b *testing.B) {
		base := newCanned()
		req := benchRequest(b)
		b.ReportAllocs()
		for b.Loop() {
			k, err := src.Token(req.Context())
			if err != nil {
				b.Fatal(err)
			}
			r2 := req.Clone(req.Context())
			r2.Header.Set("Authorization", "Bearer "+k.Reveal())
			if _, err := base.RoundTrip(r2); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A Transport printed whole (in a panic, a debug log, %+v of a client)
// must not show the key it caches. (The source is a function here: what a
// source prints is the source's business.)
func TestTransportDoesNotPrintKey(t *testing.T) {
	src := tokenFunc(func(context.Context) (Key, error) { return NewKey(key1, ""), nil })
	tr := NewTransport(src, WithBase(newCanned()), WithAllowAnyHost(true))
	if _, err := tr.RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil)); err != nil {
		t.Fatal(err)
	}
	if tr.hdr.Load() == nil {
		t.Fatal("the header cache is empty: nothing is tested")
	}
	secret := key1[len("sk-tessera-"):]
	for _, rt := range []http.RoundTripper{tr, retry.New(tr)} {
		c := &http.Client{Transport: rt}
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			checkNoSecret(t, format+" of the transport", fmt.Sprintf(format, rt), secret)
			checkNoSecret(t, format+" of the client", fmt.Sprintf(format, c), secret)
		}
	}
}

// A burst of requests rejected at once: each is replayed once with the
// fresh key, and the source moves on once.
func TestTransport401Burst(t *testing.T) {
	leakcheck(t)
	src := newRotating(key1, key2, "sk-tessera-key3")
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key2 {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	c := client(t, src, WithAllowedHosts(srv.host()))
	const n = 20
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Go(func() {
			resp, err := c.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("status %d", s)
		}
	}
	if got := len(srv.requests()); got > 2*n {
		t.Errorf("%d requests for %d calls", got, n)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.i != 1 {
		t.Errorf("the source moved to key %d: a stale rejection was taken for a new one", src.i)
	}
}
