package onepassword_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/onepassword/onepasswordtest"
)

// echoServer answers every request with a 502 whose message repeats the
// Authorization header and a key, as a careless proxy might.
func echoServer(t *testing.T, leaked string) *httptest.Server {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, `{"status":502,"message":"upstream refused %s for %s"}`, r.Header.Get("Authorization"), leaked)
	}))
	t.Cleanup(echo.Close)
	return echo
}

// TestNewConnectScrubsTheTokenOfItsClient: NewConnect learns the token of a
// ConnectClient, so an echoed token (and an echoed key) never reach the
// error.
func TestNewConnectScrubsTheTokenOfItsClient(t *testing.T) {
	const (
		token  = "connect-token-NewConnect-0123456789"
		leaked = "sk-tessera-echoedByTheProxy0123"
	)
	echo := echoServer(t, leaked)
	client, err := onepassword.NewConnectClient(echo.URL, token)
	require.NoError(t, err)
	p, err := onepassword.NewConnect(client, "op://prod/tessera/credential")
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrUnavailable)
	msg := err.Error()
	assert.Contains(t, msg, "upstream refused", "the server's message is kept")
	assert.NotContains(t, msg, token)
	assert.NotContains(t, msg, leaked)
	assert.Contains(t, msg, "sk-tessera-…", "the key is shown by its fingerprint")
}

// TestInjectedEnvironmentNeverSendsTheProcessToken: with WithLookupEnv, the
// process's OP_* variables are not read, so an env file naming a host
// cannot have the process's token sent there.
func TestInjectedEnvironmentNeverSendsTheProcessToken(t *testing.T) {
	const processToken = "process-connect-token-NEVERSENT000"
	var (
		mu   sync.Mutex
		seen []string
	)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, `{"status":401,"message":"no"}`, http.StatusUnauthorized)
	}))
	defer rec.Close()
	t.Setenv(onepassword.EnvConnectHost, rec.URL)
	t.Setenv(onepassword.EnvConnectToken, processToken)
	t.Setenv(onepassword.EnvServiceAccountToken, "ops_process_token_NEVERSENT")

	ref := "op://prod/tessera/credential"
	for name, env := range map[string]map[string]string{
		"host only":  {onepassword.EnvConnectHost: rec.URL},
		"nothing":    {},
		"token only": {onepassword.EnvConnectToken: "injected-token-0000000000"},
	} {
		_, err := onepassword.FromEnv(context.Background(), ref, onepassword.WithLookupEnv(lookup(env)))
		require.ErrorIs(t, err, keyprovider.ErrInvalidKey, name)
	}
	p, err := onepassword.FromEnv(context.Background(), ref, onepassword.WithLookupEnv(lookup(map[string]string{
		onepassword.EnvConnectHost: rec.URL, onepassword.EnvConnectToken: "injected-token-0000000000"})))
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrPermission)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	for _, h := range seen {
		assert.Equal(t, "Bearer injected-token-0000000000", h)
	}
}

// TestNoVerbPrintsAToken prints a Provider, dereferenced too, the structs
// that hold one, the options and the Connect client, by every verb.
func TestNoVerbPrintsAToken(t *testing.T) {
	const token = "connect-token-printed-0123456789"
	srv := onepasswordtest.NewServer(t)
	srv.AddVault("prod")
	env := map[string]string{onepassword.EnvConnectHost: srv.URL, onepassword.EnvConnectToken: token}
	p, err := onepassword.FromEnv(context.Background(), "op://prod/tessera/credential", onepassword.WithLookupEnv(lookup(env)))
	require.NoError(t, err)
	client, err := onepassword.NewConnectClient(srv.URL, token)
	require.NoError(t, err)
	opts := onepassword.Options{IntegrationName: "svc", LookupEnv: lookup(env)}
	type holder struct {
		P  *onepassword.Provider
		V  onepassword.Provider
		c  *onepassword.ConnectClient
		cv onepassword.ConnectClient
	}
	values := map[string]any{
		"provider": p, "dereferenced provider": *p, "client": client, "dereferenced client": *client,
		"options": opts, "holder": holder{P: p, V: *p, c: client, cv: *client}, "holder pointer": &holder{P: p, V: *p},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%p"} {
			out := fmt.Sprintf(verb, v)
			assert.NotContains(t, out, token, "%s %s", name, verb)
			assert.NotContains(t, out, fmt.Sprintf("%x", token), "%s %s", name, verb)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
		if js, err := json.Marshal(v); err == nil {
			buf.Write(js)
		}
		assert.NotContains(t, buf.String(), token, name)
	}
	assert.Equal(t, "onepassword.Provider(connect op://prod/tessera/credential)", fmt.Sprintf("%+v", *p))
}

// TestCloseWaitsForTheAbandonedRead: a Fetch whose context ends leaves the
// SDK call running; Close waits for it, within its bound, and then no
// goroutine of the Provider is left.
func TestCloseWaitsForTheAbandonedRead(t *testing.T) {
	before := goleak.IgnoreCurrent()
	b := &blockingResolver{release: make(chan struct{})}
	p, err := onepassword.New(b, sdkRef, onepassword.WithCloseTimeout(-1))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Fetch(ctx)
	require.ErrorIs(t, err, context.Canceled)

	ctx, cancel = context.WithCancel(context.Background())
	fetched := make(chan error, 1)
	go func() {
		_, err := p.Fetch(ctx)
		fetched <- err
	}()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.calls == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, receive(t, fetched), context.Canceled)

	err = p.Close()
	require.ErrorIs(t, err, keyprovider.ErrUnavailable, "with no time to wait, Close says the read still runs")
	assert.Contains(t, err.Error(), "still running")

	close(b.release)
	p2, err := onepassword.New(onepasswordtest.NewSecrets(), sdkRef)
	require.NoError(t, err)
	require.NoError(t, p2.Close())
	require.Eventually(t, func() bool { return p.Close() == nil }, 5*time.Second, time.Millisecond,
		"once the read ends, Close succeeds")
	require.NoError(t, p.Close(), "and a second Close is harmless")
	_, err = p.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.Contains(t, err.Error(), "closed")
	goleak.VerifyNone(t, before)
}

// TestCloseReleasesAWaitingFetch: a Fetch waiting for the read in flight
// returns when the Provider is closed, whatever its context.
func TestCloseReleasesAWaitingFetch(t *testing.T) {
	f := newConnectFixture(t)
	p, err := onepassword.NewConnect(f.srv.Client(), "op://prod/tessera/credential", onepassword.WithCloseTimeout(-1))
	require.NoError(t, err)
	f.srv.FailAll(onepasswordtest.Fault{Hang: true})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := p.Fetch(ctx); first <- err }()
	require.Eventually(t, func() bool { return f.srv.Requests("") == 1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, receive(t, first), context.Canceled)

	waiting := make(chan error, 1)
	go func() { _, err := p.Fetch(context.Background()); waiting <- err }() // waits for the hung read
	assert.Error(t, p.Close(), "the hung read still runs")
	err = receive(t, waiting)
	require.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.True(t, strings.Contains(err.Error(), "closed"), err.Error())
	f.srv.Close() // releases the hung request
	require.Eventually(t, func() bool { return p.Close() == nil }, 5*time.Second, time.Millisecond)
}

// receive waits for a value from a goroutine, within a deadline far below
// the package timeout.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no answer within 10s")
		var zero T
		return zero
	}
}
