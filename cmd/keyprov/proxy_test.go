package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

const embedBody = `{"model":"` + standin.DefaultModel + `","input":"hello"}`

func TestProxyForwardsWithTheRealKey(t *testing.T) {
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	p := startProxy(t, env, "--service", "tessera")

	resp, body := p.do(t, http.MethodPost, "/v1/embeddings?trace=abc", p.Token, strings.NewReader(embedBody),
		"Content-Type", "application/json", "Connection", "X-Drop-Me", "X-Drop-Me", "1", "X-Keep", "1")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, `"embedding"`)
	resp, body = p.do(t, http.MethodGet, "/v1/models", p.Token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	st := up.Stats()
	assert.Equal(t, 2, st.Accepted, "both requests reached the stand-in with a valid key")
	assert.Equal(t, 2, st.ByKey[standin.Fingerprint(key)], "with the real key")
	assert.Zero(t, st.ByKey[standin.Fingerprint(p.Token)], "never with the local token")
	assert.Len(t, st.ByKey, 1)

	log := p.log.String()
	assert.Contains(t, log, `msg="proxy request" method=POST path=/v1/embeddings status=200`)
	assert.Contains(t, log, "key="+standin.Fingerprint(key))
	assert.NotContains(t, log, "trace=abc", "the access log has no query")
	assert.NotContains(t, log, key[len(key)-12:], "the key is never logged")
	assert.NotContains(t, log, p.Token[len(p.Token)-12:], "the local token is never logged")
}

func TestProxyHeadersAndPaths(t *testing.T) {
	key := newTesseraKey()
	seen := make(chan http.Header, 1)
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("X-End", "1")
		fmt.Fprint(w, r.URL.RequestURI())
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")

	resp, body := p.do(t, http.MethodGet, "/v1/a/b?x=1&y=2", p.Token, nil,
		"Connection", "X-Drop-Me", "X-Drop-Me", "1", "X-Keep", "1", "Proxy-Authorization", "Basic eA==")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "/v1/a/b?x=1&y=2", body, "path and query pass through")
	h := <-seen
	assert.Equal(t, "Bearer "+key, h.Get("Authorization"), "the client's Authorization is replaced by the key")
	assert.Equal(t, "1", h.Get("X-Keep"))
	assert.Empty(t, h.Get("X-Drop-Me"), "a header the client's Connection names is hop-by-hop")
	assert.Empty(t, h.Get("Proxy-Authorization"))
	assert.Equal(t, "1", resp.Header.Get("X-End"))
	assert.Empty(t, resp.Header.Get("X-Hop"), "hop-by-hop headers are dropped on the way back too")

	for _, path := range []string{"/v2/models", "/", "/v1x", "/v1/../admin"} {
		resp, _ = p.do(t, http.MethodGet, path, p.Token, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "%s is not under the base path /v1", path)
	}
	assert.Empty(t, seen, "no refused path reached the upstream")
}

func TestProxyRefusesWithoutTouchingTheUpstream(t *testing.T) {
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	p := startProxy(t, env, "--service", "tessera")

	tests := []struct {
		name   string
		token  string
		hdr    []string
		status int
	}{
		{"no token", "", nil, http.StatusUnauthorized},
		{"wrong token", p.Token + "x", nil, http.StatusUnauthorized},
		{"the real key as token", key, nil, http.StatusUnauthorized},
		{"basic auth", "", []string{"Authorization", "Basic " + p.Token}, http.StatusUnauthorized},
		{"X-Forwarded-For", p.Token, []string{"X-Forwarded-For", "203.0.113.7"}, http.StatusBadRequest},
		{"Forwarded", p.Token, []string{"Forwarded", "for=203.0.113.7"}, http.StatusBadRequest},
		{"foreign Host", p.Token, []string{"Host", "evil.example"}, http.StatusMisdirectedRequest},
		{"foreign Host with our port", p.Token, []string{"Host", "evil.example:" + p.URL[strings.LastIndexByte(p.URL, ':')+1:]}, http.StatusMisdirectedRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := p.do(t, http.MethodPost, "/v1/embeddings", tt.token, strings.NewReader(embedBody), tt.hdr...)
			assert.Equal(t, tt.status, resp.StatusCode, body)
			assert.Contains(t, body, `"keyprov_proxy_error"`)
		})
	}
	assert.Zero(t, up.Stats().Requests, "no refused request reached the stand-in")
	assert.Contains(t, p.log.String(), `method=POST path=/v1/embeddings status=401`, "refusals are logged too")
	assert.NotContains(t, p.log.String(), p.Token[len(p.Token)-12:], "never with the token")
	assert.NotContains(t, p.log.String(), key[len(key)-12:], "nor the key")

	resp, _ := p.do(t, http.MethodPost, "/v1/embeddings", p.Token, strings.NewReader(embedBody), "Host", "localhost"+p.URL[strings.LastIndexByte(p.URL, ':'):])
	assert.Equal(t, http.StatusOK, resp.StatusCode, "localhost:PORT names the loopback listener too")
}

func TestProxyProbesNeedNoToken(t *testing.T) {
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	p := startProxy(t, env, "--service", "tessera")
	resp, body := p.do(t, http.MethodGet, "/healthz", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok\n", body)
	resp, body = p.do(t, http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ready: fresh\n", body)
	_ = p.src.Close()
	resp, body = p.do(t, http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "not ready: closed\n", body)
	assert.Zero(t, up.Stats().Requests)
}

func TestProxyStartupRefusals(t *testing.T) {
	key := newTesseraKey()
	env, _ := fileKeyEnv(t, key, "http://127.0.0.1:9/v1")
	tok := filepath.Join(t.TempDir(), "tok")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"all interfaces", env, []string{"--listen", "0.0.0.0:8787"}, exitUsage, "not a loopback address"},
		{"a LAN address", env, []string{"--listen", "192.0.2.10:8787"}, exitUsage, "--allow-non-loopback"},
		{"a name", env, []string{"--listen", "example.com:8787"}, exitUsage, "not a loopback address"},
		{"no token file", env, []string{"--listen", "127.0.0.1:0"}, exitUsage, "--token-file is required"},
		{"trust on tcp", env, []string{"--listen", "127.0.0.1:0", "--socket-trust", "--token-file", tok}, exitUsage, "--socket-trust needs"},
		{"plain http upstream", env, []string{"--listen", "127.0.0.1:0", "--token-file", tok, "--upstream", "http://api.example.com/v1"}, exitUsage, "only over HTTPS"},
		{"credentials in upstream", env, []string{"--listen", "127.0.0.1:0", "--token-file", tok, "--upstream", "https://u:p@api.example.com/v1"}, exitUsage, "credentials"},
		{"plain http from env", map[string]string{"TESSERA_API_KEY": key, "TESSERA_BASE_URL": "http://10.0.0.1/v1"}, []string{"--listen", "127.0.0.1:0", "--token-file", tok}, exitUsage, "TESSERA_BASE_URL"},
		{"no key", map[string]string{}, []string{"--listen", "127.0.0.1:0", "--token-file", tok}, exitFail, "TESSERA_API_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			p, code := newProxyServer(context.Background(), append([]string{"--service", "tessera"}, tt.args...), mapEnv(tt.env), io.Discard, &stderr)
			assert.Nil(t, p)
			assert.Equal(t, tt.code, code)
			assert.Contains(t, stderr.String(), tt.msg)
		})
	}
}

func TestProxyTokenFile(t *testing.T) {
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	dir := t.TempDir()

	file := filepath.Join(dir, "new")
	p := startProxy(t, env, "--service", "tessera", "--token-file", file)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a generated token is written 0600")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	tok := strings.TrimSpace(string(b))
	assert.True(t, strings.HasPrefix(tok, localTokenPrefix))
	assert.Len(t, tok, len(localTokenPrefix)+64, "256 random bits")
	resp, _ := p.do(t, http.MethodGet, "/v1/models", tok, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	p2 := startProxy(t, env, "--service", "tessera", "--token-file", file)
	resp, _ = p2.do(t, http.MethodGet, "/v1/models", tok, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "an existing token file is read, not replaced")

	for name, content := range map[string]string{"short": "abc", "the key": key, "blank inside": "aaaaaaaaaaaa bbbbbbbbbbbbbbbb"} {
		f := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(f, []byte(content), 0o600))
		var stderr syncBuffer
		_, code := newProxyServer(context.Background(), []string{"--service", "tessera", "--listen", "127.0.0.1:0", "--token-file", f}, mapEnv(env), io.Discard, &stderr)
		assert.Equal(t, exitFail, code, name)
		assert.NotContains(t, stderr.String(), key[len(key)-12:])
	}
}

func TestProxyUnixSocket(t *testing.T) {
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	dir, err := os.MkdirTemp("", "kp") // short: a socket path is limited to ~100 bytes
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	sock := filepath.Join(dir, "s")
	p := startProxy(t, env, "--service", "tessera", "--listen", "unix:"+sock, "--token-file", filepath.Join(dir, "tok"))
	b, err := os.ReadFile(filepath.Join(dir, "tok"))
	require.NoError(t, err)
	p.Token = strings.TrimSpace(string(b))
	fi, err := os.Lstat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	client := unixClient(sock)
	get := func(tp *testProxy, token string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://localhost/v1/models", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, get(p, ""), "the token is still required on a socket")
	assert.Equal(t, http.StatusOK, get(p, p.Token))
	assert.Equal(t, 0, p.stop())
	_, err = os.Lstat(sock)
	assert.ErrorIs(t, err, os.ErrNotExist, "the socket is removed at shutdown")

	trusted := filepath.Join(dir, "t")
	p = startProxy(t, env, "--service", "tessera", "--listen", "unix:"+trusted, "--socket-trust", "--socket-mode", "0660", "--socket-group", strconv.Itoa(os.Getgid()))
	fi, err = os.Lstat(trusted)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		assert.Equal(t, uint32(os.Getgid()), st.Gid, "--socket-group")
	}
	client = unixClient(trusted)
	assert.Equal(t, http.StatusOK, get(p, ""), "--socket-trust: whoever can connect is trusted")
	assert.Equal(t, 2, up.Stats().Accepted)
}

// TestProxyRedirectCarriesNoKey: the upstream redirects to another host;
// the proxy follows (the Transport's rules) and the key stays behind.
func TestProxyRedirectCarriesNoKey(t *testing.T) {
	key := newTesseraKey()
	other := make(chan http.Header, 2)
	elsewhere := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other <- r.Header.Clone()
		fmt.Fprint(w, "elsewhere")
	}))
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, elsewhere+"/file", http.StatusFound)
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")
	resp, body := p.do(t, http.MethodGet, "/v1/files/1/content", p.Token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "elsewhere", body)
	h := <-other
	assert.Empty(t, h.Values("Authorization"), "the redirect's target got neither the key nor the local token")
}

// TestProxyFollows307WithTheBody: a same-host 307 repeats the POST, body
// and key included.
func TestProxyFollows307WithTheBody(t *testing.T) {
	key := newTesseraKey()
	got := make(chan string, 1)
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/old" {
			http.Redirect(w, r, "/v1/new", http.StatusTemporaryRedirect)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- r.Method + " " + r.Header.Get("Authorization") + " " + string(b)
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")
	resp, _ := p.do(t, http.MethodPost, "/v1/old", p.Token, strings.NewReader(embedBody))
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "POST Bearer "+key+" "+embedBody, <-got)
}

func TestProxyReplaysAfter401AndPassesThrottling(t *testing.T) {
	key, next := newTesseraKey(), newTesseraKey()
	up := newStandin(t, key)
	env, file := fileKeyEnv(t, key, up.BaseURL())
	p := startProxy(t, env, "--service", "tessera")

	require.NoError(t, os.WriteFile(file, []byte(next), 0o600))
	up.Rotate(next, 0) // the old key is refused from now on
	resp, body := p.do(t, http.MethodPost, "/v1/embeddings", p.Token, strings.NewReader(embedBody), "Content-Type", "application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	st := up.Stats()
	assert.Equal(t, 1, st.ByStatus[http.StatusUnauthorized], "one 401 for the old key")
	assert.Equal(t, standin.Fingerprint(next), st.LastAccepted, "the replay carried the new key")

	up.Throttle(1, 7*time.Second)
	resp, body = p.do(t, http.MethodGet, "/v1/models", p.Token, nil)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	assert.Equal(t, "7", resp.Header.Get("Retry-After"), "a 429 passes through with its Retry-After")

	up.Deny(next)
	resp, body = p.do(t, http.MethodGet, "/v1/models", p.Token, nil)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	assert.Equal(t, 1, up.Stats().ByStatus[http.StatusForbidden], "a 403 is not retried")
}

func TestProxyRetryFlag(t *testing.T) {
	key := newTesseraKey()
	var n atomic.Int32
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera", "--retry")
	resp, body := p.do(t, http.MethodGet, "/v1/models", p.Token, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, int32(2), n.Load(), "--retry sent the throttled GET again")
}

// TestProxyStreamsEventByEvent: each server-sent event reaches the client
// before the upstream writes the next one.
func TestProxyStreamsEventByEvent(t *testing.T) {
	key := newTesseraKey()
	step := make(chan struct{})
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-step:
			case <-r.Context().Done():
				return
			}
		}
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/v1/chat/completions", strings.NewReader(`{"stream":true}`))
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := proxyTestClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("data: event %d\n", i), line, "event %d arrived before the upstream sent the next", i)
		_, _ = r.ReadString('\n')
		step <- struct{}{}
	}
}

// TestProxyClientCancelCancelsUpstream: the upstream request ends when the
// client goes away.
func TestProxyClientCancelCancelsUpstream(t *testing.T) {
	key := newTesseraKey()
	started, cancelled := make(chan struct{}), make(chan struct{})
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(20 * time.Second):
		}
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/v1/slow", nil)
	req.Header.Set("Authorization", "Bearer "+p.Token)
	errc := make(chan error, 1)
	go func() {
		resp, err := proxyTestClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled within 10s of the client's")
	}
	assert.Error(t, <-errc)
}

// TestProxyGracefulShutdown: on stop, a request in flight finishes.
func TestProxyGracefulShutdown(t *testing.T) {
	key := newTesseraKey()
	started, release := make(chan struct{}), make(chan struct{})
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		fmt.Fprint(w, "finished")
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera")
	type result struct {
		status int
		body   string
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, p.URL+"/v1/x", nil)
		req.Header.Set("Authorization", "Bearer "+p.Token)
		resp, err := proxyTestClient.Do(req)
		if err != nil {
			res <- result{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		res <- result{resp.StatusCode, string(b)}
	}()
	<-started
	stopped := make(chan int, 1)
	go func() { stopped <- p.stop() }()
	// The listener closes at once; the request in flight goes on.
	require.Eventually(t, func() bool {
		_, err := http.Get(p.URL + "/healthz")
		return err != nil
	}, 10*time.Second, 5*time.Millisecond, "the proxy stopped accepting")
	close(release)
	r := <-res
	assert.Equal(t, result{http.StatusOK, "finished"}, r)
	assert.Equal(t, exitOK, <-stopped)
}

// TestProxyReplayLimit: a body up to --max-replay-body is replayed after a
// 401; a larger one streams through, and its 401 comes back as it is.
func TestProxyReplayLimit(t *testing.T) {
	key, next := newTesseraKey(), newTesseraKey()
	var current atomic.Value
	current.Store(key)
	var got atomic.Int64
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Header.Get("Authorization") != "Bearer "+current.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got.Store(n)
		fmt.Fprint(w, n)
	}))
	env, file := fileKeyEnv(t, key, base+"/v1")
	p := startProxy(t, env, "--service", "tessera", "--max-replay-body", "1024")
	rotateTo := func(k string) {
		require.NoError(t, os.WriteFile(file, []byte(k), 0o600))
		current.Store(k)
	}

	rotateTo(next)
	resp, body := p.do(t, http.MethodPost, "/v1/upload", p.Token, strings.NewReader(strings.Repeat("a", 1024)))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a 1,024-byte body was kept and replayed with the new key")
	assert.Equal(t, "1024", body)

	// The next forced refresh may come only after MinRefreshInterval (5s):
	// a new proxy starts afresh.
	p = startProxy(t, env, "--service", "tessera", "--max-replay-body", "1024")
	rotateTo(key)
	resp, _ = p.do(t, http.MethodPost, "/v1/upload", p.Token, io.MultiReader(strings.NewReader(strings.Repeat("b", 1025))))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a 1,025-byte chunked body streamed through: the 401 is the client's")
	resp, body = p.do(t, http.MethodPost, "/v1/upload", p.Token, strings.NewReader(strings.Repeat("c", 4096)))
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the next request has the new key")
	assert.Equal(t, "4096", body, "a large body arrives whole")
}

func TestProxyUpstreamDown(t *testing.T) {
	key := newTesseraKey()
	ln, err := netListenLoopback()
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	env, _ := fileKeyEnv(t, key, dead+"/v1")
	p := startProxy(t, env, "--service", "tessera")
	resp, body := p.do(t, http.MethodGet, "/v1/models", p.Token, nil)
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.Contains(t, body, "upstream_unreachable")
	assert.NotContains(t, p.log.String(), key[len(key)-12:])
}
