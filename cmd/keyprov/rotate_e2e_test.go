package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The keyprov binary is killed (SIGKILL: no clean-up runs) while it
// verifies the key it staged; the old key stays current, and a re-run
// completes, staging the same version again.
func TestRotateE2EKilledAfterStagingThenRerun(t *testing.T) {
	bin := keyprovBin(t)
	f := newAWSFixture(t)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hold := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select { // hold the verification until the process is killed
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hold.Close()
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "rotate", "--service", "tessera", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range f.env {
		if k == "TESSERA_BASE_URL" {
			v = hold.URL + "/v1"
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(f.newKey + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("keyprov never verified; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // reaped
	assert.Contains(t, stdout.String(), `"step":"stage","status":"ok"`)
	assertNoSecret(t, stdout.String()+stderr.String(), f.newKey, f.oldKey)

	assert.Contains(t, f.current(t), f.oldKey, "killed after staging: the old key is current")
	pending, err := f.srv.Client().GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String("prod/tessera"), VersionStage: aws.String("AWSPENDING")})
	require.NoError(t, err)
	assert.Contains(t, aws.ToString(pending.SecretString), f.newKey, "the new key is left staged")

	got := runRotateTest(t, f.env, f.newKey, testRotateDeps(nil), "--service", "tessera")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	assert.Contains(t, f.current(t), f.newKey)
	list, err := f.srv.Client().ListSecretVersionIds(context.Background(), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("prod/tessera")})
	require.NoError(t, err)
	assert.Len(t, list.Versions, 2, "the re-run staged the same version: nothing left over")
}
