package vault_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

// TestOptionsReachTheRequests: each With helper is seen in what the
// provider sends.
func TestOptionsReachTheRequests(t *testing.T) {
	for name, tc := range map[string]struct {
		path  string
		opts  []vault.Option
		check func(t *testing.T, seen []recorded)
	}{
		"mount and KV version skip the mount look-up": {"app", []vault.Option{vault.WithMount("secret"), vault.WithKVVersion(2)},
			func(t *testing.T, seen []recorded) {
				require.Len(t, seen, 1)
				assert.Equal(t, "/v1/secret/data/app", seen[0].path)
			}},
		"no mount: looked up as the CLI does": {"secret/app", nil,
			func(t *testing.T, seen []recorded) {
				require.Len(t, seen, 2)
				assert.Equal(t, "/v1/sys/internal/ui/mounts/secret/app", seen[0].path)
				assert.Equal(t, "/v1/secret/data/app", seen[1].path)
			}},
		"namespace": {"secret/app", []vault.Option{vault.WithNamespace("team-a")},
			func(t *testing.T, seen []recorded) {
				for _, r := range seen {
					assert.Equal(t, "team-a", r.header.Get("X-Vault-Namespace"))
				}
			}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeVault(t, keyprovidertest.KeyA)
			c := fakeClient(t, f.URL(), injectedToken)
			p, err := vault.New(c, tc.path, tc.opts...)
			require.NoError(t, err)
			_, err = p.Fetch(context.Background())
			require.NoError(t, err)
			tc.check(t, f.seen())
			assert.Empty(t, c.Namespace(), "the caller's client is left as it was")
		})
	}
}

func TestWithServiceValidatesTheKey(t *testing.T) {
	f := newFakeVault(t, keyprovidertest.KeyA)
	p, err := vault.New(fakeClient(t, f.URL(), injectedToken), "secret/app", vault.WithService(keyprovider.Tesseral))
	require.NoError(t, err)
	_, err = p.Fetch(context.Background())
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	assertNotLeaked(t, err.Error(), keyprovidertest.KeyA)
}

// TestPathsAndNamespacesThatWouldReachAnotherEndpoint are refused by New,
// before any request, as ErrInvalidKey, never ErrUnavailable.
func TestPathsAndNamespacesThatWouldReachAnotherEndpoint(t *testing.T) {
	f := newFakeVault(t, keyprovidertest.KeyA)
	c := fakeClient(t, f.URL(), injectedToken)
	for name, tc := range map[string]struct {
		path string
		opts []vault.Option
	}{
		"dot-dot":                 {"kv/../sys/seal", nil},
		"encoded slash":           {"kv/..%2F..%2Fsys/seal", nil},
		"encoded dots":            {"kv/%2e%2e/sys/seal", nil},
		"twice encoded":           {"kv/%252e%252e/sys/seal", nil},
		"dot":                     {"kv/./app", nil},
		"backslash":               {`kv/..\sys`, nil},
		"trailing dot-dot":        {"kv/app/..", nil},
		"control character":       {"kv/app\n", nil},
		"encoded newline":         {"kv/app%0a", nil},
		"mount dot-dot":           {"app", []vault.Option{vault.WithMount("kv/.."), vault.WithKVVersion(2)}},
		"namespace CRLF":          {"kv/app", []vault.Option{vault.WithNamespace("team\r\nX-Evil: 1")}},
		"namespace LF":            {"kv/app", []vault.Option{vault.WithNamespace("team\n")}},
		"bad KV version":          {"kv/app", []vault.Option{vault.WithKVVersion(3)}},
		"pinned version on KV v1": {"kv/app", []vault.Option{vault.WithVersion(2), vault.WithKVVersion(1)}},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := vault.New(c, tc.path, tc.opts...)
			assert.Nil(t, p)
			require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			assert.NotErrorIs(t, err, keyprovider.ErrUnavailable)
			assert.False(t, strings.ContainsAny(err.Error(), "\r\n"), "no control character is printed")
		})
	}
	assert.Empty(t, f.seen(), "never a request")

	for _, ok := range []string{"kv/a..b/c", "kv/.hidden/app", "kv/app.v2", "kv/%41pp"} {
		_, err := vault.New(c, ok, vault.WithNamespace("team-a/sub"))
		assert.NoError(t, err, ok)
	}
}
