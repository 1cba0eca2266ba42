package vault_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotation"
	"github.com/keyprovider/keyprovider/vault"
)

const (
	rotOld   = "sk-tessera-RotationOld000000000000001"
	rotNew   = "sk-tessera-RotationNew000000000000002"
	rotOther = "sk-tessera-RotationOther0000000000003"
)

func TestWriterKVv2StagePromoteConflict(t *testing.T) {
	c := devClient(t)
	ctx := context.Background()
	mount := kvMount(t, c, "2")
	_, err := c.KVv2(mount).Put(ctx, "tessera", map[string]any{"api_key": rotOld, "other": "kept"})
	require.NoError(t, err)
	p, err := vault.New(c, mount+"/tessera", vault.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	var w rotation.Writer = p

	cur, err := p.Fetch(ctx)
	require.NoError(t, err)
	_, err = w.Stage(ctx, cur, cur)
	require.ErrorIs(t, err, rotation.ErrSameKey)

	st, err := w.Stage(ctx, cur, keyprovider.NewKey(rotNew, ""))
	require.NoError(t, err)
	assert.Equal(t, rotation.Deferred, st.Mode)
	assert.Equal(t, "1", st.Current)
	s, err := c.KVv2(mount).Get(ctx, "tessera")
	require.NoError(t, err)
	assert.Equal(t, 1, s.VersionMetadata.Version, "Stage writes nothing")

	// Another writer between the read and the CAS write.
	_, err = c.KVv2(mount).Put(ctx, "tessera", map[string]any{"api_key": rotOther})
	require.NoError(t, err)
	_, err = w.Promote(ctx, st)
	require.ErrorIs(t, err, rotation.ErrConflict)
	assert.NotContains(t, err.Error(), rotNew)
	s, err = c.KVv2(mount).Get(ctx, "tessera")
	require.NoError(t, err)
	assert.Equal(t, 2, s.VersionMetadata.Version, "nothing written")

	cur, err = p.Fetch(ctx)
	require.NoError(t, err)
	st, err = w.Stage(ctx, cur, keyprovider.NewKey(rotNew, ""))
	require.NoError(t, err)
	now, err := w.Promote(ctx, st)
	require.NoError(t, err)
	assert.Equal(t, "3", now.Version())
	s, err = c.KVv2(mount).Get(ctx, "tessera")
	require.NoError(t, err)
	assert.Equal(t, rotNew, s.Data["api_key"])
	old, err := c.KVv2(mount).GetVersion(ctx, "tessera", 2)
	require.NoError(t, err)
	assert.Equal(t, rotOther, old.Data["api_key"], "the previous key stays readable as the previous version")
}

func TestWriterKVv2StageSeesAStaleRead(t *testing.T) {
	c := devClient(t)
	ctx := context.Background()
	mount := kvMount(t, c, "2")
	_, err := c.KVv2(mount).Put(ctx, "tessera", map[string]any{"api_key": rotOld})
	require.NoError(t, err)
	p, err := vault.New(c, mount+"/tessera", vault.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	cur, err := p.Fetch(ctx)
	require.NoError(t, err)
	_, err = c.KVv2(mount).Put(ctx, "tessera", map[string]any{"api_key": rotOther})
	require.NoError(t, err)
	_, err = p.Stage(ctx, cur, keyprovider.NewKey(rotNew, ""))
	require.ErrorIs(t, err, rotation.ErrConflict)

	pinned, err := vault.New(c, mount+"/tessera", vault.WithService(keyprovider.Tessera), vault.WithVersion(1))
	require.NoError(t, err)
	_, err = pinned.Stage(ctx, cur, keyprovider.NewKey(rotNew, ""))
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey, "a pinned version is not rotated")
}

func TestWriterKVv1IsUnconditional(t *testing.T) {
	c := devClient(t)
	ctx := context.Background()
	mount := kvMount(t, c, "1")
	require.NoError(t, c.KVv1(mount).Put(ctx, "tessera", map[string]any{"api_key": rotOld, "other": "kept"}))
	p, err := vault.New(c, mount+"/tessera", vault.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	cur, err := p.Fetch(ctx)
	require.NoError(t, err)
	st, err := p.Stage(ctx, cur, keyprovider.NewKey(rotNew, ""))
	require.NoError(t, err)
	assert.Equal(t, rotation.Unconditional, st.Mode)
	left, err := p.Abandon(ctx, st)
	require.NoError(t, err)
	assert.Contains(t, left, "nothing was written")
	_, err = p.Promote(ctx, st)
	require.NoError(t, err)
	s, err := c.KVv1(mount).Get(ctx, "tessera")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"api_key": rotNew, "other": "kept"}, s.Data)
}
