package vault_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/redact"
)

// fakeVault is a loopback stand-in for the few Vault routes a Provider
// uses (KV v2 mounted at "secret"), recording every request's path and
// headers, so that tests can say what was sent where without a Vault
// server.
type fakeVault struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []recorded
	value    string                                            // served as api_key
	answer   func(w http.ResponseWriter, r *http.Request) bool // may answer instead; reports whether it did
}

type recorded struct {
	method, path string
	header       http.Header
}

func newFakeVault(t *testing.T, value string) *fakeVault {
	t.Helper()
	f := &fakeVault{value: value}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVault) URL() string { return f.srv.URL }

// setAnswer replaces the normal answers while fn reports it answered.
func (f *fakeVault) setAnswer(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = fn
}

// seen returns the requests received so far.
func (f *fakeVault) seen() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// tokensSeen returns every X-Vault-Token received.
func (f *fakeVault) tokensSeen() []string {
	var toks []string
	for _, r := range f.seen() {
		if tok := r.header.Get("X-Vault-Token"); tok != "" {
			toks = append(toks, tok)
		}
	}
	return toks
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, recorded{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone()})
	answer, value := f.answer, f.value
	f.mu.Unlock()
	if answer != nil && answer(w, r) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/sys/internal/ui/mounts/"):
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
			"path": "secret/", "type": "kv", "options": map[string]any{"version": "2"},
		}})
	case strings.HasPrefix(r.URL.Path, "/v1/secret/data/"):
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{
			"data": map[string]any{"api_key": value},
			"metadata": map[string]any{
				"version": 1, "created_time": time.Unix(0, 0).UTC().Format(time.RFC3339Nano),
				"deletion_time": "", "destroyed": false,
			},
		}})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[]}`))
	}
}

// fakeClient is a client of f with token and no retries, whose idle
// connections are closed when the test ends.
func fakeClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	require.NoError(t, err)
	c.SetToken(token)
	t.Cleanup(cfg.HttpClient.CloseIdleConnections)
	return c
}

// mapEnv is an injected environment.
func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

// assertKey checks that k holds the key want, comparing fingerprints, so
// that a failing assertion prints fingerprints, never a key.
func assertKey(t *testing.T, want string, k keyprovider.Key, msgAndArgs ...any) bool {
	t.Helper()
	return assert.Equal(t, keyprovider.NewKey(want, "").Fingerprint(), k.Fingerprint(), msgAndArgs...)
}

// requireKey is assertKey that stops the test.
func requireKey(t *testing.T, want string, k keyprovider.Key, msgAndArgs ...any) {
	t.Helper()
	if !assertKey(t, want, k, msgAndArgs...) {
		t.FailNow()
	}
}

// assertNotLeaked checks that text holds none of secrets; a failure names
// each secret by its fingerprint and prints text redacted, never a secret.
func assertNotLeaked(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s appears in %q", redact.Fingerprint(s), redact.String(text, secrets...))
		}
	}
}
