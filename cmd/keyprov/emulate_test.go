//go:build !keyprov_no_awssm && !keyprov_no_onepassword

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/onepassword"
)

const emulateSeedYAML = `
awssm:
  secrets:
    - name: tessera/api-key
      description: the Tessera key
      tags: {team: payments}
      versions:
        - {id: 11111111-1111-1111-1111-111111111111, string: sk-old}
        - {id: 22222222-2222-2222-2222-222222222222, string: sk-new}
        - {id: 33333333-3333-3333-3333-333333333333, string: sk-next, stages: [AWSPENDING]}
    - name: blob
      versions:
        - {binary: AAEC}
connect:
  token: fixed-connect-token
  vaults:
    - name: prod
      id: prodvault0000000000000000a
      items:
        - title: tessera
          id: tesseraitem00000000000000a
          fields:
            - {label: credential, type: CONCEALED, value: sk-connect}
`

// emulation is a keyprov emulate run in this process.
type emulation struct {
	env  map[string]string
	stop func() int
}

// startEmulate runs keyprov emulate with args until stop, returning the
// environment it printed (as JSON).
func startEmulate(t *testing.T, args ...string) emulation {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, append([]string{"emulate", "--json"}, args...), nil, w, &stderr)
		_ = w.Close()
		done <- code
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	var env map[string]string
	select {
	case line := <-lines:
		require.NoError(t, json.Unmarshal([]byte(line), &env), "%q, stderr %s", line, stderr.String())
	case <-time.After(20 * time.Second):
		cancel()
		require.FailNow(t, "keyprov emulate printed no environment")
	}
	stopped := false
	stop := func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(20 * time.Second):
			require.FailNow(t, "keyprov emulate did not stop")
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	return emulation{env: env, stop: stop}
}

func writeSeed(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// keyprov emulate serves both emulators, seeded, and prints what a client
// needs to reach them.
func TestEmulateServesTheSeed(t *testing.T) {
	seed := writeSeed(t, "seed.yaml", emulateSeedYAML)
	em := startEmulate(t, "--awssm", "127.0.0.1:0", "--connect", "127.0.0.1:0", "--seed", seed)
	keys := make([]string, 0, len(em.env))
	for k := range em.env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"AWS_ACCESS_KEY_ID", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_REGION",
		"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OP_CONNECT_HOST", "OP_CONNECT_TOKEN"}, keys)

	sm := secretsmanager.New(secretsmanager.Options{
		Region: em.env["AWS_REGION"], BaseEndpoint: aws.String(em.env["AWS_ENDPOINT_URL_SECRETS_MANAGER"]),
		Credentials: credentials.NewStaticCredentialsProvider(em.env["AWS_ACCESS_KEY_ID"], em.env["AWS_SECRET_ACCESS_KEY"], em.env["AWS_SESSION_TOKEN"]),
	})
	ctx := context.Background()
	for stage, want := range map[string]string{"AWSCURRENT": "sk-new", "AWSPREVIOUS": "sk-old", "AWSPENDING": "sk-next"} {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("tessera/api-key"), VersionStage: aws.String(stage)})
		require.NoError(t, err, stage)
		assert.Equal(t, want, aws.ToString(out.SecretString), stage)
	}
	desc, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("tessera/api-key")})
	require.NoError(t, err)
	assert.Equal(t, "payments", aws.ToString(desc.Tags[0].Value))
	blob, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("blob")})
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 2}, blob.SecretBinary)

	assert.Equal(t, "fixed-connect-token", em.env["OP_CONNECT_TOKEN"])
	c, err := onepassword.NewConnectClient(em.env["OP_CONNECT_HOST"], em.env["OP_CONNECT_TOKEN"])
	require.NoError(t, err)
	item, err := c.Client().GetItemByUUID("tesseraitem00000000000000a", "prodvault0000000000000000a")
	require.NoError(t, err)
	assert.Equal(t, "sk-connect", item.Fields[0].Value)
	assert.Equal(t, exitOK, em.stop(), "an interrupt ends it cleanly")
}

// Bad input ends keyprov emulate with a clear error before anything is
// served or printed.
func TestEmulateRefusesBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"non-loopback":     {[]string{"--awssm", "0.0.0.0:4566"}, exitUsage, "not loopback"},
		"all interfaces":   {[]string{"--connect", ":8080"}, exitUsage, "not loopback"},
		"port in use":      {[]string{"--awssm", busy.Addr().String()}, exitFail, "address already in use"},
		"connect port use": {[]string{"--connect", busy.Addr().String()}, exitFail, "address already in use"},
		"malformed json":   {[]string{"--awssm", "127.0.0.1:0", "--seed", writeSeed(t, "s.json", `{"awssm":`)}, exitFail, "bad seed"},
		"unknown key":      {[]string{"--awssm", "127.0.0.1:0", "--seed", writeSeed(t, "s.yaml", "awssm: {secretz: []}")}, exitFail, "secretz"},
		"two values": {[]string{"--awssm", "127.0.0.1:0", "--seed", writeSeed(t, "s.yml",
			"awssm: {secrets: [{name: a, versions: [{string: x, binary: AA==}]}]}")}, exitFail, "exactly one of string and binary"},
		"bad stage move": {[]string{"--awssm", "127.0.0.1:0", "--seed", writeSeed(t, "s2.yaml",
			"awssm: {secrets: [{name: a, versions: [{id: short, string: x}]}]}")}, exitFail, "ClientRequestToken"},
		"bad vault id": {[]string{"--connect", "127.0.0.1:0", "--seed", writeSeed(t, "s3.yaml",
			"connect: {vaults: [{name: v, id: NOT-AN-ID}]}")}, exitFail, "malformed"},
		"extension":        {[]string{"--seed", writeSeed(t, "seed.toml", "")}, exitFail, ".json, .yaml or .yml"},
		"missing file":     {[]string{"--seed", filepath.Join(t.TempDir(), "none.yaml")}, exitFail, "no such file"},
		"seed for neither": {[]string{"--awssm", "127.0.0.1:0", "--seed", writeSeed(t, "s4.yaml", "connect: {vaults: [{name: v}]}")}, exitUsage, "--connect is not given"},
		"stray argument":   {[]string{"serve"}, exitUsage, "unexpected argument"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code := run(ctx, append([]string{"emulate"}, tc.args...), nil, &stdout, &stderr)
			assert.Equal(t, tc.code, code, stderr.String())
			assert.Contains(t, stderr.String(), tc.want)
			assert.Empty(t, stdout.String(), "nothing printed, nothing served")
		})
	}
}

// Export lines are quoted for a shell and name the control paths.
func TestEmulatePrintsExportLines(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, printEnv(&b, []envVar{{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:1"}, {"OP_CONNECT_TOKEN", "it's"}}, false))
	assert.Equal(t, "export AWS_ENDPOINT_URL_SECRETS_MANAGER='http://127.0.0.1:1'\nexport OP_CONNECT_TOKEN='it'\\''s'\n"+
		"# awssm control: http://127.0.0.1:1/_emulator/\n# serving until interrupted (Ctrl-C)\n", b.String())
}

// Non-Go clients use keyprov emulate as its printed environment tells them:
// boto3, the AWS CLI and the JS Connect SDK read the seed.
func TestEmulateRealClients(t *testing.T) {
	seed := writeSeed(t, "seed.yaml", emulateSeedYAML)
	em := startEmulate(t, "--awssm", "127.0.0.1:0", "--connect", "127.0.0.1:0", "--seed", seed)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	for k, v := range em.env {
		env = append(env, k+"="+v)
	}
	clients := []struct {
		name  string
		probe []string
		cmd   []string
		dir   string
	}{
		{"boto3", []string{"python3", "-c", "import boto3"}, []string{"python3", "-c",
			`import boto3; print(boto3.client("secretsmanager").get_secret_value(SecretId="tessera/api-key", VersionStage="AWSPREVIOUS")["SecretString"])`}, ""},
		{"aws", []string{"aws", "--version"}, []string{"aws", "secretsmanager", "get-secret-value", "--secret-id", "tessera/api-key",
			"--version-stage", "AWSPREVIOUS", "--query", "SecretString", "--output", "text"}, ""},
		{"node", []string{"node", "-e", `require("@1password/connect")`}, []string{"node", "-e",
			`require("@1password/connect").OnePasswordConnect({serverURL: process.env.OP_CONNECT_HOST, token: process.env.OP_CONNECT_TOKEN})` +
				`.getItemByTitle("prodvault0000000000000000a", "tessera").then(i => console.log(i.fields[0].value.replace("connect", "old")))`},
			"../../test/node-connect"},
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			probe := exec.CommandContext(ctx, c.probe[0], c.probe[1:]...)
			probe.Dir = c.dir
			if err := probe.Run(); err != nil {
				if os.Getenv("KEYPROVIDER_REQUIRE_CLIENTS") == "1" {
					t.Fatalf("%s is not usable: %v (KEYPROVIDER_REQUIRE_CLIENTS=1)", c.name, err)
				}
				t.Skipf("%s is not usable here: %v", c.name, err)
			}
			cmd := exec.CommandContext(ctx, c.cmd[0], c.cmd[1:]...)
			cmd.Dir, cmd.Env = c.dir, env
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Equal(t, "sk-old\n", string(out))
		})
	}
}

// keyprov emulate, the built binary, serves within a second of its start:
// the best of three starts, so that a machine busy with other tests does not
// decide it.
func TestEmulateStartsWithinASecond(t *testing.T) {
	bin := keyprovBin(t)
	best := time.Duration(1<<63 - 1)
	for range 3 {
		best = min(best, timeEmulateStart(t, bin))
	}
	t.Logf("keyprov emulate served after %v (best of 3)", best)
	assert.Less(t, best, time.Second)
}

// timeEmulateStart runs the binary and returns how long it took to print
// the environment, which it does once both emulators listen.
func timeEmulateStart(t *testing.T, bin string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "emulate", "--awssm", "127.0.0.1:0", "--connect", "127.0.0.1:0", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	elapsed := time.Since(start)
	_ = cmd.Process.Signal(os.Interrupt)
	require.NoError(t, cmd.Wait(), "an interrupt ends it with status 0")
	require.NoError(t, err)
	assert.Contains(t, line, "OP_CONNECT_HOST")
	return elapsed
}
