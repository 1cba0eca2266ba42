package bench

import (
	"context"
	"errors"
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
// (several at once), which the transport reports through Invalidate. At
// four hours the backend is down for ten minutes.
const (
	fleetHours      = 6
	fleetRotationAt = 3 * time.Hour
	fleetBurst401   = 5 // concurrent requests rejected per replica
	fleetOutageAt   = 4 * time.Hour
	fleetOutageFor  = 10 * time.Minute
)

// errOutage is the backend's answer during the outage.
var errOutage = &keyprovider.Error{Provider: "fleet", Kind: keyprovider.ErrUnavailable, Err: errors.New("connection refused")}

var discard = slog.New(slog.DiscardHandler)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type fleetResult struct {
	replicas          int
	startup           int64 // fetches at t0 (the first key of every replica)
	perSecond         []int64
	invalidateFetches int64 // fetches caused by the 401s after the rotation
	outageFetches     int64 // failed fetches during the outage
	// Steady state: the four hours before the outage (the rotation at
	// three hours included), start-up fetches left out.
	peakSecond, peak10s, peakMinute, mean float64
	// Per minute, against the steady mean: the first five minutes after
	// the backend came back (every replica's retry lands there), and the
	// hour after those (whether the fleet is back in step).
	peakMinuteRecovery, peakMinuteAfterOutage float64
}

// simulateReplica runs one replica's Source on its own fake clock through
// the whole simulation, recording each backend fetch's simulated time.
// Replicas share nothing but the backend, so running them one after another
// is the same as running them side by side, and far cheaper.
// With slot ≥ 0 the replica is given that slot of res.replicas
// (rotate.WithSlot); otherwise it draws its phase at random.
func simulateReplica(t testing.TB, seed uint64, slot int, res *fleetResult) {
	clock := rotatetest.NewClock(t0)
	var fetches atomic.Int64
	var forced atomic.Bool // set while the 401 burst's fetch is expected
	called := make(chan struct{}, 64)
	backend := keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		now := clock.Now()
		fetches.Add(1)
		sec := int(now.Sub(t0) / time.Second)
		down := !now.Before(t0.Add(fleetOutageAt)) && now.Before(t0.Add(fleetOutageAt+fleetOutageFor))
		if down {
			res.outageFetches++
		}
		switch {
		case now.Equal(t0):
			res.startup++
		case forced.Load():
			// Counted as invalidateFetches, apart from the schedule.
		case sec < len(res.perSecond):
			res.perSecond[sec]++
		}
		called <- struct{}{}
		if down {
			return keyprovider.Key{}, errOutage
		}
		if now.Before(t0.Add(fleetRotationAt)) {
			return keyprovider.NewKey(benchKey, "1"), nil
		}
		return keyprovider.NewKey(benchKey+"rotated", "2"), nil
	})
	rng := rand.New(rand.NewPCG(seed, 0x6b6579))
	opts := []rotate.Option{rotate.WithClock(clock), rotate.WithLogger(discard),
		rotate.WithRand(rng.Float64)}
	if slot >= 0 {
		opts = append(opts, rotate.WithSlot(slot, res.replicas))
	}
	src, err := rotate.New(backend, opts...)
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
	fetched := func(what string) {
		select {
		case <-called:
		case <-ctx.Done():
			t.Fatalf("replica never fetched %s", what)
		}
	}
	fetched("its first key")
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
				fetched("after the 401s")
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

// simulateFleet runs the fleet; slotted gives each replica its own slot.
func simulateFleet(t testing.TB, replicas int, slotted bool) fleetResult {
	res := fleetResult{replicas: replicas, perSecond: make([]int64, fleetHours*3600)}
	for i := range replicas {
		slot := -1
		if slotted {
			slot = i
		}
		simulateReplica(t, uint64(i), slot, &res)
	}
	steady := res.perSecond[:int(fleetOutageAt/time.Second)]
	var total int64
	for _, n := range steady {
		total += n
	}
	res.mean = float64(total) / float64(len(steady))
	res.peakSecond = peak(steady, 1) / res.mean
	res.peak10s = peak(steady, 10) / (res.mean * 10)
	res.peakMinute = peak(steady, 60) / (res.mean * 60)
	back := int((fleetOutageAt + fleetOutageFor) / time.Second)
	res.peakMinuteRecovery = peak(res.perSecond[back:back+300], 60) / (res.mean * 60)
	res.peakMinuteAfterOutage = peak(res.perSecond[back+300:back+300+3600], 60) / (res.mean * 60)
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
	for _, slotted := range []bool{false, true} {
		name := "random-phases"
		if slotted {
			name = "slots"
		}
		t.Run(name, func(t *testing.T) {
			res := simulateFleet(t, replicas, slotted)
			t.Logf("fleet of %d replicas, %d simulated hours: start-up fetches %d; refreshes %.1f/s mean; peak-to-mean per second %.2f, per 10 s %.2f, per minute %.2f; fetches caused by the rotation's 401s: %d (%.2f per replica); failed fetches in the %s outage %.1f per replica; peak-to-mean per minute in the 5 minutes after it %.2f, in the hour after those %.2f",
				replicas, fleetHours, res.startup, res.mean, res.peakSecond, res.peak10s, res.peakMinute, res.invalidateFetches, float64(res.invalidateFetches)/float64(replicas),
				fleetOutageFor, float64(res.outageFetches)/float64(replicas), res.peakMinuteRecovery, res.peakMinuteAfterOutage)
			if res.startup != int64(replicas) {
				t.Errorf("start-up fetches = %d, want one per replica", res.startup)
			}
			// Independent random phases cannot beat Poisson noise per second:
			// at 10,000 replicas and 5 minutes the mean is 33 requests a
			// second, and the busiest of the 300 seconds of an interval is
			// ~1.5x the mean (more or less, by luck of the draw). Over a
			// minute (2,000 requests) the noise is small, so that is where
			// the spread of the schedule itself shows. Slots have no noise.
			if slotted && res.peakSecond > 1.5 {
				t.Errorf("peak-to-mean per second %.2f; want ≤ 1.5", res.peakSecond)
			}
			if res.peakMinute > 1.5 {
				t.Errorf("peak-to-mean per minute %.2f; want ≤ 1.5", res.peakMinute)
			}
			if res.peakMinuteAfterOutage > 1.5 {
				t.Errorf("peak-to-mean per minute in the hour from 5 minutes after the outage %.2f; want ≤ 1.5 (the fleet came back in step)", res.peakMinuteAfterOutage)
			}
			if res.invalidateFetches > int64(replicas) {
				t.Errorf("rotation + 401 burst cost %d fetches, want ≤ one per replica (%d)", res.invalidateFetches, replicas)
			}
		})
	}
}
