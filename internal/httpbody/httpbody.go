// Package httpbody holds the request and body chores that the
// authenticating Transport and the retrying one share: closing a body that
// may be nil, dropping a response that is about to be sent again so that
// its connection can be reused, taking a RoundTripper's answer as the
// answer to the caller's request, and copying a body for another attempt.
package httpbody

import (
	"io"
	"net/http"
)

// Close closes b, if there is one. Its error is of no use to a caller that
// is already giving up on the body.
func Close(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}

// maxDrain is how much of a discarded response is read before it is
// closed: enough for an error answer, so that its connection can be reused
// for the next attempt, and no more.
const maxDrain = 4 << 10

// Discard reads a little of resp's body and closes it.
func Discard(resp *http.Response) {
	if resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}

// Answer takes what a RoundTripper returned for a request sent on behalf of
// req, the caller's own: on an error it closes any body that came with it;
// a nil response is errNil; otherwise resp.Request is set to req, whatever
// request the RoundTripper put there (a clone, a replay).
func Answer(req *http.Request, resp *http.Response, err, errNil error) (*http.Response, error) {
	if err != nil {
		if resp != nil {
			Close(resp.Body)
		}
		return nil, err
	}
	if resp == nil {
		return nil, errNil
	}
	resp.Request = req
	return resp, nil
}

// Next returns a fresh copy of req's body for another attempt (nil or
// http.NoBody as they are), or false when the body cannot be sent again
// (no GetBody) or GetBody fails.
func Next(req *http.Request) (io.ReadCloser, bool) {
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return req.Body, true
	case req.GetBody == nil:
		return nil, false
	}
	b, err := req.GetBody()
	return b, err == nil
}
