package awssm_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/awssm"
	"github.com/keyprovider/keyprovider/awssm/awssmtest"
	"github.com/keyprovider/keyprovider/rotate"
)

// TestRotationObservedThroughRotateSource runs AWS's rotation sequence
// (PutSecretValue as AWSPENDING, then UpdateSecretVersionStage moving
// AWSCURRENT) under a rotate.Source, as a service sees it.
func TestRotationObservedThroughRotateSource(t *testing.T) {
	srv := awssmtest.NewServer(t)
	ctx := context.Background()
	_, v1 := create(t, srv, "prod/tessera", keyOne)
	p, err := awssm.New(srv.Client(), "prod/tessera", awssm.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	src, err := rotate.New(p, rotate.WithRefreshInterval(time.Hour))
	require.NoError(t, err)
	defer src.Close()
	rotations := make(chan [2]string, 4)
	src.OnRotate(func(old, new keyprovider.Key) { rotations <- [2]string{old.Version(), new.Version()} })

	k, err := src.Refresh(ctx)
	require.NoError(t, err)
	assertKey(t, keyOne, k)

	v2 := put(t, srv, "prod/tessera", keyTwo, "AWSPENDING")
	k, err = src.Refresh(ctx)
	require.NoError(t, err)
	assertKey(t, keyOne, k, "AWSPENDING is never served")

	_, err = srv.Client().UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("prod/tessera"), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v1),
	})
	require.NoError(t, err)
	// The transport reports the old key on its first 401; the source
	// fetches and hands out the new one.
	src.Invalidate(k)
	k, err = src.Token(ctx)
	require.NoError(t, err)
	assertKey(t, keyTwo, k)
	assert.Equal(t, v2, k.Version())

	assert.Equal(t, [2]string{"", v1}, receive(t, rotations))
	assert.Equal(t, [2]string{v1, v2}, <-rotations, "one notification per real change")
}
