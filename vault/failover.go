package vault

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
)

// failover is the RoundTripper of a client given several addresses
// ([Options.Addresses]): a request for the client's address goes to the
// address that answered last and, when that one cannot be reached or
// answers 503 (sealed, or a standby without a leader), to the next, in
// turn. Requests for other hosts (a redirect to the active node) pass
// through untouched. A request whose body cannot be replayed is tried once.
type failover struct {
	base    http.RoundTripper
	primary string     // the client's address host; requests for it fail over
	addrs   []*url.URL // scheme and host of each address
	cur     atomic.Int32
}

func newFailover(base http.RoundTripper, addrs []string) (*failover, error) {
	f := &failover{base: base}
	for _, a := range addrs {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, badConfig("Vault address %d of %d is not scheme://host:port", len(f.addrs)+1, len(addrs))
		}
		if u.Path != "" && u.Path != "/" || u.User != nil || u.RawQuery != "" {
			return nil, badConfig("Vault address %d of %d has more than scheme://host:port", len(f.addrs)+1, len(addrs))
		}
		f.addrs = append(f.addrs, u)
	}
	f.primary = f.addrs[0].Host
	return f, nil
}

// RoundTrip sends req to each address in turn, from the last that answered.
func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != f.primary {
		return f.base.RoundTrip(req)
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	start := int(f.cur.Load())
	var lastErr error
	for i := range f.addrs {
		idx := (start + i) % len(f.addrs)
		r, err := f.request(req, idx, i > 0)
		if err != nil {
			return nil, err
		}
		resp, err := f.base.RoundTrip(r)
		last := i == len(f.addrs)-1 || !replayable || req.Context().Err() != nil
		switch {
		case err == nil && (resp.StatusCode != http.StatusServiceUnavailable || last):
			f.cur.Store(int32(idx))
			return resp, nil
		case err == nil:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			lastErr = errors.New(resp.Status)
		case last:
			return nil, err
		default:
			lastErr = err
		}
	}
	return nil, lastErr // not reached: the last attempt returns
}

// request is req for address idx; a retry gets a fresh body.
func (f *failover) request(req *http.Request, idx int, retry bool) (*http.Request, error) {
	a := f.addrs[idx]
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = a.Scheme, a.Host, a.Host
	if retry && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	return r, nil
}

// CloseIdleConnections closes the base transport's idle connections.
func (f *failover) CloseIdleConnections() {
	if c, ok := f.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
