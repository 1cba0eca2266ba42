package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

func TestNewRejectsNilProvider(t *testing.T) {
	src, err := rotate.New(nil)
	if src != nil {
		t.Errorf("New(nil) = %v, want nil", src)
	}
	wantIs(t, err, keyprovider.ErrInvalidKey, "a nil Provider")
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]rotate.Option{
		"slot -1 of 4":             rotate.WithSlot(-1, 4),
		"slot 4 of 4":              rotate.WithSlot(4, 4),
		"slot 0 of -1":             rotate.WithSlot(0, -1),
		"slot 3 of 0":              rotate.WithSlot(3, 0),
		"RefreshInterval":          rotate.WithRefreshInterval(-time.Second),
		"MaxStale":                 rotate.WithMaxStale(-time.Second),
		"MinRefreshInterval":       rotate.WithMinRefreshInterval(-time.Second),
		"BackoffBase":              rotate.WithBackoffBase(-time.Second),
		"BackoffMax":               rotate.WithBackoffMax(-time.Second),
		"FetchTimeout":             rotate.WithFetchTimeout(-time.Second),
		"CloseTimeout":             rotate.WithCloseTimeout(-time.Second),
		"negative RefreshInterval": rotate.WithRefreshInterval(-1),
	} {
		t.Run(name, func(t *testing.T) {
			src, err := rotate.New(newBackend(keyA), opt)
			if src != nil {
				_ = src.Close()
				t.Errorf("New = %v, want nil", src)
			}
			wantIs(t, err, keyprovider.ErrInvalidKey, name)
		})
	}
}

func TestFirstFetchAndHit(t *testing.T) {
	f := newFixture(t, newBackend(keyA))
	k := f.mustToken()
	wantEq(t, k.Reveal(), keyA, "first key")
	f.parked(1)
	for range 100 {
		f.wantKey(keyA, "a hit")
	}
	wantEq(t, f.b.fetches.Load(), 1, "fetches (hits must not reach the backend)")
	h := f.src.Health()
	wantEq(t, h.State, rotate.Fresh, "State")
	wantEq(t, h.Version, "1", "Version")
	wantEq(t, h.Fingerprint, k.Fingerprint(), "Fingerprint")
	if err := h.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

func TestColdCallersShareOneFetch(t *testing.T) {
	b := newBackend(keyA)
	gate := b.hold()
	f := newFixture(t, b)
	const callers = 1000
	var wg sync.WaitGroup
	var served atomic.Int64
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k, err := f.src.Token(context.Background()); err == nil && k.Reveal() == keyA {
				served.Add(1)
			}
		}()
	}
	close(gate)
	waitGroup(t, &wg)
	wantEq(t, served.Load(), callers, "callers served keyA")
	wantEq(t, b.fetches.Load(), 1, "fetches")
}

func TestColdCallerHonoursItsOwnContext(t *testing.T) {
	b := newBackend(keyA)
	gate := b.hold()
	f := newFixture(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := f.src.Token(ctx); done <- err }()
	other := make(chan keyprovider.Key, 1)
	go func() { k, _ := f.src.Token(context.Background()); other <- k }()
	cancel()
	wantIs(t, recv(t, done, "answer of the impatient caller"), context.Canceled, "the impatient caller returns on its own context")
	close(gate)
	wantEq(t, recv(t, other, "answer of the patient caller").Reveal(), keyA, "its cancellation must not cancel the shared fetch")
	wantEq(t, b.fetches.Load(), 1, "fetches")
}

func TestBackgroundRefreshFollowsRotation(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Minute))
	f.mustToken()
	f.parked(1)
	wantEq(t, f.due(), 30*time.Second, "first refresh (at the phase; Rand=0.5: half an interval)")
	f.b.set(keyB)
	f.step(30 * time.Second)
	k := f.mustToken()
	wantEq(t, k.Reveal(), keyB, "key after the refresh")
	wantEq(t, k.Version(), "2", "version")
	wantEq(t, f.due(), time.Minute, "later refreshes (every interval, on the phase)")
	wantEq(t, f.b.fetches.Load(), 2, "fetches")
}

// sinceEpochMod is where t falls in an interval of d counted from the epoch.
func sinceEpochMod(t time.Time, d time.Duration) time.Duration {
	return time.Duration(t.UnixNano() % int64(d))
}

func TestRefreshesKeepTheirPhaseThroughFailuresAndForcedRefreshes(t *testing.T) {
	const interval = 100 * time.Second
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(interval),
		rotate.WithRand(func() float64 { return 0.25 })) // phase 25 s
	f.clock.Advance(7 * time.Second) // started at an odd instant
	f.mustToken()
	f.parked(1)
	var dues []time.Duration
	due := func() time.Duration {
		d := f.due()
		dues = append(dues, sinceEpochMod(f.clock.Now().Add(d), interval))
		return d
	}
	wantEq(t, due(), 18*time.Second, "first refresh (at the phase)")
	f.step(18 * time.Second)
	wantEq(t, due(), interval, "next refresh (every interval)")

	// A forced refresh in between leaves the schedule alone.
	f.step(40 * time.Second)
	f.b.set(keyB)
	f.src.Invalidate(f.mustToken())
	f.parked(1)
	f.wantKey(keyB, "after the forced refresh")
	wantEq(t, due(), 60*time.Second, "next refresh after a forced one")

	// An outage: the refresher backs off, and the first success after it
	// goes back to the phase instead of counting an interval from itself.
	f.b.fail(errBackend)
	f.step(60 * time.Second)
	for range 4 {
		f.step(due())
	}
	f.b.set(keyC)
	f.step(due())
	f.wantKey(keyC, "after the outage")
	d := due()
	if d >= interval {
		t.Errorf("next refresh in %s: want back on the phase, not an interval after the recovery", d)
	}
	f.step(d)
	due()
	for i, at := range dues {
		if i >= 3 && i <= 7 { // the backoff steps
			continue
		}
		wantEq(t, at, 25*time.Second, fmt.Sprintf("phase of scheduled refresh %d", i))
	}
}

func TestSlotsSpreadAFleetEvenly(t *testing.T) {
	const interval, slots = 100 * time.Second, 4
	seen := map[time.Duration]bool{}
	for slot := range slots {
		f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(interval), rotate.WithSlot(slot, slots))
		f.clock.Advance(time.Duration(slot*37+3) * time.Second) // replicas start whenever they start
		f.mustToken()
		f.parked(1)
		at := sinceEpochMod(f.clock.Now().Add(f.due()), interval)
		wantEq(t, at, time.Duration(slot)*interval/slots, fmt.Sprintf("phase of slot %d", slot))
		seen[at] = true
	}
	wantEq(t, len(seen), slots, "distinct phases")
}

func TestFailuresKeepLastGoodKeyUntilMaxStale(t *testing.T) {
	for _, kind := range []error{keyprovider.ErrUnavailable, keyprovider.ErrNotFound, keyprovider.ErrPermission} {
		t.Run(kind.Error(), func(t *testing.T) {
			f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Minute), rotate.WithMaxStale(10*time.Minute),
				rotate.WithBackoffBase(time.Second), rotate.WithBackoffMax(30*time.Second))
			f.mustToken()
			f.parked(1)
			cause := &keyprovider.Error{Provider: "fake", Ref: "secret/tessera", Kind: kind, Err: errors.New("boom")}
			f.b.fail(cause)
			f.step(30 * time.Second) // the spread first refresh fails
			f.wantKey(keyA, "a failed refresh keeps the last good key")
			h := f.src.Health()
			wantEq(t, h.State, rotate.Stale, "State")
			wantIs(t, h.LastError, kind, "LastError")
			if err := h.Ready(); err != nil {
				t.Errorf("Ready = %v; stale is still ready: static stability", err)
			}
			// Fail on, with backoff, until MaxStale.
			for f.clock.Now().Sub(t0) < 10*time.Minute {
				f.step(f.due())
			}
			_, err := f.token()
			if err == nil {
				t.Fatal("past MaxStale Token succeeds")
			}
			wantIs(t, err, keyprovider.ErrUnavailable, "past MaxStale")
			wantIs(t, err, kind, "the last backend error is wrapped")
			wantNoSecret(t, err.Error(), keyA)
			wantEq(t, f.src.Health().State, rotate.Failed, "State past MaxStale")
			if f.src.Health().Ready() == nil {
				t.Error("Ready = nil past MaxStale")
			}
			if kind != keyprovider.ErrUnavailable && !strings.Contains(f.logs.String(), "level=ERROR") {
				t.Error("not found and permission must be logged loudly")
			}
			// Recovery.
			f.b.set(keyB)
			f.step(f.due())
			f.wantKey(keyB, "after recovery")
			wantEq(t, f.src.Health().State, rotate.Fresh, "State after recovery")
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	top := rotate.WithRand(func() float64 { return 0.999999 }) // top of each jitter range
	for _, c := range []struct {
		name string
		opts []rotate.Option
		want []time.Duration
	}{
		{"BackoffMax", []rotate.Option{rotate.WithRefreshInterval(time.Hour), top,
			rotate.WithBackoffBase(time.Second), rotate.WithBackoffMax(8 * time.Second)},
			[]time.Duration{1, 2, 4, 8, 8, 8}},
		// Unset, the cap is the refresh interval: a down backend is asked
		// about as often as a healthy one, not more.
		{"default is RefreshInterval", []rotate.Option{rotate.WithRefreshInterval(16 * time.Second), top},
			[]time.Duration{1, 2, 4, 8, 16, 16, 16}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, newBackend(keyA), c.opts...)
			f.mustToken()
			f.parked(1)
			f.b.fail(errBackend)
			f.step(f.due())
			var got []time.Duration
			for range c.want {
				d := f.due()
				got = append(got, d.Round(time.Second)/time.Second)
				f.step(d)
			}
			wantEq(t, fmt.Sprint(got), fmt.Sprint(c.want), "seconds between failed refreshes")
		})
	}
}

func TestColdFailureIsSharedAndNotRetriedBeforeBackoff(t *testing.T) {
	b := newBackend(keyA)
	b.fail(errBackend)
	gate := b.hold()
	f := newFixture(t, b, rotate.WithBackoffBase(10*time.Second))
	const callers = 500
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.src.Token(context.Background()); errors.Is(err, keyprovider.ErrUnavailable) {
				failed.Add(1)
			}
		}()
	}
	close(gate)
	waitGroup(t, &wg)
	wantEq(t, failed.Load(), callers, "callers failed with ErrUnavailable")
	wantEq(t, b.fetches.Load(), 1, "backend calls for every caller")
	_, err := f.token()
	wantIs(t, err, keyprovider.ErrUnavailable, "a caller within the backoff gets the error at once")
	wantEq(t, b.fetches.Load(), 1, "backend calls after one more caller")
	wantEq(t, f.src.Health().State, rotate.Failed, "State")
}

func TestInvalidate(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour), rotate.WithMinRefreshInterval(5*time.Second))
	old := f.mustToken()
	f.parked(1)
	f.b.set(keyB)

	f.src.Invalidate(keyprovider.NewKey(keyC, "")) // never the current key
	f.src.Invalidate(keyprovider.Key{})
	wantEq(t, f.b.fetches.Load(), 1, "fetches after invalidating other keys")

	var wg sync.WaitGroup
	for range 10000 {
		wg.Add(1)
		go func() { defer wg.Done(); f.src.Invalidate(old) }()
	}
	waitGroup(t, &wg)
	f.waitFetches(2)
	f.parked(1)
	f.wantKey(keyB, "after the forced refresh")

	f.src.Invalidate(old) // older than the current key: nothing
	f.b.set(keyC)
	cur := f.mustToken()
	f.src.Invalidate(cur) // within MinRefreshInterval of the last forced fetch
	wantEq(t, f.b.fetches.Load(), 2, "fetches (10,000 invalidations, one fetch; rate limit holds)")
	f.clock.Advance(5 * time.Second)
	f.parked(1)
	f.src.Invalidate(cur)
	f.waitFetches(3)
	f.parked(1)
	f.wantKey(keyC, "after the next forced refresh")
}

func TestValidateAndVerifyBeforePromoting(t *testing.T) {
	var verified []string
	var mu sync.Mutex
	reject := keyC
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Minute),
		rotate.WithService(keyprovider.Tessera),
		rotate.WithVerify(func(_ context.Context, k keyprovider.Key) error {
			mu.Lock()
			defer mu.Unlock()
			verified = append(verified, k.Fingerprint())
			if k.Reveal() == reject {
				return errors.New("401 from the API")
			}
			return nil
		}))
	f.mustToken()
	f.parked(1)

	f.b.set("tesseral_secret_key_wrongservice") // malformed for Tessera
	_, err := f.src.Refresh(context.Background())
	wantIs(t, err, keyprovider.ErrInvalidKey, "a malformed key")
	f.wantKey(keyA, "a malformed rotation never evicts a working key")

	f.b.set(keyC) // well-formed, but Verify says no
	_, err = f.src.Refresh(context.Background())
	wantIs(t, err, keyprovider.ErrInvalidKey, "a key Verify rejects")
	f.wantKey(keyA, "a not-yet-live rotation never evicts a working key")

	f.b.set(keyB)
	k, err := f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	wantEq(t, k.Reveal(), keyB, "Refresh's key")
	f.wantKey(keyB, "a verified rotation")
	mu.Lock()
	defer mu.Unlock()
	wantEq(t, len(verified), 3, "Verify calls (each new key, and not the unchanged first one again)")
}

func TestCloseStopsEverythingAndIsIdempotent(t *testing.T) {
	b := newBackend(keyA)
	gate := b.hold()
	f := newFixture(t, b)
	// A fetch is under way when Close is called: it is cancelled, and its
	// waiter is told the Source is closed.
	waiting := make(chan error, 1)
	go func() { _, err := f.src.Token(context.Background()); waiting <- err }()
	must(t, f.src.Close(), "Close")
	must(t, f.src.Close(), "second Close")
	wantIs(t, recv(t, waiting, "answer of the waiting caller"), rotate.ErrClosed, "a caller waiting at Close")
	close(gate)
	_, err := f.token()
	wantIs(t, err, rotate.ErrClosed, "Token after Close")
	_, err = f.src.Refresh(context.Background())
	wantIs(t, err, rotate.ErrClosed, "Refresh after Close")
	wantEq(t, f.src.Health().State, rotate.Closed, "State")
	wantIs(t, f.src.Health().Ready(), rotate.ErrClosed, "Ready")
	f.src.Invalidate(keyprovider.NewKey(keyA, "")) // harmless
}

func TestLogsCarryFingerprintsOnly(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	k := f.mustToken()
	f.b.set(keyB)
	_, _ = f.src.Refresh(context.Background())
	f.b.fail(errBackend)
	_, _ = f.src.Refresh(context.Background())
	f.src.Invalidate(keyprovider.NewKey(keyB, ""))
	f.parked(1)
	logs := f.logs.String()
	wantNoSecret(t, logs, keyA, keyB, "rotateAAAA", "rotateBBBB")
	if !strings.Contains(logs, k.Fingerprint()) {
		t.Error("the logs do not name the key by its fingerprint")
	}
	h := f.src.Health()
	wantNoSecret(t, fmt.Sprintf("%+v %#v", h, h), "rotateBBBB")
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, f.src)
		wantNoSecret(t, out, "rotateBBBB")
		if !strings.Contains(out, "sk-tessera-…") {
			t.Errorf("%s of the Source = %q, want the key's fingerprint", format, out)
		}
	}
}

func TestHealthCounters(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	f.mustToken()
	f.b.set(keyB)
	_, _ = f.src.Refresh(context.Background())
	f.b.fail(errBackend)
	_, _ = f.src.Refresh(context.Background())
	f.clock.Advance(90 * time.Second)
	h := f.src.Health()
	wantEq(t, h.Fetches, 3, "Fetches")
	wantEq(t, h.Failures, 1, "Failures")
	wantEq(t, h.Rotations, 2, "Rotations")
	wantEq(t, h.Age(), 90*time.Second, "Age")
	wantEq(t, h.At, f.clock.Now(), "At")
	wantEq(t, h.Version, "2", "Version")
	if !strings.HasPrefix(h.Fingerprint, "sk-tessera-…") {
		t.Errorf("Fingerprint = %q", h.Fingerprint)
	}
	wantEq(t, h.State.String(), "stale", "State")
	wantEq(t, rotate.Health{}.Age(), 0, "Age without a success")
}

func TestConcurrentUseUnderRotation(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	f.mustToken()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, err := f.src.Token(context.Background())
				if err != nil || (k.Reveal() != keyA && k.Reveal() != keyB && k.Reveal() != keyC) {
					t.Errorf("Token = %v, %v", k, err)
					return
				}
				f.src.Invalidate(k)
				_ = f.src.Health()
			}
		}()
	}
	for _, v := range []string{keyB, keyC, keyA, keyB} {
		f.b.set(v)
		_, err := f.src.Refresh(context.Background())
		must(t, err, "Refresh")
	}
	close(stop)
	waitGroup(t, &wg)
}

func TestTokenAfterInvalidateWaitsForTheNewKey(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	old := f.mustToken()
	gate := f.b.hold()
	f.b.set(keyB)
	f.src.Invalidate(old)
	got := make(chan keyprovider.Key, 1)
	go func() { k, _ := f.src.Token(context.Background()); got <- k }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.src.Token(ctx)
	wantIs(t, err, context.Canceled, "a caller waiting for the forced refresh honours its own context")
	close(gate)
	wantEq(t, recv(t, got, "Token after Invalidate").Reveal(), keyB, "Token after Invalidate (never the rejected key)")
	wantEq(t, f.b.fetches.Load(), 2, "fetches")
}

func TestInvalidateWithFailingBackendServesTheOldKeyAgain(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	old := f.mustToken()
	f.b.fail(errBackend)
	f.src.Invalidate(old)
	k, err := f.src.Token(context.Background())
	must(t, err, "Token after a failed forced refresh (must not fail requests)")
	wantEq(t, k.Reveal(), keyA, "Token")
	wantEq(t, f.src.Health().State, rotate.Stale, "State")
	f.wantKey(keyA, "the hot path serves it again")
}

// Callers racing the end of a forced refresh join it or take its outcome;
// none of them reads the backend again. Many rounds, to hit the instant in
// which the refresh has stored its key but not yet ended.
func TestTokenRacingTheEndOfAForcedRefreshReadsTheBackendOnce(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(1000*time.Hour), rotate.WithMaxStale(2000*time.Hour))
	// (no scheduled refresh falls due during the rounds)
	f.mustToken()
	rounds := 2000
	if testing.Short() {
		rounds = 200
	}
	for i := range rounds {
		f.clock.Advance(time.Minute) // past MinRefreshInterval
		old := f.mustToken()
		before := f.b.fetches.Load()
		f.b.set([]string{keyB, keyA}[i%2]) // a new key every round
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k, err := f.src.Token(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					if !k.Equal(old) {
						return
					}
				}
			}()
		}
		f.src.Invalidate(old)
		waitGroup(t, &wg)
		if got := f.b.fetches.Load() - before; got != 1 {
			t.Fatalf("round %d: %d backend reads for one forced refresh", i, got)
		}
	}
}

// A Token call after Invalidate never gets the rejected key, even when it
// joins the first fetch of a new Source, begun before the key was rejected.
func TestTokenAfterInvalidateNeverReturnsTheRejectedKey(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 30
	}
	for i := range rounds {
		b := newBackend(keyA)
		src, err := rotate.New(b, rotate.WithRefreshInterval(time.Hour), rotate.WithLogger(slog.New(slog.DiscardHandler)))
		must(t, err, "New")
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		old, err := src.Refresh(ctx) // races the Source's own first fetch
		must(t, err, "Refresh")
		b.set(keyB)
		src.Invalidate(old)
		k, err := src.Token(ctx)
		cancel()
		must(t, err, "Token")
		must(t, src.Close(), "Close")
		if k.Reveal() != keyB {
			t.Fatalf("round %d: Token after Invalidate returned %v, the rejected key", i, k)
		}
	}
}
