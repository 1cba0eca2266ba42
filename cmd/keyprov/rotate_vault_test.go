package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/vault"
)

type vaultFixture struct {
	addr, token string
	api         *standin.Server
	env         map[string]string
	path        string // inside the mount
	mount       string
	oldKey      string
	newKey      string
}

// vaultDo calls Vault's HTTP API and returns the status and the decoded body.
func vaultDo(t *testing.T, addr, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, addr+"/v1/"+path, r)
	require.NoError(t, err)
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// newVaultFixture writes the old key at a fresh path of mount "secret"
// (KV v2) or "kv1rotate" (KV v1, mounted if need be).
func newVaultFixture(t *testing.T, kv int) *vaultFixture {
	t.Helper()
	addr, token := vaultEnv(t)
	f := &vaultFixture{addr: addr, token: token, mount: "secret", oldKey: standin.NewKey(keyprovider.Tessera), newKey: standin.NewKey(keyprovider.Tessera)}
	f.path = "keyprov-rotate/" + strings.ToLower(strings.NewReplacer("/", "-").Replace(t.Name())) + "-" + standin.NewKey(keyprovider.Service{})[:8]
	f.api = standin.New(t, standin.WithKeys(f.oldKey, f.newKey))
	if kv == 1 {
		f.mount = "kv1rotate"
		vaultDo(t, addr, token, http.MethodPost, "sys/mounts/"+f.mount, map[string]any{"type": "kv", "options": map[string]string{"version": "1"}})
		status, _ := vaultDo(t, addr, token, http.MethodPost, f.mount+"/"+f.path, map[string]string{"api_key": f.oldKey, "other": "kept"})
		require.Equal(t, http.StatusNoContent, status)
	} else {
		vaultPut(t, addr, token, f.path, map[string]string{"api_key": f.oldKey, "other": "kept"})
	}
	f.env = map[string]string{
		"TESSERA_API_KEY":  "vault://" + f.mount + "/" + f.path + "#api_key",
		"TESSERA_BASE_URL": f.api.BaseURL(),
		"VAULT_ADDR":       addr,
		"VAULT_TOKEN":      token,
	}
	return f
}

// data reads the secret's latest data and version (0 on KV v1).
func (f *vaultFixture) data(t *testing.T) (map[string]any, int) {
	t.Helper()
	if f.mount != "secret" {
		_, out := vaultDo(t, f.addr, f.token, http.MethodGet, f.mount+"/"+f.path, nil)
		d, _ := out["data"].(map[string]any)
		return d, 0
	}
	_, out := vaultDo(t, f.addr, f.token, http.MethodGet, "secret/data/"+f.path, nil)
	d, _ := out["data"].(map[string]any)
	data, _ := d["data"].(map[string]any)
	meta, _ := d["metadata"].(map[string]any)
	v, _ := meta["version"].(float64)
	return data, int(v)
}

func TestRotateVaultKVv2WhileSourceReads(t *testing.T) {
	f := newVaultFixture(t, 2)
	ctx := context.Background()
	p, err := vault.FromEnv(ctx, f.mount+"/"+f.path, vault.WithService(keyprovider.Tessera), vault.WithLookupEnv(mapEnv(f.env)))
	require.NoError(t, err)
	src, err := rotate.New(p, rotate.WithLogger(quietLogger()))
	require.NoError(t, err)
	defer src.Close()
	svc := f.api.Service(keyprovider.Tessera)
	client := keyprovider.NewClient(src, keyprovider.WithAllowedHosts(svc.Host()))
	request := func(step string) error {
		_, err := src.Refresh(ctx)
		require.NoError(t, err, "refresh after %s", step)
		resp, err := client.Get(svc.BaseURL + "/models")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "a request after %s", step)
		return nil
	}
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(request), "--service", "tessera", "--json", "--wait", "5s")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey, f.token)
	data, version := f.data(t)
	assert.Equal(t, map[string]any{"api_key": f.newKey, "other": "kept"}, data)
	assert.Equal(t, 2, version, "one version written")
	k, err := src.Refresh(ctx)
	require.NoError(t, err)
	assert.Equal(t, standin.Fingerprint(f.newKey), k.Fingerprint(), "the Source picked up the new key")
	require.NoError(t, request("the rotation"))
	assert.Equal(t, 0, f.api.Stats().ByStatus[http.StatusUnauthorized])
}

func TestRotateVaultKVv2VerifyRefused(t *testing.T) {
	for _, code := range []int{401, 403} {
		f := newVaultFixture(t, 2)
		if code == 401 {
			f.api.Revoke(f.newKey)
		} else {
			f.api.Deny(f.newKey)
		}
		got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera", "--json")
		require.Equal(t, exitFail, got.code, got.stdout)
		assert.Contains(t, got.stdout, "nothing was written to Vault")
		data, version := f.data(t)
		assert.Equal(t, f.oldKey, data["api_key"], "the old key is current")
		assert.Equal(t, 1, version, "no version written")
		assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey)
	}
}

func TestRotateVaultKVv2ConcurrentWriteIsConflict(t *testing.T) {
	f := newVaultFixture(t, 2)
	other := standin.NewKey(keyprovider.Tessera)
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(func(step string) error {
		if step == "verify" { // another writer, between the read and the CAS write
			vaultPut(t, f.addr, f.token, f.path, map[string]string{"api_key": other})
		}
		return nil
	}), "--service", "tessera", "--json")
	require.Equal(t, exitFail, got.code, got.stdout)
	evs := steps(t, got.stdout)
	assert.Equal(t, statusFailed, stepStatus(evs, "promote"))
	assert.Contains(t, got.stdout, "changed by another writer")
	data, version := f.data(t)
	assert.Equal(t, other, data["api_key"], "the concurrent writer's value stands")
	assert.Equal(t, 2, version, "nothing written by rotate")
	assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey, other)
}

func TestRotateVaultKVv2CrashThenRerun(t *testing.T) {
	f := newVaultFixture(t, 2)
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(func(step string) error {
		if step == "verify" {
			return errors.New("killed")
		}
		return nil
	}), "--service", "tessera")
	require.Equal(t, exitFail, got.code)
	data, version := f.data(t)
	assert.Equal(t, f.oldKey, data["api_key"], "the old key is current")
	assert.Equal(t, 1, version)
	got = runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	data, version = f.data(t)
	assert.Equal(t, f.newKey, data["api_key"])
	assert.Equal(t, 2, version)
}

func TestRotateVaultKVv1NeedsYes(t *testing.T) {
	f := newVaultFixture(t, 1)
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera")
	require.Equal(t, exitFail, got.code, got.stdout)
	assert.Contains(t, got.stdout, "no staging")
	data, _ := f.data(t)
	assert.Equal(t, f.oldKey, data["api_key"], "nothing written without --yes")

	got = runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera", "--yes")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	data, _ = f.data(t)
	assert.Equal(t, map[string]any{"api_key": f.newKey, "other": "kept"}, data)
	assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey)
}
