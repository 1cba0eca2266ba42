package rotate_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

func TestHealthCountsStaleServesInvalidationsAndKeyAge(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour), rotate.WithMinRefreshInterval(time.Minute))
	f.mustToken()
	seenA := f.clock.Now()
	f.clock.Advance(time.Minute)
	_, _ = f.src.Refresh(context.Background()) // same key: its age goes on
	wantEq(t, f.src.Health().KeySince, seenA, "KeySince after an unchanged refresh")

	f.b.fail(errBackend)
	_, _ = f.src.Refresh(context.Background())
	for range 3 {
		f.wantKey(keyA, "the last good key is served while refreshes fail")
	}
	h := f.src.Health()
	wantEq(t, h.State, rotate.Stale, "State")
	wantEq(t, h.StaleServes, 3, "StaleServes")

	// A 401 for the stale key forces a refresh; it fails, and the key is
	// served on, still counted as stale.
	f.src.Invalidate(keyprovider.NewKey(keyA, ""))
	f.src.Invalidate(keyprovider.NewKey(keyA, "")) // rate-limited, still counted
	f.src.Invalidate(keyprovider.NewKey(keyC, "")) // not the current key: ignored
	f.waitFetches(4)
	f.wantKey(keyA, "served again after the forced refresh failed")
	h = f.src.Health()
	wantEq(t, h.Invalidations, 2, "Invalidations")
	if h.StaleServes < 4 {
		t.Errorf("StaleServes = %d, want at least 4", h.StaleServes)
	}

	f.b.set(keyB)
	f.clock.Advance(time.Minute)
	_, _ = f.src.Refresh(context.Background())
	h = f.src.Health()
	wantEq(t, h.KeySince, f.clock.Now(), "KeySince after a rotation")
	wantEq(t, h.State, rotate.Fresh, "State after recovery")
	before := h.StaleServes
	f.wantKey(keyB, "fresh")
	wantEq(t, f.src.Health().StaleServes, before, "StaleServes once fresh again")
}
