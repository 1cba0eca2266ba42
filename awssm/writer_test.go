package awssm_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/rotation"
)

const writerNewKey = "sk-tessera-WriterNewKey00000000000009"

func TestWriterStagesPendingThenPromotes(t *testing.T) {
	srv := awssmtest.NewServer(t)
	ctx := context.Background()
	_, v1 := create(t, srv, "prod/tessera", keyOne)
	p, err := awssm.New(srv.Client(), "prod/tessera", awssm.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	var w rotation.Writer = p

	cur, err := p.Fetch(ctx)
	require.NoError(t, err)
	next := keyprovider.NewKey(writerNewKey, "")
	st, err := w.Stage(ctx, cur, next)
	require.NoError(t, err)
	assert.Equal(t, rotation.Pending, st.Mode)
	assert.Equal(t, v1, st.Current)
	assert.Equal(t, awssm.RequestToken(next, v1), st.Version, "the version ID is the request token")
	again, err := w.Stage(ctx, cur, next)
	require.NoError(t, err)
	assert.Equal(t, st.Version, again.Version, "staging again is idempotent")
	got, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.True(t, got.Equal(cur), "the staged key is not current")

	left, err := w.Abandon(ctx, st)
	require.NoError(t, err)
	assert.Contains(t, left, "no longer has AWSPENDING")
	_, err = srv.Client().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/tessera"), VersionStage: aws.String(awssm.StagePending)})
	require.Error(t, err, "AWSPENDING is gone")

	st, err = w.Stage(ctx, cur, next)
	require.NoError(t, err)
	now, err := w.Promote(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, st.Version, now.Version())
	got, err = p.Fetch(ctx)
	require.NoError(t, err)
	assert.True(t, got.Equal(next))
	prev, err := srv.Client().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/tessera"), VersionStage: aws.String("AWSPREVIOUS")})
	require.NoError(t, err)
	assert.Equal(t, v1, aws.ToString(prev.VersionId), "the old key is AWSPREVIOUS")
	again2, err := w.Promote(ctx, st)
	require.NoError(t, err, "promoting again is a no-op")
	assert.Equal(t, st.Version, again2.Version())
}

func TestWriterPromoteConflict(t *testing.T) {
	srv := awssmtest.NewServer(t)
	ctx := context.Background()
	create(t, srv, "prod/tessera", keyOne)
	p, err := awssm.New(srv.Client(), "prod/tessera", awssm.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	cur, err := p.Fetch(ctx)
	require.NoError(t, err)
	st, err := p.Stage(ctx, cur, keyprovider.NewKey(writerNewKey, ""))
	require.NoError(t, err)
	_, err = srv.Client().PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("prod/tessera"), SecretString: aws.String(keyTwo)})
	require.NoError(t, err)
	_, err = p.Promote(ctx, st)
	require.ErrorIs(t, err, rotation.ErrConflict)
	assert.NotContains(t, err.Error(), writerNewKey)
	got, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.True(t, got.Equal(keyprovider.NewKey(keyTwo, "")), "the other writer's key stands")

	_, err = p.Stage(ctx, got, got)
	require.ErrorIs(t, err, rotation.ErrSameKey)
	pinned, err := awssm.New(srv.Client(), "prod/tessera", awssm.WithService(keyprovider.Tessera), awssm.WithVersionStage("AWSPREVIOUS"))
	require.NoError(t, err)
	_, err = pinned.Stage(ctx, got, keyprovider.NewKey(writerNewKey, ""))
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}

// TestStageErrorIsScrubbedOfTheNewKey: an AWS (or a proxy) that echoes a
// failed PutSecretValue gets no part of the new key into Stage's error,
// even a key with no known prefix that does not look generated.
func TestStageErrorIsScrubbedOfTheNewKey(t *testing.T) {
	const newKey = "correct-horse-battery-staple-rotation"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"__type":"ValidationException","message":"bad request: %s"}`, strings.ReplaceAll(string(body), `"`, `'`))
	}))
	defer echo.Close()
	client := secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(echo.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIAECHOEXAMPLE0000", SecretAccessKey: "s3cr3t"}, nil
		}), Retryer: aws.NopRetryer{}})
	p, err := awssm.New(client, "svc")
	require.NoError(t, err)
	_, err = p.Stage(context.Background(), keyprovider.NewKey("old-key-value-0000", "v1"), keyprovider.NewKey(newKey, ""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bad request", "the server's message is kept")
	assert.NotContains(t, err.Error(), newKey)
}
