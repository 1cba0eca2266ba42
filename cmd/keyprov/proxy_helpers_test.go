package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

// syncBuffer is a bytes.Buffer safe for concurrent use (the proxy's and
// keyprov exec's goroutines log to one).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testProxy is a keyprov proxy a test started in-process.
type testProxy struct {
	*proxyServer
	// URL is "http://127.0.0.1:PORT", the proxy's root.
	URL string
	// Token is the local token.
	Token string
	log   *syncBuffer
	stop  func() int
}

// startProxy starts keyprov proxy in-process with args (plus --listen
// 127.0.0.1:0 and a --token-file in a temporary folder unless args give
// them) in the environment env, and stops it when the test ends.
func startProxy(t *testing.T, env map[string]string, args ...string) *testProxy {
	t.Helper()
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "--listen") {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	tokenFile := ""
	if !strings.Contains(joined, "--token-file") && !strings.Contains(joined, "--socket-trust") {
		tokenFile = filepath.Join(t.TempDir(), "token")
		args = append(args, "--token-file", tokenFile)
	}
	log := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	p, code := newProxyServer(ctx, args, mapEnv(env), io.Discard, log)
	require.Equal(t, -1, code, "keyprov proxy did not start:\n%s", log)
	tp := &testProxy{proxyServer: p, URL: "http://" + p.ln.Addr().String(), log: log}
	if p.ln.Addr().Network() == "unix" {
		tp.URL = "http://localhost"
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		require.NoError(t, err)
		tp.Token = strings.TrimSpace(string(b))
	}
	done := make(chan int, 1)
	go func() { done <- p.serve(ctx) }()
	var once sync.Once
	code = -1
	tp.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("keyprov proxy did not stop within 20s")
			}
		})
		return code
	}
	t.Cleanup(func() {
		tp.stop()
		assertNoKey(t, log.String())
	})
	return tp
}

// do sends a request to the proxy with the local token (unless token is
// empty) and returns the response with its body read.
func (tp *testProxy) do(t *testing.T, method, path, token string, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, tp.URL+path, body)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := proxyTestClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// proxyTestClient talks to in-process proxies; it never follows redirects,
// so a test sees what the proxy answered.
var proxyTestClient = &http.Client{
	Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// fileKeyEnv writes key to a file and returns an environment whose
// TESSERA_API_KEY is a file:// reference to it, with TESSERA_BASE_URL set to
// base, and the file's path.
func fileKeyEnv(t *testing.T, key, base string) (map[string]string, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "tessera-key")
	require.NoError(t, os.WriteFile(file, []byte(key+"\n"), 0o600))
	return map[string]string{"TESSERA_API_KEY": "file://" + file, "TESSERA_BASE_URL": base}, file
}

// newStandin starts a stand-in that accepts key.
func newStandin(t *testing.T, key string) *standin.Server {
	return standin.New(t, standin.WithKeys(key))
}

// loopbackServer starts an HTTP server on 127.0.0.1 for h and closes it at
// the end of the test.
func loopbackServer(t testing.TB, h http.Handler) (url string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// newTesseraKey is a fresh random Tessera key.
func newTesseraKey() string { return standin.NewKey(keyprovider.Tessera) }

// unixClient is a client that reaches the socket at path whatever the URL.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// netListenLoopback listens on a free port of 127.0.0.1.
func netListenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
