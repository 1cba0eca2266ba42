package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

// Keys the tests resolve. Each test asserts none of them is printed unless
// asked for with --reveal.
const (
	tesseraKey  = "sk-tessera-UnitTestKeyAAAA0000111122223333"
	tesseraKey2 = "sk-tessera-UnitTestKeyBBBB4444555566667777"
	tesseralKey = "tesseral_secret_key_UnitTestKeyCCCC88889999"
)

var allKeys = []string{tesseraKey, tesseraKey2, tesseralKey}

func fp(key string) string { return keyprovider.NewKey(key, "").Fingerprint() }

// mapEnv is an environment made of a map.
func mapEnv(vars map[string]string) lookupFunc {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

type runResult struct {
	code           int
	stdout, stderr string
}

func runKeyprov(t *testing.T, env map[string]string, args ...string) runResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, mapEnv(env), &stdout, &stderr)
	return runResult{code, stdout.String(), stderr.String()}
}

// assertNoKey fails if any test key appears in the output.
func assertNoKey(t *testing.T, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		for _, k := range allKeys {
			// Also look for a long part of the key, in case it was cut.
			assert.NotContains(t, out, k[len(k)-16:], "a key was printed")
		}
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no command", nil, exitUsage, "usage:"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"help", []string{"help"}, exitOK, ""},
		{"check -h", []string{"check", "-h"}, exitOK, "-env-file"},
		{"unknown flag", []string{"check", "--nope"}, exitUsage, "flag provided but not defined"},
		{"stray argument", []string{"check", "tessera"}, exitUsage, `unexpected argument "tessera"`},
		{"unknown service", []string{"check", "--service", "openai"}, exitUsage, `unknown service "openai"`},
		{"get without service", []string{"get"}, exitUsage, "--service is required"},
		{"get unknown service", []string{"get", "--service", "all"}, exitUsage, `unknown service "all"`},
		{"watch without service", []string{"watch"}, exitUsage, "--service is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runKeyprov(t, nil, tc.args...)
			assert.Equal(t, tc.wantCode, got.code, "stderr: %s", got.stderr)
			assert.Contains(t, got.stderr+got.stdout, tc.wantErr)
		})
	}
}

func TestCheckText(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantCode  int
		wantLines []string // substrings of the lines after the header, in order
		wantErr   string
	}{
		{
			name:     "literal keys",
			env:      map[string]string{"TESSERA_API_KEY": tesseraKey, "TESSERAL_API_KEY": tesseralKey},
			wantCode: exitOK,
			wantLines: []string{
				"tesseral  literal (TESSERAL_API_KEY)  -        " + fp(tesseralKey),
				"tessera   literal (TESSERA_API_KEY)   -        " + fp(tesseraKey),
			},
		},
		{
			name:      "trailing newline is trimmed",
			env:       map[string]string{"TESSERA_API_KEY": tesseraKey + "\n"},
			args:      []string{"--service", "tessera"},
			wantCode:  exitOK,
			wantLines: []string{fp(tesseraKey) + "  "},
		},
		{
			name:      "unset service is skipped under all",
			env:       map[string]string{"TESSERA_API_KEY": tesseraKey},
			wantCode:  exitOK,
			wantLines: []string{"SKIP: TESSERAL_API_KEY is not set", "OK"},
		},
		{
			name:      "unset service fails when named",
			env:       map[string]string{"TESSERA_API_KEY": tesseraKey},
			args:      []string{"--service", "tessera,tesseral"},
			wantCode:  exitFail,
			wantLines: []string{"tessera", "tesseral", "FAIL:"},
		},
		{
			name:      "wrong prefix",
			env:       map[string]string{"TESSERA_API_KEY": tesseralKey},
			args:      []string{"--service", "tessera"},
			wantCode:  exitFail,
			wantLines: []string{"FAIL:", "looks like a tesseral key"},
		},
		{
			name:     "nothing configured",
			env:      map[string]string{},
			wantCode: exitFail,
			wantErr:  "environment: no key configured",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runKeyprov(t, tc.env, append([]string{"check"}, tc.args...)...)
			assert.Equal(t, tc.wantCode, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
			lines := strings.Split(strings.TrimSpace(got.stdout), "\n")
			require.NotEmpty(t, lines)
			assert.True(t, strings.HasPrefix(lines[0], "ENV "), "header: %q", lines[0])
			body := strings.Join(lines[1:], "\n")
			for _, want := range tc.wantLines {
				i := strings.Index(body, want)
				require.GreaterOrEqual(t, i, 0, "want %q in\n%s", want, got.stdout)
				body = body[i+len(want):]
			}
			assert.Contains(t, got.stderr, tc.wantErr)
			assertNoKey(t, got.stdout, got.stderr)
		})
	}
}

func TestCheckJSON(t *testing.T) {
	env := map[string]string{"TESSERA_API_KEY": tesseraKey, "TESSERAL_API_KEY": "tesseral_secret_key_"}
	got := runKeyprov(t, env, "check", "--json")
	assert.Equal(t, exitFail, got.code)
	assertNoKey(t, got.stdout, got.stderr)

	var results []result
	for _, line := range strings.Split(strings.TrimSpace(got.stdout), "\n") {
		var r result
		require.NoError(t, json.Unmarshal([]byte(line), &r), "line %q", line)
		results = append(results, r)
	}
	require.Len(t, results, 2)
	byService := map[string]result{}
	for _, r := range results {
		byService[r.Service] = r
	}
	ok, bad := byService["tessera"], byService["tesseral"]
	assert.Equal(t, statusOK, ok.Status)
	assert.Equal(t, fp(tesseraKey), ok.Fingerprint)
	assert.Equal(t, "TESSERA_API_KEY", ok.Variable)
	assert.Equal(t, "literal", ok.Source)
	assert.Equal(t, processEnvName, ok.Env)
	assert.Empty(t, ok.Error)

	assert.Equal(t, statusFailed, bad.Status)
	assert.Equal(t, "invalid_key", bad.Kind)
	assert.Contains(t, bad.Error, "nothing after the prefix")
	assert.Empty(t, bad.Fingerprint)
}

func TestCheckEnvFiles(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "dev.env")
	staging := filepath.Join(dir, "staging.env")
	require.NoError(t, os.WriteFile(dev, []byte("# dev laptops\nexport TESSERA_API_KEY='"+tesseraKey+"'\n"), 0o600))
	require.NoError(t, os.WriteFile(staging, []byte("TESSERA_API_KEY=\""+tesseraKey2+"\" # staging\nTESSERAL_API_KEY="+tesseralKey+"\n"), 0o600))

	// keyprov's own environment has a key of its own: it must not leak
	// into the files' environments.
	process := map[string]string{"TESSERAL_API_KEY": "tesseral_secret_key_FromTheOperatorsShell"}
	got := runKeyprov(t, process, "check", "--env-file", dev, "--env-file", staging, "--json")
	assert.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assertNoKey(t, got.stdout, got.stderr)

	var results []result
	for _, line := range strings.Split(strings.TrimSpace(got.stdout), "\n") {
		var r result
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		results = append(results, r)
	}
	type row struct{ env, service, status, fingerprint string }
	var rows []row
	for _, r := range results {
		rows = append(rows, row{r.Env, r.Service, r.Status, r.Fingerprint})
	}
	assert.Equal(t, []row{
		{dev, "tesseral", statusSkipped, ""},
		{dev, "tessera", statusOK, fp(tesseraKey)},
		{staging, "tesseral", statusOK, fp(tesseralKey)},
		{staging, "tessera", statusOK, fp(tesseraKey2)},
	}, rows)

	t.Run("bad file", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.env")
		require.NoError(t, os.WriteFile(bad, []byte("A=1\n"+tesseraKey+"\n"), 0o600))
		got := runKeyprov(t, nil, "check", "--env-file", dev, "--env-file", bad)
		assert.Equal(t, exitFail, got.code)
		assert.Contains(t, got.stderr, bad+": line 2: expected KEY=VALUE")
		assertNoKey(t, got.stdout, got.stderr)
	})
	t.Run("missing file", func(t *testing.T) {
		got := runKeyprov(t, nil, "check", "--env-file", filepath.Join(dir, "nope.env"))
		assert.Equal(t, exitFail, got.code)
		assert.Contains(t, got.stderr, "nope.env")
	})
}

func TestFileLookup(t *testing.T) {
	process := mapEnv(map[string]string{
		"TESSERA_API_KEY": "from-process", "TESSERA_API_KEY_FILE": "/process", "TESSERAL_API_KEY": "x",
		"VAULT_ADDR": "http://process", "VAULT_TOKEN": "process-token",
	})
	file := map[string]string{"VAULT_ADDR": "http://file", "OTHER": ""}
	tests := []struct {
		name    string
		inherit bool
		want    string
		wantOK  bool
	}{
		{"VAULT_ADDR", false, "http://file", true},
		{"VAULT_TOKEN", false, "", false}, // the operator's token stays home
		{"OTHER", false, "", true},
		{"TESSERA_API_KEY", false, "", false},
		{"UNSET", false, "", false},
		{"VAULT_ADDR", true, "http://file", true},
		{"VAULT_TOKEN", true, "process-token", true},
		{"OTHER", true, "", true},
		{"TESSERA_API_KEY", true, "", false},
		{"TESSERA_API_KEY_FILE", true, "", false},
		{"TESSERAL_API_KEY", true, "", false},
		{"UNSET", true, "", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s inherit=%v", tc.name, tc.inherit), func(t *testing.T) {
			got, ok := fileLookup(file, process, tc.inherit)(tc.name)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestGet(t *testing.T) {
	env := map[string]string{"TESSERA_API_KEY": "  " + tesseraKey + "\n"}

	got := runKeyprov(t, env, "get", "--service", "tessera")
	require.Equal(t, exitOK, got.code, got.stderr)
	assert.Equal(t, fp(tesseraKey)+"\n", got.stdout)
	assertNoKey(t, got.stdout, got.stderr)

	got = runKeyprov(t, env, "get", "--service", "tessera", "--reveal")
	require.Equal(t, exitOK, got.code, got.stderr)
	assert.Equal(t, tesseraKey+"\n", got.stdout, "--reveal prints the trimmed key")
	assert.Empty(t, got.stderr)

	got = runKeyprov(t, env, "get", "--service", "tesseral", "--reveal")
	assert.Equal(t, exitFail, got.code)
	assert.Empty(t, got.stdout)
	assert.Contains(t, got.stderr, "TESSERAL_API_KEY")

	bad := map[string]string{"TESSERA_API_KEY": tesseralKey}
	got = runKeyprov(t, bad, "get", "--service", "tessera", "--reveal")
	assert.Equal(t, exitFail, got.code)
	assert.Empty(t, got.stdout, "an invalid key is not revealed")
	assertNoKey(t, got.stdout, got.stderr)
}

// shortTempDir is a temporary directory whose name is short: the long,
// mixed letters-and-digits name of t.TempDir could be a key, and errors show
// it as a fingerprint.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kp")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestCheckSources(t *testing.T) {
	dir := shortTempDir(t)
	keyFile := filepath.Join(dir, "tessera")
	require.NoError(t, os.WriteFile(keyFile, []byte(tesseraKey+"\n"), 0o600))
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name       string
		env        map[string]string
		wantStatus string
		wantVar    string
		wantSource string
		wantKind   string
		wantErr    string
	}{
		{
			name:       "literal",
			env:        map[string]string{"TESSERA_API_KEY": tesseraKey},
			wantStatus: statusOK, wantVar: "TESSERA_API_KEY", wantSource: "literal",
		},
		{
			name:       "_FILE",
			env:        map[string]string{"TESSERA_API_KEY_FILE": keyFile},
			wantStatus: statusOK, wantVar: "TESSERA_API_KEY_FILE", wantSource: "file://" + keyFile,
		},
		{
			name:       "file reference",
			env:        map[string]string{"TESSERA_API_KEY": "file://" + keyFile},
			wantStatus: statusOK, wantVar: "TESSERA_API_KEY", wantSource: "file://" + keyFile,
		},
		{
			name:       "env reference",
			env:        map[string]string{"TESSERA_API_KEY": "env://OTHER_KEY", "OTHER_KEY": tesseraKey},
			wantStatus: statusOK, wantVar: "TESSERA_API_KEY", wantSource: "env://OTHER_KEY",
		},
		{
			name:       "missing file",
			env:        map[string]string{"TESSERA_API_KEY": "file://" + missing},
			wantStatus: statusFailed, wantVar: "TESSERA_API_KEY", wantSource: "file://" + missing,
			wantKind: "not_found", wantErr: missing,
		},
		{
			name:       "both set",
			env:        map[string]string{"TESSERA_API_KEY": tesseraKey, "TESSERA_API_KEY_FILE": keyFile},
			wantStatus: statusFailed, wantKind: "invalid_key", wantErr: "TESSERA_API_KEY_FILE",
		},
		{
			name:       "unknown scheme",
			env:        map[string]string{"TESSERA_API_KEY": "vualt://kv/tessera#api_key"},
			wantStatus: statusFailed, wantVar: "TESSERA_API_KEY", wantKind: "invalid_key", wantErr: "did you mean vault://",
		},
		{
			name:       "key that looks like a reference",
			env:        map[string]string{"TESSERA_API_KEY": "sk-tessera://" + tesseraKey[11:]},
			wantStatus: statusFailed, wantVar: "TESSERA_API_KEY", wantKind: "invalid_key", wantErr: "unknown scheme",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runKeyprov(t, tc.env, "check", "--service", "tessera", "--json")
			assertNoKey(t, got.stdout, got.stderr)
			results := parseJSONLines(t, got.stdout)
			require.Len(t, results, 1)
			r := results[0]
			assert.Equal(t, tc.wantStatus, r.Status, "error: %s", r.Error)
			assert.Equal(t, tc.wantVar, r.Variable)
			assert.Equal(t, tc.wantSource, r.Source)
			assert.Equal(t, tc.wantKind, r.Kind)
			assert.Contains(t, r.Error, tc.wantErr)
			if tc.wantStatus == statusOK {
				assert.Equal(t, exitOK, got.code)
				assert.Equal(t, fp(tesseraKey), r.Fingerprint)
			} else {
				assert.Equal(t, exitFail, got.code)
			}
		})
	}
}
