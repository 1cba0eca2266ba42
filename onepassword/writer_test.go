package onepassword_test

import (
	"context"
	"testing"

	op "github.com/1Password/connect-sdk-go/onepassword"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/rotation"
)

const connectKey3 = "sk-tessera-connectKey0000000003"

// racingClient is the emulator's client, with a writer that runs before
// each of its item updates: another writer, between a read and the write.
type racingClient struct {
	*onepassword.ConnectClient
	before func()
}

func (c racingClient) UpdateItem(item *op.Item, vaultUUID string) (*op.Item, error) {
	c.before()
	return c.Client().UpdateItem(item, vaultUUID)
}

func (f *connectFixture) field(label string) string {
	f.t.Helper()
	it, err := f.srv.Client().GetItemByUUID(f.item.ID, f.vaultID)
	require.NoError(f.t, err)
	for _, fl := range it.Fields {
		if fl.Label == label {
			return fl.Value
		}
	}
	return ""
}

func (f *connectFixture) rotate(p *onepassword.Provider, next string) (keyprovider.Key, error) {
	f.t.Helper()
	cur, err := p.Fetch(f.ctx)
	require.NoError(f.t, err)
	st, err := p.Stage(f.ctx, cur, keyprovider.NewKey(next, ""))
	require.NoError(f.t, err)
	assert.Equal(f.t, rotation.Deferred, st.Mode)
	assert.Equal(f.t, connectKey, f.field("credential"), "Stage writes nothing")
	return p.Promote(f.ctx, st)
}

func TestConnectRotationKeepsPreviousField(t *testing.T) {
	f := newConnectFixture(t)
	p := f.provider("op://prod/tessera/credential")
	k, err := f.rotate(p, connectKey3)
	require.NoError(t, err)
	assert.Equal(t, "2", k.Version(), "one item version up")
	assert.Equal(t, connectKey3, f.field("credential"))
	assert.Equal(t, connectKey, f.field("credential"+onepassword.PreviousSuffix), "the old key kept beside it")
	got, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	assert.True(t, got.Equal(keyprovider.NewKey(connectKey3, "")))
}

func TestConnectRotation409RetriedOnce(t *testing.T) {
	f := newConnectFixture(t)
	n := 0
	c := racingClient{ConnectClient: f.srv.Client(), before: func() {
		if n++; n == 1 { // another field changes: the PUT carries a stale version
			require.NoError(t, f.srv.SetField(f.vaultID, f.item.ID, "notesPlain", "edited"))
		}
	}}
	p, err := onepassword.NewConnect(c, "op://prod/tessera/credential", onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	_, err = f.rotate(p, connectKey3)
	require.NoError(t, err)
	assert.Equal(t, 2, f.srv.Requests("UpdateItem"), "a 409, then the retry")
	assert.Equal(t, connectKey3, f.field("credential"))
	assert.Equal(t, "edited", f.field("notesPlain"), "the other writer's change is kept")
}

func TestConnectRotationConflictFails(t *testing.T) {
	f := newConnectFixture(t)
	c := racingClient{ConnectClient: f.srv.Client(), before: func() {
		// Another writer rotates the key itself, before every write.
		_ = f.srv.SetField(f.vaultID, f.item.ID, "credential", connectKey2)
	}}
	p, err := onepassword.NewConnect(c, "op://prod/tessera/credential", onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	_, err = f.rotate(p, connectKey3)
	require.ErrorIs(t, err, rotation.ErrConflict)
	assert.Equal(t, connectKey2, f.field("credential"), "the other writer's key stands")
	for _, s := range []string{connectKey, connectKey2, connectKey3, f.srv.Token} {
		assert.NotContains(t, err.Error(), s)
	}
}

func TestConnectStageRefusesSameKey(t *testing.T) {
	f := newConnectFixture(t)
	p := f.provider("op://prod/tessera/credential")
	cur, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	_, err = p.Stage(f.ctx, cur, keyprovider.NewKey(connectKey, ""))
	require.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	require.ErrorIs(t, err, rotation.ErrSameKey)
}

func TestConnectPromoteBoundedByContext(t *testing.T) {
	f := newConnectFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	release := make(chan struct{})
	c := racingClient{ConnectClient: f.srv.Client(), before: func() {
		cancel()  // the caller gives up while the update is in flight
		<-release // and the server is slow to answer
	}}
	p, err := onepassword.NewConnect(c, "op://prod/tessera/credential", onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	cur, err := p.Fetch(f.ctx)
	require.NoError(t, err)
	st, err := p.Stage(f.ctx, cur, keyprovider.NewKey(connectKey3, ""))
	require.NoError(t, err)
	_, err = p.Promote(ctx, st)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "may still be applied")
	close(release)
	require.NoError(t, p.Close(), "Close waits for the update")
	assert.Equal(t, connectKey3, f.field("credential"), "the update landed after all, as the error warned")
}
