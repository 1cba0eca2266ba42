package vault_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

// TestAppRoleRenewsThenLogsInAgainAcrossMaxTTL uses Vault's real token
// TTLs (seconds: the one place these tests wait on the wall clock, since
// expiry happens inside Vault).
func TestAppRoleRenewsThenLogsInAgainAcrossMaxTTL(t *testing.T) {
	root := devClient(t)
	ctx := context.Background()
	c, p := appRoleProvider(t, root, "2s", "6s")
	k, err := p.Fetch(ctx)
	require.NoError(t, err, "logs in before the first read")
	assertKey(t, keyprovidertest.KeyA, k)
	first := c.Token()
	require.NotEmpty(t, first)

	// Past the token's 2 s TTL it is still alive: renewed.
	waitUntil(t, 3*time.Second)
	_, err = root.Auth().Token().Lookup(first)
	require.NoError(t, err, "the login token was renewed past its TTL")
	k, err = p.Fetch(ctx)
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k)
	assert.Equal(t, first, c.Token(), "no new login while renewal works")

	// Past its 6 s max TTL it cannot be renewed: the provider logs in again.
	waitUntil(t, 4*time.Second)
	k, err = p.Fetch(ctx)
	require.NoError(t, err, "logs in again after the max TTL")
	assertKey(t, keyprovidertest.KeyA, k)
	assert.NotEqual(t, first, c.Token(), "a new token")
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close is idempotent")
}

// TestForbiddenExpiredTokenLogsInAgain covers a non-renewable login whose
// token expires: the read's 403 triggers one new login and one retry.
func TestForbiddenExpiredTokenLogsInAgain(t *testing.T) {
	root := devClient(t)
	ctx := context.Background()
	c, p := appRoleProvider(t, root, "2s", "2s")
	_, err := p.Fetch(ctx)
	require.NoError(t, err)
	first := c.Token()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := root.Auth().Token().Lookup(first); err != nil {
			break // expired
		}
		require.True(t, time.Now().Before(deadline), "the token never expired")
		time.Sleep(250 * time.Millisecond)
	}
	k, err := p.Fetch(ctx)
	require.NoError(t, err, "logs in again after the 403")
	assertKey(t, keyprovidertest.KeyA, k)
	assert.NotEqual(t, first, c.Token())
}

// appRoleProvider makes a KV v2 secret holding KeyA and a Provider that
// reads it with an AppRole login of the given TTLs, through a client of its
// own (returned, to watch its token).
func appRoleProvider(t *testing.T, root *api.Client, ttl, maxTTL string) (*api.Client, *vault.Provider) {
	t.Helper()
	mount := kvMount(t, root, "2")
	put2(t, root, mount, "app", map[string]any{"api_key": keyprovidertest.KeyA})
	auth, _ := appRole(t, root, mount, ttl, maxTTL)
	c, err := root.Clone()
	require.NoError(t, err)
	c.ClearToken()
	p, err := vault.New(c, mount+"/app", vault.WithAuth(auth))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return c, p
}

// appRole enables an AppRole auth method whose tokens may read mount, with
// the given TTLs, and returns a login for it.
func appRole(t *testing.T, root *api.Client, mount, ttl, maxTTL string) (*approle.AppRoleAuth, string) {
	t.Helper()
	authPath := unique("approle-")
	require.NoError(t, root.Sys().EnableAuthWithOptions(authPath, &api.EnableAuthOptions{Type: "approle"}))
	t.Cleanup(func() { _ = root.Sys().DisableAuth(authPath) })
	policy := unique("read-")
	require.NoError(t, root.Sys().PutPolicy(policy, `path "`+mount+`/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`))
	_, err := root.Logical().Write("auth/"+authPath+"/role/app", map[string]any{
		"token_policies": policy, "token_ttl": ttl, "token_max_ttl": maxTTL,
	})
	require.NoError(t, err)
	rid, err := root.Logical().Read("auth/" + authPath + "/role/app/role-id")
	require.NoError(t, err)
	sid, err := root.Logical().Write("auth/"+authPath+"/role/app/secret-id", nil)
	require.NoError(t, err)
	auth, err := approle.NewAppRoleAuth(rid.Data["role_id"].(string),
		&approle.SecretID{FromString: sid.Data["secret_id"].(string)}, approle.WithMountPath(authPath))
	require.NoError(t, err)
	return auth, authPath
}

// waitUntil lets d of wall-clock time pass, for Vault's TTLs.
func waitUntil(t *testing.T, d time.Duration) {
	t.Helper()
	<-time.After(d)
}
