package vault_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/vault"
)

// ownServer is a Vault dev server of the test's own, on a fixed loopback
// port, that the test may seal, stop and start again.
type ownServer struct {
	t    *testing.T
	bin  string
	addr string
	cmd  *exec.Cmd
}

const ownToken = "keyprovider-outage-root"

func startOwnServer(t *testing.T) *ownServer {
	t.Helper()
	devClient(t) // skips or fails like every Vault test
	bin := os.Getenv("KEYPROVIDER_VAULT_BIN")
	if bin == "" {
		if os.Getenv("KEYPROVIDER_REQUIRE_VAULT") == "1" {
			t.Fatal("KEYPROVIDER_VAULT_BIN is not set: run make test")
		}
		t.Skip("KEYPROVIDER_VAULT_BIN is not set (make test sets it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	s := &ownServer{t: t, bin: bin, addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *ownServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "server", "-dev", "-dev-no-store-token", "-dev-root-token-id="+ownToken, "-dev-listen-address="+s.addr)
	require.NoError(s.t, s.cmd.Start())
	// Wait for the server to answer; bounded, and it polls a real process.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.addr + "/v1/sys/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("vault at %s did not come up", s.addr)
}

func (s *ownServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *ownServer) client() *api.Client {
	s.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = "http://" + s.addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	require.NoError(s.t, err)
	s.t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	c.SetToken(ownToken)
	return c
}

func TestSealedAndRestartedVaultKeepsTheLastGoodKey(t *testing.T) {
	srv := startOwnServer(t)
	c := srv.client()
	ctx := context.Background()
	_, err := c.KVv2("secret").Put(ctx, "prod/tessera", map[string]any{"api_key": keyprovidertest.KeyA})
	require.NoError(t, err)

	p, err := vault.New(c, "secret/prod/tessera", vault.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	src, err := rotate.New(p, rotate.WithRefreshInterval(time.Hour))
	require.NoError(t, err)
	defer src.Close()
	k, err := src.Refresh(ctx)
	require.NoError(t, err)
	requireKey(t, keyprovidertest.KeyA, k)

	// Sealed: the provider reports ErrUnavailable; the source serves on.
	require.NoError(t, c.Sys().Seal())
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable, "a sealed Vault is transient")
	_, err = src.Refresh(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable)
	k, err = src.Token(ctx)
	require.NoError(t, err, "the source keeps serving the last good key")
	assertKey(t, keyprovidertest.KeyA, k)
	assert.Equal(t, rotate.Stale, src.Health().State)

	// Stopped: connection refused is ErrUnavailable too.
	srv.stop()
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable, "Vault down")
	k, err = src.Token(ctx)
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k)

	// Restarted (a dev server comes back empty and unsealed): once the key
	// is written again, the same provider and source pick it up.
	srv.start()
	_, err = c.KVv2("secret").Put(ctx, "prod/tessera", map[string]any{"api_key": keyprovidertest.KeyB})
	require.NoError(t, err)
	k, err = src.Refresh(ctx)
	require.NoError(t, err, fmt.Sprint("after restart: ", err))
	assertKey(t, keyprovidertest.KeyB, k)
	assert.Equal(t, rotate.Fresh, src.Health().State)
}
