package httpbody

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

type countingBody struct {
	r      io.Reader
	read   int
	closed int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *countingBody) Close() error { b.closed++; return nil }

func TestDiscardReadsABoundedPrefixAndCloses(t *testing.T) {
	b := &countingBody{r: strings.NewReader(strings.Repeat("x", 3*maxDrain))}
	Discard(&http.Response{Body: b})
	if b.read != maxDrain || b.closed != 1 {
		t.Fatalf("read %d bytes (want %d), closed %d times (want 1)", b.read, maxDrain, b.closed)
	}
	Discard(&http.Response{}) // no body: nothing to do, no panic
}

func TestCloseToleratesNil(t *testing.T) {
	Close(nil)
	b := &countingBody{r: strings.NewReader("")}
	Close(b)
	if b.closed != 1 {
		t.Fatalf("closed %d times, want 1", b.closed)
	}
}
