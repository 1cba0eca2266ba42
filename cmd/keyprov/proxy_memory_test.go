package main

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProxyMemoryPerStream streams 100 MB through the proxy from an
// upstream that writes (and flushes) 16 KiB at a time, and measures what the
// whole test process allocated meanwhile (upstream, proxy and client
// together, so an upper bound of the proxy's share) and its peak heap in
// use. A proxy that buffered the response would allocate at least 100 MB.
func TestProxyMemoryPerStream(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 100 MB")
	}
	const total = 100 << 20
	key := newTesseraKey()
	chunk := make([]byte, 16<<10)
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			f.Flush()
		}
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/v1/big", nil)
	req.Header.Set("Authorization", "Bearer "+p.Token)
	runtime.GC()
	var before, ms runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	resp, err := proxyTestClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, int64(-1), resp.ContentLength, "streamed, not buffered to learn its length")
	buf := make([]byte, 64<<10)
	var n int64
	var peak uint64
	for next := int64(0); ; {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if n >= next {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			next += 5 << 20
		}
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms)
	require.Equal(t, int64(total), n)
	alloc := ms.TotalAlloc - before.TotalAlloc
	t.Logf("100 MB streamed in %s (%.0f MB/s): %.2f MiB allocated by the whole process meanwhile, peak heap in use %.2f MiB (%.2f MiB before)",
		elapsed.Round(time.Millisecond), float64(total)/1e6/elapsed.Seconds(), float64(alloc)/(1<<20), float64(peak)/(1<<20), float64(before.HeapInuse)/(1<<20))
	assert.Less(t, alloc, uint64(16<<20), "the process allocated far less than the 100 MB it streamed")
	assert.Less(t, peak, before.HeapInuse+16<<20, "the heap never held the stream")
}
