// Package retry is an [http.RoundTripper] that sends a throttled request
// (HTTP 429 Too Many Requests) again, after the wait the server asks for or
// an exponential backoff.
//
// It is kept apart from the authenticating [keyprovider.Transport] so that
// each does one thing. [keyprovider.NewClient] stacks the two, retrier
// outside:
//
//	retry.New(keyprovider.NewTransport(src, opts...))
//
// A client that already retries (openai-go, most cloud SDKs) takes
// keyprovider.NewTransport alone, lest the attempts multiply.
//
// # What is retried
//
// Only a 429, and only a request that is safe to send twice: an idempotent
// method (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or any method carrying an
// Idempotency-Key or X-Idempotency-Key header, whose body can be sent again
// (no body, or a GetBody, as [http.NewRequest] sets for a bytes.Buffer,
// bytes.Reader or strings.Reader). Every other answer, and every error, is
// returned as it is.
//
// # How long it waits
//
// The server's Retry-After (seconds or an HTTP date) when it gives one,
// otherwise a backoff whose bound starts at [Options.BaseDelay] and doubles
// with each retry, the wait drawn at random in the upper half of the bound.
// A wait longer than [Options.MaxDelay], or one that would outlast the
// request context's deadline, is not waited: the 429 is returned at once.
// Cancelling the request's context during a wait returns the context's
// error at once.
package retry

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyprovider/keyprovider/internal/httpbody"
)

// Defaults of the [Options] fields whose zero value means "the default".
const (
	// DefaultMaxAttempts is how many times a throttled request is sent in
	// all, the first time included.
	DefaultMaxAttempts = 4
	// DefaultBaseDelay bounds the first backoff.
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay is the longest single wait before a retry.
	DefaultMaxDelay = 30 * time.Second
)

// Options configure a [Transport]. The zero value of every field means its
// default, so a zero Options is a good configuration.
type Options struct {
	// MaxAttempts is how many times a throttled request is sent in all.
	// Zero means [DefaultMaxAttempts]; 1 or less turns retries off.
	MaxAttempts int

	// BaseDelay bounds the first backoff after a 429 without Retry-After;
	// the bound doubles with each retry, up to MaxDelay. Zero (or less)
	// means [DefaultBaseDelay]; a BaseDelay above MaxDelay is cut to it.
	BaseDelay time.Duration

	// MaxDelay is the longest single wait. A Retry-After asking for more
	// is not honoured by waiting less: the 429 is returned. Zero (or less)
	// means [DefaultMaxDelay].
	MaxDelay time.Duration

	// Logger receives a record before each retry, with the method, host,
	// attempt and wait (never a header, query string or body). Nil means
	// no logging.
	Logger *slog.Logger

	// Clock is the source of time. Nil means the system clock; tests
	// inject a fake so that no test sleeps.
	Clock Clock
}

// Option changes [Options].
type Option func(*Options)

// WithMaxAttempts sets [Options.MaxAttempts].
func WithMaxAttempts(n int) Option { return func(o *Options) { o.MaxAttempts = n } }

// WithBaseDelay sets [Options.BaseDelay].
func WithBaseDelay(d time.Duration) Option { return func(o *Options) { o.BaseDelay = d } }

// WithMaxDelay sets [Options.MaxDelay].
func WithMaxDelay(d time.Duration) Option { return func(o *Options) { o.MaxDelay = d } }

// WithLogger sets [Options.Logger].
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// WithClock sets [Options.Clock].
func WithClock(c Clock) Option { return func(o *Options) { o.Clock = c } }

// Clock is the source of time of a [Transport].
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once, d from now.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// resolve fills in the defaults and clamps out-of-range values.
func (o Options) resolve() Options {
	switch {
	case o.MaxAttempts == 0:
		o.MaxAttempts = DefaultMaxAttempts
	case o.MaxAttempts < 1:
		o.MaxAttempts = 1
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.BaseDelay <= 0 {
		o.BaseDelay = DefaultBaseDelay
	}
	o.BaseDelay = min(o.BaseDelay, o.MaxDelay)
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	return o
}

// Transport is an [http.RoundTripper] that retries throttled requests and
// passes every request to the RoundTripper it wraps. Build it with [New];
// it is immutable and safe for concurrent use. The zero Transport sends
// through [http.DefaultTransport] and never retries.
//
// It keeps the RoundTripper contract: it never modifies the caller's
// request (a retry sends a shallow copy with a fresh body), closes every
// response it does not return, and sets the returned response's Request
// to the caller's request.
type Transport struct {
	next http.RoundTripper
	o    Options
}

// New returns a [Transport] that sends requests through next (nil means
// [http.DefaultTransport]), configured by opts.
func New(next http.RoundTripper, opts ...Option) *Transport {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &Transport{next: next, o: o.resolve()}
}

// CloseIdleConnections closes the idle connections of the wrapped
// RoundTripper, if it has such a method; [http.Client.CloseIdleConnections]
// calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

var errNilResponse = errors.New("retry: RoundTripper returned no response and no error")

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil { // the zero Transport
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	for attempt := 1; ; attempt++ {
		if resp, err = httpbody.Answer(req, resp, err, errNilResponse); err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusTooManyRequests || attempt >= t.o.MaxAttempts || !retryable(req) {
			return resp, nil
		}
		ctx := req.Context()
		wait, ok := t.wait(ctx, resp.Header, attempt)
		if !ok {
			return resp, nil
		}
		body, ok := httpbody.Next(req)
		if !ok {
			return resp, nil
		}
		httpbody.Discard(resp)
		if t.o.Logger != nil {
			t.o.Logger.LogAttrs(ctx, slog.LevelInfo, "retry: throttled, retrying",
				slog.String("method", req.Method), slog.String("host", req.URL.Host),
				slog.Int("attempt", attempt), slog.Duration("wait", wait))
		}
		if err := t.sleep(ctx, wait); err != nil {
			httpbody.Close(body)
			return nil, err
		}
		r2 := new(http.Request)
		*r2 = *req
		r2.Body = body
		resp, err = next.RoundTrip(r2)
	}
}

// wait returns how long to wait before the attempt after attempt, and false
// when the transport should not wait at all.
func (t *Transport) wait(ctx context.Context, h http.Header, attempt int) (time.Duration, bool) {
	now := t.o.Clock.Now()
	wait, ok := After(h, now)
	if ok {
		if wait > t.o.MaxDelay {
			return 0, false
		}
	} else {
		bound := t.o.BaseDelay
		for i := 1; i < attempt && bound < t.o.MaxDelay; i++ {
			bound *= 2
		}
		bound = min(bound, t.o.MaxDelay)
		// "Equal jitter": at least half the bound, so retries do back off,
		// and spread over the other half, so clients do not move in step.
		wait = bound/2 + time.Duration(rand.Int64N(int64(bound/2)+1))
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(wait).After(dl) {
		return 0, false
	}
	return wait, true
}

// sleep waits d, or until ctx is done.
func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.o.Clock.After(d):
		return nil
	}
}

// After returns how long the Retry-After header of h asks the client to
// wait, in seconds or as an HTTP date (a date in the past is a wait of
// zero), and whether h has a Retry-After that parses.
func After(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		const maxSeconds = uint64(1<<63-1) / uint64(time.Second)
		if n > maxSeconds {
			n = maxSeconds
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryable reports whether sending req twice is harmless (as net/http
// decides it for its own retries) and its body can be sent again.
func retryable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}
