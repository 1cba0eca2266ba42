package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The proxy against Go's bare httputil.ReverseProxy with a static header,
// and against calling the upstream directly, on one loopback upstream
// answering a small JSON body, at 64 concurrent clients and at one. Every
// side runs in this process (2 cores shared by upstream, proxy and
// clients), the same for the three. Each reports requests/s and the median
// latency; the keyprov side includes its access log (formatted, then
// discarded).
//
//	go test -run '^$' -bench BenchmarkProxy -benchtime 3s ./cmd/keyprov/
func BenchmarkProxy(b *testing.B) {
	for _, conc := range []int{64, 1} {
		for _, tg := range benchTargets(b) {
			b.Run(fmt.Sprintf("%s/clients=%d", tg.name, conc), func(b *testing.B) {
				benchClients(b, tg.url+"/v1/models", tg.auth, conc)
			})
		}
	}
}

// TestProxyThroughputAlternating measures the three targets in turns (one
// second each, five rounds, 64 clients) so that the load of other
// processes on a shared machine falls on all three alike, and reports the
// median of each round's ratios. Run with KEYPROVIDER_PROXY_BENCH=1.
func TestProxyThroughputAlternating(t *testing.T) {
	if os.Getenv("KEYPROVIDER_PROXY_BENCH") != "1" {
		t.Skip("a measurement, not a test: set KEYPROVIDER_PROXY_BENCH=1")
	}
	targets := benchTargets(t)
	var vsRP, vsDirect []float64
	for round := range 5 {
		var rps [3]float64
		var p50 [3]time.Duration
		for i, tg := range targets {
			var err error
			if rps[i], p50[i], err = measure(tg.url+"/v1/models", tg.auth, 64, time.Second); err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
		}
		t.Logf("round %d: direct %.0f req/s (p50 %s), reverseproxy %.0f (p50 %s), keyprov %.0f (p50 %s)",
			round, rps[0], p50[0], rps[1], p50[1], rps[2], p50[2])
		vsDirect, vsRP = append(vsDirect, rps[2]/rps[0]), append(vsRP, rps[2]/rps[1])
	}
	slices.Sort(vsDirect)
	slices.Sort(vsRP)
	t.Logf("keyprov throughput, median of 5 rounds: %.0f%% of httputil.ReverseProxy, %.0f%% of direct", 100*vsRP[2], 100*vsDirect[2])
}

type benchTarget struct{ name, url, auth string }

// benchBody is what the benchmarks' upstream answers: a small JSON body,
// the size of a model list.
var benchBody = []byte(`{"object":"list","data":[{"id":"Qwen/Qwen3-Embedding-8B","object":"model"}]}`)

// benchUpstream is the benchmarks' upstream handler.
func benchUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(benchBody)
	})
}

// benchReverseProxy is the baseline: Go's bare httputil.ReverseProxy to
// upstream, adding a static Authorization header.
func benchReverseProxy(upstream *url.URL, key string) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			r.Out.Header.Set("Authorization", "Bearer "+key)
		},
		Transport: benchTransport(),
	}
}

// benchTargets starts one loopback upstream answering a small JSON body,
// a bare httputil.ReverseProxy to it adding a static Authorization header,
// and keyprov proxy to it; it returns the three ways to reach it.
func benchTargets(tb testing.TB) []benchTarget {
	upstream := loopbackServer(tb, benchUpstream())
	key := newTesseraKey()
	u, _ := url.Parse(upstream)
	reverse := loopbackServer(tb, benchReverseProxy(u, key))

	dir := tb.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		tb.Fatal(err)
	}
	env := map[string]string{"TESSERA_API_KEY": "file://" + file, "TESSERA_BASE_URL": upstream + "/v1"}
	ctx, cancel := context.WithCancel(context.Background())
	p, code := newProxyServer(ctx, []string{"--service", "tessera", "--listen", "127.0.0.1:0", "--token-file", filepath.Join(dir, "tok")}, mapEnv(env), io.Discard, io.Discard)
	if code >= 0 {
		cancel()
		tb.Fatalf("proxy did not start: %d", code)
	}
	done := make(chan int)
	go func() { done <- p.serve(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	tok, _ := os.ReadFile(filepath.Join(dir, "tok"))
	return []benchTarget{
		{"direct", upstream, "Bearer " + key},
		{"reverseproxy", reverse, ""},
		{"keyprov", "http://" + p.ln.Addr().String(), "Bearer " + strings.TrimSpace(string(tok))},
	}
}

// measure sends requests from conc goroutines for d and returns the
// requests/s and the median latency; it stops at the first failed request.
func measure(url, auth string, conc int, d time.Duration) (float64, time.Duration, error) {
	client := &http.Client{Transport: benchTransport()}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(d)
	var mu sync.Mutex
	var lat []time.Duration
	var failed error
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var err error
			for err == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if err = benchGet(client, url, auth); err == nil {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			if err != nil && failed == nil {
				failed = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failed != nil {
		return 0, 0, failed
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("no request finished in %s", d)
	}
	slices.Sort(lat)
	return float64(len(lat)) / d.Seconds(), lat[len(lat)/2], nil
}

func benchGet(client *http.Client, url, auth string) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// benchClients sends b.N requests from conc goroutines and reports
// requests/s and the median latency.
func benchClients(b *testing.B, url, auth string, conc int) {
	client := &http.Client{Transport: benchTransport()}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	next := make(chan struct{}, conc)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range next {
				t0 := time.Now()
				if err := benchGet(client, url, auth); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

func benchTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 512, 256
	return t
}
