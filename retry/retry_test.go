package retry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakcheck fails t if goroutines started during it outlive it. Register it
// first, so that it runs after every other cleanup.
func leakcheck(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// countingBody is a response or request body that counts its Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

// fakeBase answers from memory with respond (200 when it is nil or returns
// nil), records the body and the request of every call, and closes request
// bodies as net/http does.
type fakeBase struct {
	respond func(n int, r *http.Request) *http.Response

	mu       sync.Mutex
	bodies   []string
	requests []*http.Request
	answered []*countingBody
}

func (f *fakeBase) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		_ = r.Body.Close()
	}
	f.mu.Lock()
	n := len(f.bodies)
	f.bodies = append(f.bodies, string(body))
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	var resp *http.Response
	if f.respond != nil {
		resp = f.respond(n, r)
	}
	if resp == nil {
		resp = answer(http.StatusOK)
	}
	cb := &countingBody{Reader: resp.Body}
	resp.Body = cb
	resp.Request = r.Clone(r.Context()) // as tracing middleware does
	f.mu.Lock()
	f.answered = append(f.answered, cb)
	f.mu.Unlock()
	return resp, nil
}

func (f *fakeBase) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies)
}

// closes returns how many times each answered body was closed.
func (f *fakeBase) closes() []int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var c []int32
	for _, b := range f.answered {
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

// fakeClock records the waits asked for and fires at once, unless onAfter
// says otherwise.
type fakeClock struct {
	now     time.Time
	mu      sync.Mutex
	waits   []time.Duration
	onAfter func(d time.Duration) <-chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
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

func (c *fakeClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

// realClock is the system clock, for the cases whose deadline is real.
type realClock struct{ *fakeClock }

func (realClock) Now() time.Time { return time.Now() }

func newRequest(t testing.TB, ctx context.Context, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
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

func TestRetry(t *testing.T) {
	clockNow := newFakeClock().now
	tests := []struct {
		name        string
		method      string
		header      []string // request header pairs
		body        string
		noReset     bool
		maxAttempts int
		realNow     bool // the context has a real deadline, an hour away
		responses   []*http.Response
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
			name: "wait past the context's deadline: 429 returned at once", method: http.MethodGet, realNow: true,
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
			name: "negative MaxAttempts turns retries off", method: http.MethodGet, maxAttempts: -3,
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
			name: "PATCH with an X-Idempotency-Key is retried", method: http.MethodPatch, body: "payload",
			header:     []string{"X-Idempotency-Key", "abc"},
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
			name: "503 is not retried", method: http.MethodGet,
			responses:  []*http.Response{answer(503, "Retry-After", "1")},
			wantStatus: 503, wantSent: 1, wantWaits: []time.Duration{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
				if n < len(tt.responses) {
					return tt.responses[n]
				}
				return nil
			}}
			clock := newFakeClock()
			var c Clock = clock
			ctx := context.Background()
			if tt.realNow {
				c = realClock{clock}
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
			}
			rt := New(base, WithMaxAttempts(tt.maxAttempts), WithClock(c))
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.noReset {
					body = io.NopCloser(body) // http.NewRequest sets no GetBody for it
				}
			}
			req := newRequest(t, ctx, tt.method, "https://api.tesseraai.cloud/v1/x", body)
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}

			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if resp.Request != req {
				t.Error("resp.Request is not the caller's request")
			}
			b, _ := io.ReadAll(resp.Body)
			if want := "status " + strconv.Itoa(tt.wantStatus); string(b) != want {
				t.Errorf("returned body %q, want %q", b, want)
			}
			assertClosedButLast(t, base.closes())
			_ = resp.Body.Close()

			sent := base.sent()
			if len(sent) != tt.wantSent {
				t.Errorf("sent %d times, want %d", len(sent), tt.wantSent)
			}
			for i, s := range sent {
				if s != tt.body {
					t.Errorf("attempt %d sent body %q, want %q", i+1, s, tt.body)
				}
			}
			waits := clock.recorded()
			if tt.waitBounds == nil {
				if !slices.Equal(waits, tt.wantWaits) {
					t.Errorf("waits %v, want %v", waits, tt.wantWaits)
				}
				return
			}
			if len(waits) != len(tt.waitBounds) {
				t.Fatalf("waits %v, want %d of them", waits, len(tt.waitBounds))
			}
			for i, b := range tt.waitBounds {
				if waits[i] < b[0] || waits[i] > b[1] {
					t.Errorf("wait %d = %v, want in [%v, %v]", i, waits[i], b[0], b[1])
				}
			}
		})
	}
}

func TestWaitBounds(t *testing.T) {
	rt := New(nil, WithBaseDelay(time.Second), WithMaxDelay(5*time.Second))
	for attempt, bound := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 60: 5 * time.Second} {
		for range 50 {
			d, ok := rt.wait(context.Background(), http.Header{}, attempt)
			if !ok || d < bound/2 || d > bound {
				t.Fatalf("attempt %d: wait %v, %v; want in [%v, %v]", attempt, d, ok, bound/2, bound)
			}
		}
	}
}

func TestOptionsResolve(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{"zero is the defaults", Options{}, Options{MaxAttempts: DefaultMaxAttempts, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}},
		{"negatives", Options{MaxAttempts: -1, BaseDelay: -1, MaxDelay: -1}, Options{MaxAttempts: 1, BaseDelay: DefaultBaseDelay, MaxDelay: DefaultMaxDelay}},
		{"base above max is cut", Options{MaxAttempts: 2, BaseDelay: time.Minute, MaxDelay: time.Second}, Options{MaxAttempts: 2, BaseDelay: time.Second, MaxDelay: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.resolve()
			if _, ok := got.Clock.(systemClock); !ok {
				t.Errorf("Clock %T, want the system clock", got.Clock)
			}
			got.Clock = nil
			if got != tt.want {
				t.Errorf("resolve(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
	l := slog.New(slog.DiscardHandler)
	c := newFakeClock()
	rt := New(nil, WithMaxAttempts(7), WithBaseDelay(time.Second), WithMaxDelay(time.Minute), WithLogger(l), WithClock(c))
	want := Options{MaxAttempts: 7, BaseDelay: time.Second, MaxDelay: time.Minute, Logger: l, Clock: c}
	if rt.o != want || rt.next != http.DefaultTransport {
		t.Errorf("New with every option: %+v over %T, want %+v over http.DefaultTransport", rt.o, rt.next, want)
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	leakcheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newFakeClock()
	// The wait never ends by itself: the request's context is cancelled
	// while the transport waits.
	clock.onAfter = func(time.Duration) <-chan time.Time { cancel(); return make(chan time.Time) }
	base := &fakeBase{respond: func(int, *http.Request) *http.Response { return answer(429, "Retry-After", "5") }}
	var getBodies []*countingBody
	req := newRequest(t, ctx, http.MethodPut, "https://h/", strings.NewReader("p"))
	req.GetBody = func() (io.ReadCloser, error) {
		b := &countingBody{Reader: strings.NewReader("p")}
		getBodies = append(getBodies, b)
		return b, nil
	}
	resp, err := New(base, WithClock(clock)).RoundTrip(req)
	if !errors.Is(err, context.Canceled) || resp != nil {
		t.Fatalf("RoundTrip = %v, %v; want nil, context.Canceled", resp, err)
	}
	if got := clock.recorded(); !slices.Equal(got, []time.Duration{5 * time.Second}) {
		t.Errorf("waits %v, want [5s]", got)
	}
	if got := base.closes(); !slices.Equal(got, []int32{1}) {
		t.Errorf("response closes %v, want [1]: the 429 was not closed", got)
	}
	if len(getBodies) != 1 || getBodies[0].closes.Load() != 1 {
		t.Errorf("the body fetched for the retry was not closed once")
	}

	t.Run("real timer", func(t *testing.T) {
		rt := New(nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := rt.sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("sleep on a cancelled context = %v", err)
		}
		if err := rt.sleep(context.Background(), 0); err != nil {
			t.Errorf("sleep(0) = %v", err)
		}
	})
}

// Through a real server and http.Client: the retry reaches the server,
// and the connection is reused.
func TestRetryThroughServer(t *testing.T) {
	leakcheck(t)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) != "payload" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: New(base, WithClock(newFakeClock())), Timeout: 10 * time.Second}
	resp, err := c.Do(newRequest(t, context.Background(), http.MethodPut, srv.URL, bytes.NewBufferString("payload")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n.Load() != 2 {
		t.Errorf("status %d after %d requests, want 200 after 2", resp.StatusCode, n.Load())
	}
}

func TestErrorsPassThrough(t *testing.T) {
	boom := errors.New("boom")
	body := &countingBody{Reader: strings.NewReader("")}
	rt := New(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{Body: body}, boom // both: the response is dropped
	}))
	if _, err := rt.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://h/", nil)); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if body.closes.Load() != 1 {
		t.Error("the response returned with an error was not closed")
	}
	// An error on a retry is the caller's error, and the 429 before it is
	// closed.
	var n atomic.Int32
	throttled := &countingBody{Reader: strings.NewReader("")}
	rt = New(roundTripFunc(func(*http.Request) (*http.Response, error) {
		if n.Add(1) == 1 {
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}, Body: throttled}, nil
		}
		return nil, boom
	}), WithClock(newFakeClock()))
	if _, err := rt.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://h/", nil)); !errors.Is(err, boom) {
		t.Errorf("err on the retry = %v, want boom", err)
	}
	if throttled.closes.Load() != 1 {
		t.Error("the 429 before the failed retry was not closed")
	}
	rt = New(roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil }))
	if _, err := rt.RoundTrip(newRequest(t, context.Background(), http.MethodGet, "https://h/", nil)); err == nil {
		t.Error("a nil response without an error was passed on")
	}
}

func TestLogs(t *testing.T) {
	var logs bytes.Buffer
	base := &fakeBase{respond: func(n int, r *http.Request) *http.Response {
		if n == 0 {
			return answer(429, "Retry-After", "1")
		}
		return nil
	}}
	rt := New(base, WithClock(newFakeClock()), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	req := newRequest(t, context.Background(), http.MethodGet, "https://api.tesseraai.cloud/v1?token=secret-query", nil)
	req.Header.Set("Authorization", "Bearer secret-header")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	out := logs.String()
	for _, want := range []string{"throttled, retrying", "api.tesseraai.cloud", "attempt=1", "wait=1s"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	for _, secret := range []string{"secret-query", "secret-header"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q", secret)
		}
	}
}

func TestAfter(t *testing.T) {
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
			got, ok := After(h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("After(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	t.Run("huge but parseable", func(t *testing.T) {
		got, ok := After(http.Header{"Retry-After": {"18446744073709551615"}}, now)
		if !ok || got < 100*365*24*time.Hour {
			t.Errorf("After(max uint64) = %v, %v", got, ok)
		}
	})
}

// The zero Transport sends through http.DefaultTransport, once.
func TestZeroTransport(t *testing.T) {
	leakcheck(t)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := new(Transport).RoundTrip(newRequest(t, ctx, http.MethodGet, srv.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || n.Load() != 1 {
		t.Errorf("status %d after %d requests, want 429 after 1", resp.StatusCode, n.Load())
	}
	new(Transport).CloseIdleConnections() // nothing wrapped: no panic
}

func TestCloseIdleConnections(t *testing.T) {
	base := &idleCloser{}
	New(base).CloseIdleConnections()
	if !base.closed {
		t.Error("CloseIdleConnections not passed on")
	}
	New(&fakeBase{}).CloseIdleConnections() // no such method: no panic
}

type idleCloser struct {
	fakeBase
	closed bool
}

func (c *idleCloser) CloseIdleConnections() { c.closed = true }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
