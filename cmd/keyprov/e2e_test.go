package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The end-to-end tests build the keyprov binary and run it as ops would,
// against real backends.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// keyprovBin builds the binary once per test run.
func keyprovBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the keyprov binary")
	}
	bin, err := builtKeyprov()
	require.NoError(t, err)
	return bin
}

// builtKeyprov builds the binary the first time it is called, and returns
// it (or why it could not be built) every time.
func builtKeyprov() (string, error) {
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "keyprov-e2e-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "keyprov")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		buildErr = buildKeyprov(ctx, binPath)
	})
	return binPath, buildErr
}

// buildKeyprov builds the keyprov of this directory into out, with the
// build tags given.
func buildKeyprov(ctx context.Context, out string, tags ...string) error {
	b, err := exec.CommandContext(ctx, "go", "build", "-tags", strings.Join(tags, ","), "-o", out, ".").CombinedOutput()
	if err != nil {
		return &buildError{err, b}
	}
	return nil
}

// exec runs the binary with exactly env as its environment (plus PATH and
// HOME, which the AWS SDK's config loader consults), and returns what it did.
func execKeyprov(t *testing.T, env map[string]string, args ...string) runResult {
	t.Helper()
	return execBin(t, keyprovBin(t), env, args...)
}

// execBin is execKeyprov for the keyprov binary at bin.
func execBin(t *testing.T, bin string, env map[string]string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "running keyprov: %v", err)
		code = ee.ExitCode()
	}
	return runResult{code, stdout.String(), stderr.String()}
}

// parseJSONLines decodes the output of check --json.
func parseJSONLines(t *testing.T, out string) []result {
	t.Helper()
	var results []result
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r result
		require.NoError(t, json.Unmarshal([]byte(line), &r), "line %q", line)
		results = append(results, r)
	}
	return results
}

func TestE2ELiteral(t *testing.T) {
	env := map[string]string{"TESSERA_API_KEY": tesseraKey}

	got := execKeyprov(t, env, "check", "--service", "tessera")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assert.Contains(t, got.stdout, "literal (TESSERA_API_KEY)")
	assert.Contains(t, got.stdout, fp(tesseraKey))
	assertNoKey(t, got.stdout, got.stderr)

	got = execKeyprov(t, env, "get", "--service", "tessera")
	require.Equal(t, exitOK, got.code, got.stderr)
	assert.Equal(t, fp(tesseraKey)+"\n", got.stdout)

	got = execKeyprov(t, env, "get", "--service", "tessera", "--reveal")
	require.Equal(t, exitOK, got.code, got.stderr)
	assert.Equal(t, tesseraKey+"\n", got.stdout)

	got = execKeyprov(t, nil, "check", "--service", "tessera", "--json")
	assert.Equal(t, exitFail, got.code)
	r := parseJSONLines(t, got.stdout)
	require.Len(t, r, 1)
	assert.Equal(t, "not_found", r[0].Kind)
}

// vaultEnv returns the address and token of the Vault dev server the test
// script starts, skipping the test when there is none (failing when
// KEYPROVIDER_REQUIRE_VAULT=1).
func vaultEnv(t *testing.T) (addr, token string) {
	t.Helper()
	addr, token = os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		if os.Getenv("KEYPROVIDER_REQUIRE_VAULT") == "1" {
			t.Fatal("KEYPROVIDER_REQUIRE_VAULT=1 but VAULT_ADDR or VAULT_TOKEN is not set")
		}
		t.Skip("no Vault dev server: set VAULT_ADDR and VAULT_TOKEN (scripts/test.sh does)")
	}
	return addr, token
}

// vaultPut writes data as a new version of the KV v2 secret at path of the
// "secret/" mount the dev server has, with Vault's HTTP API.
func vaultPut(t *testing.T, addr, token, path string, data map[string]string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"data": data})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, addr+"/v1/secret/data/"+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Vault-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "writing the secret to Vault")
}

func TestE2EFileAndVault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tessera")
	require.NoError(t, os.WriteFile(file, []byte(tesseraKey+"\n"), 0o600))
	got := execKeyprov(t, map[string]string{"TESSERA_API_KEY": "file://" + file}, "get", "--service", "tessera")
	require.Equal(t, exitOK, got.code, got.stderr)
	assert.Equal(t, fp(tesseraKey)+"\n", got.stdout, "file:// reference, trailing newline trimmed")

	addr, token := vaultEnv(t)
	vaultPut(t, addr, token, "keyprov-e2e/tessera", map[string]string{"api_key": tesseraKey})
	envFile := filepath.Join(t.TempDir(), "prod.env")
	require.NoError(t, os.WriteFile(envFile, []byte("# prod\nTESSERA_API_KEY=vault://secret/keyprov-e2e/tessera#api_key\nVAULT_ADDR="+addr+"\nVAULT_TOKEN="+token+"\n"), 0o600))
	got = execKeyprov(t, nil, "check", "--service", "tessera", "--env-file", envFile, "--json")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	r := parseJSONLines(t, got.stdout)
	require.Len(t, r, 1)
	assert.Equal(t, fp(tesseraKey), r[0].Fingerprint)
	assertNoKey(t, got.stdout, got.stderr)
	assert.NotContains(t, got.stdout+got.stderr, token, "the Vault token is never printed")
}
