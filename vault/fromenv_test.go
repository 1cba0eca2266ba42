package vault_test

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
	"github.com/keyprovider/keyprovider/vault"
)

const (
	processToken   = "hvs.PROCESS-token-never-sent-elsewhere"
	injectedToken  = "hvs.INJECTED-token-of-the-env-file"
	processNS      = "process-namespace"
	injectedHeader = "X-Injected"
)

// TestFromEnvUsesOnlyTheInjectedEnvironment: the process environment
// points at one server with one token and namespace, the injected one at
// another; the process token never reaches the injected address, nor any.
func TestFromEnvUsesOnlyTheInjectedEnvironment(t *testing.T) {
	processSrv := newFakeVault(t, keyprovidertest.KeyB)
	t.Setenv("VAULT_ADDR", processSrv.URL())
	t.Setenv("VAULT_TOKEN", processToken)
	t.Setenv("VAULT_NAMESPACE", processNS)
	t.Setenv("VAULT_HEADERS", `{"X-Process":"yes"}`)
	t.Setenv("VAULT_MAX_RETRIES", "0")

	for name, tc := range map[string]struct {
		env       map[string]string
		wantToken string
	}{
		"with a token": {map[string]string{"VAULT_TOKEN": injectedToken,
			"VAULT_HEADERS": `{"` + injectedHeader + `":"1"}`}, injectedToken},
		"without a token": {map[string]string{}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			injectedSrv := newFakeVault(t, keyprovidertest.KeyA)
			tc.env["VAULT_ADDR"] = injectedSrv.URL()
			p, err := vault.FromEnv(context.Background(), "secret/app", vault.WithLookupEnv(mapEnv(tc.env)))
			require.NoError(t, err)
			defer p.Close()
			k, err := p.Fetch(context.Background())
			require.NoError(t, err)
			assertKey(t, keyprovidertest.KeyA, k, "read from the injected address")

			assert.Empty(t, processSrv.seen(), "nothing goes to the process's VAULT_ADDR")
			require.NotEmpty(t, injectedSrv.seen())
			for _, r := range injectedSrv.seen() {
				assert.Equal(t, tc.wantToken, r.header.Get("X-Vault-Token"), "only the injected token, or none")
				assert.Empty(t, r.header.Get("X-Vault-Namespace"), "not the process's VAULT_NAMESPACE")
				assert.Empty(t, r.header.Get("X-Process"), "not the process's VAULT_HEADERS")
				assert.Equal(t, "true", r.header.Get("X-Vault-Request"), "the client's SSRF header stays")
				if tc.env["VAULT_HEADERS"] != "" {
					assert.Equal(t, "1", r.header.Get(injectedHeader))
				}
			}
			assertNotLeaked(t, strings.Join(injectedSrv.tokensSeen(), " "), processToken)
		})
	}
}

// TestFromEnvWithoutLookupEnvReadsTheProcess: the zero LookupEnv is
// os.LookupEnv.
func TestFromEnvWithoutLookupEnvReadsTheProcess(t *testing.T) {
	srv := newFakeVault(t, keyprovidertest.KeyA)
	t.Setenv("VAULT_ADDR", srv.URL())
	t.Setenv("VAULT_TOKEN", processToken)
	t.Setenv("VAULT_NAMESPACE", processNS)
	p, err := vault.FromEnv(context.Background(), "secret/app")
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Fetch(context.Background())
	require.NoError(t, err)
	seen := srv.seen()
	require.NotEmpty(t, seen)
	assert.Equal(t, processToken, seen[0].header.Get("X-Vault-Token"))
	assert.Equal(t, processNS, seen[0].header.Get("X-Vault-Namespace"))
}

func TestFromEnvNamespaceOptionWinsOverTheVariable(t *testing.T) {
	srv := newFakeVault(t, keyprovidertest.KeyA)
	env := map[string]string{"VAULT_ADDR": srv.URL(), "VAULT_NAMESPACE": "from-env"}
	p, err := vault.FromEnv(context.Background(), "secret/app", vault.WithLookupEnv(mapEnv(env)), vault.WithNamespace("team-a"))
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Fetch(context.Background())
	require.NoError(t, err)
	for _, r := range srv.seen() {
		assert.Equal(t, "team-a", r.header.Get("X-Vault-Namespace"))
	}
}

// TestFromEnvRejectsBadSettings: a setting that cannot be used is
// ErrInvalidKey naming the variable, never quoting the value.
func TestFromEnvRejectsBadSettings(t *testing.T) {
	const secretish = "sk-tessera-pastedWhereItDoesNotBelong1"
	for name, env := range map[string]map[string]string{
		"skip verify":      {"VAULT_SKIP_VERIFY": secretish},
		"max retries":      {"VAULT_MAX_RETRIES": secretish},
		"client timeout":   {"VAULT_CLIENT_TIMEOUT": secretish},
		"CA file":          {"VAULT_CACERT": "/nonexistent/" + secretish},
		"headers":          {"VAULT_HEADERS": secretish},
		"X-Vault- header":  {"VAULT_HEADERS": `{"X-Vault-Token":"` + secretish + `"}`},
		"address":          {"VAULT_ADDR": "http://[::1" + secretish},
		"one of addresses": {"VAULT_ADDR": "http://127.0.0.1:1,ftp://" + secretish},
		"namespace CRLF":   {"VAULT_NAMESPACE": "ns\r\nX-Evil: 1"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := vault.FromEnv(context.Background(), "secret/app", vault.WithLookupEnv(mapEnv(env)))
			assert.Nil(t, p)
			require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			assertNotLeaked(t, err.Error(), secretish)
		})
	}
}

func TestFromEnvCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := vault.FromEnv(ctx, "secret/app", vault.WithLookupEnv(mapEnv(nil)))
	assert.ErrorIs(t, err, context.Canceled)
}

// TestAddressesAreTriedInTurn: a refused address and a sealed one (503)
// are passed over; the one that answered is tried first from then on.
func TestAddressesAreTriedInTurn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	sealed := newFakeVault(t, keyprovidertest.KeyB)
	sealed.setAnswer(func(w http.ResponseWriter, _ *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"errors":["Vault is sealed"]}`))
		return true
	})
	live := newFakeVault(t, keyprovidertest.KeyA)

	for name, opts := range map[string][]vault.Option{
		"WithAddresses": {vault.WithLookupEnv(mapEnv(map[string]string{"VAULT_TOKEN": injectedToken})),
			vault.WithAddresses(refused, sealed.URL(), live.URL())},
		"VAULT_ADDR": {vault.WithLookupEnv(mapEnv(map[string]string{"VAULT_TOKEN": injectedToken,
			"VAULT_ADDR": refused + ", " + sealed.URL() + "," + live.URL()}))},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(sealed.seen())
			p, err := vault.FromEnv(context.Background(), "secret/app", opts...)
			require.NoError(t, err)
			defer p.Close()
			for range 3 {
				k, err := p.Fetch(context.Background())
				require.NoError(t, err)
				assertKey(t, keyprovidertest.KeyA, k)
			}
			assert.Equal(t, 1, len(sealed.seen())-before, "the sealed node is asked once, then passed over")
			assert.True(t, slices.Contains(live.tokensSeen(), injectedToken))
		})
	}
}

func TestAddressesNeedAClientFromEnv(t *testing.T) {
	c := fakeClient(t, "http://127.0.0.1:1", "")
	_, err := vault.New(c, "secret/app", vault.WithAddresses("http://127.0.0.1:2"))
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}

// TestAddressesLeaveRedirectsAlone: a standby's redirect to the active
// node goes where it points, not to one of the addresses.
func TestAddressesLeaveRedirectsAlone(t *testing.T) {
	activeNode := newFakeVault(t, keyprovidertest.KeyA)
	standbyNode := newFakeVault(t, keyprovidertest.KeyB)
	standbyNode.setAnswer(func(w http.ResponseWriter, r *http.Request) bool {
		http.Redirect(w, r, activeNode.URL()+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		return true
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	env := map[string]string{"VAULT_ADDR": refused + "," + standbyNode.URL(), "VAULT_TOKEN": injectedToken}
	p, err := vault.FromEnv(context.Background(), "app", vault.WithLookupEnv(mapEnv(env)),
		vault.WithMount("secret"), vault.WithKVVersion(2))
	require.NoError(t, err)
	defer p.Close()
	k, err := p.Fetch(context.Background())
	require.NoError(t, err)
	assertKey(t, keyprovidertest.KeyA, k, "read from the node the redirect named")
	assert.Len(t, standbyNode.seen(), 1)
	assert.Len(t, activeNode.seen(), 1)
}

// TestFromEnvTLSSettingsComeFromTheInjectedEnvironment: VAULT_CACERT and
// VAULT_SKIP_VERIFY are read through LookupEnv; the process's
// VAULT_SKIP_VERIFY does not weaken an injected environment's client.
func TestFromEnvTLSSettingsComeFromTheInjectedEnvironment(t *testing.T) {
	f := newFakeVault(t, keyprovidertest.KeyA)
	f.srv.Close() // its handler is served over TLS instead
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(tlsSrv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := tlsSrv.Certificate()
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600))
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_CACERT", "")

	for name, tc := range map[string]struct {
		env  map[string]string
		want error
	}{
		"injected CA":          {map[string]string{"VAULT_CACERT": caFile}, nil},
		"injected skip-verify": {map[string]string{"VAULT_SKIP_VERIFY": "1"}, nil},
		"neither: the process's skip-verify is not used": {map[string]string{}, keyprovider.ErrUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			tc.env["VAULT_ADDR"] = tlsSrv.URL
			tc.env["VAULT_MAX_RETRIES"] = "0"
			p, err := vault.FromEnv(context.Background(), "app", vault.WithLookupEnv(mapEnv(tc.env)),
				vault.WithMount("secret"), vault.WithKVVersion(2))
			require.NoError(t, err)
			defer p.Close()
			k, err := p.Fetch(context.Background())
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				assert.Contains(t, err.Error(), "certificate")
				return
			}
			require.NoError(t, err)
			assertKey(t, keyprovidertest.KeyA, k)
		})
	}
}
