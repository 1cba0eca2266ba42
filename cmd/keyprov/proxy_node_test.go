package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
)

// nodeDir is the Node project holding the OpenAI SDK the tests drive
// (test/node; scripts/test.sh runs npm ci there).
const nodeDir = "../../test/node"

// nodeClient returns the path of the node binary, skipping the test when
// node or the SDK is not installed, unless KEYPROVIDER_REQUIRE_NODE=1
// (scripts/test.sh sets it), when it fails instead.
func nodeClient(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeDir, "node_modules", "openai", "package.json"))
	}
	if err != nil {
		if os.Getenv("KEYPROVIDER_REQUIRE_NODE") == "1" {
			t.Fatalf("KEYPROVIDER_REQUIRE_NODE=1 but node or the OpenAI SDK is missing (%v): run npm ci in test/node", err)
		}
		t.Skipf("the OpenAI Node SDK is not installed (%v): run `npm ci` in test/node (scripts/test.sh does)", err)
	}
	return node
}

// runNode runs client.mjs with args against the proxy p and returns its
// JSON lines.
func runNode(t *testing.T, node string, p *testProxy, args ...string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"client.mjs"}, args...)...)
	cmd.Dir = nodeDir
	cmd.Env = nodeEnv(p)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node client.mjs %v:\n%s", args, out)
	return jsonLines(t, string(out))
}

func nodeEnv(p *testProxy) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(),
		"PROXY_BASE_URL=" + p.URL + "/v1", "PROXY_TOKEN=" + p.Token, "PROXY_MODEL=" + standin.DefaultModel}
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // node's own warnings (the SDK asks for a newer node)
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		res = append(res, m)
	}
	return res
}

func TestProxyOpenAINodeSDK(t *testing.T) {
	node := nodeClient(t)
	key := newTesseraKey()
	up := newStandin(t, key)
	env, _ := fileKeyEnv(t, key, up.BaseURL())
	p := startProxy(t, env, "--service", "tessera")

	got := runNode(t, node, p, "embeddings")
	require.Len(t, got, 1)
	assert.Equal(t, map[string]any{"embeddings": 2.0, "dims": float64(standin.DefaultDimensions), "models": []any{standin.DefaultModel}}, got[0])
	st := up.Stats()
	assert.Equal(t, 2, st.ByKey[standin.Fingerprint(key)], "the stand-in saw the real key")
	assert.Zero(t, st.ByKey[standin.Fingerprint(p.Token)], "and never the local token")

	// The stand-in has no streaming route: a loopback upstream streams.
	seen := make(chan string, 1)
	sse := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "text/event-stream")
		for _, word := range []string{"Hel", "lo", "!"} {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"chat\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", word)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	env2, _ := fileKeyEnv(t, key, sse+"/v1")
	p2 := startProxy(t, env2, "--service", "tessera")
	got = runNode(t, node, p2, "stream")
	require.Len(t, got, 1)
	assert.Equal(t, map[string]any{"content": "Hello!", "chunks": 3.0}, got[0])
	assert.Equal(t, "Bearer "+key, <-seen)
}

// rotateBackend is one backend the rotation test runs on: the environment
// naming the key there, and a function that makes next the key there.
type rotateBackend struct {
	env    map[string]string
	rotate func(next string)
}

func TestProxyOpenAINodeSDKRotation(t *testing.T) {
	node := nodeClient(t)
	backends := map[string]func(t *testing.T, key string) rotateBackend{
		"file": func(t *testing.T, key string) rotateBackend {
			env, file := fileKeyEnv(t, key, "")
			return rotateBackend{env, func(next string) { require.NoError(t, os.WriteFile(file, []byte(next+"\n"), 0o600)) }}
		},
		"awssm": awssmBackend,
		"vault": vaultBackend,
	}
	for _, name := range []string{"file", "awssm", "vault"} {
		t.Run(name, func(t *testing.T) {
			key, next := newTesseraKey(), newTesseraKey()
			up := newStandin(t, key)
			b := backends[name](t, key)
			b.env["TESSERA_BASE_URL"] = up.BaseURL()
			p := startProxy(t, b.env, "--service", "tessera")
			res := nodeRotationRun(t, node, p, 200, func() {
				b.rotate(next)
				up.Rotate(next, 0) // the old key is refused from the next request on
			})
			assert.Equal(t, map[string]any{"done": 200.0, "failed": 0.0, "errors": []any{}}, res)
			st := up.Stats()
			assert.Positive(t, st.ByKey[standin.Fingerprint(next)], "requests went out with the new key")
			assert.Equal(t, standin.Fingerprint(next), st.LastAccepted)
			assert.Zero(t, st.ByKey[standin.Fingerprint(p.Token)], "the local token never reached the stand-in")
			assert.Equal(t, 200+st.Rejected, st.Requests, "every 401 was replayed once, nothing else sent twice")
			t.Logf("%s: %d requests upstream, %d answered 401 and replayed", name, st.Requests, st.Rejected)
		})
	}
}

// nodeRotationRun runs n embeddings calls through p with the Node SDK and
// calls rotate once half of them are done, while the others are in flight.
func nodeRotationRun(t *testing.T, node string, p *testProxy, n int, rotate func()) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs", "rotation", fmt.Sprint(n))
	cmd.Dir = nodeDir
	cmd.Env = nodeEnv(p)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	var last map[string]any
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m["half"] == true {
			rotate()
			_, _ = io.WriteString(stdin, "go\n")
			continue
		}
		last = m
	}
	_ = stdin.Close()
	require.NoError(t, cmd.Wait(), "node: %s", stderr.String())
	require.NotNil(t, last, "node printed no result: %s", stderr.String())
	return last
}

func awssmBackend(t *testing.T, key string) rotateBackend {
	srv := awssmtest.NewServer(t)
	ctx := context.Background()
	_, err := srv.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("proxy/tessera"), SecretString: aws.String(`{"api_key":"` + key + `"}`),
	})
	require.NoError(t, err)
	env := map[string]string{
		"TESSERA_API_KEY":                  "awssm://proxy/tessera#api_key?region=" + awssmtest.DefaultRegion,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL(),
		"AWS_ACCESS_KEY_ID":                awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            awssmtest.DefaultSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":        "true",
	}
	return rotateBackend{env, func(next string) {
		_, err := srv.Client().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String("proxy/tessera"), SecretString: aws.String(`{"api_key":"` + next + `"}`),
		})
		require.NoError(t, err)
	}}
}

func vaultBackend(t *testing.T, key string) rotateBackend {
	addr, token := vaultEnv(t)
	path := "keyprov-proxy/" + strings.ToLower(t.Name()[len(t.Name())-5:]) + fmt.Sprint(time.Now().UnixNano())
	vaultPut(t, addr, token, path, map[string]string{"api_key": key})
	env := map[string]string{
		"TESSERA_API_KEY": "vault://secret/" + path + "#api_key",
		"VAULT_ADDR":      addr, "VAULT_TOKEN": token,
	}
	return rotateBackend{env, func(next string) { vaultPut(t, addr, token, path, map[string]string{"api_key": next}) }}
}
