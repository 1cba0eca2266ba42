package keyprovider

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the [Transport]'s retries of throttled (HTTP 429) requests.
const (
	// DefaultMaxAttempts is how many times a throttled idempotent request
	// is sent in all, the first time included.
	DefaultMaxAttempts = 4
	// DefaultRetryBaseDelay bounds the first backoff; each retry doubles
	// the bound, and the wait is drawn at random in its upper half.
	DefaultRetryBaseDelay = 500 * time.Millisecond
	// DefaultRetryMaxDelay is the longest the transport waits before a
	// retry, whether the wait comes from the backoff or from Retry-After.
	DefaultRetryMaxDelay = 30 * time.Second
)

// Transport is an [http.RoundTripper] that authenticates requests with the
// key of a [TokenSource], as "Authorization: Bearer <key>", and passes them
// to Base.
//
// The Transport is its own options struct: set its fields in a literal, or
// build it with [NewTransport] or [NewClient] and [Option]s. A Transport must
// not be modified once it has sent a request, and must not be copied after
// that; it is safe for concurrent use.
//
// Where the key goes. The key is put only on a request whose URL host is in
// AllowedHosts (or on any host when AllowAnyHost is set), and only over
// HTTPS, except to a loopback host (127.0.0.0/8, ::1, "localhost") where
// plain HTTP is accepted for local stand-ins and sidecars. Any other request,
// including one an [http.Client] makes to follow a redirect to another host,
// goes out without the key, or fails with a [*HostError] when
// FailDisallowedHost is set. A Transport that allows no host at all (no
// AllowedHosts, AllowAnyHost unset) is a configuration mistake, and every
// request it is given fails with a [*HostError] saying so, rather than going
// out unauthenticated.
//
// Rejected keys (401). When the server answers 401 to a request that
// carried the key, the Transport reports the key to Source's Invalidate (if
// Source is an [Invalidator]), asks Source for a key again, and sends the
// request once more if it got a different key and the body can be sent
// again (the request has no body, or has GetBody, as requests made with
// [http.NewRequest] from a bytes.Buffer, bytes.Reader or strings.Reader
// do). Otherwise it returns the 401 response untouched. A 403 is returned as
// it is: the key is valid, the permission is missing; [CheckResponse] turns
// it into an error matching [ErrPermission].
//
// Throttling (429). A throttled request is sent again when it is idempotent
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or any method with an
// Idempotency-Key or X-Idempotency-Key header) and its body can be sent
// again, up to MaxAttempts times in all. The wait is the server's
// Retry-After (seconds or an HTTP date) when it gives one, and otherwise an
// exponential backoff with jitter; a wait longer than RetryMaxDelay, or one
// that would outlast the request context's deadline, is not waited: the 429
// response is returned instead. Cancelling the request's context during a
// wait returns the context's error at once.
//
// The RoundTripper contract. RoundTrip never modifies the caller's request:
// it sends a copy with its own header map. It closes the request body on
// every path that does not hand it to Base, closes every response it does
// not return, and sets the returned response's Request to the caller's
// request, so that the key is not reachable from the response.
//
// Wrap an existing client's transport by making it the Base:
//
//	client.Transport = &keyprovider.Transport{
//		Source:       src,
//		Base:         client.Transport, // nil is fine: http.DefaultTransport
//		AllowedHosts: []string{keyprovider.Tessera.Host()},
//	}
//
// openai-go takes such a client with option.WithHTTPClient. Leave its API
// key unset: on an allowed host the Transport replaces any Authorization
// header the SDK sets. openai-go retries 429s itself, so turn one of the two
// retry loops off (here the SDK's) lest the attempts multiply:
//
//	hc := keyprovider.NewClient(src, keyprovider.WithService(keyprovider.Tessera))
//	oc := openai.NewClient(
//		option.WithBaseURL(keyprovider.Tessera.BaseURL),
//		option.WithHTTPClient(hc),
//		option.WithMaxRetries(0),
//	)
type Transport struct {
	// Source gives the key for each request. It is called on every
	// request, so it should answer from memory (see package rotate). A nil
	// Source makes every request fail.
	Source TokenSource

	// Base sends the authenticated requests. Nil means
	// [http.DefaultTransport].
	Base http.RoundTripper

	// AllowedHosts are the hosts the key may be sent to, each a host name
	// or IP address, with a port ("127.0.0.1:8080") or without one. An
	// entry without a port matches only the scheme's default port (443 for
	// HTTPS, 80 for HTTP); names match without regard to case. [WithService]
	// adds the host of a service's BaseURL. Nil means no host, unless
	// AllowAnyHost is set.
	AllowedHosts []string

	// AllowAnyHost sends the key to every host reached over HTTPS (or
	// loopback HTTP), AllowedHosts or not, including the targets of
	// redirects. Use it only when every URL the client can be sent to is
	// trusted. False (the zero value) means only AllowedHosts.
	AllowAnyHost bool

	// FailDisallowedHost makes a request to a host that may not receive
	// the key fail with a [*HostError] instead of going out without the
	// key. False (the zero value) sends such requests unauthenticated,
	// which lets an API redirect to a CDN or a presigned URL.
	FailDisallowedHost bool

	// MaxAttempts is how many times a throttled (429) idempotent request
	// is sent in all. Zero means [DefaultMaxAttempts]; 1 (or less) turns
	// retries off.
	MaxAttempts int

	// RetryBaseDelay bounds the first backoff after a 429 without
	// Retry-After; the bound doubles with each retry, up to RetryMaxDelay.
	// Zero means [DefaultRetryBaseDelay].
	RetryBaseDelay time.Duration

	// RetryMaxDelay is the longest single wait before a retry. A
	// Retry-After asking for more is not honoured by waiting less: the 429
	// is returned. Zero means [DefaultRetryMaxDelay].
	RetryMaxDelay time.Duration

	// Logger receives a record when a key is withheld from a host, when a
	// rejected key is reported, and before each retry. Records carry key
	// fingerprints, methods and hosts, never keys or query strings. Nil
	// means no logging.
	Logger *slog.Logger

	// now and after are the clock; nil means the real one. Tests set them
	// so that no test sleeps.
	now   func() time.Time
	after func(time.Duration) <-chan time.Time

	once  sync.Once
	allow []hostPort

	// hdr caches the header value built for the last key seen, so the hot
	// path does not rebuild "Bearer "+key on every request.
	hdr atomic.Pointer[authHeader]
}

// Option configures a [Transport] built by [NewTransport] or [NewClient].
type Option func(*Transport)

// WithService allows the host of svc.BaseURL to receive the key (see
// [Service.Host]). It adds nothing when BaseURL is empty or does not parse.
func WithService(svc Service) Option {
	return func(t *Transport) {
		if h := svc.Host(); h != "" {
			t.AllowedHosts = append(t.AllowedHosts, h)
		}
	}
}

// WithAllowedHosts allows hosts to receive the key; see
// [Transport.AllowedHosts] for their form.
func WithAllowedHosts(hosts ...string) Option {
	return func(t *Transport) { t.AllowedHosts = append(t.AllowedHosts, hosts...) }
}

// WithAnyHost sends the key to any host over HTTPS (or loopback HTTP); see
// [Transport.AllowAnyHost].
func WithAnyHost() Option { return func(t *Transport) { t.AllowAnyHost = true } }

// WithBase makes base send the requests; see [Transport.Base].
func WithBase(base http.RoundTripper) Option { return func(t *Transport) { t.Base = base } }

// WithDisallowedHostError makes requests to hosts that may not receive the
// key fail with a [*HostError] instead of going out without it.
func WithDisallowedHostError() Option { return func(t *Transport) { t.FailDisallowedHost = true } }

// WithMaxAttempts sets how many times a throttled idempotent request is sent
// in all; 1 turns retries off. See [Transport.MaxAttempts].
func WithMaxAttempts(n int) Option { return func(t *Transport) { t.MaxAttempts = n } }

// WithRetryDelays sets the first backoff bound and the longest wait before a
// retry; zero keeps a default. See [Transport.RetryBaseDelay] and
// [Transport.RetryMaxDelay].
func WithRetryDelays(base, max time.Duration) Option {
	return func(t *Transport) { t.RetryBaseDelay, t.RetryMaxDelay = base, max }
}

// WithLogger makes the transport log to l; see [Transport.Logger].
func WithLogger(l *slog.Logger) Option { return func(t *Transport) { t.Logger = l } }

// NewTransport returns a [Transport] taking its keys from src, configured by
// opts. Without an option that allows a host ([WithService],
// [WithAllowedHosts], [WithAnyHost]) every request fails with a
// [*HostError].
func NewTransport(src TokenSource, opts ...Option) *Transport {
	t := &Transport{Source: src}
	for _, o := range opts {
		o(t)
	}
	return t
}

// NewClient returns an [http.Client] whose requests are authenticated by a
// [NewTransport] of src and opts. The client has no timeout; give requests
// a context with a deadline, or set the client's Timeout.
func NewClient(src TokenSource, opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(src, opts...)}
}

// ErrHostNotAllowed is matched (with [errors.Is]) by every [*HostError].
var ErrHostNotAllowed = errors.New("host may not receive the key")

// HostError reports a request the [Transport] refused to send because its
// host may not receive the key: the Transport allows no host at all, or it
// has FailDisallowedHost set. It matches [ErrHostNotAllowed].
type HostError struct {
	// Scheme and Host are those of the request's URL.
	Scheme, Host string
	// Reason says why, in words safe to log.
	Reason string
}

// Error implements error.
func (e *HostError) Error() string {
	return "keyprovider: transport: key withheld from " + e.Scheme + "://" + e.Host + ": " + e.Reason
}

// Unwrap returns [ErrHostNotAllowed].
func (e *HostError) Unwrap() error { return ErrHostNotAllowed }

// Reasons a key is withheld; constants so that deciding costs nothing.
const (
	reasonNoHosts  = "the transport allows no host (use WithService, WithAllowedHosts or WithAnyHost)"
	reasonNotTLS   = "not HTTPS and not a loopback host"
	reasonNotAllow = "host not in the allowed hosts"
)

var errNoSource = errors.New("keyprovider: transport: Transport has no Source")

type authHeader struct {
	key   string
	value []string
}

type hostPort struct{ host, port string }

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req.Body)
		return nil, errNoSource
	}
	if req.URL == nil {
		closeBody(req.Body)
		return nil, errors.New("keyprovider: transport: request has no URL")
	}
	t.once.Do(t.init)
	if reason := t.withhold(req.URL); reason != "" {
		if reason == reasonNoHosts || t.FailDisallowedHost {
			closeBody(req.Body)
			return nil, &HostError{Scheme: req.URL.Scheme, Host: req.URL.Host, Reason: reason}
		}
		if t.Logger != nil {
			t.Logger.LogAttrs(req.Context(), slog.LevelDebug, "keyprovider: key withheld",
				slog.String("method", req.Method), slog.String("scheme", req.URL.Scheme),
				slog.String("host", req.URL.Host), slog.String("reason", reason))
		}
		return t.base().RoundTrip(req)
	}
	return t.roundTrip(req)
}

// CloseIdleConnections closes the idle connections of Base, if it has such
// a method; [http.Client.CloseIdleConnections] calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

func (t *Transport) init() {
	for _, h := range t.AllowedHosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		host, port := splitHostPort(h)
		t.allow = append(t.allow, hostPort{host: host, port: port})
	}
}

// splitHostPort splits "host:port", "[v6]:port", "[v6]", "v6" and "host"
// without allocating; a missing port is "".
func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, ""
		}
		host, rest := s[1:end], s[end+1:]
		if strings.HasPrefix(rest, ":") {
			return host, rest[1:]
		}
		return host, ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 && strings.IndexByte(s, ':') == i {
		return s[:i], s[i+1:]
	}
	return s, "" // a bare name, or a bare IPv6 address
}

// withhold returns why the key may not go to u, or "" if it may.
func (t *Transport) withhold(u *url.URL) string {
	if len(t.allow) == 0 && !t.AllowAnyHost {
		return reasonNoHosts
	}
	host, port := u.Hostname(), u.Port()
	https := strings.EqualFold(u.Scheme, "https")
	if !https && !(strings.EqualFold(u.Scheme, "http") && isLoopback(host)) {
		return reasonNotTLS
	}
	if t.AllowAnyHost {
		return ""
	}
	def := "80"
	if https {
		def = "443"
	}
	if port == "" {
		port = def
	}
	for _, a := range t.allow {
		ap := a.port
		if ap == "" {
			ap = def
		}
		if ap == port && strings.EqualFold(a.host, host) {
			return ""
		}
	}
	return reasonNotAllow
}

// isLoopback reports whether host (without port or brackets) is
// "localhost" or a loopback IP address. Names that merely resolve to
// loopback are not trusted: resolution is not ours to check.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// header returns the Authorization header value for k, cached per key. The
// comparison need not be constant-time: both sides are keys we hold, and no
// request can make it take longer or shorter.
func (t *Transport) header(k Key) ([]string, error) {
	if h := t.hdr.Load(); h != nil && h.key == k.Reveal() {
		return h.value, nil
	}
	if k.IsZero() {
		return nil, &Error{Provider: "transport", Kind: ErrNotFound, Err: errNoKey}
	}
	// The zero Service checks only that the key can go in a header.
	if err := (Service{}).Validate(k.Reveal()); err != nil {
		return nil, &Error{Provider: "transport", Kind: ErrInvalidKey, Err: err}
	}
	// Every request shares this slice, read-only as the RoundTripper
	// contract wants; its capacity is 1, so a Header.Add on a copy gets a
	// new array instead of writing into the cache.
	v := []string{"Bearer " + k.Reveal()}
	t.hdr.Store(&authHeader{key: k.Reveal(), value: v})
	return v, nil
}

// authorize returns a shallow copy of req carrying body and the
// Authorization header value v. The copy has its own header map (whose
// values are shared, read-only, with req's); every other field is req's,
// which is all the RoundTripper contract lets Base see. Unlike
// [http.Request.Clone] it keeps req's Trailer map, so that trailer values
// the caller sets while the body is sent still go out.
func authorize(req *http.Request, body io.ReadCloser, v []string) *http.Request {
	r2 := new(http.Request)
	*r2 = *req
	r2.Body = body
	h := make(http.Header, len(req.Header)+1)
	for k, vv := range req.Header {
		if len(k) == len("Authorization") && strings.EqualFold(k, "Authorization") {
			continue
		}
		h[k] = vv
	}
	h["Authorization"] = v
	r2.Header = h
	return r2
}

// roundTrip sends req with the key, and handles 401 and 429.
func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	maxAttempts := t.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if !replayable || !isIdempotent(req) {
		maxAttempts = 1
	}

	body := req.Body
	key, err := t.Source.Token(ctx)
	if err != nil {
		closeBody(body)
		return nil, err
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		v, err := t.header(key)
		if err != nil {
			closeBody(body)
			return nil, err
		}
		r2 := authorize(req, body, v)
		resp, err := t.base().RoundTrip(r2)
		if err != nil {
			return nil, err
		}
		if resp.Request == r2 || resp.Request == nil {
			resp.Request = req
		}

		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			refreshed = true
			fresh, ok := t.refresh(ctx, req, key)
			if !ok || !replayable {
				return resp, nil
			}
			next, err := nextBody(req)
			if err != nil {
				return resp, nil
			}
			discard(resp)
			key, body = fresh, next
			attempt-- // a replay after a refresh is not a throttling retry

		case resp.StatusCode == http.StatusTooManyRequests && attempt < maxAttempts:
			wait, ok := t.retryWait(ctx, resp, attempt)
			if !ok {
				return resp, nil
			}
			next, err := nextBody(req)
			if err != nil {
				return resp, nil
			}
			discard(resp)
			if t.Logger != nil {
				t.Logger.LogAttrs(ctx, slog.LevelInfo, "keyprovider: throttled, retrying",
					slog.String("method", req.Method), slog.String("host", req.URL.Host),
					slog.Int("attempt", attempt), slog.Duration("wait", wait))
			}
			if err := t.sleep(ctx, wait); err != nil {
				closeBody(next)
				return nil, err
			}
			body = next
			if key, err = t.Source.Token(ctx); err != nil {
				closeBody(body)
				return nil, err
			}

		default:
			return resp, nil
		}
	}
}

// refresh reports stale as rejected and asks for a key again. It returns
// the new key and true if it differs from stale.
func (t *Transport) refresh(ctx context.Context, req *http.Request, stale Key) (Key, bool) {
	if inv, ok := t.Source.(Invalidator); ok {
		inv.Invalidate(stale)
	}
	fresh, err := t.Source.Token(ctx)
	changed := err == nil && !fresh.IsZero() && !fresh.Equal(stale)
	if t.Logger != nil {
		attrs := []slog.Attr{
			slog.String("method", req.Method), slog.String("host", req.URL.Host),
			slog.String("rejected", stale.Fingerprint()),
		}
		switch {
		case err != nil:
			attrs = append(attrs, slog.String("error", err.Error()))
		case changed:
			attrs = append(attrs, slog.String("fresh", fresh.Fingerprint()))
		default:
			attrs = append(attrs, slog.String("outcome", "no new key"))
		}
		t.Logger.LogAttrs(ctx, slog.LevelWarn, "keyprovider: key rejected (401)", attrs...)
	}
	return fresh, changed
}

// retryWait returns how long to wait before the attempt after attempt, and
// false when the transport should not wait at all.
func (t *Transport) retryWait(ctx context.Context, resp *http.Response, attempt int) (time.Duration, bool) {
	maxDelay := t.RetryMaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultRetryMaxDelay
	}
	now := t.clock()
	wait, ok := retryAfter(resp.Header, now)
	if ok {
		if wait > maxDelay {
			return 0, false
		}
	} else {
		bound := t.RetryBaseDelay
		if bound <= 0 {
			bound = DefaultRetryBaseDelay
		}
		for i := 1; i < attempt && bound < maxDelay; i++ {
			bound *= 2
		}
		bound = min(bound, maxDelay)
		// "Equal jitter": at least half the bound, so retries do back off,
		// and spread over the other half, so clients do not move in step.
		wait = bound/2 + time.Duration(rand.Int64N(int64(bound/2)+1))
	}
	if dl, ok := ctx.Deadline(); ok && now.Add(wait).After(dl) {
		return 0, false
	}
	return wait, true
}

func (t *Transport) clock() time.Time {
	if t.now != nil {
		return t.now()
	}
	return time.Now()
}

// sleep waits d, or until ctx is done.
func (t *Transport) sleep(ctx context.Context, d time.Duration) error {
	if t.after != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.after(d):
			return nil
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// isIdempotent reports whether sending req twice is harmless, as net/http
// decides it for its own retries.
func isIdempotent(req *http.Request) bool {
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

// nextBody returns a fresh copy of req's body for another attempt.
func nextBody(req *http.Request) (io.ReadCloser, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, nil
	}
	return req.GetBody()
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// maxDrain is how much of a response the transport discards reads before
// closing it, so that the connection can be reused for the retry.
const maxDrain = 4 << 10

// discard reads a little of resp's body and closes it.
func discard(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}
