package keyprovider

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"

	"github.com/keyprovider/keyprovider/internal/httpbody"
	"github.com/keyprovider/keyprovider/internal/metrics"
	"github.com/keyprovider/keyprovider/internal/redact"
	"github.com/keyprovider/keyprovider/retry"
)

// Transport is an [http.RoundTripper] that authenticates requests with the
// key of a [TokenSource], as "Authorization: Bearer <key>", and passes them
// to [Options.Base]. Build it with [NewTransport]; it is immutable once
// built and safe for concurrent use. The zero Transport has no source:
// every request it is given fails.
//
// Where the key goes. The key is put only on a request whose URL host is in
// [Options.AllowedHosts] (or on any host with [Options.AllowAnyHost]), and
// only over HTTPS, except to a loopback host (127.0.0.0/8, ::1,
// "localhost") where plain HTTP is accepted for local stand-ins and
// sidecars. Any other request, including one an [http.Client] makes to
// follow a redirect to another host, goes out without the key, or fails
// with an error matching [ErrHostNotAllowed] under
// [Options.FailDisallowedHost]. A Transport that allows no host at all is a
// configuration mistake: every request it is given fails with an error
// matching [ErrHostNotAllowed], rather than going out unauthenticated.
//
// Rejected keys (401). When the server answers 401 to a request that
// carried the key, the Transport reports the key to the source's
// Invalidate (if it is an [Invalidator]), asks the source again, and sends
// the request once more if it got a different key and the body can be
// sent again (no body, or a GetBody, as [http.NewRequest] sets for a
// bytes.Buffer, bytes.Reader or strings.Reader). Otherwise it returns the
// 401 untouched. A 403 is returned as it is: the key is valid, the
// permission is missing ([CheckResponse] turns it into [ErrPermission]).
// The Transport does not retry throttled requests: package retry does,
// and [NewClient] stacks it on top.
//
// The RoundTripper contract. RoundTrip never modifies the caller's request:
// it sends a copy with its own header map. It closes the request body on
// every path that does not hand it to Base, closes every response it does
// not return, and sets the returned response's Request to the caller's
// request, even when Base answers with a request of its own (a clone, as
// tracing middleware makes), so that the key is not reachable from the
// response.
//
// To wrap an existing client's transport, make it the Base:
//
//	client.Transport = keyprovider.NewTransport(src,
//		keyprovider.WithBase(client.Transport), // nil is fine
//		keyprovider.WithAllowedHosts(keyprovider.Tessera.Host()))
//
// openai-go takes such a client with option.WithHTTPClient. Leave its API
// key unset: on an allowed host the Transport replaces any Authorization
// header the SDK sets. openai-go retries 429s itself, so give it the
// Transport alone, not [NewClient]'s retrying stack.
type Transport struct {
	src    TokenSource
	base   http.RoundTripper
	allow  []hostPort
	any    bool
	fail   bool
	logger *slog.Logger
	m      *metrics.Transport // nil: not counted

	// hdr caches the header value built for the last key seen, so the hot
	// path does not rebuild "Bearer "+key on every request.
	hdr atomic.Pointer[authHeader]
}

// Options configure a [Transport]; set them through the [Option]s of
// [NewTransport] and [NewClient]. The zero Options allow no host, so a
// Transport built from them refuses every request: allow one.
type Options struct {
	// Base sends the authenticated requests. Nil means
	// [http.DefaultTransport].
	Base http.RoundTripper

	// AllowedHosts are the hosts the key may be sent to, each a host name
	// or IP address, with a port ("127.0.0.1:8080") or without one. An
	// entry without a port matches only the scheme's default port (443 for
	// HTTPS, 80 for HTTP); names match without regard to case; empty
	// entries are ignored. A service's host is [Service.Host]. Nil means
	// no host, unless AllowAnyHost is set.
	AllowedHosts []string

	// AllowAnyHost sends the key to every host reached over HTTPS (or
	// loopback HTTP), AllowedHosts or not, including the targets of
	// redirects. Use it only when every URL the client can be sent to is
	// trusted. False (the zero value) means only AllowedHosts.
	AllowAnyHost bool

	// FailDisallowedHost makes a request to a host that may not receive
	// the key fail with an error matching [ErrHostNotAllowed] instead of
	// going out without the key. False (the zero value) sends such
	// requests unauthenticated, which lets an API redirect to a CDN or a
	// presigned URL.
	FailDisallowedHost bool

	// Logger receives a record when a key is withheld from a host and
	// when a rejected key is reported. Records carry key fingerprints,
	// methods and hosts, never keys or query strings. Nil means no
	// logging.
	Logger *slog.Logger
}

// Option changes [Options].
type Option func(*Options)

// WithBase sets [Options.Base].
func WithBase(base http.RoundTripper) Option { return func(o *Options) { o.Base = base } }

// WithAllowedHosts adds hosts to [Options.AllowedHosts]. For the host of a
// service, pass its [Service.Host]:
//
//	keyprovider.WithAllowedHosts(keyprovider.Tessera.Host())
func WithAllowedHosts(hosts ...string) Option {
	return func(o *Options) { o.AllowedHosts = append(o.AllowedHosts, hosts...) }
}

// WithAllowAnyHost sets [Options.AllowAnyHost].
func WithAllowAnyHost(allow bool) Option { return func(o *Options) { o.AllowAnyHost = allow } }

// WithFailDisallowedHost sets [Options.FailDisallowedHost].
func WithFailDisallowedHost(fail bool) Option {
	return func(o *Options) { o.FailDisallowedHost = fail }
}

// WithLogger sets [Options.Logger].
func WithLogger(l *slog.Logger) Option { return func(o *Options) { o.Logger = l } }

// NewTransport returns a [Transport] taking its keys from src, configured by
// opts. Without a host allowed ([WithAllowedHosts], [WithAllowAnyHost])
// every request fails with an error matching [ErrHostNotAllowed]; with a
// nil src every request fails.
//
// The Transport counts its requests (by result class), its replays after a
// 401, the 429s it sees and the requests it withholds the key from, as
// OpenTelemetry metrics on the MeterProvider of src when src has a
// MeterProvider method (a rotate.Source configured with
// rotate.WithMeterProvider), else on the global one, with the name of the
// service of src when it has a Service method (a rotate.Source) as the
// keyprovider.service attribute.
func NewTransport(src TokenSource, opts ...Option) *Transport {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	t := &Transport{src: src, base: o.Base, any: o.AllowAnyHost, fail: o.FailDisallowedHost, logger: o.Logger}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	var mp metric.MeterProvider
	if m, ok := src.(interface{ MeterProvider() metric.MeterProvider }); ok {
		mp = m.MeterProvider()
	}
	var svc string
	if s, ok := src.(interface{ Service() Service }); ok {
		svc = s.Service().Name
	}
	t.m = metrics.NewTransport(mp, o.Logger, svc)
	for _, h := range o.AllowedHosts {
		if h = strings.TrimSpace(h); h != "" {
			host, port := splitHostPort(h)
			t.allow = append(t.allow, hostPort{host: host, port: port})
		}
	}
	return t
}

// NewClient returns an [http.Client] whose requests are authenticated by a
// [NewTransport] of src and opts, under a [retry.Transport] with its
// defaults that sends throttled (429) idempotent requests again. For other
// retry settings, stack the two yourself:
//
//	&http.Client{Transport: retry.New(keyprovider.NewTransport(src, opts...), retry.WithMaxAttempts(2))}
//
// The client has no timeout; give requests a context with a deadline, or
// set the client's Timeout.
func NewClient(src TokenSource, opts ...Option) *http.Client {
	return &http.Client{Transport: retry.New(NewTransport(src, opts...))}
}

var (
	errNoSource    = errors.New("keyprovider: transport: Transport has no source (build it with NewTransport)")
	errNoURL       = errors.New("keyprovider: transport: request has no URL")
	errNilResponse = errors.New("keyprovider: transport: Base returned no response and no error")
)

// providerTransport is the Provider of the [*Error]s the Transport returns.
const providerTransport = "transport"

type authHeader struct {
	key   string
	value []string
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.src == nil {
		httpbody.Close(req.Body)
		return nil, errNoSource
	}
	if req.URL == nil {
		httpbody.Close(req.Body)
		return nil, errNoURL
	}
	if reason := t.withhold(req.URL); reason != "" {
		t.m.Withhold(req.Context())
		if reason == reasonNoHosts || t.fail {
			t.m.Request(req.Context(), metrics.ClassRefused)
			httpbody.Close(req.Body)
			return nil, &hostError{scheme: req.URL.Scheme, host: req.URL.Host, reason: reason}
		}
		if t.logger != nil {
			t.logger.LogAttrs(req.Context(), slog.LevelDebug, "keyprovider: key withheld",
				slog.String("method", req.Method), slog.String("scheme", req.URL.Scheme),
				slog.String("host", req.URL.Host), slog.String("reason", reason))
		}
		resp, err := t.send(req, req)
		t.count(req.Context(), resp, err)
		return resp, err
	}
	return t.roundTrip(req)
}

// CloseIdleConnections closes the idle connections of Base, if it has such
// a method; [http.Client.CloseIdleConnections] calls it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// send passes r to Base and hands the answer back as the answer to req, the
// caller's request, whatever request Base put in it.
func (t *Transport) send(req, r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	return httpbody.Answer(req, resp, err, errNilResponse)
}

// header returns the Authorization header value for k, cached per key. The
// comparison need not be constant-time: both sides are keys we hold, and no
// request can make it take longer or shorter.
func (t *Transport) header(k Key) ([]string, error) {
	if h := t.hdr.Load(); h != nil && h.key == k.Reveal() {
		return h.value, nil
	}
	if k.IsZero() {
		return nil, &Error{Provider: providerTransport, Kind: ErrNotFound, Err: errNoKey}
	}
	// The zero Service checks only that the key can go in a header.
	if err := (Service{}).Validate(k.Reveal()); err != nil {
		return nil, &Error{Provider: providerTransport, Kind: ErrInvalidKey, Err: err}
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

// roundTrip sends req with the key, and once more with a fresh key after a
// 401.
func (t *Transport) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key, err := t.src.Token(ctx)
	if err != nil {
		t.m.Request(ctx, metrics.ClassNoKey)
		httpbody.Close(req.Body)
		return nil, err
	}
	v, err := t.header(key)
	if err != nil {
		t.m.Request(ctx, metrics.ClassNoKey)
		httpbody.Close(req.Body)
		return nil, err
	}
	resp, err := t.send(req, authorize(req, req.Body, v))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.count(ctx, resp, err)
		return resp, err
	}

	fresh, ok := t.refresh(ctx, req, key)
	if !ok {
		t.count(ctx, resp, nil)
		return resp, nil
	}
	body, ok := httpbody.Next(req)
	if !ok {
		t.count(ctx, resp, nil)
		return resp, nil
	}
	httpbody.Discard(resp)
	if v, err = t.header(fresh); err != nil {
		t.m.Request(ctx, metrics.ClassNoKey)
		httpbody.Close(body)
		return nil, err
	}
	t.m.Replay(ctx)
	resp, err = t.send(req, authorize(req, body, v))
	t.count(ctx, resp, err)
	return resp, err
}

// count records the outcome of a request: a response by its class, or a
// failure of the base RoundTripper.
func (t *Transport) count(ctx context.Context, resp *http.Response, err error) {
	if err != nil {
		t.m.Request(ctx, metrics.ClassError)
		return
	}
	t.m.Response(ctx, resp)
}

// refresh reports stale as rejected and asks for a key again. It returns
// the new key and true if it differs from stale.
func (t *Transport) refresh(ctx context.Context, req *http.Request, stale Key) (Key, bool) {
	if inv, ok := t.src.(Invalidator); ok {
		inv.Invalidate(stale)
	}
	fresh, err := t.src.Token(ctx)
	changed := err == nil && !fresh.IsZero() && !fresh.Equal(stale)
	if t.logger != nil {
		attrs := []slog.Attr{
			slog.String("method", req.Method), slog.String("host", req.URL.Host),
			slog.String("rejected", stale.Fingerprint()),
		}
		switch {
		case err != nil:
			// The source's error may repeat what its backend said.
			attrs = append(attrs, slog.String("error", redact.String(err.Error())))
		case changed:
			attrs = append(attrs, slog.String("fresh", fresh.Fingerprint()))
		default:
			attrs = append(attrs, slog.String("outcome", "no new key"))
		}
		t.logger.LogAttrs(ctx, slog.LevelWarn, "keyprovider: key rejected (401)", attrs...)
	}
	return fresh, changed
}
