package onepassword_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/onepassword"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

// An item whose field changes is picked up by a rotate.Source; once the item
// is deleted, refreshes report ErrNotFound while the source keeps serving
// the last good key, until MaxStale.
func TestRotationThroughRotateSource(t *testing.T) {
	f := newConnectFixture(t)
	p := f.provider("op://prod/tessera/credential")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := rotatetest.NewClock(start)
	const maxStale = 10 * time.Minute
	src, err := rotate.New(p, rotate.WithClock(clock), rotate.WithRefreshInterval(time.Minute), rotate.WithMaxStale(maxStale),
		rotate.WithBackoffBase(time.Second), rotate.WithBackoffMax(30*time.Second), rotate.WithRand(func() float64 { return 0.5 }))
	require.NoError(t, err)
	defer src.Close()
	rotations := make(chan [2]string, 4)
	src.OnRotate(func(old, new keyprovider.Key) { rotations <- [2]string{old.Version(), new.Version()} })
	ctx := context.Background()

	k, err := src.Token(ctx)
	require.NoError(t, err)
	assertKey(t, connectKey, k)
	parked := func() {
		t.Helper()
		wait, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		require.True(t, clock.BlockUntil(wait, 1), "the refresher never parked")
	}
	step := func() {
		t.Helper()
		next, ok := clock.NextDeadline()
		require.True(t, ok)
		clock.Advance(next.Sub(clock.Now()))
		parked()
	}
	parked()

	// Rotation in 1Password: the field changes, the item's version goes up.
	require.NoError(t, f.srv.SetField(f.vaultID, f.item.ID, "credential", connectKey2))
	step() // the scheduled refresh
	k, err = src.Token(ctx)
	require.NoError(t, err)
	assertKey(t, connectKey2, k)
	assert.Equal(t, "2", k.Version())
	assert.Equal(t, [2]string{"", "1"}, receive(t, rotations))
	assert.Equal(t, [2]string{"1", "2"}, receive(t, rotations))

	// The item is deleted: refreshes fail with ErrNotFound, the key stays.
	require.NoError(t, f.srv.DeleteItem(f.vaultID, f.item.ID))
	lastGood := clock.Now()
	_, err = src.Refresh(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrNotFound)
	k, err = src.Token(ctx)
	require.NoError(t, err, "the last good key is served")
	assertKey(t, connectKey2, k)
	h := src.Health()
	assert.Equal(t, rotate.Stale, h.State)
	assert.ErrorIs(t, h.LastError, keyprovider.ErrNotFound)

	for clock.Now().Sub(lastGood) <= maxStale {
		step()
		if clock.Now().Sub(lastGood) < maxStale {
			_, err := src.Token(ctx)
			require.NoError(t, err, "still within MaxStale at %v", clock.Now().Sub(lastGood))
		}
	}
	_, err = src.Token(ctx)
	require.Error(t, err, "past MaxStale the deleted item is an error")
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable)
	assert.ErrorIs(t, err, keyprovider.ErrNotFound)
	assert.NotContains(t, err.Error(), connectKey2)
	assert.Equal(t, rotate.Failed, src.Health().State)
	select {
	case r := <-rotations:
		require.FailNow(t, "unexpected rotation", "%v", r)
	default:
	}
}

// The SDK path behaves the same under rotate.
func TestSDKRotationThroughRotateSource(t *testing.T) {
	r := newSDKResolver(connectKey)
	p, err := onepassword.New(r, sdkRef, onepassword.WithService(keyprovider.Tessera))
	require.NoError(t, err)
	src, err := rotate.New(p, rotate.WithRefreshInterval(time.Hour))
	require.NoError(t, err)
	defer src.Close()
	ctx := context.Background()
	k, err := src.Refresh(ctx)
	require.NoError(t, err)
	assertKey(t, connectKey, k)
	r.Set(sdkRef, connectKey2)
	src.Invalidate(k) // the API said 401
	k, err = src.Token(ctx)
	require.NoError(t, err)
	assertKey(t, connectKey2, k)
	r.Delete(sdkRef)
	// A Refresh right away may join the forced fetch as it ends; the next
	// one reads the backend.
	require.Eventually(t, func() bool {
		_, err := src.Refresh(ctx)
		return errors.Is(err, keyprovider.ErrNotFound)
	}, 5*time.Second, time.Millisecond)
	k, err = src.Token(ctx)
	require.NoError(t, err)
	assertKey(t, connectKey2, k)
}
