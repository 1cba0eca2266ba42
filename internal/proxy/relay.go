package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyprovider/keyprovider"
)

// hopByHop are the headers that belong to one connection, not to the
// request (RFC 9110, 7.6.1), dropped in both directions.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// copyHeader adds src's end-to-end headers to dst: every header except the
// hop-by-hop ones and those src's Connection header names.
func copyHeader(dst, src http.Header) {
	var named []string
	for _, v := range src["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				named = append(named, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	for k, vv := range src {
		if isHopByHop(k, named) {
			continue
		}
		dst[k] = append(dst[k], vv...)
	}
}

func isHopByHop(k string, named []string) bool {
	for _, h := range hopByHop {
		if k == h {
			return true
		}
	}
	for _, h := range named {
		if k == h {
			return true
		}
	}
	return false
}

// bufPool holds the relay buffers: one per response in flight, whatever
// the response's size.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay copies body to w through one pooled 32 KiB buffer; with flush set
// it flushes after every read, so each event of a stream goes out as it
// arrives. It stops at the first error on either side (a client that went
// away, an upstream that broke off).
func relay(w http.ResponseWriter, body io.Reader, flush bool) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flush {
				if rc.Flush() != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// refuse answers a request the proxy does not forward, with an error in
// the OpenAI shape the SDKs read, and returns status. message never holds
// anything the client did not already know.
func refuse(w http.ResponseWriter, status int, code, message string) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": message, "type": "keyprov_proxy_error", "code": code, "param": nil,
	}})
	return status
}

// writeText answers a probe.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// record is what the upstream side of one request tells the access log:
// the fingerprint of the last key sent and the time to the upstream's
// response headers (summed over a replay and redirects).
type record struct {
	fingerprint string
	upstream    time.Duration
}

type recordKey struct{}

// Recorder wraps the RoundTripper under a keyprovider.Transport (its
// Base): it sees each request with the key on it, and notes the key's
// fingerprint and the upstream latency in the request's access-log record.
// It never keeps the key.
type Recorder struct {
	// Next sends the requests. Nil means http.DefaultTransport.
	Next http.RoundTripper
	fps  fingerprints
}

// RoundTrip implements [http.RoundTripper].
func (rt *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	next := rt.Next
	if next == nil {
		next = http.DefaultTransport
	}
	rec, _ := req.Context().Value(recordKey{}).(*record)
	if rec == nil {
		return next.RoundTrip(req)
	}
	rec.fingerprint = "none"
	if v := req.Header["Authorization"]; len(v) == 1 {
		rec.fingerprint = rt.fps.of(v[0])
	}
	start := time.Now()
	resp, err := next.RoundTrip(req)
	rec.upstream += time.Since(start)
	return resp, err
}

// CloseIdleConnections closes Next's idle connections, if it can.
func (rt *Recorder) CloseIdleConnections() {
	if c, ok := rt.Next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// fingerprints caches the fingerprint of the last Authorization value, so
// that the hot path does not hash the key on every request.
type fingerprints struct {
	last atomic.Pointer[[2]string] // header value, fingerprint
}

func (f *fingerprints) of(header string) string {
	if p := f.last.Load(); p != nil && p[0] == header {
		return p[1]
	}
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return "none"
	}
	fp := keyprovider.NewKey(key, "").Fingerprint()
	f.last.Store(&[2]string{header, fp})
	return fp
}
