package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
	lines := bufio.NewScanner(r)
	require.True(t, lines.Scan(), "a first line")
	first := lines.Text()
	assert.Contains(t, first, "tessera key sk-tessera-…")
	assert.Contains(t, first, "TESSERA_API_KEY (literal key)")
	cancel()
	require.True(t, lines.Scan(), "a closing line")
	last := lines.Text()
	assert.Contains(t, last, "stopped: state fresh")
	assert.Equal(t, exitOK, <-done)
	for _, l := range []string{first, last, stderr.String()} {
		assert.NotContains(t, l, "watchKEY", "the key is never printed")
	}
}
