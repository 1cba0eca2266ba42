package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchWait bounds each wait of the watch tests, far below the package's
// timeout: a line that never comes fails the test, by name, at once.
const watchWait = 10 * time.Second

// lineReader hands out the lines written to a pipe, each within watchWait.
type lineReader struct {
	t     *testing.T
	lines chan string
}

func readLines(t *testing.T, r *io.PipeReader) *lineReader {
	lr := &lineReader{t: t, lines: make(chan string, 64)}
	go func() {
		defer close(lr.lines)
		s := bufio.NewScanner(r)
		for s.Scan() {
			lr.lines <- s.Text()
		}
	}()
	// Unblocks both the scanner and a writer still printing.
	t.Cleanup(func() { _ = r.CloseWithError(io.ErrClosedPipe) })
	return lr
}

func (lr *lineReader) next(what string) string {
	lr.t.Helper()
	select {
	case l, ok := <-lr.lines:
		require.True(lr.t, ok, "the output ended before %s", what)
		return l
	case <-time.After(watchWait):
		lr.t.Fatalf("no %s within %s", what, watchWait)
		return ""
	}
}

func TestWatchPrintsTheKeyAndStopsWhenCancelled(t *testing.T) {
	const key = "sk-tessera-watchKEY0123456789"
	env := func(name string) (string, bool) {
		if name == "TESSERA_API_KEY" {
			return key, true
		}
		return "", false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run(ctx, []string{"watch", "--service", "tessera"}, env, w, &stderr)
		_ = w.Close()
	}()
	lines := readLines(t, r)
	first := lines.next("first line")
	assert.Contains(t, first, "tessera key sk-tessera-…")
	assert.Contains(t, first, "TESSERA_API_KEY (literal key)")
	cancel()
	last := lines.next("closing line")
	assert.Contains(t, last, "stopped: state fresh")
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code)
	case <-time.After(watchWait):
		t.Fatalf("keyprov watch still running %s after its context was cancelled", watchWait)
	}
	for _, l := range []string{first, last, stderr.String()} {
		assert.NotContains(t, l, "watchKEY", "the key is never printed")
	}
}

// A failed refresh is reported, and nothing watch prints holds a key: here
// the error names a missing file whose name is a pasted key. (The reader
// already scrubs that path; watch scrubs every line again, as check and get
// do, for errors a backend echoes.)
func TestWatchScrubsWhatItPrints(t *testing.T) {
	const leaked = "sk-tessera-pastedKEY0123456789"
	env := func(name string) (string, bool) {
		if name == "TESSERA_API_KEY_FILE" {
			return "/nonexistent-keyprov-dir/" + leaked, true
		}
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), watchWait)
	defer cancel()
	r, w := io.Pipe()
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run(ctx, []string{"watch", "--service", "tessera", "--duration", "1s"}, env, w, &stderr)
		_ = w.Close()
	}()
	lines := readLines(t, r)
	var out []string
	for l := lines.next("first line"); ; l = lines.next("next line") {
		out = append(out, l)
		if strings.Contains(l, "stopped:") {
			break
		}
	}
	select {
	case <-done:
	case <-time.After(watchWait):
		t.Fatalf("keyprov watch still running %s after its duration", watchWait)
	}
	all := strings.Join(out, "\n") + stderr.String()
	assert.Contains(t, all, "FAILED", "the failed refresh is reported")
	assert.NotContains(t, all, "pastedKEY", "the pasted key is never printed")
}
