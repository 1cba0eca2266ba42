// Package proxy is the HTTP handler of keyprov proxy: a local reverse proxy
// that takes requests authenticated with a local token and sends them to one
// upstream API with the real key, through a [keyprovider.Transport].
//
// The handler decides, in this order, before anything reaches the upstream:
//
//   - /healthz and /readyz are answered locally, without the token.
//   - A request carrying X-Forwarded-For or Forwarded is refused (400): the
//     proxy is for local clients, not a hop in a chain.
//   - A request whose Host is not one of the listen addresses is refused
//     (421): a page in a browser that resolves its own name to 127.0.0.1
//     (DNS rebinding) cannot use the proxy.
//   - A request without "Authorization: Bearer <local token>" is refused
//     (401), unless the proxy trusts its listener (a Unix socket with
//     --socket-trust).
//   - A path outside the upstream base path is refused (404).
//
// Everything else is forwarded: method, path, query, headers without the
// hop-by-hop ones and without the client's Authorization, and the body,
// streamed. A body of at most [Options.MaxReplayBody] bytes is kept so
// that the Transport can replay the request once after a 401; a larger one
// streams through and a 401 to it is returned as it is. Responses are
// relayed as they arrive, flushed after every read when they are streamed
// (no Content-Length, or text/event-stream), so server-sent events reach
// the client one by one, with a fixed buffer per request.
package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// DefaultMaxReplayBody is the largest request body kept for a replay
// after a 401 when [Options.MaxReplayBody] is zero: 1 MiB, well above an
// embeddings or chat request.
const DefaultMaxReplayBody = 1 << 20

// Options configure a [Handler].
type Options struct {
	// Upstream is the base URL requests are forwarded under
	// ("https://api.tesseraai.cloud/v1"). Required.
	Upstream *url.URL
	// Transport sends the forwarded requests and authenticates them: a
	// keyprovider.Transport, possibly under a retry.Transport. The handler
	// follows redirects itself (up to 10, as http.Client does), each hop
	// through Transport, whose host rules decide whether it carries the
	// key. Required.
	Transport http.RoundTripper
	// Token is the local token clients must present. Empty means no token
	// is required (only for a trusted Unix socket).
	Token string
	// Hosts are the Host header values accepted (compared without regard
	// to case). Empty means any Host is accepted (a Unix socket).
	Hosts []string
	// MaxReplayBody is the largest request body kept in memory so the
	// request can be replayed after a 401. Zero means
	// DefaultMaxReplayBody; negative means none is kept.
	MaxReplayBody int64
	// Ready reports whether a key can be served, for /readyz: nil, or an
	// error; state names the source's condition. Nil means always ready.
	Ready func() (state string, err error)
	// Logger receives one INFO record per forwarded or refused request.
	// Nil means no access log.
	Logger *slog.Logger
}

// Handler is the proxy's [http.Handler]. Build it with [New].
type Handler struct {
	o       Options
	token   [sha256.Size]byte
	base    string // Upstream's path without its trailing slash
	counter atomic.Uint64
}

// New returns a Handler for o. It does not check o beyond what it needs:
// the caller validates the upstream and the token.
func New(o Options) *Handler {
	if o.MaxReplayBody == 0 {
		o.MaxReplayBody = DefaultMaxReplayBody
	}
	h := &Handler{o: o, base: strings.TrimSuffix(o.Upstream.EscapedPath(), "/")}
	if o.Token != "" {
		h.token = sha256.Sum256([]byte(o.Token))
	}
	return h
}

// Requests returns how many requests the handler forwarded upstream.
func (h *Handler) Requests() uint64 { return h.counter.Load() }

// ServeHTTP implements [http.Handler].
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &record{fingerprint: "-"}
	status := h.serve(w, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)), rec)
	if h.o.Logger != nil && status != 0 {
		h.o.Logger.LogAttrs(r.Context(), slog.LevelInfo, "proxy request",
			slog.String("method", r.Method), slog.String("path", logPath(r.URL.Path)),
			slog.Int("status", status), slog.Duration("latency", time.Since(start)),
			slog.Duration("upstream_latency", rec.upstream), slog.String("key", rec.fingerprint))
	}
}

// serve handles r and returns the status it answered (0 for the probes,
// which are not logged).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rec *record) int {
	switch r.URL.Path {
	case "/healthz":
		writeText(w, http.StatusOK, "ok\n")
		return 0
	case "/readyz":
		h.ready(w)
		return 0
	}
	if r.Header["X-Forwarded-For"] != nil || r.Header["Forwarded"] != nil {
		return refuse(w, http.StatusBadRequest, "forwarded_request", "keyprov proxy: requests carrying X-Forwarded-For or Forwarded are refused")
	}
	if !h.hostAllowed(r.Host) {
		return refuse(w, http.StatusMisdirectedRequest, "foreign_host", "keyprov proxy: Host is not the proxy's listen address")
	}
	if !h.authorized(r.Header.Values("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyprov proxy"`)
		return refuse(w, http.StatusUnauthorized, "invalid_api_key", "keyprov proxy: missing or wrong local token")
	}
	if r.Header.Get("Upgrade") != "" {
		return refuse(w, http.StatusNotImplemented, "upgrade_unsupported", "keyprov proxy: protocol upgrades are not proxied")
	}
	if !h.underBase(r.URL) {
		return refuse(w, http.StatusNotFound, "not_found", "keyprov proxy: path is not under the upstream base path "+h.base)
	}
	return h.forward(w, r, rec)
}

// ready answers /readyz.
func (h *Handler) ready(w http.ResponseWriter) {
	state, err := "ready", error(nil)
	if h.o.Ready != nil {
		state, err = h.o.Ready()
	}
	if err != nil {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+state+"\n")
		return
	}
	writeText(w, http.StatusOK, "ready: "+state+"\n")
}

// hostAllowed reports whether host is one of the accepted Host values.
func (h *Handler) hostAllowed(host string) bool {
	if len(h.o.Hosts) == 0 {
		return true
	}
	for _, a := range h.o.Hosts {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// authorized reports whether auth, the request's Authorization values, is
// exactly one "Bearer <local token>". The comparison is of SHA-256 digests,
// in constant time, so neither the token's bytes nor its length can be
// learnt from timing.
func (h *Handler) authorized(auth []string) bool {
	if h.o.Token == "" {
		return true
	}
	if len(auth) != 1 || len(auth[0]) < 7 || !strings.EqualFold(auth[0][:7], "Bearer ") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(auth[0][7:])))
	return subtle.ConstantTimeCompare(got[:], h.token[:]) == 1
}

// underBase reports whether u's path is the upstream base path or under
// it. Paths with dot segments are refused: they could climb out of it.
func (h *Handler) underBase(u *url.URL) bool {
	p := u.EscapedPath()
	if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/./") {
		return false
	}
	return h.base == "" || p == h.base || strings.HasPrefix(p, h.base+"/")
}

// forward sends r upstream and relays the answer.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, rec *record) int {
	out, err := h.outgoing(r)
	if err != nil {
		return refuse(w, http.StatusBadRequest, "bad_request", "keyprov proxy: cannot read the request body")
	}
	h.counter.Add(1)
	resp, err := h.send(out)
	if err != nil {
		return h.upstreamError(w, r, err)
	}
	defer resp.Body.Close()
	hdr := w.Header()
	copyHeader(hdr, resp.Header)
	if len(resp.Trailer) > 0 {
		for k := range resp.Trailer {
			hdr.Add("Trailer", k)
		}
	}
	w.WriteHeader(resp.StatusCode)
	streamed := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	relay(w, resp.Body, streamed)
	for k, vv := range resp.Trailer {
		hdr[k] = vv
	}
	return resp.StatusCode
}

// upstreamError answers a request that got no response from upstream.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) int {
	switch {
	case r.Context().Err() != nil:
		return 499 // the client went away; nothing to answer
	case errors.Is(err, keyprovider.ErrHostNotAllowed):
		return refuse(w, http.StatusBadGateway, "upstream_refused", "keyprov proxy: "+redact.String(err.Error()))
	case errors.Is(err, keyprovider.ErrNotFound), errors.Is(err, keyprovider.ErrUnavailable),
		errors.Is(err, keyprovider.ErrPermission), errors.Is(err, keyprovider.ErrInvalidKey):
		return refuse(w, http.StatusServiceUnavailable, "no_key", "keyprov proxy: no key to send upstream")
	}
	if h.o.Logger != nil {
		h.o.Logger.LogAttrs(r.Context(), slog.LevelWarn, "proxy: upstream request failed",
			slog.String("method", r.Method), slog.String("error", redact.String(err.Error())))
	}
	return refuse(w, http.StatusBadGateway, "upstream_unreachable", "keyprov proxy: the upstream did not answer")
}

// outgoing builds the upstream request for r, on r's context so that the
// client going away cancels it.
func (h *Handler) outgoing(r *http.Request) (*http.Request, error) {
	u := *h.o.Upstream
	u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	u.Fragment, u.RawFragment = "", ""
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	copyHeader(out.Header, r.Header)
	out.Header.Del("Authorization")
	out.Header.Del("Proxy-Authorization")
	if _, ok := r.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // as httputil.ReverseProxy: no Go default
	}
	if err := h.body(out, r); err != nil {
		return nil, err
	}
	return out, nil
}

// body gives out r's body: read into memory (replayable) when it is at
// most MaxReplayBody bytes, streamed otherwise.
func (h *Handler) body(out, r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		out.Body, out.ContentLength = http.NoBody, 0
		return nil
	}
	max := h.o.MaxReplayBody
	if max < 0 || r.ContentLength > max {
		out.Body, out.ContentLength = r.Body, r.ContentLength
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return err
	}
	if int64(len(buf)) > max { // a chunked body longer than the limit
		out.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf), r.Body))
		out.ContentLength = r.ContentLength
		return nil
	}
	out.ContentLength = int64(len(buf))
	out.Body = io.NopCloser(bytes.NewReader(buf))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return nil
}

// logPath is the path as logged: at most 200 bytes, with anything that
// could be a key replaced by its fingerprint.
func logPath(p string) string {
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	return redact.String(p)
}
