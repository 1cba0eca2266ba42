package proxy

import (
	"errors"
	"io"
	"net/http"
)

// maxRedirects is how many redirects a request follows, as [http.Client].
const maxRedirects = 10

var errTooManyRedirects = errors.New("stopped after 10 redirects")

// send sends out through the Transport and follows the upstream's
// redirects the way [http.Client] does: 301, 302 and 303 become a GET
// without a body (a HEAD stays a HEAD), 307 and 308 repeat the method and
// the body when it can be sent again (else the redirect is the answer).
// Each hop goes through the Transport, so a redirect to a host that may not
// receive the key goes without it. It is done here rather than by an
// http.Client to spare the client's per-request header copy.
func (h *Handler) send(out *http.Request) (*http.Response, error) {
	for hops := 0; ; hops++ {
		resp, err := h.o.Transport.RoundTrip(out)
		if err != nil {
			return nil, err
		}
		next := redirect(out, resp)
		if next == nil {
			return resp, nil
		}
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
		if hops == maxRedirects {
			return nil, errTooManyRedirects
		}
		out = next
	}
}

// redirect returns the request that follows resp, the answer to req, or
// nil when resp is not a redirect to follow.
func redirect(req *http.Request, resp *http.Response) *http.Request {
	method, body := req.Method, true
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
		if method != http.MethodHead {
			method = http.MethodGet
		}
		body = false
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := req.URL.Parse(loc)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil
	}
	next, err := http.NewRequestWithContext(req.Context(), method, u.String(), nil)
	if err != nil {
		return nil
	}
	if body && req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil // the body is gone: the redirect is the client's to follow
		}
		if next.Body, err = req.GetBody(); err != nil {
			return nil
		}
		next.GetBody, next.ContentLength = req.GetBody, req.ContentLength
	}
	next.Header = req.Header.Clone()
	if !body {
		next.Header.Del("Content-Type")
		next.Header.Del("Content-Length")
	}
	if u.Host != req.URL.Host {
		next.Header.Del("Cookie")
		next.Header.Del("Cookie2")
	}
	return next
}
