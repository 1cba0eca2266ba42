package vault_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/vault"
)

func TestSchemeRegistered(t *testing.T) {
	_, err := keyprovider.ParseRef("vault://kv/x")
	assert.NoError(t, err, "importing vault registers vault://")
	assert.Equal(t, "vault", vault.Scheme().Name)
}

func TestSchemeParseValid(t *testing.T) {
	type Ref = keyprovider.Ref
	tests := []struct {
		in        string
		want      Ref
		canonical string // "" means in
	}{
		{in: "vault://kv/tessera", want: Ref{Scheme: "vault", Mount: "kv", Path: "tessera"}},
		{in: "vault://kv/apps/tessera/prod#api_key", want: Ref{Scheme: "vault", Mount: "kv", Path: "apps/tessera/prod", Field: "api_key"}},
		{
			in:   "vault://secret/tessera#api_key?version=3",
			want: Ref{Scheme: "vault", Mount: "secret", Path: "tessera", Field: "api_key", Params: map[string]string{"version": "3"}},
		},
		{
			in:        "Vault://secret/tessera?namespace=team-a/prod&version=12#api_key",
			want:      Ref{Scheme: "vault", Mount: "secret", Path: "tessera", Field: "api_key", Params: map[string]string{"version": "12", "namespace": "team-a/prod"}},
			canonical: "vault://secret/tessera#api_key?version=12&namespace=team-a/prod",
		},
		{
			in:        "vault://kv/t?version=007",
			want:      Ref{Scheme: "vault", Mount: "kv", Path: "t", Params: map[string]string{"version": "7"}},
			canonical: "vault://kv/t?version=7",
		},
		{in: "vault://team%2Fkv/app#key", want: Ref{Scheme: "vault", Mount: "team/kv", Path: "app", Field: "key"}},
		{in: "vault://kv/a%2Fb", want: Ref{Scheme: "vault", Mount: "kv", Path: "a/b"}, canonical: "vault://kv/a/b"},
		{in: "vault://kv/app#we%23ird%3Ffield", want: Ref{Scheme: "vault", Mount: "kv", Path: "app", Field: "we#ird?field"}},
		{in: "vault://kv/a..b/.c/d.#f", want: Ref{Scheme: "vault", Mount: "kv", Path: "a..b/.c/d.", Field: "f"}},
		{in: "vault://kv/x?namespace=/team/", want: Ref{Scheme: "vault", Mount: "kv", Path: "x", Params: map[string]string{"namespace": "/team/"}}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := keyprovider.ParseRef(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			canonical := tc.canonical
			if canonical == "" {
				canonical = tc.in
			}
			assert.Equal(t, canonical, got.String())
			again, err := keyprovider.ParseRef(got.String())
			require.NoError(t, err, "the canonical text must parse")
			assert.Equal(t, got, again, "parse → String → parse")
		})
	}
}

// Every malformed vault:// reference is ErrInvalidKey at parse time: no
// client is made and no request sent. Among them, the shapes the Vault
// client would resolve to another endpoint ("kv/..%2F..%2Fsys/...") or send
// as a broken header (a CR/LF in the namespace) (issue 18.11).
func TestSchemeParseInvalid(t *testing.T) {
	tests := []struct{ in, want string }{
		{"vault://kv", "takes a mount and a path"},
		{"vault://kv/", "takes a mount and a path"},
		{"vault:///x", "takes a mount and a path"},
		{"vault://kv//x", "empty segment"},
		{"vault://kv/x/", "empty segment"},
		{"vault://kv/x#f?version=0", "positive integer"},
		{"vault://kv/x#f?version=-1", "positive integer"},
		{"vault://kv/x#f?version=latest", "positive integer"},
		{"vault://kv/x#f?version=99999999999", "positive integer"},
		{"vault://kv/x#f?verison=1", `unknown parameter "verison" (allowed: version, namespace)`},
		{"vault://kv/x?namespace=a//b", "namespace has an empty segment"},
		// Dot segments, written or escaped, in the path and the mount.
		{"vault://kv/../sys/raw", `the path has a "." or ".." segment`},
		{"vault://kv/a/./b", `the path has a "." or ".." segment`},
		{"vault://kv/..%2F..%2Fsys/raw", `the path has a "." or ".." segment`},
		{"vault://kv/%2E%2E/sys/raw", `the path has a "." or ".." segment`},
		{"vault://kv/a%2F%2E", `the path has a "." or ".." segment`},
		{"vault://kv/..", `the path has a "." or ".." segment`},
		{"vault://../sys", `the mount has a "." or ".." segment`},
		{"vault://kv%2F..%2Fsys/raw", `the mount has a "." or ".." segment`},
		{"vault://./x", `the mount has a "." or ".." segment`},
		// Control characters that only escapes can carry.
		{"vault://kv/x?namespace=team%0D%0AX-Injected:%201", "namespace contains a control character"},
		{"vault://kv/x?namespace=team%0A", "namespace contains a control character"},
		{"vault://kv/a%0Ab", "the path contains a control character"},
		{"vault://k%0Dv/a", "the mount contains a control character"},
		{"vault://kv/x?namespace=a/../b", `namespace has a "." or ".." segment`},
		{"vault://kv/x?namespace=..", `namespace has a "." or ".." segment`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := keyprovider.ParseRef(tc.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			var re *keyprovider.RefError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// A hand-wired Resolver registers the same Scheme the blank import does.
func TestSchemeExplicitResolver(t *testing.T) {
	r := keyprovider.NewResolver()
	r.Register(vault.Scheme())
	ref, err := r.Parse("vault://kv/app#key?version=2")
	require.NoError(t, err)
	assert.Equal(t, "kv", ref.Mount)
}

// recordingVault answers every request with 403 and records the token and
// namespace headers it was sent.
type recordingVault struct {
	*httptest.Server
	mu         sync.Mutex
	tokens     []string
	namespaces []string
}

func newRecordingVault(t *testing.T) *recordingVault {
	v := &recordingVault{}
	v.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.tokens = append(v.tokens, r.Header.Get("X-Vault-Token"))
		v.namespaces = append(v.namespaces, r.Header.Get("X-Vault-Namespace"))
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
	}))
	t.Cleanup(v.Close)
	return v
}

func (v *recordingVault) seen() (tokens, namespaces []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.tokens...), append([]string(nil), v.namespaces...)
}

// An injected environment (an env file checked by keyprov) is complete on
// its own: the process's VAULT_TOKEN and VAULT_NAMESPACE never reach the
// VAULT_ADDR it names (issue 18.6).
func TestSchemeInjectedEnvironmentIsComplete(t *testing.T) {
	const processToken = "hvs.PROCESS-token-must-stay-home"
	processVault := newRecordingVault(t)
	t.Setenv("VAULT_ADDR", processVault.URL)
	t.Setenv("VAULT_TOKEN", processToken)
	t.Setenv("VAULT_NAMESPACE", "process-ns")
	t.Setenv("VAULT_MAX_RETRIES", "0") // a refused connection fails at once

	fetch := func(t *testing.T, env map[string]string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		opts := []keyprovider.EnvOption{}
		if env != nil {
			opts = append(opts, keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok }))
		}
		p, err := keyprovider.Open(ctx, "vault://kv/app#key", keyprovider.Tessera, opts...)
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.Error(t, err, "the recording server denies everything")
		assert.NotContains(t, err.Error(), processToken)
	}

	t.Run("no token in the file", func(t *testing.T) {
		fileVault := newRecordingVault(t)
		fetch(t, map[string]string{"VAULT_ADDR": fileVault.URL})
		tokens, namespaces := fileVault.seen()
		require.NotEmpty(t, tokens, "the request goes to the file's VAULT_ADDR")
		for i := range tokens {
			assert.Empty(t, tokens[i], "the process token was sent to the file's server")
			assert.Empty(t, namespaces[i], "the process namespace was sent to the file's server")
		}
	})
	t.Run("the file's own token and namespace", func(t *testing.T) {
		fileVault := newRecordingVault(t)
		fetch(t, map[string]string{"VAULT_ADDR": fileVault.URL, "VAULT_TOKEN": "hvs.file-token", "VAULT_NAMESPACE": "file-ns"})
		tokens, namespaces := fileVault.seen()
		require.NotEmpty(t, tokens)
		assert.Equal(t, "hvs.file-token", tokens[0])
		assert.Equal(t, "file-ns", namespaces[0])
	})
	t.Run("no address in the file", func(t *testing.T) {
		fetch(t, map[string]string{"VAULT_TOKEN": "hvs.file-token"})
		tokens, _ := processVault.seen()
		assert.Empty(t, tokens, "the process's VAULT_ADDR is not the file's")
	})
	t.Run("the process environment", func(t *testing.T) {
		fetch(t, nil)
		tokens, namespaces := processVault.seen()
		require.NotEmpty(t, tokens, "without an injected environment the process's settings apply")
		assert.Equal(t, processToken, tokens[0])
		assert.Equal(t, "process-ns", namespaces[0])
	})
}
