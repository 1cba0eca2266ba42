package awssm_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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
	_, err := keyprovider.ParseRef("awssm://x")
	assert.NoError(t, err, "importing awssm registers awssm://")
	assert.Equal(t, "awssm", awssm.Scheme().Name)
}

func TestSchemeParseValid(t *testing.T) {
	type Ref = keyprovider.Ref
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/tessera-AbCdEf"
	tests := []struct {
		in        string
		want      Ref
		canonical string // "" means in
	}{
		{in: "awssm://prod/tessera", want: Ref{Scheme: "awssm", Path: "prod/tessera"}},
		{
			in:   "awssm://prod/tessera#api_key?region=eu-west-1&stage=AWSPREVIOUS",
			want: Ref{Scheme: "awssm", Path: "prod/tessera", Field: "api_key", Params: map[string]string{"region": "eu-west-1", "stage": "AWSPREVIOUS"}},
		},
		{in: "awssm://" + arn + "#api_key", want: Ref{Scheme: "awssm", Path: arn, Field: "api_key"}},
		{
			in:        "awssm://" + arn + "?version-id=EXAMPLE1-90ab&region=us-east-1",
			want:      Ref{Scheme: "awssm", Path: arn, Params: map[string]string{"region": "us-east-1", "version-id": "EXAMPLE1-90ab"}},
			canonical: "awssm://" + arn + "?region=us-east-1&version-id=EXAMPLE1-90ab",
		},
		{in: "awssm://arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:t", want: Ref{Scheme: "awssm", Path: "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:t"}},
		{in: "awssm://a+b=c.d@e_f-g", want: Ref{Scheme: "awssm", Path: "a+b=c.d@e_f-g"}},
		{in: "awssm://t#a%26b%3Dc?stage=my%26stage", want: Ref{Scheme: "awssm", Path: "t", Field: "a&b=c", Params: map[string]string{"stage": "my&stage"}}, canonical: "awssm://t#a&b=c?stage=my%26stage"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := keyprovider.ParseRef(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			canonical := tc.canonical
			if canonical == "" {
				canonical = tc.in
			}
			assert.Equal(t, canonical, got.String())
			again, err := keyprovider.ParseRef(got.String())
			require.NoError(t, err, "the canonical text must parse")
			assert.Equal(t, got, again, "parse → String → parse")
		})
	}
}

// Every malformed awssm:// reference is ErrInvalidKey at parse time, among
// them an ARN whose region is not a region name (issue 18.11).
func TestSchemeParseInvalid(t *testing.T) {
	const arnTail = ":123456789012:secret:t-AbCdEf"
	tests := []struct{ in, want string }{
		{"awssm://", "takes a secret name or ARN"},
		{"awssm://a b", "space"},
		{"awssm://a%20b", "not allowed in a secret name"},
		{"awssm://arn:aws:s3:::bucket", "not a Secrets Manager secret ARN"},
		{"awssm://t?stage=AWSCURRENT&version-id=v1", "give one"},
		{"awssm://t?region=EU_WEST", "AWS region name"},
		{"awssm://t?region=eu-west-1%2F", "AWS region name"},
		{"awssm://t?stage=a%0Ab", "control character"},
		{"awssm://arn:aws:secretsmanager:us-east-1" + arnTail + "?region=eu-west-1", "differs from the ARN's region us-east-1"},
		{"awssm://t?version=1", `unknown parameter "version" (allowed: region, stage, version-id)`},
		// Malformed regions inside an ARN.
		{"awssm://arn:aws:secretsmanager:eu/west@1" + arnTail, "the ARN's region is not an AWS region name"},
		{"awssm://arn:aws:secretsmanager:EU-WEST-1" + arnTail, "the ARN's region is not an AWS region name"},
		{"awssm://arn:aws:secretsmanager:eu-west-" + arnTail, "the ARN's region is not an AWS region name"},
		{"awssm://arn:aws:secretsmanager:eu--west-1" + arnTail, "the ARN's region is not an AWS region name"},
		{"awssm://arn:aws:secretsmanager:1eu" + arnTail, "the ARN's region is not an AWS region name"},
		{"awssm://arn:aws:secretsmanager::123456789012:secret:t", "the ARN's region is not an AWS region name"},
		{"awssm://arn:aws:secretsmanager:eu-west-1:12345678901a:secret:t", "the ARN's account is not an AWS account ID"},
		{"awssm://arn:aws:secretsmanager:eu-west-1::secret:t", "the ARN's account is not an AWS account ID"},
		{"awssm://arn:AWS@x:secretsmanager:eu-west-1:123456789012:secret:t", "the ARN's partition"},
		{"awssm://arn::secretsmanager:eu-west-1:123456789012:secret:t", "not a Secrets Manager secret ARN"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := keyprovider.ParseRef(tc.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			var re *keyprovider.RefError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// An injected environment (an env file checked by keyprov) is complete on
// its own: with no credentials in it, the process's AWS credentials are not
// used to sign a request to the endpoint it names (issue 18.6).
func TestSchemeInjectedEnvironmentIsComplete(t *testing.T) {
	const processKeyID = "AKIAPROCESSOWNKEY123"
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", processKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "process-secret-access-key-0123456789")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")

	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"UnrecognizedClientException","message":"denied"}`))
	}))
	t.Cleanup(srv.Close)
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), auth...) }

	fetch := func(t *testing.T, env map[string]string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
		p, err := keyprovider.Open(ctx, "awssm://prod/tessera", keyprovider.Tessera, keyprovider.WithLookupEnv(lookup))
		require.NoError(t, err)
		_, err = p.Fetch(ctx)
		require.Error(t, err, "the recording server denies everything")
	}

	// No credentials in the injected environment: refused when opened,
	// naming what to set, and nothing is sent anywhere (the process's
	// credentials are not a fallback).
	ctx := context.Background()
	noCreds := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL}
	_, err := keyprovider.Open(ctx, "awssm://prod/tessera", keyprovider.Tessera,
		keyprovider.WithLookupEnv(func(name string) (string, bool) { v, ok := noCreds[name]; return v, ok }))
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	assert.Contains(t, err.Error(), "no AWS credentials in the environment")
	assert.Empty(t, seen(), "no request without credentials of the environment's own")

	fetch(t, map[string]string{"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": srv.URL,
		"AWS_ACCESS_KEY_ID": "AKIAFILEOWNKEY000001", "AWS_SECRET_ACCESS_KEY": "file-secret"})
	got := seen()
	require.NotEmpty(t, got, "the request goes to the endpoint the environment names")
	for _, a := range got {
		assert.NotContains(t, a, processKeyID, "the process's credentials signed a request to the file's endpoint")
	}
	assert.Contains(t, got[len(got)-1], "AKIAFILEOWNKEY000001", "the environment's own credentials sign")
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
	r.Register(awssm.Scheme())
	p, err := r.Open(ctx, "awssm://svc", keyprovider.Tessera, schemeEnv(t, srv, nil))
	require.NoError(t, err)
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyOne, k.Reveal())
}
