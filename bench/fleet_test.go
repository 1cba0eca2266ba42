package bench

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

// The fleet: replicas started in the same instant, refreshing every five
// minutes (the default) for six simulated hours against one backend; at
// half time the key is rotated and every replica's next request gets a 401
// (several at once), which the transport reports through Invalidate.
const (
	fleetHours      = 6
	fleetRotationAt = 3 * time.Hour
	fleetBurst401   = 5 // concurrent requests rejected per replica
)

var discard = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fleetResult struct {
	replicas                              int
	startup                               int64 // fetches at t0 (the first key of every replica)
	perSecond                             []int64
	invalidateFetches                     int64 // fetches caused by the 401s after the rotation
	peakSecond, peak10s, peakMinute, mean float64
}

// simulateReplica runs one replica's Source on its own fake clock through
// the whole simulation, recording each backend fetch's simulated time.
// Replicas share nothing but the backend, so running them one after another
// is the same as running them side by side, and far cheaper.
func simulateReplica(t testing.TB, seed uint64, res *fleetResult) {
	clock := rotatetest.NewClock(t0)
	var fetches atomic.Int64
	var forced atomic.Bool // set while the 401 burst's fetch is expected
	called := make(chan struct{}, 64)
	backend := keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		now := clock.Now()
		fetches.Add(1)
		sec := int(now.Sub(t0) / time.Second)
		switch {
		case now.Equal(t0):
			res.startup++
		case forced.Load():
			// Counted as invalidateFetches, apart from the schedule.
		case sec < len(res.perSecond):
			res.perSecond[sec]++
		}
		called <- struct{}{}
		if now.Before(t0.Add(fleetRotationAt)) {
			return keyprovider.NewKey(benchKey, "1"), nil
		}
		return keyprovider.NewKey(benchKey+"rotated", "2"), nil
	})
	rng := rand.New(rand.NewPCG(seed, 0x6b6579))
	src, err := rotate.New(backend, rotate.WithClock(clock), rotate.WithLogger(discard),
		func(o *rotate.Options) { o.Rand = rng.Float64 })
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	park := func() {
		if !clock.BlockUntil(ctx, 1) {
			t.Fatal("replica never parked")
		}
	}
	<-called // the start-up fetch
	park()
	end := t0.Add(fleetHours * time.Hour)
	rotatedSeen := false
	for {
		next, _ := clock.NextDeadline()
		if !rotatedSeen && !next.Before(t0.Add(fleetRotationAt)) {
			// The rotation happens before this replica's next refresh: its
			// next requests are rejected with the old key.
			clock.Advance(t0.Add(fleetRotationAt).Sub(clock.Now()))
			rotatedSeen = true
			if clock.Now().Equal(next) { // the refresh fell due exactly then
				park()
				select {
				case <-called:
				default:
				}
			}
			old, err := src.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if old.Version() == "1" {
				before := fetches.Load()
				forced.Store(true)
				for range fleetBurst401 {
					src.Invalidate(old)
				}
				<-called
				park()
				forced.Store(false)
				res.invalidateFetches += fetches.Load() - before
				if k, _ := src.Token(ctx); k.Version() != "2" {
					t.Fatalf("after the 401s the replica serves version %q", k.Version())
				}
				for range fleetBurst401 { // late 401s of requests sent with the old key
					src.Invalidate(old)
				}
				res.invalidateFetches += fetches.Load() - before - 1
			}
			continue
		}
		if next.After(end) {
			return
		}
		clock.Advance(next.Sub(clock.Now()))
		// The refresher re-arms its timer only after its fetch returned. A
		// due refresh that coincides with the tail of a forced one joins it
		// rather than reading the backend again, so do not wait for a call.
		park()
		select {
		case <-called:
		default:
		}
	}
}

func simulateFleet(t testing.TB, replicas int) fleetResult {
	res := fleetResult{replicas: replicas, perSecond: make([]int64, fleetHours*3600)}
	for i := range replicas {
		simulateReplica(t, uint64(i), &res)
	}
	var total int64
	for _, n := range res.perSecond {
		total += n
	}
	res.mean = float64(total) / float64(len(res.perSecond))
	res.peakSecond = peak(res.perSecond, 1) / res.mean
	res.peak10s = peak(res.perSecond, 10) / (res.mean * 10)
	res.peakMinute = peak(res.perSecond, 60) / (res.mean * 60)
	return res
}

// peak returns the largest sum over consecutive windows of width seconds.
func peak(perSecond []int64, width int) float64 {
	var best int64
	for start := 0; start+width <= len(perSecond); start += width {
		var sum int64
		for _, n := range perSecond[start : start+width] {
			sum += n
		}
		best = max(best, sum)
	}
	return float64(best)
}

func TestFleetSimulation(t *testing.T) {
	replicas := 10000
	if raceEnabled || testing.Short() {
		replicas = 1000 // the race detector makes each step ~10x dearer
	}
	res := simulateFleet(t, replicas)
	t.Logf("fleet of %d replicas, %d simulated hours: start-up fetches %d; refreshes %.1f/s mean; peak-to-mean per second %.2f, per 10 s %.2f, per minute %.2f; fetches caused by the rotation's 401s: %d (%.2f per replica)",
		replicas, fleetHours, res.startup, res.mean, res.peakSecond, res.peak10s, res.peakMinute, res.invalidateFetches, float64(res.invalidateFetches)/float64(replicas))
	if res.startup != int64(replicas) {
		t.Errorf("start-up fetches = %d, want one per replica", res.startup)
	}
	// Independent random phases cannot beat Poisson noise: at 10,000
	// replicas and 5 minutes the mean is 33 requests a second, whose busiest
	// second over six hours is ~1.8x the mean however well the schedule is
	// spread. Over a minute (2,000 requests) the noise is small, so that is
	// where the spread of the schedule itself shows.
	if res.peakMinute > 1.5 {
		t.Errorf("peak-to-mean per minute %.2f; want ≤ 1.5", res.peakMinute)
	}
	if res.invalidateFetches > int64(replicas) {
		t.Errorf("rotation + 401 burst cost %d fetches, want ≤ one per replica (%d)", res.invalidateFetches, replicas)
	}
}
