package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/keyprovidertest/standin"
	"github.com/keyprovider/keyprovider/rotate"
)

// testRotateDeps are rotate's dependencies for a test: backoff waits are
// instant; hook, when set, runs after each step.
func testRotateDeps(hook func(step string) error) rotateDeps {
	d := defaultRotateDeps()
	d.verifier.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() }
	d.poll = 0
	if hook != nil {
		d.afterStep = hook
	}
	return d
}

// runRotateTest runs keyprov rotate with env, the new key on stdin.
func runRotateTest(t *testing.T, env map[string]string, newKey string, deps rotateDeps, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := rotateWith(ctx, args, mapEnv(env), strings.NewReader(newKey+"\n"), &stdout, &stderr, deps)
	return runResult{code, stdout.String(), stderr.String()}
}

// assertNoSecret fails if any of keys, or a long part of one, is in out.
func assertNoSecret(t *testing.T, out string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		assert.NotContains(t, out, k[max(0, len(k)-16):], "a key was printed")
	}
}

// steps parses --json output.
func steps(t *testing.T, out string) []stepEvent {
	t.Helper()
	var evs []stepEvent
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e stepEvent
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		evs = append(evs, e)
	}
	return evs
}

func stepStatus(evs []stepEvent, step string) string {
	s := ""
	for _, e := range evs {
		if e.Step == step && e.Status != "info" {
			s = e.Status
		}
	}
	return s
}

type awsFixture struct {
	srv    *awssmtest.Server
	api    *standin.Server
	env    map[string]string
	oldKey string
	newKey string
}

func newAWSFixture(t *testing.T) *awsFixture {
	t.Helper()
	f := &awsFixture{srv: awssmtest.NewServer(t), oldKey: standin.NewKey(keyprovider.Tessera), newKey: standin.NewKey(keyprovider.Tessera)}
	f.api = standin.New(t, standin.WithKeys(f.oldKey, f.newKey))
	_, err := f.srv.Client().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("prod/tessera"), SecretString: aws.String(`{"api_key":"` + f.oldKey + `","other":"kept"}`),
	})
	require.NoError(t, err)
	f.env = map[string]string{
		"TESSERA_API_KEY":                  "awssm://prod/tessera#api_key?region=" + awssmtest.DefaultRegion,
		"TESSERA_BASE_URL":                 f.api.BaseURL(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": f.srv.URL(),
		"AWS_ACCESS_KEY_ID":                awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            awssmtest.DefaultSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":        "true",
	}
	return f
}

// current reads the secret's AWSCURRENT value.
func (f *awsFixture) current(t *testing.T) string {
	t.Helper()
	out, err := f.srv.Client().GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/tessera")})
	require.NoError(t, err)
	return aws.ToString(out.SecretString)
}

func TestRotateAWSFullWhileSourceReads(t *testing.T) {
	f := newAWSFixture(t)
	ctx := context.Background()
	p, err := awssm.FromEnv(ctx, "prod/tessera", awssm.WithJSONField("api_key"), awssm.WithRegion(awssmtest.DefaultRegion),
		awssm.WithService(keyprovider.Tessera), awssm.WithLookupEnv(mapEnv(f.env)))
	require.NoError(t, err)
	src, err := rotate.New(p, rotate.WithLogger(quietLogger()))
	require.NoError(t, err)
	defer src.Close()
	svc := f.api.Service(keyprovider.Tessera)
	client := keyprovider.NewClient(src, keyprovider.WithAllowedHosts(svc.Host()))
	request := func(step string) error {
		// A service reads the same secret all along: it refreshes and calls
		// the API after every step, and no call may fail.
		_, err := src.Refresh(ctx)
		require.NoError(t, err, "refresh after %s", step)
		resp, err := client.Get(svc.BaseURL + "/models")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "a request after %s", step)
		return nil
	}
	// And one more reader, refreshing and calling all along, concurrently.
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		failed := 0
		for {
			select {
			case <-stop:
				done <- failed
				return
			default:
			}
			if _, err := src.Refresh(ctx); err != nil {
				failed++
			}
			resp, err := client.Get(svc.BaseURL + "/models")
			if err != nil {
				failed++
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed++
			}
		}
	}()
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(request), "--service", "tessera", "--json", "--wait", "5s")
	close(stop)
	select {
	case failed := <-done:
		assert.Equal(t, 0, failed, "no request of the concurrent reader failed")
	case <-time.After(10 * time.Second):
		t.Fatal("the concurrent reader did not stop")
	}
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	evs := steps(t, got.stdout)
	for _, s := range []string{"resolve", "validate", "stage", "verify", "promote", "report", "wait"} {
		assert.Equal(t, statusOK, stepStatus(evs, s), s)
	}
	assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey)

	assert.JSONEq(t, `{"api_key":"`+f.newKey+`","other":"kept"}`, f.current(t), "the new key is current, the other fields kept")
	k, err := src.Refresh(ctx)
	require.NoError(t, err)
	assert.Equal(t, standin.Fingerprint(f.newKey), k.Fingerprint(), "the Source picked up the new key")
	require.NoError(t, request("the rotation"))
	prev, err := f.srv.Client().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/tessera"), VersionStage: aws.String("AWSPREVIOUS")})
	require.NoError(t, err)
	assert.Contains(t, aws.ToString(prev.SecretString), f.oldKey, "the old key is AWSPREVIOUS")
	assert.Equal(t, 0, f.api.Stats().ByStatus[http.StatusUnauthorized], "no request was refused")
}

func TestRotateAWSVerifyRefusedLeavesOldKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *awsFixture)
	}{
		{"401", func(f *awsFixture) { f.api.Revoke(f.newKey) }},
		{"403", func(f *awsFixture) { f.api.Deny(f.newKey) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newAWSFixture(t)
			tc.setup(f)
			got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera", "--json")
			require.Equal(t, exitFail, got.code, got.stdout)
			evs := steps(t, got.stdout)
			assert.Equal(t, statusFailed, stepStatus(evs, "verify"))
			assert.Equal(t, statusOK, stepStatus(evs, "abandon"))
			assert.Equal(t, "", stepStatus(evs, "promote"), "nothing promoted")
			assert.Contains(t, got.stdout, "no longer has AWSPENDING", "says what happened to the staged version")
			assert.Contains(t, f.current(t), f.oldKey, "the old key is current")
			assertNoSecret(t, got.stdout+got.stderr, f.newKey, f.oldKey)
		})
	}
}

func TestRotateAWSThrottledRetriesThenAborts(t *testing.T) {
	f := newAWSFixture(t)
	f.api.Throttle(100, time.Second)
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera")
	require.Equal(t, exitFail, got.code, got.stdout)
	assert.Contains(t, got.stdout, "attempt 4: HTTP 429")
	assert.Contains(t, got.stdout, "abandon")
	assert.Contains(t, f.current(t), f.oldKey)
}

func TestRotateAWSCrashAfterStageThenRerun(t *testing.T) {
	f := newAWSFixture(t)
	crash := errors.New("killed")
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(func(step string) error {
		if step == "stage" {
			return crash
		}
		return nil
	}), "--service", "tessera", "--json")
	require.Equal(t, exitFail, got.code)
	assert.Contains(t, f.current(t), f.oldKey, "a crash after staging leaves the old key current")
	versions := f.srv.Count("PutSecretValue")

	got = runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera", "--json")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assert.Contains(t, f.current(t), f.newKey)
	assert.Equal(t, versions+1, f.srv.Count("PutSecretValue"))
	list, err := f.srv.Client().ListSecretVersionIds(context.Background(), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("prod/tessera")})
	require.NoError(t, err)
	assert.Len(t, list.Versions, 2, "the re-run staged the same version again: AWS's idempotent retry")
}

func TestRotateDryRunWritesNothing(t *testing.T) {
	f := newAWSFixture(t)
	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera", "--dry-run")
	require.Equal(t, exitOK, got.code, got.stderr)
	assert.Contains(t, got.stdout, "planned")
	assert.Equal(t, 0, f.srv.Count("PutSecretValue"))
	assert.Equal(t, 0, f.srv.Count("UpdateSecretVersionStage"))
	assert.Contains(t, f.current(t), f.oldKey)
	assertNoSecret(t, got.stdout+got.stderr, f.newKey)
}

func TestRotateRefusesKeyArgument(t *testing.T) {
	f := newAWSFixture(t)
	for _, args := range [][]string{
		{"--service", "tessera", f.newKey},
		{"--service", f.newKey},
		{"--service", "tessera", "--key", f.newKey},
	} {
		got := runRotateTest(t, f.env, "", testRotateDeps(nil), args...)
		assert.Equal(t, exitUsage, got.code)
		assertNoSecret(t, got.stdout+got.stderr, f.newKey)
	}
	assert.Equal(t, 0, f.srv.Count("PutSecretValue"))
}

func TestRotateRefusesBadOrSameKey(t *testing.T) {
	f := newAWSFixture(t)
	for _, key := range []string{f.oldKey, "tesseral_secret_key_NotForTessera0000111122223333"} {
		got := runRotateTest(t, f.env, key, testRotateDeps(nil), "--service", "tessera")
		assert.Equal(t, exitFail, got.code, got.stdout)
		assert.Contains(t, got.stdout, "validate failed")
		assertNoSecret(t, got.stdout+got.stderr, key)
	}
	assert.Equal(t, 0, f.srv.Count("PutSecretValue"))
}

func TestRotateRefusesLiteralEnvAndFile(t *testing.T) {
	api := standin.New(t)
	oldKey, newKey := standin.NewKey(keyprovider.Tessera), standin.NewKey(keyprovider.Tessera)
	api.AddKey(newKey)
	file := filepath.Join(t.TempDir(), "tessera")
	require.NoError(t, os.WriteFile(file, []byte(oldKey+"\n"), 0o640))
	for name, env := range map[string]map[string]string{
		"literal": {"TESSERA_API_KEY": oldKey},
		"env":     {"TESSERA_API_KEY": "env://OTHER", "OTHER": oldKey},
		"file":    {"TESSERA_API_KEY": "file://" + file},
	} {
		env["TESSERA_BASE_URL"] = api.BaseURL()
		got := runRotateTest(t, env, newKey, testRotateDeps(nil), "--service", "tessera")
		assert.Equal(t, exitFail, got.code, name)
		assert.Contains(t, got.stdout, "cannot rotate", name)
		assertNoSecret(t, got.stdout+got.stderr, newKey, oldKey)
	}

	env := map[string]string{"TESSERA_API_KEY": "file://" + file, "TESSERA_BASE_URL": api.BaseURL()}
	got := runRotateTest(t, env, newKey, testRotateDeps(nil), "--service", "tessera", "--write-file")
	assert.Equal(t, exitFail, got.code, "a file has no staging: --yes is needed")
	got = runRotateTest(t, env, newKey, testRotateDeps(nil), "--service", "tessera", "--write-file", "--yes")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, newKey+"\n", string(b))
	fi, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), "the file's mode is kept")
	assertNoSecret(t, got.stdout+got.stderr, newKey, oldKey)
}

func TestRotateTesseralVerifiesOrganizations(t *testing.T) {
	api := standin.New(t)
	oldKey, newKey := standin.NewKey(keyprovider.Tesseral), standin.NewKey(keyprovider.Tesseral)
	api.AddKey(newKey)
	api.Deny(newKey, standin.RouteModels) // only the organization listing may be asked
	file := filepath.Join(t.TempDir(), "tesseral")
	require.NoError(t, os.WriteFile(file, []byte(oldKey), 0o600))
	env := map[string]string{"TESSERAL_API_KEY_FILE": file}
	got := runRotateTest(t, env, newKey, testRotateDeps(nil), "--service", "tesseral", "--write-file", "--yes", "--verify-url", api.BaseURL(), "--json")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assert.Equal(t, 1, api.Stats().ByRoute[standin.RouteOrganizations])
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, newKey, string(b), "no newline added")
	assertNoSecret(t, got.stdout+got.stderr, newKey, oldKey)
}

func TestRotateThroughRunRefusesKeyArgument(t *testing.T) {
	got := runKeyprov(t, nil, "rotate", "--service", "tessera", tesseraKey2)
	assert.Equal(t, exitUsage, got.code)
	assert.Contains(t, got.stderr, "stdin only")
	assertNoKey(t, got.stdout, got.stderr)
	got = runKeyprov(t, nil, "help")
	assert.Contains(t, got.stdout, "keyprov rotate")
}

func TestRotateVerifyURLMustBeSafe(t *testing.T) {
	// verifyURL through the check every base URL passes (serviceBaseURL).
	verifyURL := func(svc keyprovider.Service, base string) (string, error) {
		u, err := serviceBaseURL(svc, "--verify-url", base, nil)
		if err != nil {
			return "", err
		}
		return verifyURL(svc, u), nil
	}
	_, err := verifyURL(keyprovider.Tessera, "http://example.com/v1")
	require.Error(t, err, "plain HTTP off loopback")
	u, err := verifyURL(keyprovider.Tesseral, "https://api.tesseral.com/v1/")
	require.NoError(t, err)
	assert.Equal(t, "https://api.tesseral.com/v1/organizations?pageSize=1", u)
	u, err = verifyURL(keyprovider.Tessera, keyprovider.Tessera.BaseURL)
	require.NoError(t, err)
	assert.Equal(t, "https://api.tesseraai.cloud/v1/models", u)
}

// quietLogger discards what a test's rotate.Source logs.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
