package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// assertOneRestartPerChange runs a Python child under keyprov exec in vars,
// where the key starts as tesseraKey; put stores a key in the backend. A
// new key restarts the child once, with it; storing the same value again
// (a new version) restarts nothing.
func assertOneRestartPerChange(t *testing.T, vars map[string]string, put func(key string)) *execRun {
	t.Helper()
	r := startExec(t, vars, "--refresh-interval", "1m", "--debounce", "2s", "--", "python3", childScript(t))
	r.waitEvent("started")
	assert.Contains(t, r.lines(1)[0], "key="+fp(tesseraKey)+" env="+fp(tesseraKey))

	put(tesseraKey2)
	r.refresh(1, time.Minute)
	r.waitEvent("debounce")
	r.clock.Advance(2 * time.Second)
	r.waitEvent("started")
	r.waitEvent("applied")
	lines := r.lines(2)
	require.Len(t, lines, 2, "exactly one restart")
	assert.Contains(t, lines[1], "key="+fp(tesseraKey2))
	assertReaped(t, r.pids()[0])

	put(tesseraKey2) // a new version, the same value
	r.refresh(1, time.Minute)
	r.refresh(1, 0)
	r.quiet()
	r.clock.Advance(5 * time.Second)
	r.quiet()
	assert.Len(t, r.lines(2), 2, "no restart for the same value")

	r.sigs <- syscall.SIGTERM
	assert.Equal(t, 0, r.wait())
	return r
}

func TestExecFollowsTheAWSEmulator(t *testing.T) {
	srv := awssmtest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), execWait)
	defer cancel()
	_, err := srv.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("staging/tessera"), SecretString: aws.String(`{"api_key":"` + tesseraKey + `"}`),
	})
	require.NoError(t, err)
	vars := map[string]string{
		"TESSERA_API_KEY":                  "awssm://staging/tessera#api_key?region=" + awssmtest.DefaultRegion,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL(),
		"AWS_ACCESS_KEY_ID":                awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            awssmtest.DefaultSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":        "true",
	}
	r := assertOneRestartPerChange(t, vars, func(key string) {
		_, err := srv.Client().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String("staging/tessera"), SecretString: aws.String(`{"api_key":"` + key + `"}`),
		})
		require.NoError(t, err)
	})
	assert.NotContains(t, r.out.String(), awssmtest.DefaultSecretAccessKey, "the AWS secret key is never printed")
}

func TestExecFollowsVault(t *testing.T) {
	addr, token := vaultEnv(t)
	vaultPut(t, addr, token, "keyprov-exec/tessera", map[string]string{"api_key": tesseraKey})
	vars := map[string]string{
		"TESSERA_API_KEY": "vault://secret/keyprov-exec/tessera#api_key",
		"VAULT_ADDR":      addr,
		"VAULT_TOKEN":     token,
	}
	r := assertOneRestartPerChange(t, vars, func(key string) {
		vaultPut(t, addr, token, "keyprov-exec/tessera", map[string]string{"api_key": key})
	})
	assert.NotContains(t, r.out.String(), token, "the Vault token is never printed")
}
