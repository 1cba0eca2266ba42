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

// TestAppRoleLogsInAgainAfterTheTokenExpires uses Vault's real token TTLs
// (seconds: the one place these tests wait on the wall clock, since the
// expiry happens inside Vault).
func TestAppRoleLogsInAgainAfterTheTokenExpires(t *testing.T) {
	root := devClient(t)
	ctx := context.Background()
	mount := kvMount(t, root, "2")
	put2(t, root, mount, "app", map[string]any{"api_key": keyprovidertest.KeyA})

	authPath := unique("approle-")
	require.NoError(t, root.Sys().EnableAuthWithOptions(authPath, &api.EnableAuthOptions{Type: "approle"}))
	t.Cleanup(func() { _ = root.Sys().DisableAuth(authPath) })
	policy := unique("read-")
	require.NoError(t, root.Sys().PutPolicy(policy, `path "`+mount+`/data/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`))
	_, err := root.Logical().Write("auth/"+authPath+"/role/app", map[string]any{
		"token_policies": policy, "token_ttl": "2s", "token_max_ttl": "2s",
	})
	require.NoError(t, err)
	rid, err := root.Logical().Read("auth/" + authPath + "/role/app/role-id")
	require.NoError(t, err)
	sid, err := root.Logical().Write("auth/"+authPath+"/role/app/secret-id", nil)
	require.NoError(t, err)
	auth, err := approle.NewAppRoleAuth(rid.Data["role_id"].(string),
		&approle.SecretID{FromString: sid.Data["secret_id"].(string)}, approle.WithMountPath(authPath))
	require.NoError(t, err)

	c, err := root.Clone()
	require.NoError(t, err)
	c.ClearToken()
	p, err := vault.New(c, mount+"/app", vault.WithAuth(auth))
	require.NoError(t, err)
	k, err := p.Fetch(ctx)
	require.NoError(t, err, "logs in before the first read")
	assert.Equal(t, keyprovidertest.KeyA, k.Reveal())
	first := c.Token()
	require.NotEmpty(t, first)

	// Past the token's max TTL the read is refused with 403; the provider
	// logs in again and retries.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := root.Auth().Token().Lookup(first); err != nil {
			break // expired
		}
		require.True(t, time.Now().Before(deadline), "the token never expired")
		time.Sleep(250 * time.Millisecond)
	}
	k, err = p.Fetch(ctx)
	require.NoError(t, err, "logs in again after the token expired")
	assert.Equal(t, keyprovidertest.KeyA, k.Reveal())
	assert.NotEqual(t, first, c.Token(), "a new token")
}
