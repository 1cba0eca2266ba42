// Package httpbody holds the two body chores that the authenticating
// Transport and the retrying one share: closing a body that may be nil, and
// dropping a response that is about to be sent again so that its
// connection can be reused.
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
