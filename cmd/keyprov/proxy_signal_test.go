//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProxySIGTERMFinishesInFlight: the keyprov binary, sent SIGTERM while
// a request is in flight, stops accepting, lets the request finish and
// exits 0.
func TestProxySIGTERMFinishesInFlight(t *testing.T) {
	key := newTesseraKey()
	started, release := make(chan struct{}), make(chan struct{})
	base := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-time.After(20 * time.Second):
		}
		fmt.Fprint(w, "finished")
	}))
	env, _ := fileKeyEnv(t, key, base+"/v1")
	tokFile := filepath.Join(t.TempDir(), "tok")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, keyprovBin(t), "proxy", "--service", "tessera", "--listen", "127.0.0.1:0", "--token-file", tokFile)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	addr := proxyAddr(t, stderr)
	logs := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); logs <- string(b) }()
	tok, err := os.ReadFile(tokFile)
	require.NoError(t, err)

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/slow", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		res <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-started
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err != nil
	}, 10*time.Second, 5*time.Millisecond, "the proxy stopped accepting")
	close(release)
	assert.Equal(t, result{status: http.StatusOK, body: "finished"}, <-res)
	require.NoError(t, cmd.Wait(), "exit status 0 after SIGTERM")
	log := <-logs
	assert.Contains(t, log, "keyprov proxy shutting down")
	assert.Contains(t, log, `msg="proxy request" method=GET path=/v1/slow status=200`)
	assert.NotContains(t, log, key[len(key)-12:])
}
