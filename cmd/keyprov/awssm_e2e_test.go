package main

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

func TestE2EAWSSecretsManagerEmulator(t *testing.T) {
	srv := awssmtest.NewServer(t)
	_, err := srv.Client().CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("staging/tessera"), SecretString: aws.String(`{"api_key":"` + tesseraKey + `"}`),
	})
	require.NoError(t, err)
	env := map[string]string{
		"TESSERA_API_KEY":                  "awssm://staging/tessera#api_key?region=" + awssmtest.DefaultRegion,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL(),
		"AWS_ACCESS_KEY_ID":                awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            awssmtest.DefaultSecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":        "true",
	}
	got := execKeyprov(t, env, "check", "--service", "tessera", "--json")
	require.Equal(t, exitOK, got.code, "stdout:\n%s\nstderr:\n%s", got.stdout, got.stderr)
	r := parseJSONLines(t, got.stdout)
	require.Len(t, r, 1)
	assert.Equal(t, fp(tesseraKey), r[0].Fingerprint)
	assertNoKey(t, got.stdout, got.stderr)

	env["TESSERA_API_KEY"] = "awssm://staging/missing?region=" + awssmtest.DefaultRegion
	got = execKeyprov(t, env, "check", "--service", "tessera", "--json")
	assert.Equal(t, exitFail, got.code)
	r = parseJSONLines(t, got.stdout)
	require.Len(t, r, 1)
	assert.Equal(t, "not_found", r[0].Kind)
}
