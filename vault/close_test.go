package vault_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

// TestMain checks that no test leaves a goroutine behind. HTTP keep-alive
// loops are let through: the tests that build their own *api.Client for
// vault.New own its connections (a Provider never closes a client it was
// given), and leave them to the process. TestCloseWaitsForTheRenewalGoroutine
// checks strictly that a Provider made by FromEnv, which owns its client,
// leaves none.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
}

// TestCloseWaitsForTheRenewalGoroutine: a renewable login starts a
// LifetimeWatcher goroutine; Close stops it and waits, closes the idle
// connections of the client FromEnv built, and is idempotent.
func TestCloseWaitsForTheRenewalGoroutine(t *testing.T) {
	f := newFakeVault(t, keyprovidertest.KeyA)
	f.setAnswer(func(w http.ResponseWriter, r *http.Request) bool { return answerLogin(w, r, true) })
	before := goleak.IgnoreCurrent()

	env := map[string]string{"VAULT_ADDR": f.URL()}
	p, err := vault.FromEnv(context.Background(), "app", vault.WithLookupEnv(mapEnv(env)),
		vault.WithMount("secret"), vault.WithKVVersion(2), vault.WithAuth(fakeLogin{}))
	require.NoError(t, err)
	k, err := p.Fetch(context.Background())
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k)
	assert.True(t, slices.Contains(f.tokensSeen(), loginToken))

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "a second Close is harmless")
	goleak.VerifyNone(t, before) // no watcher, no connection left

	_, err = p.Fetch(context.Background())
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable, "Fetch after Close")
}

// TestCloseLeavesTheCallersClientOpen: New's client is the caller's.
func TestCloseLeavesTheCallersClientOpen(t *testing.T) {
	f := newFakeVault(t, keyprovidertest.KeyA)
	c := fakeClient(t, f.URL(), injectedToken)
	p, err := vault.New(c, "secret/app")
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	_, err = c.KVv2("secret").Get(context.Background(), "app")
	assert.NoError(t, err, "the client still works")
}
