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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

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
	return append([]string(nil), s.invalidated...)
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
// and counts the closes of the bodies it answers with.
type fakeBase struct {
	respond func(n int, r *http.Request) *http.Response

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
	f.mu.Lock()
	f.bodies = append(f.bodies, cb)
	f.mu.Unlock()
	return resp, nil
}

func (f *fakeBase) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
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

// fakeClock is an injected clock: after records the waits asked for and
// fires at once, unless onAfter says otherwise.
type fakeClock struct {
	now     time.Time
	mu      sync.Mutex
	waits   []time.Duration
	onAfter func(d time.Duration) <-chan time.Time
}

func (c *fakeClock) install(t *Transport) {
	t.now = func() time.Time { return c.now }
	t.after = func(d time.Duration) <-chan time.Time {
		c.mu.Lock()
		c.waits = append(c.waits, d)
		c.mu.Unlock()
		if c.onAfter != nil {
			return c.onAfter(d)
		}
		ch := make(chan time.Time, 1)
		ch <- c.now.Add(d)
		return ch
	}
}

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
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
	return append([]seen(nil), s.seen...)
}

func (s *server) host() string { return strings.TrimPrefix(s.URL, "http://") }

// client returns an http.Client over a fresh http.Transport wrapped by t
// (whose Base it sets), whose idle connections are closed at cleanup.
func client(tb testing.TB, t *Transport) *http.Client {
	base := &http.Transport{}
	tb.Cleanup(base.CloseIdleConnections)
	t.Base = base
	return &http.Client{Transport: t}
}

func get(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestTransportSetsHeader(t *testing.T) {
	leakcheck(t)
	srv := newServer(t, nil)
	c := client(t, &Transport{Source: StaticSource(NewKey(key1, "")), AllowedHosts: []string{srv.host()}})

	for name, header := range map[string]string{
		"no header":                  "",
		"caller's Authorization":     "Authorization",
		"non-canonical header entry": "authorization",
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/x", nil)
			require.NoError(t, err)
			if header != "" {
				req.Header[header] = []string{"Bearer something-else"}
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			got := srv.requests()
			assert.Equal(t, "Bearer "+key1, got[len(got)-1].auth)
		})
	}
}

// A request built by hand may have no header map at all.
func TestTransportRequestWithoutHeader(t *testing.T) {
	base := &fakeBase{}
	u, err := url.Parse("https://api.tesseraai.cloud/v1")
	require.NoError(t, err)
	req := &http.Request{Method: http.MethodGet, URL: u}
	resp, err := (&Transport{Source: StaticSource(NewKey(key1, "")), Base: base, AllowAnyHost: true}).RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Nil(t, req.Header)
	assert.Equal(t, "Bearer "+key1, base.requests()[0].auth)
}

func TestTransportZeroValueBaseIsDefaultTransport(t *testing.T) {
	leakcheck(t)
	srv := newServer(t, nil)
	tr := &Transport{Source: StaticSource(NewKey(key1, "")), AllowedHosts: []string{srv.host()}}
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	resp := get(t, &http.Client{Transport: tr}, srv.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Bearer "+key1, srv.requests()[0].auth)
}

func TestTransportLeavesCallersRequestUntouched(t *testing.T) {
	base := &fakeBase{}
	tr := &Transport{Source: StaticSource(NewKey(key1, "")), Base: base, AllowedHosts: []string{"api.tesseraai.cloud"}}

	const payload = `{"input":"hello"}`
	req, err := http.NewRequest(http.MethodPut, "https://api.tesseraai.cloud/v1/x?a=1", strings.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	wantHeader := req.Header.Clone()
	wantURL := *req.URL
	body := req.Body

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	assert.Equal(t, wantHeader, req.Header, "caller's header map changed")
	assert.Empty(t, req.Header.Get("Authorization"))
	assert.Equal(t, wantURL, *req.URL)
	assert.True(t, body == req.Body, "caller's Body replaced")
	again, err := req.GetBody()
	require.NoError(t, err)
	b, _ := io.ReadAll(again)
	assert.Equal(t, payload, string(b), "GetBody no longer gives the whole body")
	assert.Same(t, req, resp.Request, "the response must point at the caller's request, not the copy holding the key")

	got := base.requests()
	require.Len(t, got, 1)
	assert.Equal(t, "Bearer "+key1, got[0].auth)
	assert.Equal(t, payload, got[0].body)
}

// hostConfig is the part of a Transport that decides where the key goes.
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{}
			tr := &Transport{
				Source: StaticSource(NewKey(key1, "")), Base: base,
				AllowedHosts: tt.tr.hosts, AllowAnyHost: tt.tr.any, FailDisallowedHost: tt.tr.fail,
			}
			body := &countingBody{Reader: strings.NewReader("x")}
			req, err := http.NewRequest(http.MethodPost, tt.url, body)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			switch tt.want {
			case fails:
				var he *HostError
				require.ErrorAs(t, err, &he)
				assert.ErrorIs(t, err, ErrHostNotAllowed)
				assert.Equal(t, tt.wantWhy, he.Reason)
				assert.Equal(t, req.URL.Host, he.Host)
				assert.Empty(t, base.requests(), "nothing may be sent")
				assert.EqualValues(t, 1, body.closes.Load(), "request body not closed")
				return
			case sent:
				require.NoError(t, err)
				assert.Equal(t, "Bearer "+key1, base.requests()[0].auth)
			case withheld:
				require.NoError(t, err)
				assert.Empty(t, base.requests()[0].auth)
				assert.Equal(t, tt.wantWhy, tr.withhold(req.URL))
			}
			_ = resp.Body.Close()
		})
	}
}

func TestOptions(t *testing.T) {
	var logs bytes.Buffer
	l := slog.New(slog.NewTextHandler(&logs, nil))
	base := &fakeBase{}
	src := StaticSource(NewKey(key1, ""))
	tr := NewTransport(src,
		WithService(Tessera), WithService(Service{}), WithAllowedHosts("127.0.0.1:9"),
		WithBase(base), WithDisallowedHostError(), WithMaxAttempts(2),
		WithRetryDelays(time.Second, time.Minute), WithLogger(l))
	assert.Equal(t, &Transport{
		Source: src, Base: base, AllowedHosts: []string{"api.tesseraai.cloud", "127.0.0.1:9"},
		FailDisallowedHost: true, MaxAttempts: 2, RetryBaseDelay: time.Second, RetryMaxDelay: time.Minute, Logger: l,
	}, tr)
	assert.True(t, NewTransport(src, WithAnyHost()).AllowAnyHost)

	c := NewClient(src, WithService(Tesseral))
	require.IsType(t, &Transport{}, c.Transport)
	assert.Equal(t, []string{"api.tesseral.com"}, c.Transport.(*Transport).AllowedHosts)
	assert.Zero(t, c.Timeout)
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
				if r.URL.Path == "/same-host" {
					http.Redirect(w, r, "/done", tt.status)
					return
				}
				if r.URL.Path == "/done" {
					_, _ = io.WriteString(w, "done")
					return
				}
				http.Redirect(w, r, target, tt.status)
			})
			c := client(t, &Transport{Source: StaticSource(NewKey(key1, "")), AllowedHosts: []string{api.host()}})

			resp := get(t, c, api.URL+"/start")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			require.Len(t, api.requests(), 1)
			assert.Equal(t, "Bearer "+key1, api.requests()[0].auth)
			require.Len(t, other.requests(), 1, "the redirect was not followed")
			assert.Empty(t, other.requests()[0].auth, "the key followed the redirect to another host")

			// A redirect within the allowed host keeps the key.
			resp = get(t, c, api.URL+"/same-host")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			got := api.requests()
			require.Len(t, got, 3)
			assert.Equal(t, "/done", got[2].url)
			assert.Equal(t, "Bearer "+key1, got[2].auth)
		})
	}

	t.Run("FailDisallowedHost stops the redirect", func(t *testing.T) {
		other := newServer(t, nil)
		api := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL, http.StatusFound)
		})
		c := client(t, &Transport{Source: StaticSource(NewKey(key1, "")), AllowedHosts: []string{api.host()}, FailDisallowedHost: true})
		_, err := c.Get(api.URL)
		assert.ErrorIs(t, err, ErrHostNotAllowed)
		assert.NotContains(t, err.Error(), key1)
		assert.Empty(t, other.requests())
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
	c.Transport = &Transport{Source: StaticSource(NewKey(key1, "")), Base: c.Transport, AllowedHosts: []string{strings.TrimPrefix(srv.URL, "https://")}}
	t.Cleanup(c.CloseIdleConnections)

	resp := get(t, c, srv.URL)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Bearer "+key1, auth.Load())
}

func TestTransport401(t *testing.T) {
	const payload = `{"input":"hello"}`
	type want struct {
		status      int
		sent        []string // Authorization of each request the base saw
		invalidated []string // fingerprints reported to Invalidate
	}
	k1 := NewKey(key1, "").Fingerprint()
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
			want: want{http.StatusOK, []string{key1, key2}, []string{k1}},
		},
		{
			name: "fresh key refused too: no second replay", src: newRotating(key1, key2, "sk-tessera-key3"), accept: "", method: http.MethodGet,
			want: want{http.StatusUnauthorized, []string{key1, key2}, []string{k1}},
		},
		{
			name: "key unchanged: 401 returned", src: newRotating(key1), accept: key2, method: http.MethodPost,
			want: want{http.StatusUnauthorized, []string{key1}, []string{k1}},
		},
		{
			name: "body not replayable: 401 returned, key still reported", src: newRotating(key1, key2), accept: key2, noReset: true, method: http.MethodPost,
			want: want{http.StatusUnauthorized, []string{key1}, []string{k1}},
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
			tr := &Transport{Source: tt.src, Base: base, AllowAnyHost: true}
			var body io.Reader
			if tt.method == http.MethodPost {
				body = strings.NewReader(payload)
				if tt.noReset {
					body = io.NopCloser(body) // http.NewRequest sets no GetBody for it
				}
			}
			req, err := http.NewRequest(tt.method, "https://api.tesseraai.cloud/v1/embeddings", body)
			require.NoError(t, err)

			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			assert.Equal(t, tt.want.status, resp.StatusCode)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "status "+strconv.Itoa(tt.want.status), string(b), "returned body not intact")
			assertClosedButLast(t, base.closes())
			require.NoError(t, resp.Body.Close())

			var sent []string
			for _, s := range base.requests() {
				sent = append(sent, strings.TrimPrefix(s.auth, "Bearer "))
				if tt.method == http.MethodPost {
					assert.Equal(t, payload, s.body, "body not replayed whole")
				}
			}
			assert.Equal(t, tt.want.sent, sent)
			assert.Equal(t, tt.want.invalidated, tt.src.invalidations())
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
		resp, err := (&Transport{Source: src, Base: base, AllowAnyHost: true}).RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Len(t, base.requests(), 2)
	})

	t.Run("source fails after the 401: 401 returned", func(t *testing.T) {
		src := newRotating(key1, key2)
		base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
			src.mu.Lock()
			src.err = &Error{Provider: "test", Kind: ErrUnavailable}
			src.mu.Unlock()
			return answer(http.StatusUnauthorized)
		}}
		resp, err := (&Transport{Source: src, Base: base, AllowAnyHost: true}).RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Len(t, base.requests(), 1)
	})

	t.Run("through a server and http.Client", func(t *testing.T) {
		leakcheck(t)
		src := newRotating(key1, key2)
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+key2 {
				w.WriteHeader(http.StatusUnauthorized)
			}
		})
		c := client(t, &Transport{Source: src, AllowedHosts: []string{srv.host()}})
		resp, err := c.Post(srv.URL, "application/json", bytes.NewBufferString(payload))
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		got := srv.requests()
		require.Len(t, got, 2)
		assert.Equal(t, payload, got[1].body)
	})
}

// assertClosedButLast checks that every response body but the last (the
// one returned to the caller, still open) was closed exactly once.
func assertClosedButLast(t *testing.T, closes []int32) {
	t.Helper()
	require.NotEmpty(t, closes)
	for i, c := range closes[:len(closes)-1] {
		assert.EqualValues(t, 1, c, "response %d not closed exactly once", i)
	}
	assert.EqualValues(t, 0, closes[len(closes)-1], "the returned response was closed")
}

type tokenFunc func(context.Context) (Key, error)

func (f tokenFunc) Token(ctx context.Context) (Key, error) { return f(ctx) }

func mustRequest(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	return req
}

func TestTransport403NeverRefreshes(t *testing.T) {
	src := newRotating(key1, key2)
	base := &fakeBase{respond: func(int, *http.Request) *http.Response {
		r := answer(http.StatusForbidden)
		r.Body = io.NopCloser(strings.NewReader(`{"error":{"message":"your tier does not cover this endpoint","type":"invalid_request_error","code":"tier"}}`))
		return r
	}}
	tr := &Transport{Source: src, Base: base, AllowAnyHost: true}
	resp, err := tr.RoundTrip(mustRequest(t, http.MethodGet, "https://api.tesseraai.cloud/v1/models?page=2", nil))
	require.NoError(t, err)
	defer resp.Body.Close()

	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Len(t, base.requests(), 1)
	assert.Empty(t, src.invalidations())
	assert.Equal(t, 1, src.tokens)

	err = CheckResponse(resp)
	assert.ErrorIs(t, err, ErrPermission)
	assert.NotErrorIs(t, err, ErrInvalidKey)
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusForbidden, apiErr.StatusCode)
	assert.Equal(t, "https://api.tesseraai.cloud/v1/models", apiErr.URL)
	assert.Equal(t, "your tier does not cover this endpoint", apiErr.Message)
	assert.NotContains(t, err.Error(), key1)
}

func TestTransport429(t *testing.T) {
	clockNow := newFakeClock().now
	tests := []struct {
		name        string
		method      string
		header      []string // request header pairs
		body        string
		noReset     bool
		maxAttempts int
		ctxTimeout  time.Duration
		responses   []*http.Response // then 200
		wantStatus  int
		wantSent    int
		wantWaits   []time.Duration // exact waits; nil with waitBounds checks bounds
		waitBounds  [][2]time.Duration
	}{
		{
			name: "Retry-After in seconds", method: http.MethodGet,
			responses:  []*http.Response{answer(429, "Retry-After", "3")},
			wantStatus: 200, wantSent: 2, wantWaits: []time.Duration{3 * time.Second},
		},
		{
			name: "Retry-After as an HTTP date", method: http.MethodGet,
			responses:  []*http.Response{answer(429, "Retry-After", clockNow.Add(7*time.Second).Format(http.TimeFormat))},
			wantStatus: 200, wantSent: 2, wantWaits: []time.Duration{7 * time.Second},
		},
		{
			name: "Retry-After date in the past", method: http.MethodGet,
			responses:  []*http.Response{answer(429, "Retry-After", clockNow.Add(-time.Hour).Format(http.TimeFormat))},
			wantStatus: 200, wantSent: 2, wantWaits: []time.Duration{0},
		},
		{
			name: "Retry-After above the max: 429 returned at once", method: http.MethodGet,
			responses:  []*http.Response{answer(429, "Retry-After", "3600")},
			wantStatus: 429, wantSent: 1, wantWaits: []time.Duration{},
		},
		{
			name: "wait past the context's deadline: 429 returned at once", method: http.MethodGet, ctxTimeout: time.Hour,
			responses:  []*http.Response{answer(429, "Retry-After", "20")},
			wantStatus: 429, wantSent: 1, wantWaits: []time.Duration{},
		},
		{
			name: "exponential backoff with jitter, capped attempts", method: http.MethodGet,
			responses:  []*http.Response{answer(429), answer(429), answer(429), answer(429), answer(429)},
			wantStatus: 429, wantSent: DefaultMaxAttempts,
			waitBounds: [][2]time.Duration{{250 * time.Millisecond, 500 * time.Millisecond}, {500 * time.Millisecond, time.Second}, {time.Second, 2 * time.Second}},
		},
		{
			name: "MaxAttempts 1 turns retries off", method: http.MethodGet, maxAttempts: 1,
			responses:  []*http.Response{answer(429, "Retry-After", "1")},
			wantStatus: 429, wantSent: 1, wantWaits: []time.Duration{},
		},
		{
			name: "POST is not retried", method: http.MethodPost, body: "payload",
			responses:  []*http.Response{answer(429, "Retry-After", "1")},
			wantStatus: 429, wantSent: 1, wantWaits: []time.Duration{},
		},
		{
			name: "POST with an Idempotency-Key is retried with its body", method: http.MethodPost, body: "payload",
			header:     []string{"Idempotency-Key", "abc"},
			responses:  []*http.Response{answer(429, "Retry-After", "1")},
			wantStatus: 200, wantSent: 2, wantWaits: []time.Duration{time.Second},
		},
		{
			name: "PUT with its body replayed", method: http.MethodPut, body: "payload",
			responses:  []*http.Response{answer(429, "Retry-After", "2"), answer(429, "Retry-After", "1")},
			wantStatus: 200, wantSent: 3, wantWaits: []time.Duration{2 * time.Second, time.Second},
		},
		{
			name: "PUT whose body cannot be replayed is not retried", method: http.MethodPut, body: "payload", noReset: true,
			responses:  []*http.Response{answer(429, "Retry-After", "1")},
			wantStatus: 429, wantSent: 1, wantWaits: []time.Duration{},
		},
		{
			name: "401 then 429 then success", method: http.MethodGet,
			responses:  []*http.Response{answer(401), answer(429, "Retry-After", "1")},
			wantStatus: 200, wantSent: 3, wantWaits: []time.Duration{time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
				if n < len(tt.responses) {
					return tt.responses[n]
				}
				return answer(http.StatusOK)
			}}
			clock := newFakeClock()
			tr := &Transport{Source: newRotating(key1, key2), Base: base, AllowAnyHost: true, MaxAttempts: tt.maxAttempts}
			clock.install(tr)
			if tt.ctxTimeout != 0 {
				tr.now = nil // the deadline is on the real clock
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.noReset {
					body = io.NopCloser(body)
				}
			}
			ctx := context.Background()
			if tt.ctxTimeout != 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, "https://api.tesseraai.cloud/v1/x", body)
			require.NoError(t, err)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}

			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			b, _ := io.ReadAll(resp.Body)
			assert.Equal(t, "status "+strconv.Itoa(tt.wantStatus), string(b), "returned body not intact")
			assertClosedButLast(t, base.closes())
			require.NoError(t, resp.Body.Close())

			sent := base.requests()
			assert.Len(t, sent, tt.wantSent)
			for _, s := range sent {
				assert.Equal(t, tt.body, s.body, "body not sent whole on every attempt")
			}
			waits := clock.recorded()
			if tt.waitBounds == nil {
				assert.Equal(t, tt.wantWaits, append([]time.Duration{}, waits...))
				return
			}
			require.Len(t, waits, len(tt.waitBounds))
			for i, b := range tt.waitBounds {
				assert.GreaterOrEqual(t, waits[i], b[0], "wait %d", i)
				assert.LessOrEqual(t, waits[i], b[1], "wait %d", i)
			}
		})
	}
}

func TestRetryWaitBounds(t *testing.T) {
	tr := &Transport{RetryBaseDelay: time.Second, RetryMaxDelay: 5 * time.Second}
	resp := answer(http.StatusTooManyRequests)
	for attempt, bound := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		for range 50 {
			d, ok := tr.retryWait(context.Background(), resp, attempt)
			require.True(t, ok)
			require.GreaterOrEqual(t, d, bound/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, bound, "attempt %d", attempt)
		}
	}
}

func TestTransportContextCancelledDuringBackoff(t *testing.T) {
	leakcheck(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newFakeClock()
	// The wait never ends by itself: the request's context is cancelled
	// while the transport waits.
	clock.onAfter = func(time.Duration) <-chan time.Time { cancel(); return make(chan time.Time) }
	tr := &Transport{Source: StaticSource(NewKey(key1, "")), AllowedHosts: []string{srv.host()}}
	clock.install(tr)
	c := client(t, tr)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.ErrorIs(t, err, context.Canceled)
	assert.Len(t, srv.requests(), 1)
	assert.Equal(t, []time.Duration{5 * time.Second}, clock.recorded())

	t.Run("bodies closed", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		clock := newFakeClock()
		clock.onAfter = func(time.Duration) <-chan time.Time { cancel(); return make(chan time.Time) }
		base := &fakeBase{respond: func(int, *http.Request) *http.Response { return answer(429, "Retry-After", "1") }}
		tr := &Transport{Source: StaticSource(NewKey(key1, "")), Base: base, AllowAnyHost: true}
		clock.install(tr)
		var getBodies []*countingBody
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, "https://h/", strings.NewReader("p"))
		require.NoError(t, err)
		req.GetBody = func() (io.ReadCloser, error) {
			b := &countingBody{Reader: strings.NewReader("p")}
			getBodies = append(getBodies, b)
			return b, nil
		}
		_, err = tr.RoundTrip(req)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, []int32{1}, base.closes(), "the 429 response was not closed")
		require.Len(t, getBodies, 1)
		assert.EqualValues(t, 1, getBodies[0].closes.Load(), "the body fetched for the retry was not closed")
	})

	t.Run("real timer", func(t *testing.T) {
		// The real clock's path: an already-cancelled wait returns at once.
		tr := &Transport{}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		assert.ErrorIs(t, tr.sleep(ctx, time.Hour), context.Canceled)
		assert.NoError(t, tr.sleep(context.Background(), 0))
	})
}

func TestTransportClosesRequestBodyOnEarlyReturn(t *testing.T) {
	srcErr := &Error{Provider: "test", Kind: ErrUnavailable, Err: errors.New("backend down")}
	tests := []struct {
		name    string
		tr      *Transport
		url     string
		wantErr error
	}{
		{"nil Source", &Transport{AllowAnyHost: true}, "https://h/", errNoSource},
		{"source error", &Transport{Source: tokenFunc(func(context.Context) (Key, error) { return Key{}, srcErr }), AllowAnyHost: true}, "https://h/", ErrUnavailable},
		{"zero key", &Transport{Source: tokenFunc(func(context.Context) (Key, error) { return Key{}, nil }), AllowAnyHost: true}, "https://h/", ErrNotFound},
		{"key unsafe for a header", &Transport{Source: StaticSource(NewKey("sk-tessera-abc\r\nX-Evil: 1", "")), AllowAnyHost: true}, "https://h/", ErrInvalidKey},
		{"no host allowed", &Transport{Source: StaticSource(NewKey(key1, ""))}, "https://h/", ErrHostNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{}
			tt.tr.Base = base
			body := &countingBody{Reader: strings.NewReader("x")}
			resp, err := tt.tr.RoundTrip(mustRequest(t, http.MethodPost, tt.url, body))
			assert.Nil(t, resp)
			assert.ErrorIs(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), "X-Evil")
			assert.EqualValues(t, 1, body.closes.Load())
			assert.Empty(t, base.requests())
		})
	}
}

func TestTransportLogsFingerprintsOnly(t *testing.T) {
	var logs bytes.Buffer
	src := newRotating(key1, key2)
	base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
		switch n {
		case 0:
			return answer(http.StatusUnauthorized)
		case 1:
			return answer(http.StatusTooManyRequests, "Retry-After", "1")
		}
		return answer(http.StatusOK)
	}}
	tr := &Transport{
		Source: src, Base: base, AllowedHosts: []string{"api.tesseraai.cloud"},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	newFakeClock().install(tr)
	for _, u := range []string{"https://api.tesseraai.cloud/v1?token=secret-query", "https://cdn.example.com/file?sig=secret-query"} {
		resp, err := tr.RoundTrip(mustRequest(t, http.MethodGet, u, nil))
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	out := logs.String()
	for _, want := range []string{"key rejected (401)", NewKey(key1, "").Fingerprint(), NewKey(key2, "").Fingerprint(), "throttled, retrying", "key withheld", "cdn.example.com"} {
		assert.Contains(t, out, want)
	}
	for _, secret := range []string{key1, key2, "secret-query"} {
		assert.NotContains(t, out, secret)
	}
}

func TestTransportHeaderCacheFollowsKey(t *testing.T) {
	var cur atomic.Pointer[Key]
	k := NewKey(key1, "")
	cur.Store(&k)
	src := tokenFunc(func(context.Context) (Key, error) { return *cur.Load(), nil })
	base := &fakeBase{}
	tr := &Transport{Source: src, Base: base, AllowAnyHost: true}
	send := func() {
		resp, err := tr.RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil))
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	send()
	send()
	k2 := NewKey(key2, "")
	cur.Store(&k2)
	send()
	var got []string
	for _, s := range base.requests() {
		got = append(got, s.auth)
	}
	assert.Equal(t, []string{"Bearer " + key1, "Bearer " + key1, "Bearer " + key2}, got)
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
	c := client(t, &Transport{Source: src, AllowedHosts: []string{srv.host()}})
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
	assert.Len(t, srv.requests(), 400)
}

func TestTransportCloseIdleConnections(t *testing.T) {
	base := &idleCloser{}
	(&Transport{Base: base}).CloseIdleConnections()
	assert.True(t, base.closed)
	(&Transport{Base: &fakeBase{}}).CloseIdleConnections() // no such method: no panic
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
		h, p := splitHostPort(in)
		assert.Equal(t, want, [2]string{h, p}, in)
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
	req, err := http.NewRequest(http.MethodGet, "https://api.tesseraai.cloud/v1/models", nil)
	require.NoError(b, err)
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
		tr := &Transport{Source: src, Base: newCanned(), AllowedHosts: []string{Tessera.Host()}}
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
// must not show the key it caches. (The Source is a function here: what a
// Source prints is the Source's business.)
func TestTransportDoesNotPrintKey(t *testing.T) {
	src := tokenFunc(func(context.Context) (Key, error) { return NewKey(key1, ""), nil })
	tr := &Transport{Source: src, Base: newCanned(), AllowAnyHost: true}
	_, err := tr.RoundTrip(mustRequest(t, http.MethodGet, "https://h/", nil))
	require.NoError(t, err)
	require.NotNil(t, tr.hdr.Load(), "the header cache is empty: nothing is tested")
	c := &http.Client{Transport: tr}
	secret := key1[len("sk-tessera-"):]
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(format, tr), secret, format)
		assert.NotContains(t, fmt.Sprintf(format, c), secret, format)
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
	c := client(t, &Transport{Source: src, AllowedHosts: []string{srv.host()}})
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
		assert.Equal(t, http.StatusOK, s)
	}
	assert.LessOrEqual(t, len(srv.requests()), 2*n)
	src.mu.Lock()
	defer src.mu.Unlock()
	assert.Equal(t, 1, src.i, "the source moved past the fresh key: a stale rejection was taken for a new one")
}
