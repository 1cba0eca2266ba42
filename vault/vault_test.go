package vault_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

// devClient returns a root client of the Vault dev server that make test
// starts (VAULT_ADDR, VAULT_TOKEN). Run by hand without one, the test is
// skipped; under make test (KEYPROVIDER_REQUIRE_VAULT=1) it fails.
func devClient(t *testing.T) *api.Client {
	t.Helper()
	if os.Getenv("VAULT_ADDR") == "" || os.Getenv("VAULT_TOKEN") == "" {
		if os.Getenv("KEYPROVIDER_REQUIRE_VAULT") == "1" {
			t.Fatal("KEYPROVIDER_REQUIRE_VAULT=1 but VAULT_ADDR/VAULT_TOKEN are not set: run make test")
		}
		t.Skip("no Vault dev server: VAULT_ADDR and VAULT_TOKEN are not set (make test starts one)")
	}
	cfg := api.DefaultConfig()
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	if _, err := c.Sys().Health(); err != nil {
		t.Fatalf("Vault at %s does not answer: %v", c.Address(), err)
	}
	return c
}

func unique(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// kvMount enables a fresh KV engine of the given version and returns its
// mount path.
func kvMount(t *testing.T, c *api.Client, version string) string {
	t.Helper()
	mount := unique("kv" + version + "-")
	require.NoError(t, c.Sys().Mount(mount, &api.MountInput{Type: "kv", Options: map[string]string{"version": version}}))
	t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
	return mount
}

// harness drives one KV secret for the conformance suite.
type harness struct {
	c     *api.Client
	mount string
	kv    int
	path  string
}

func (h *harness) Provider(context.Context) (keyprovider.Provider, error) {
	return vault.New(h.c, h.mount+"/"+h.path)
}

func (h *harness) Set(ctx context.Context, value string) error {
	data := map[string]any{vault.DefaultField: value}
	if h.kv == 1 {
		return h.c.KVv1(h.mount).Put(ctx, h.path, data)
	}
	_, err := h.c.KVv2(h.mount).Put(ctx, h.path, data)
	return err
}

func (h *harness) Delete(ctx context.Context) error {
	if h.kv == 1 {
		return h.c.KVv1(h.mount).Delete(ctx, h.path)
	}
	return h.c.KVv2(h.mount).DeleteMetadata(ctx, h.path)
}

func (h *harness) Close() {}

func TestConformance(t *testing.T) {
	c := devClient(t)
	for _, kv := range []int{1, 2} {
		t.Run("kv"+string(rune('0'+kv)), func(t *testing.T) {
			mount := kvMount(t, c, string(rune('0'+kv)))
			keyprovidertest.RunConformance(t, func(ctx context.Context, t *testing.T) (keyprovidertest.Harness, error) {
				return &harness{c: c, mount: mount, kv: kv, path: unique("app/tessera-")}, nil
			})
		})
	}
}

func put2(t *testing.T, c *api.Client, mount, path string, data map[string]any) int {
	t.Helper()
	s, err := c.KVv2(mount).Put(context.Background(), path, data)
	require.NoError(t, err)
	return s.VersionMetadata.Version
}

func fetch(t *testing.T, p keyprovider.Provider) (keyprovider.Key, error) {
	t.Helper()
	return p.Fetch(context.Background())
}

func TestKV2VersionsFieldsAndRotation(t *testing.T) {
	c := devClient(t)
	mount := kvMount(t, c, "2")
	path := unique("prod/tessera-")
	put2(t, c, mount, path, map[string]any{"api_key": keyprovidertest.KeyA, "other": "sk-tessera-otherField1"})

	p, err := vault.New(c, mount+"/"+path, vault.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	k, err := fetch(t, p)
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k)
	assert.Equal(t, "1", k.Version())

	other, err := vault.New(c, mount+"/"+path, vault.WithField("other"))
	require.NoError(t, err)
	k, err = fetch(t, other)
	require.NoError(t, err)
	assertKey(t, "sk-tessera-otherField1", k, "field selection")

	put2(t, c, mount, path, map[string]any{"api_key": keyprovidertest.KeyB})
	k, err = fetch(t, p)
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyB, k, "a new version is picked up by the next fetch")
	assert.Equal(t, "2", k.Version())

	pinned, err := vault.New(c, mount+"/"+path, vault.WithVersion(1))
	require.NoError(t, err)
	k, err = fetch(t, pinned)
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k, "a pinned version")
	assert.Equal(t, "1", k.Version())

	_, err = fetch(t, other)
	assert.ErrorIs(t, err, keyprovider.ErrNotFound, "version 2 has no field other")
	assert.Contains(t, err.Error(), `no field "other"`)
}

func TestDeletedOrDestroyedLatestVersionIsAnError(t *testing.T) {
	c := devClient(t)
	mount := kvMount(t, c, "2")
	ctx := context.Background()
	for _, how := range []string{"deleted", "destroyed"} {
		t.Run(how, func(t *testing.T) {
			path := unique("app-")
			put2(t, c, mount, path, map[string]any{"api_key": keyprovidertest.KeyA})
			v := put2(t, c, mount, path, map[string]any{"api_key": keyprovidertest.KeyB})
			if how == "deleted" {
				require.NoError(t, c.KVv2(mount).Delete(ctx, path))
			} else {
				require.NoError(t, c.KVv2(mount).Destroy(ctx, path, []int{v}))
			}
			p, err := vault.New(c, mount+"/"+path)
			require.NoError(t, err)
			k, err := fetch(t, p)
			require.ErrorIs(t, err, keyprovider.ErrNotFound, "never the previous value silently")
			assert.True(t, k.IsZero())
			assert.Contains(t, err.Error(), how)
			assert.NotContains(t, err.Error(), "conformance")
		})
	}
}

func TestMissingPathFieldMountAndBadValues(t *testing.T) {
	c := devClient(t)
	mount := kvMount(t, c, "2")
	path := unique("app-")
	put2(t, c, mount, path, map[string]any{"api_key": 12345, "empty": "", "wrong": "tesseral_secret_key_abc"})
	cases := []struct {
		name string
		path string
		opts []vault.Option
		want error
	}{
		{"missing path", mount + "/" + unique("nothing-"), nil, keyprovider.ErrNotFound},
		{"missing field", mount + "/" + path, []vault.Option{vault.WithField("nope")}, keyprovider.ErrNotFound},
		// Vault answers a path under no mount with 403 (its preflight check
		// does not tell a missing mount from a denied one), even to root.
		{"no mount", unique("nomount-") + "/x", nil, keyprovider.ErrPermission},
		{"not a string", mount + "/" + path, nil, keyprovider.ErrInvalidKey},
		{"empty", mount + "/" + path, []vault.Option{vault.WithField("empty")}, keyprovider.ErrInvalidKey},
		{"wrong service", mount + "/" + path, []vault.Option{vault.WithField("wrong"), vault.WithService(keyprovider.Tessera)}, keyprovider.ErrInvalidKey},
		{"version beyond the latest", mount + "/" + path, []vault.Option{vault.WithVersion(9)}, keyprovider.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := vault.New(c, tc.path, tc.opts...)
			require.NoError(t, err)
			_, err = fetch(t, p)
			assert.ErrorIs(t, err, tc.want)
			var kerr *keyprovider.Error
			require.ErrorAs(t, err, &kerr)
			assert.Equal(t, "vault", kerr.Provider)
			assertNotLeaked(t, err.Error(), "tesseral_secret_key_abc")
		})
	}
}

func TestPolicyDenialIsPermission(t *testing.T) {
	c := devClient(t)
	mount := kvMount(t, c, "2")
	path := unique("app-")
	put2(t, c, mount, path, map[string]any{"api_key": keyprovidertest.KeyA})
	policy := unique("deny-")
	require.NoError(t, c.Sys().PutPolicy(policy, `path "`+mount+`/data/other/*" { capabilities = ["read"] }`))
	tok, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{policy}, NoDefaultPolicy: false})
	require.NoError(t, err)
	restricted, err := c.Clone()
	require.NoError(t, err)
	restricted.SetToken(tok.Auth.ClientToken)

	p, err := vault.New(restricted, path, vault.WithMount(mount), vault.WithKVVersion(2))
	require.NoError(t, err)
	_, err = fetch(t, p)
	assert.ErrorIs(t, err, keyprovider.ErrPermission)
	var re *api.ResponseError
	require.True(t, errors.As(err, &re), "the client's ResponseError stays reachable")
	assert.Equal(t, 403, re.StatusCode)
	assertNotLeaked(t, err.Error(), tok.Auth.ClientToken)
}

func TestUnreachableVaultIsUnavailable(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Address = "http://127.0.0.1:1" // nothing listens there
	t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	c.SetToken("never-sent-anywhere")
	p, err := vault.New(c, "secret/app", vault.WithMount("secret"), vault.WithKVVersion(2))
	require.NoError(t, err)
	_, err = fetch(t, p)
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable)
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	c, err := api.NewClient(api.DefaultConfig())
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		client *api.Client
		path   string
		opts   []vault.Option
	}{
		"nil client":        {nil, "secret/x", nil},
		"empty path":        {c, "/", nil},
		"bad KV version":    {c, "secret/x", []vault.Option{vault.WithKVVersion(3)}},
		"negative version":  {c, "secret/x", []vault.Option{vault.WithVersion(-1)}},
		"version with KVv1": {c, "secret/x", []vault.Option{vault.WithVersion(2), vault.WithKVVersion(1)}},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := vault.New(tc.client, tc.path, tc.opts...)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
		})
	}
}

func TestReferenceThroughFromEnv(t *testing.T) {
	c := devClient(t)
	mount := kvMount(t, c, "2")
	path := unique("prod/tessera-")
	put2(t, c, mount, path, map[string]any{"key": keyprovidertest.KeyA})
	put2(t, c, mount, path, map[string]any{"key": keyprovidertest.KeyB})
	env := map[string]string{
		"TESSERA_API_KEY": "vault://" + mount + "/" + path + "#key?version=1",
		"VAULT_ADDR":      c.Address(),
		"VAULT_TOKEN":     c.Token(),
	}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	p, err := keyprovider.FromEnv(context.Background(), keyprovider.Tessera, keyprovider.WithLookupEnv(lookup))
	require.NoError(t, err)
	k, err := p.Fetch(context.Background())
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k, "the pinned version of the referenced field")
	assert.Equal(t, "1", k.Version())
}
