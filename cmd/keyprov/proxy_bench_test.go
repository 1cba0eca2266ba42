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
	body := []byte(`{"object":"list","data":[{"id":"Qwen/Qwen3-Embedding-8B","object":"model"}]}`)
	upstream := benchServer(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	key := newTesseraKey()

	u, _ := url.Parse(upstream)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Header.Set("Authorization", "Bearer "+key)
		},
		Transport: benchTransport(),
	}
	reverse := benchServer(b, rp)

	dir := b.TempDir()
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(key), 0o600); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{"TESSERA_API_KEY": "file://" + file, "TESSERA_BASE_URL": upstream + "/v1"}
	ctx, cancel := context.WithCancel(context.Background())
	p, code := newProxyServer(ctx, []string{"--service", "tessera", "--listen", "127.0.0.1:0", "--token-file", filepath.Join(dir, "tok")}, mapEnv(env), io.Discard, io.Discard)
	if code >= 0 {
		b.Fatalf("proxy did not start: %d", code)
	}
	done := make(chan int)
	go func() { done <- p.serve(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	tok, _ := os.ReadFile(filepath.Join(dir, "tok"))

	targets := []struct{ name, url, auth string }{
		{"direct", upstream, "Bearer " + key},
		{"reverseproxy", "http://" + reverse[len("http://"):], ""},
		{"keyprov", "http://" + p.ln.Addr().String(), "Bearer " + string(tok[:len(tok)-1])},
	}
	for _, conc := range []int{64, 1} {
		for _, tg := range targets {
			b.Run(fmt.Sprintf("%s/clients=%d", tg.name, conc), func(b *testing.B) {
				benchClients(b, tg.url+"/v1/models", tg.auth, conc)
			})
		}
	}
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
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
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

func benchServer(b *testing.B, h http.Handler) string {
	b.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ln, err := netListenLoopback()
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
