package awssm_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
)

// schemeEnv isolates the test from the machine's AWS configuration and
// returns the environment of a deployment whose references point at srv,
// for keyprovider.WithLookupEnv.
func schemeEnv(t *testing.T, srv *awssmtest.Server, vars map[string]string) keyprovider.EnvOption {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, name := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"} {
		t.Setenv(name, "")
	}
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":                awssmtest.DefaultAccessKeyID,
		"AWS_SECRET_ACCESS_KEY":            awssmtest.DefaultSecretAccessKey,
		"AWS_REGION":                       srv.Region(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL(),
	}
	for k, v := range vars {
		env[k] = v
	}
	return keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := env[name]; return v, ok })
}

func TestSchemeRegistered(t *testing.T) {
	assert.Contains(t, keyprovider.Schemes(), awssm.Scheme, "importing awssm registers awssm://")
}

func TestSchemeFromEnv(t *testing.T) {
	ctx := context.Background()
	srv := awssmtest.NewServer(t)
	sm := srv.Client()
	created, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("prod/tessera"), SecretString: aws.String(`{"api_key": "` + keyOne + `"}`),
	})
	require.NoError(t, err)
	firstVersion := aws.ToString(created.VersionId)
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("prod/plain"), SecretString: aws.String(keyTwo + "\n"),
	})
	require.NoError(t, err)

	fromEnv := func(t *testing.T, ref string, extra ...string) (*keyprovider.EnvProvider, error) {
		vars := map[string]string{"TESSERA_API_KEY": ref}
		for i := 0; i+1 < len(extra); i += 2 {
			vars[extra[i]] = extra[i+1]
		}
		return keyprovider.FromEnv(ctx, keyprovider.Tessera, schemeEnv(t, srv, vars))
	}

	t.Run("name and field, following rotation", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/tessera#api_key")
		require.NoError(t, err)
		k, err := p.Fetch(ctx)
		require.NoError(t, err)
		assert.Equal(t, keyOne, k.Reveal())
		assert.Equal(t, firstVersion, k.Version())

		_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String("prod/tessera"), SecretString: aws.String(`{"api_key": "` + keyTwo + `"}`),
		})
		require.NoError(t, err)
		k, err = p.Fetch(ctx)
		require.NoError(t, err)
		assert.Equal(t, keyTwo, k.Reveal())

		t.Run("stage", func(t *testing.T) {
			p, err := fromEnv(t, "awssm://prod/tessera#api_key?stage=AWSPREVIOUS")
			require.NoError(t, err)
			k, err := p.Fetch(ctx)
			require.NoError(t, err)
			assert.Equal(t, keyOne, k.Reveal())
		})
		t.Run("version-id", func(t *testing.T) {
			p, err := fromEnv(t, "awssm://prod/tessera#api_key?version-id="+firstVersion)
			require.NoError(t, err)
			k, err := p.Fetch(ctx)
			require.NoError(t, err)
			assert.Equal(t, keyOne, k.Reveal())
		})
	})
	t.Run("ARN, region from the ARN", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://"+aws.ToString(created.ARN)+"#api_key", "AWS_REGION", "eu-west-1")
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.NoError(t, err)
	})
	t.Run("whole value", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/plain")
		require.NoError(t, err)
		k, err := p.Fetch(ctx)
		require.NoError(t, err)
		assert.Equal(t, keyTwo, k.Reveal())
	})
	t.Run("region parameter wins over the environment", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/plain?region="+srv.Region(), "AWS_REGION", "eu-west-1")
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.NoError(t, err)
	})
	t.Run("region from the environment", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/plain", "AWS_REGION", "eu-west-1")
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.ErrorIs(t, err, keyprovider.ErrPermission, "the emulator serves only its own region")
	})
	t.Run("missing secret", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/nope")
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.ErrorIs(t, err, keyprovider.ErrNotFound)
	})
	t.Run("missing field", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/tessera#nope")
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.ErrorIs(t, err, keyprovider.ErrNotFound)
	})
	t.Run("wrong credentials from the environment", func(t *testing.T) {
		p, err := fromEnv(t, "awssm://prod/plain", "AWS_SECRET_ACCESS_KEY", "not-the-secret")
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.ErrorIs(t, err, keyprovider.ErrPermission)
		assert.NotContains(t, err.Error(), "not-the-secret")
	})
}

// A Resolver wired by hand, with no global registration relied upon.
func TestSchemeExplicitResolver(t *testing.T) {
	ctx := context.Background()
	srv := awssmtest.NewServer(t)
	_, err := srv.Client().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("svc"), SecretString: aws.String(keyOne),
	})
	require.NoError(t, err)
	r := keyprovider.NewResolver()
	r.Register(awssm.Scheme, keyprovider.OpenerFunc(awssm.OpenRef))
	p, err := r.Open(ctx, "awssm://svc", keyprovider.Tessera, schemeEnv(t, srv, nil))
	require.NoError(t, err)
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyOne, k.Reveal())
}
