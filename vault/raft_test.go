package vault_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
	"github.com/keyprovider/keyprovider/vault"
)

// raftNode is one Vault server of a three-node cluster with integrated
// storage, on loopback, that the test may kill.
type raftNode struct {
	id       string
	api      string // http://127.0.0.1:port
	cluster  string // 127.0.0.1:port
	dir      string
	log      *syncWriter // the server's output
	cmd      *exec.Cmd
	waitDone chan struct{}
}

// vaultBin returns the Vault binary of make test, or skips (fails under
// KEYPROVIDER_REQUIRE_VAULT=1).
func vaultBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KEYPROVIDER_VAULT_BIN")
	if bin == "" {
		if os.Getenv("KEYPROVIDER_REQUIRE_VAULT") == "1" {
			t.Fatal("KEYPROVIDER_REQUIRE_VAULT=1 but KEYPROVIDER_VAULT_BIN is not set: run make test")
		}
		t.Skip("KEYPROVIDER_VAULT_BIN is not set: no Vault binary to start a cluster with (make test sets it)")
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// startRaftCluster starts three nodes, each configured to join the others
// (retry_join), and reaps them when the test ends.
func startRaftCluster(t *testing.T, bin string) []*raftNode {
	t.Helper()
	nodes := make([]*raftNode, 3)
	for i := range nodes {
		nodes[i] = &raftNode{id: fmt.Sprintf("node%d", i+1), api: "http://" + freeAddr(t), cluster: freeAddr(t),
			dir: filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1)), log: new(syncWriter)}
		require.NoError(t, os.MkdirAll(nodes[i].dir, 0o700))
	}
	for _, n := range nodes {
		var joins strings.Builder
		for _, other := range nodes {
			if other != n {
				fmt.Fprintf(&joins, "  retry_join {\n    leader_api_addr = %q\n  }\n", other.api)
			}
		}
		cfg := fmt.Sprintf(`storage "raft" {
  path = %q
  node_id = %q
  performance_multiplier = 1
%s}
listener "tcp" {
  address = %q
  cluster_address = %q
  tls_disable = true
}
api_addr = %q
cluster_addr = "https://%s"
disable_mlock = true
`, n.dir, n.id, joins.String(), strings.TrimPrefix(n.api, "http://"), n.cluster, n.api, n.cluster)
		file := filepath.Join(n.dir, "vault.hcl")
		require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
		n.cmd = exec.Command(bin, "server", "-config="+file)
		n.cmd.Env = serverEnv()
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		require.NoError(t, n.cmd.Start())
		n.waitDone = make(chan struct{})
		go func(n *raftNode) { _ = n.cmd.Wait(); close(n.waitDone) }(n)
		t.Cleanup(func() { n.kill(t) })
	}
	return nodes
}

// serverEnv is the process environment without VAULT_ variables, which
// the servers would otherwise take for settings.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

// kill kills the node and waits for it, bounded.
func (n *raftNode) kill(t *testing.T) {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	select {
	case <-n.waitDone:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit after kill", n.id)
	}
	if t.Failed() {
		t.Logf("%s log (tail):\n%s", n.id, tail(n.log.String(), 3000))
	}
	n.cmd = nil
}

// syncWriter is a buffer the server's stdout and stderr share.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// client is a client of n with token and no retries, closed with the test.
func (n *raftNode) client(t *testing.T, token string) *api.Client {
	t.Helper()
	c := fakeClient(t, n.api, token) // the same config as the fake's: loopback, no retries
	return c
}

// status is n's sys/health code: 200 active, 429 standby, 501 not
// initialised, 503 sealed; 0 if it does not answer.
func (n *raftNode) status() int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(n.api + "/v1/sys/health")
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	c.CloseIdleConnections()
	return resp.StatusCode
}

// waitFor polls cond every 50 ms until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// initCluster initialises node 1 (one key share), unseals every node (the
// standbys join node 1 as they are unsealed), waits for three voters and
// returns the root token.
func initCluster(ctx context.Context, t *testing.T, nodes []*raftNode) string {
	t.Helper()
	waitFor(ctx, t, "node1 to answer", func() bool { return nodes[0].status() == http.StatusNotImplemented })
	c1 := nodes[0].client(t, "")
	init, err := c1.Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	require.NoError(t, err)
	_, err = c1.Sys().UnsealWithContext(ctx, init.Keys[0])
	require.NoError(t, err)
	waitFor(ctx, t, "node1 to become active", func() bool { return nodes[0].status() == http.StatusOK })
	c1.SetToken(init.RootToken)
	// Joined nodes become voters once stable for this long (10 s by default).
	_, err = c1.Logical().WriteWithContext(ctx, "sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "1s"})
	require.NoError(t, err)
	for _, n := range nodes[1:] {
		c := n.client(t, "")
		// Unsealing with the cluster's key completes the retry_join; until
		// the node has found the leader, it refuses.
		waitFor(ctx, t, n.id+" to join and unseal", func() bool {
			st, err := c.Sys().UnsealWithContext(ctx, init.Keys[0])
			return err == nil && !st.Sealed
		})
		waitFor(ctx, t, n.id+" to be a standby", func() bool { return n.status() == http.StatusTooManyRequests })
	}
	waitFor(ctx, t, "three voters", func() bool {
		st, err := c1.Sys().RaftAutopilotStateWithContext(ctx)
		return err == nil && len(st.Voters) == 3 && st.Healthy
	})
	return init.RootToken
}

// watched is a Source with the fake time at which it first served KeyB.
type watched struct {
	src     *rotate.Source
	rotated atomic.Pointer[time.Time]
}

// newWatched starts a Source over p, slot i of n, on the fake clock.
func newWatched(t *testing.T, clock *rotatetest.Clock, p *vault.Provider, i, n int, interval time.Duration) *watched {
	t.Helper()
	src, err := rotate.New(p, rotate.WithClock(clock), rotate.WithRefreshInterval(interval), rotate.WithSlot(i, n),
		rotate.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close(); _ = p.Close() })
	w := &watched{src: src}
	src.OnRotate(func(_, k keyprovider.Key) {
		if k.Equal(keyprovider.NewKey(keyprovidertest.KeyB, k.Version())) {
			now := clock.Now()
			w.rotated.CompareAndSwap(nil, &now)
		}
	})
	return w
}

// tokenCallers calls Token on every source every 5 ms until stop is
// closed, and returns how many calls failed.
func tokenCallers(ctx context.Context, all []*watched, stop <-chan struct{}) <-chan int {
	failed := make(chan int, 1)
	go func() {
		n := 0
		for {
			for _, w := range all {
				if k, err := w.src.Token(ctx); err != nil || k.IsZero() {
					n++
				}
			}
			select {
			case <-stop:
				failed <- n
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return failed
}

// raftSources starts viaStandby Sources reading through the standby's
// address, then viaList through FromEnv with the addresses active,
// standby, other, in that order.
func raftSources(ctx context.Context, t *testing.T, clock *rotatetest.Clock, interval time.Duration,
	viaStandby, viaList int, root string, active, standby, other *raftNode) []*watched {
	t.Helper()
	sc := standby.client(t, root)
	var all []*watched
	for i := range viaStandby + viaList {
		var p *vault.Provider
		var err error
		if i < viaStandby {
			p, err = vault.New(sc, "secret/prod/tessera", vault.WithService(keyprovider.Tessera))
		} else {
			env := map[string]string{"VAULT_ADDR": active.api + "," + standby.api + "," + other.api, "VAULT_TOKEN": root}
			p, err = vault.FromEnv(ctx, "secret/prod/tessera", vault.WithLookupEnv(mapEnv(env)), vault.WithService(keyprovider.Tessera))
		}
		require.NoError(t, err)
		all = append(all, newWatched(t, clock, p, i, viaStandby+viaList, interval))
	}
	return all
}

// TestRaftClusterLosesItsLeader: three nodes with integrated storage; 50
// Sources read through a standby, 5 through a list of addresses that
// starts with the active node; the active node is killed, the cluster
// elects a new leader, the key is rotated through it, and every Source
// serves on and picks up the new key within one refresh interval.
func TestRaftClusterLosesItsLeader(t *testing.T) {
	bin := vaultBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodes := startRaftCluster(t, bin)
	root := initCluster(ctx, t, nodes)
	active, standby, other := nodes[0], nodes[1], nodes[2]
	rc := active.client(t, root)
	require.NoError(t, rc.Sys().MountWithContext(ctx, "secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	_, err := rc.KVv2("secret").Put(ctx, "prod/tessera", map[string]any{"api_key": keyprovidertest.KeyA})
	require.NoError(t, err)

	const interval, viaStandby, viaList = time.Minute, 50, 5
	clock := rotatetest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	all := raftSources(ctx, t, clock, interval, viaStandby, viaList, root, active, standby, other)
	onlyActive, err := vault.New(active.client(t, root), "secret/prod/tessera")
	require.NoError(t, err)
	require.True(t, clock.BlockUntil(ctx, len(all)), "every first fetch done")
	for _, w := range all {
		k, err := w.src.Token(ctx)
		require.NoError(t, err)
		requireKey(t, keyprovidertest.KeyA, k)
	}
	stop := make(chan struct{})
	stopCallers := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(stopCallers)
	failed := tokenCallers(ctx, all, stop)

	killed := time.Now()
	active.kill(t)
	// A refresh falls due during the election: it may fail; the Sources serve on.
	clock.Advance(interval)
	require.True(t, clock.BlockUntil(ctx, len(all)), "the refreshes of the election ended")
	var leader *raftNode
	waitFor(ctx, t, "a new leader", func() bool {
		for _, n := range []*raftNode{standby, other} {
			if n.status() == http.StatusOK {
				leader = n
				return true
			}
		}
		return false
	})
	election := time.Since(killed)
	t.Logf("leader election: %v from killing %s to %s active", election.Round(time.Millisecond), active.id, leader.id)

	_, err = leader.client(t, root).KVv2("secret").Put(ctx, "prod/tessera", map[string]any{"api_key": keyprovidertest.KeyB})
	require.NoError(t, err)
	rotatedAt := clock.Now()
	for range 10 { // one refresh interval, in steps, each waiting for the refreshes it fired
		clock.Advance(interval / 10)
		require.True(t, clock.BlockUntil(ctx, len(all)))
	}
	stopCallers()
	assert.Zero(t, <-failed, "no Token call failed")
	for i, w := range all {
		at := w.rotated.Load()
		if assert.NotNil(t, at, "source %d never picked up the rotated key", i) {
			assert.LessOrEqual(t, at.Sub(rotatedAt), interval, "source %d", i)
		}
		h := w.src.Health()
		assert.Equal(t, rotate.Fresh, h.State, "source %d: %v", i, h.LastError)
	}
	var failures uint64
	for _, w := range all {
		failures += w.src.Health().Failures
	}
	t.Logf("%d sources: %d failed refreshes in all, every one served on; rotated key picked up by all within %v of fake time",
		len(all), failures, interval)
	_, err = onlyActive.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable, "a client of the dead node alone cannot read")
}
