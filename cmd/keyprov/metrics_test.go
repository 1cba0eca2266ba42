package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documentedMetrics are the Prometheus names of README.md's metrics table,
// so that the table and what keyprov serves cannot drift apart.
func documentedMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `keyprovider.") {
			continue
		}
		cols := strings.Split(line, "|")
		require.Greater(t, len(cols), 5, "a row of the metrics table: %q", line)
		names = append(names, strings.Trim(strings.TrimSpace(cols[5]), "`"))
	}
	require.Len(t, names, 13, "README.md's metrics table has a row per instrument")
	return names
}

// scrape GETs url and returns the body; it fails the test on any status
// but 200.
func scrape(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := proxyTestClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, b)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain", "Prometheus text")
	return string(b)
}

// sampleLine is a Prometheus sample: name, {labels}, value.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? `)

// labelName is one label name in a sample's {labels}.
var labelName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)

// keyprovLabels are the only labels a keyprovider_ sample may carry: the
// documented attributes, the histogram's le and the exporter's scope.
var keyprovLabels = map[string]bool{
	"keyprovider_service": true, "keyprovider_backend": true, "keyprovider_result": true,
	"keyprovider_state": true, "keyprovider_trigger": true, "le": true,
	"otel_scope_name": true, "otel_scope_version": true, "otel_scope_schema_url": true,
}

// assertMetricsPage checks a /metrics page: every name in want has a sample
// (a histogram's _bucket, _sum and _count count), keyprovider's samples
// carry only the documented labels, and none of secrets appears.
func assertMetricsPage(t *testing.T, page string, want []string, secrets ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		name := m[1]
		seen[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				seen[base] = true
			}
		}
		if strings.HasPrefix(name, "keyprovider_") {
			for _, l := range labelName.FindAllStringSubmatch(m[2], -1) {
				assert.True(t, keyprovLabels[l[1]], "undocumented label %s in %q", l[1], line)
			}
		}
	}
	for _, name := range want {
		assert.True(t, seen[name], "/metrics has no %s", name)
	}
	assert.NotContains(t, page, "…", "no fingerprint")
	for _, s := range secrets {
		assert.NotContains(t, page, s, "/metrics holds a key, a fingerprint, a path or a reference")
	}
	assertNoKey(t, page)
}

// metricsUpstream is an upstream on which every instrument of the
// Transport counts: /v1/ok answers 200; /v1/throttled 429; /v1/away
// redirects to another host (the key is withheld there); /v1/revoked
// rejects the key from the file with a 401 after writing next into it, so
// that the Transport's replay after its forced refresh carries next.
func metricsUpstream(t *testing.T, file, key, next string) string {
	elsewhere := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "elsewhere")
	}))
	return loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/throttled":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/v1/away":
			http.Redirect(w, r, elsewhere+"/file", http.StatusFound)
		case "/v1/revoked":
			if r.Header.Get("Authorization") == "Bearer "+key {
				if err := os.WriteFile(file, []byte(next+"\n"), 0o600); err != nil {
					t.Errorf("rotating the key file: %v", err)
				}
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, "ok")
		default:
			fmt.Fprint(w, "ok")
		}
	}))
}

// exerciseProxy sends p one request down each of metricsUpstream's paths.
func exerciseProxy(t *testing.T, p *testProxy) {
	t.Helper()
	for path, want := range map[string]int{
		"/v1/ok": http.StatusOK, "/v1/throttled": http.StatusTooManyRequests,
		"/v1/away": http.StatusOK, "/v1/revoked": http.StatusOK,
	} {
		resp, body := p.do(t, http.MethodPost, path, p.Token, strings.NewReader(embedBody))
		require.Equal(t, want, resp.StatusCode, "%s: %s", path, body)
	}
}

// TestProxyServesMetrics: after requests down every path that counts, the
// proxy's /metrics, served without the local token, holds every metric of
// README's table and nothing secret.
func TestProxyServesMetrics(t *testing.T) {
	key, next := newTesseraKey(), newTesseraKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "tessera-key")
	require.NoError(t, os.WriteFile(file, []byte(key+"\n"), 0o600))
	base := metricsUpstream(t, file, key, next)
	env := map[string]string{"TESSERA_API_KEY": "file://" + file, "TESSERA_BASE_URL": base + "/v1"}
	p := startProxy(t, env, "--service", "tessera")
	exerciseProxy(t, p)

	page := scrape(t, p.URL+"/metrics")
	assertMetricsPage(t, page, documentedMetrics(t), key, next, fp(key), fp(next), file, dir,
		"file://", base, p.Token)
	assert.Regexp(t, `keyprovider_http_requests_total\{[^}]*keyprovider_result="2xx"[^}]*keyprovider_service="tessera"`, page)
	assert.Regexp(t, `keyprovider_fetches_total\{[^}]*keyprovider_backend="file"[^}]*keyprovider_result="ok"`, page)
	assert.Regexp(t, `(?m)^keyprovider_source_rotations_total\{[^}]*\} [1-9]`, page, "the key changed once")
}

// TestProxyMetricsListen: with --metrics-listen, /metrics is served there,
// and the proxy's own address treats /metrics as any other path.
func TestProxyMetricsListen(t *testing.T) {
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	ln, err := netListenLoopback()
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	p := startProxy(t, env, "--service", "tessera", "--metrics-listen", addr)
	resp, body := p.do(t, http.MethodGet, "/v1/models", p.Token, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)

	page := scrape(t, "http://"+addr+"/metrics")
	assert.Contains(t, page, "keyprovider_http_requests_total")
	assert.Contains(t, page, "keyprovider_source_state")
	resp, _ = p.do(t, http.MethodGet, "/metrics", "", nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "not served on --listen: the local token is asked for")
	resp, _ = p.do(t, http.MethodGet, "/healthz", "", nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	assert.Equal(t, exitOK, p.stop())
	c := &http.Client{Timeout: 2 * time.Second}
	_, err = c.Get("http://" + addr + "/metrics")
	assert.Error(t, err, "the metrics listener is closed with the proxy")
}

func TestMetricsListenRefusesNonLoopback(t *testing.T) {
	key := newTesseraKey()
	env, _ := fileKeyEnv(t, key, "http://127.0.0.1:1/v1")
	var stderr syncBuffer
	_, code := newProxyServer(context.Background(), []string{"--service", "tessera", "--token-file",
		filepath.Join(t.TempDir(), "token"), "--metrics-listen", "0.0.0.0:0"}, mapEnv(env), io.Discard, &stderr)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, stderr.String(), "--metrics-listen")

	_, _, _, code = parseExecArgs([]string{"--metrics-listen", "192.0.2.1:9100", "--", "true"}, &stderr)
	assert.Equal(t, exitExecFailed, code)
	_, _, _, code = parseExecArgs([]string{"--metrics-listen", "127.0.0.1", "--", "true"}, &stderr)
	assert.Equal(t, exitExecFailed, code, "host:port is required")
	cfg, _, _, code := parseExecArgs([]string{"--metrics-listen", "192.0.2.1:9100", "--allow-non-loopback", "--", "true"}, &stderr)
	assert.Equal(t, -1, code)
	assert.Equal(t, "192.0.2.1:9100", cfg.metricsListen)
}

// listenLine finds the address keyprov logs for its metrics listener.
var listenLine = regexp.MustCompile(`keyprov metrics listening" listen=(127\.0\.0\.1:[0-9]+)`)

// TestExecBinaryServesMetrics: keyprov exec --metrics-listen serves its
// Sources' metrics (every one of README's table but the Transport's, as
// exec has none) while the program runs, nothing secret in them, and
// stops serving when it exits.
func TestExecBinaryServesMetrics(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "tessera")
	writeKey(t, keyPath, tesseraKey)
	script := `trap 'exit 7' TERM; echo "start $$" >> "$CHILD_LOG"; while :; do sleep 0.05; done`
	cmd, log, out := keyprovExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath, "OTHER": "env://RAW", "RAW": tesseraKey2},
		"--metrics-listen", "127.0.0.1:0", "--", "sh", "-c", script)
	pid, err := strconv.Atoi(strings.TrimPrefix(waitLine(t, log), "start "))
	require.NoError(t, err)
	// Should the test stop early, the program is not left running.
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	var addr string
	deadline := time.Now().Add(execWait)
	for addr == "" {
		if m := listenLine.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("keyprov exec logged no metrics address:\n%s", out.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}

	page := scrape(t, "http://"+addr+"/metrics")
	var want []string
	for _, name := range documentedMetrics(t) {
		if !strings.HasPrefix(name, "keyprovider_http_") {
			want = append(want, name)
		}
	}
	assertMetricsPage(t, page, want, tesseraKey, tesseraKey2, fp(tesseraKey), fp(tesseraKey2), keyPath, dir, "file://", "env://")
	assert.Regexp(t, `keyprovider_fetches_total\{[^}]*keyprovider_backend="file"`, page)

	require.NoError(t, cmd.Signal(syscall.SIGTERM))
	assert.Equal(t, 7, exitStatus(t, cmd), "the program's own status; output:\n%s", out.String())
	c := &http.Client{Timeout: 2 * time.Second}
	_, err = c.Get("http://" + addr + "/metrics")
	assert.Error(t, err, "the metrics listener is closed when keyprov exits")
	assertNoKey(t, out.String())
}
