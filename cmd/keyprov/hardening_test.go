package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
)

// keyprov links in every backend, and so validates every scheme.
func TestKeyprovLinksEveryScheme(t *testing.T) {
	for _, ref := range []string{"awssm://x", "env://X", "file:///x", "op://v/i/f", "vault://kv/x"} {
		_, err := keyprovider.ParseRef(ref)
		assert.NoError(t, err, ref)
	}
}

// One input gives one error class, whichever entry point reads it: package
// env's Provider, keyprovider.FromEnv (and its Fetch), and keyprov check
// (issue 12.1). All three read through internal/envread.
func TestOneErrorClassEverywhere(t *testing.T) {
	dir := shortTempDir(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	good := write("good", tesseraKey+"\n")
	blank := write("blank", " \n")
	quoted := write("quoted", `"`+tesseraKey+`"`)
	ref := write("ref", "env://OTHER")
	other := write("other", tesseralKey)
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	tests := []struct {
		name string
		env  map[string]string
		want string // errorKind of the error, or "" for a key
	}{
		{"neither set", map[string]string{}, "not_found"},
		{"empty variable", map[string]string{"TESSERA_API_KEY": ""}, "invalid_key"},
		{"blank variable", map[string]string{"TESSERA_API_KEY": " \t\n"}, "invalid_key"},
		{"empty _FILE variable", map[string]string{"TESSERA_API_KEY_FILE": ""}, "invalid_key"},
		{"empty variable beside a _FILE", map[string]string{"TESSERA_API_KEY": "", "TESSERA_API_KEY_FILE": good}, ""},
		{"both set", map[string]string{"TESSERA_API_KEY": tesseraKey, "TESSERA_API_KEY_FILE": good}, "invalid_key"},
		{"literal", map[string]string{"TESSERA_API_KEY": " " + tesseraKey + "\n"}, ""},
		{"quoted literal", map[string]string{"TESSERA_API_KEY": "'" + tesseraKey + "'"}, "invalid_key"},
		{"other service's key", map[string]string{"TESSERA_API_KEY": tesseralKey}, "invalid_key"},
		{"_FILE", map[string]string{"TESSERA_API_KEY_FILE": good}, ""},
		{"_FILE missing", map[string]string{"TESSERA_API_KEY_FILE": filepath.Join(dir, "nope")}, "not_found"},
		{"_FILE through a file", map[string]string{"TESSERA_API_KEY_FILE": filepath.Join(good, "x")}, "not_found"},
		{"_FILE is a directory", map[string]string{"TESSERA_API_KEY_FILE": dir}, "invalid_key"},
		{"_FILE is a FIFO", map[string]string{"TESSERA_API_KEY_FILE": fifo}, "invalid_key"},
		{"_FILE is blank", map[string]string{"TESSERA_API_KEY_FILE": blank}, "invalid_key"},
		{"_FILE holds a quoted key", map[string]string{"TESSERA_API_KEY_FILE": quoted}, "invalid_key"},
		{"_FILE holds a reference", map[string]string{"TESSERA_API_KEY_FILE": ref}, "invalid_key"},
		{"_FILE holds another service's key", map[string]string{"TESSERA_API_KEY_FILE": other}, "invalid_key"},
	}
	ctx := context.Background()
	kind := func(err error) string {
		if err == nil {
			return ""
		}
		return errorKind(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := mapEnv(tc.env)

			_, err := env.ForService(keyprovider.Tessera, env.WithLookupEnv(lookup)).Fetch(ctx)
			assert.Equal(t, tc.want, kind(err), "env.Provider.Fetch: %v", err)

			p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, keyprovider.WithLookupEnv(lookup))
			if err == nil {
				_, err = p.Fetch(ctx)
				p.Close()
			}
			assert.Equal(t, tc.want, kind(err), "keyprovider.FromEnv: %v", err)

			got := runKeyprov(t, tc.env, "check", "--service", "tessera", "--json")
			r := parseJSONLines(t, got.stdout)
			require.Len(t, r, 1, got.stderr)
			assert.Equal(t, tc.want, r[0].Kind, "keyprov check: %s", r[0].Error)
			assertNoKey(t, got.stdout, got.stderr)
		})
	}
}

// A key pasted where a reference belongs (TESSERA_API_KEY=file://sk-...)
// is never printed, by check (text and JSON) or get (issue 18.3).
func TestPastedKeyIsNeverPrinted(t *testing.T) {
	const unprefixed = "Zq9x7Lm2Pr4TkV8wQ3nBUnitTestKey0000"
	tests := []struct{ name, value, secret string }{
		{"file:// and a key", "file://" + tesseraKey, tesseraKey},
		{"file:// and an unprefixed key", "file://" + unprefixed, unprefixed},
		{"file:/// and a key", "file:///" + tesseraKey, tesseraKey},
		{"env:// and a key", "env://" + tesseraKey, tesseraKey},
		{"env:// and an unprefixed key", "env://" + unprefixed + "#f", unprefixed},
		{"a key as a Vault version", "vault://kv/tessera?version=" + tesseraKey, tesseraKey},
		{"an unprefixed key as a Vault version", "vault://kv/tessera?version=" + unprefixed, unprefixed},
		{"a key as a Vault parameter's name", "vault://kv/tessera?" + unprefixed + "=1", unprefixed},
		{"a key in an op:// reference", "op://vault/item/" + tesseraKey + "#f", tesseraKey},
		{"a key as an AWS stage", "awssm://prod/t?version-id=v&stage=" + tesseraKey, tesseraKey},
		{"a key after a typo", "vualt://" + tesseraKey, tesseraKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"TESSERA_API_KEY": tc.value}
			for _, args := range [][]string{
				{"check", "--service", "tessera"},
				{"check", "--service", "tessera", "--json"},
				{"get", "--service", "tessera"},
			} {
				got := runKeyprov(t, vars, args...)
				assert.Equal(t, exitFail, got.code, "%v: %s%s", args, got.stdout, got.stderr)
				for _, out := range []string{got.stdout, got.stderr} {
					assert.NotContains(t, out, tc.secret[len(tc.secret)-16:], "%v printed the key", args)
				}
				if args[0] == "check" {
					assert.Contains(t, got.stdout, "TESSERA_API_KEY", "%v must still say which variable is wrong", args)
				}
			}
		})
	}
}

// recordingVault answers every request with 403 and records the tokens it
// was sent.
func recordingVault(t *testing.T) (url string, tokens func() []string) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Vault-Token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

// An env file's environment is complete on its own: a file that names a
// Vault server never receives keyprov's own VAULT_TOKEN, unless
// --inherit-env says to fill the file's gaps from keyprov's environment
// (issue 18.6).
func TestEnvFileIsCompleteOnItsOwn(t *testing.T) {
	const processToken = "hvs.OPERATOR-token-must-stay-home"
	t.Setenv("VAULT_MAX_RETRIES", "0")
	url, tokens := recordingVault(t)
	file := filepath.Join(shortTempDir(t), "untrusted.env")
	require.NoError(t, os.WriteFile(file, []byte("TESSERA_API_KEY=vault://kv/tessera#api_key\nVAULT_ADDR="+url+"\n"), 0o600))
	process := map[string]string{"VAULT_TOKEN": processToken, "OP_CONNECT_TOKEN": "operator-connect-token"}

	for _, args := range [][]string{
		{"check", "--env-file", file, "--service", "tessera"},
		{"get", "--env-file", file, "--service", "tessera"},
	} {
		got := runKeyprov(t, process, args...)
		assert.Equal(t, exitFail, got.code, "the server denies everything")
		assert.NotContains(t, got.stdout+got.stderr, processToken)
	}
	sent := tokens()
	require.NotEmpty(t, sent, "keyprov asked the file's VAULT_ADDR")
	for _, tok := range sent {
		assert.NotEqual(t, processToken, tok, "keyprov's own token went to a host the env file named")
	}

	got := runKeyprov(t, process, "check", "--env-file", file, "--service", "tessera", "--inherit-env")
	assert.Equal(t, exitFail, got.code)
	sent = tokens()
	assert.Equal(t, processToken, sent[len(sent)-1], "--inherit-env fills the file's gaps from keyprov's environment")
	assert.NotContains(t, got.stdout+got.stderr, processToken)

	for _, cmd := range []string{"check", "get"} {
		help := runKeyprov(t, nil, cmd, "-h")
		assert.Contains(t, help.stderr, "-inherit-env", "%s -h documents --inherit-env", cmd)
		assert.Contains(t, help.stderr, "complete on its own")
	}
}

// keyprov's own environment, when it is the real process environment, is
// not injected: backends keep their defaults (the AWS SDK's chain).
func TestProcessEnvironmentIsNotInjected(t *testing.T) {
	envs, err := loadEnvironments(nil, nil, false)
	require.NoError(t, err)
	require.Len(t, envs, 1)
	assert.Nil(t, envs[0].inject)
	assert.NotNil(t, envs[0].lookup)

	_, err = keyprovider.FromEnv(context.Background(), keyprovider.Tessera, keyprovider.WithLookupEnv(envs[0].inject))
	if err != nil {
		// Whatever the machine's environment holds, the error is classified.
		assert.True(t, errors.Is(err, keyprovider.ErrNotFound) || errors.Is(err, keyprovider.ErrInvalidKey) || strings.Contains(err.Error(), "keyprovider"), "%v", err)
	}
}
