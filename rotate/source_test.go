package rotate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	keyA = "sk-tessera-rotateAAAA1111"
	keyB = "sk-tessera-rotateBBBB2222"
	keyC = "sk-tessera-rotateCCCC3333"
)

var errBackend = &keyprovider.Error{Provider: "fake", Kind: keyprovider.ErrUnavailable, Err: errors.New("connection refused")}

// backend is a scripted Provider: it serves value (or err), counts fetches,
// and, when gate is set, holds every fetch until the gate is closed.
type backend struct {
	mu      sync.Mutex
	value   string
	version int
	err     error
	gate    chan struct{}
	fetches atomic.Int64
	called  chan struct{} // one send per Fetch, for tests to wait on
}

func newBackend(value string) *backend {
	return &backend{value: value, version: 1, called: make(chan struct{}, 1<<16)}
}

func (b *backend) Fetch(ctx context.Context) (keyprovider.Key, error) {
	b.fetches.Add(1)
	select {
	case b.called <- struct{}{}:
	default:
	}
	b.mu.Lock()
	gate, value, version, err := b.gate, b.value, b.version, b.err
	b.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return keyprovider.Key{}, ctx.Err()
		}
	}
	if err != nil {
		return keyprovider.Key{}, err
	}
	return keyprovider.NewKey(value, fmt.Sprint(version)), nil
}

func (b *backend) set(value string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.value, b.err = value, nil
	b.version++
}

func (b *backend) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

func (b *backend) hold() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gate = make(chan struct{})
	return b.gate
}

// fixture is a Source over a scripted backend on a fake clock.
type fixture struct {
	t     *testing.T
	b     *backend
	clock *rotatetest.Clock
	src   *rotate.Source
	logs  *syncWriter
}

func newFixture(t *testing.T, b *backend, opts ...rotate.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, b: b, clock: rotatetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), logs: &syncWriter{w: new(bytes.Buffer)}}
	base := []rotate.Option{
		rotate.WithClock(f.clock),
		rotate.WithLogger(slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		func(o *rotate.Options) { o.Rand = func() float64 { return 0.5 } },
	}
	src, err := rotate.New(b, append(base, opts...)...)
	require.NoError(t, err)
	f.src = src
	t.Cleanup(func() { _ = src.Close() })
	return f
}

// parked waits until the refresher is parked on its timer (n timers).
func (f *fixture) parked(n int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.True(f.t, f.clock.BlockUntil(ctx, n), "refresher never parked on its timer")
}

// step advances the clock by d and waits for the refresher to park again.
func (f *fixture) step(d time.Duration) {
	f.t.Helper()
	f.clock.Advance(d)
	f.parked(1)
}

func (f *fixture) token() (keyprovider.Key, error) {
	return f.src.Token(context.Background())
}

func (f *fixture) mustToken() keyprovider.Key {
	f.t.Helper()
	k, err := f.token()
	require.NoError(f.t, err)
	return k
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

// String returns what was written so far.
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestNewRejectsNilProvider(t *testing.T) {
	src, err := rotate.New(nil)
	assert.Nil(t, src)
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}

func TestFirstFetchAndHit(t *testing.T) {
	f := newFixture(t, newBackend(keyA))
	k := f.mustToken()
	assert.Equal(t, keyA, k.Reveal())
	f.parked(1)
	for range 100 {
		assert.Equal(t, keyA, f.mustToken().Reveal())
	}
	assert.EqualValues(t, 1, f.b.fetches.Load(), "hits must not reach the backend")
	h := f.src.Health()
	assert.Equal(t, rotate.Fresh, h.State)
	assert.Equal(t, "1", h.Version)
	assert.Equal(t, k.Fingerprint(), h.Fingerprint)
	assert.NoError(t, h.Ready())
}

func TestColdCallersShareOneFetch(t *testing.T) {
	b := newBackend(keyA)
	gate := b.hold()
	f := newFixture(t, b)
	const callers = 1000
	var wg sync.WaitGroup
	keys := make(chan keyprovider.Key, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := f.src.Token(context.Background())
			if err == nil {
				keys <- k
			}
		}()
	}
	close(gate)
	wg.Wait()
	close(keys)
	n := 0
	for k := range keys {
		n++
		assert.Equal(t, keyA, k.Reveal())
	}
	assert.Equal(t, callers, n)
	assert.EqualValues(t, 1, b.fetches.Load())
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
	assert.ErrorIs(t, <-done, context.Canceled, "the impatient caller returns on its own context")
	close(gate)
	assert.Equal(t, keyA, (<-other).Reveal(), "its cancellation must not cancel the shared fetch")
	assert.EqualValues(t, 1, b.fetches.Load())
}

func TestBackgroundRefreshFollowsRotation(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Minute))
	f.mustToken()
	f.parked(1)
	deadline, _ := f.clock.NextDeadline()
	assert.Equal(t, 30*time.Second, deadline.Sub(f.clock.Now()), "the first refresh falls at the phase (Rand=0.5: half an interval)")
	f.b.set(keyB)
	f.step(30 * time.Second)
	k := f.mustToken()
	assert.Equal(t, keyB, k.Reveal())
	assert.Equal(t, "2", k.Version())
	deadline, _ = f.clock.NextDeadline()
	assert.Equal(t, time.Minute, deadline.Sub(f.clock.Now()), "later refreshes every interval, on the phase")
	assert.EqualValues(t, 2, f.b.fetches.Load())
}

// sinceEpochMod is where t falls in an interval of d counted from the epoch.
func sinceEpochMod(t time.Time, d time.Duration) time.Duration {
	return time.Duration(t.UnixNano() % int64(d))
}

func TestRefreshesKeepTheirPhaseThroughFailuresAndForcedRefreshes(t *testing.T) {
	const interval = 100 * time.Second
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(interval),
		func(o *rotate.Options) { o.Rand = func() float64 { return 0.25 } }) // phase 25 s
	f.clock.Advance(7 * time.Second) // started at an odd instant
	f.mustToken()
	f.parked(1)
	var dues []time.Duration
	due := func() time.Duration {
		next, _ := f.clock.NextDeadline()
		dues = append(dues, sinceEpochMod(next, interval))
		return next.Sub(f.clock.Now())
	}
	assert.Equal(t, 18*time.Second, due(), "the first refresh falls at the phase")
	f.step(18 * time.Second)
	assert.Equal(t, interval, due(), "then every interval")

	// A forced refresh in between leaves the schedule alone.
	f.step(40 * time.Second)
	f.b.set(keyB)
	f.src.Invalidate(f.mustToken())
	f.parked(1)
	assert.Equal(t, keyB, f.mustToken().Reveal())
	assert.Equal(t, 60*time.Second, due())

	// An outage: the refresher backs off, and the first success after it
	// goes back to the phase instead of counting an interval from itself.
	f.b.fail(errBackend)
	f.step(60 * time.Second)
	for range 4 {
		f.step(due())
	}
	f.b.set(keyC)
	f.step(due())
	assert.Equal(t, keyC, f.mustToken().Reveal())
	d := due()
	assert.Less(t, d, interval, "back on the phase, not an interval after the recovery")
	f.step(d)
	due()
	for i, at := range dues {
		if i >= 3 && i <= 7 { // the backoff steps
			continue
		}
		assert.Equal(t, 25*time.Second, at, "scheduled refresh %d off the phase", i)
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
		next, _ := f.clock.NextDeadline()
		at := sinceEpochMod(next, interval)
		assert.Equal(t, time.Duration(slot)*interval/slots, at, "slot %d", slot)
		seen[at] = true
	}
	assert.Len(t, seen, slots)
}

func TestNewRejectsABadSlot(t *testing.T) {
	for _, c := range []struct{ slot, slots int }{{-1, 4}, {4, 4}, {0, -1}, {3, 0}} {
		src, err := rotate.New(newBackend(keyA), rotate.WithSlot(c.slot, c.slots))
		assert.Nil(t, src, "%+v", c)
		assert.ErrorIs(t, err, keyprovider.ErrInvalidKey, "%+v", c)
	}
}

func TestFailuresKeepLastGoodKeyUntilMaxStale(t *testing.T) {
	for _, kind := range []error{keyprovider.ErrUnavailable, keyprovider.ErrNotFound, keyprovider.ErrPermission} {
		t.Run(kind.Error(), func(t *testing.T) {
			f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Minute), rotate.WithMaxStale(10*time.Minute),
				func(o *rotate.Options) { o.BackoffBase, o.BackoffMax = time.Second, 30*time.Second })
			f.mustToken()
			f.parked(1)
			cause := &keyprovider.Error{Provider: "fake", Ref: "secret/tessera", Kind: kind, Err: errors.New("boom")}
			f.b.fail(cause)
			f.step(30 * time.Second) // the spread first refresh fails
			assert.Equal(t, keyA, f.mustToken().Reveal(), "a failed refresh keeps the last good key")
			h := f.src.Health()
			assert.Equal(t, rotate.Stale, h.State)
			assert.ErrorIs(t, h.LastError, kind)
			assert.NoError(t, h.Ready(), "stale is still ready: static stability")
			// Fail on, with backoff, until MaxStale.
			for f.clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) < 10*time.Minute {
				next, _ := f.clock.NextDeadline()
				f.step(next.Sub(f.clock.Now()))
			}
			_, err := f.token()
			require.Error(t, err, "past MaxStale Token fails")
			assert.ErrorIs(t, err, keyprovider.ErrUnavailable)
			assert.ErrorIs(t, err, kind, "the last backend error is wrapped")
			assert.NotContains(t, err.Error(), keyA)
			assert.Equal(t, rotate.Failed, f.src.Health().State)
			assert.Error(t, f.src.Health().Ready())
			if kind != keyprovider.ErrUnavailable {
				assert.Contains(t, f.logs.String(), "level=ERROR", "not found and permission are logged loudly")
			}
			// Recovery.
			f.b.set(keyB)
			next, _ := f.clock.NextDeadline()
			f.step(next.Sub(f.clock.Now()))
			assert.Equal(t, keyB, f.mustToken().Reveal())
			assert.Equal(t, rotate.Fresh, f.src.Health().State)
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	top := func(o *rotate.Options) { o.Rand = func() float64 { return 0.999999 } } // top of each jitter range
	for _, c := range []struct {
		name string
		opts []rotate.Option
		want []time.Duration
	}{
		{"BackoffMax", []rotate.Option{rotate.WithRefreshInterval(time.Hour), top,
			func(o *rotate.Options) { o.BackoffBase, o.BackoffMax = time.Second, 8*time.Second }},
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
			next, _ := f.clock.NextDeadline()
			f.step(next.Sub(f.clock.Now()))
			var got []time.Duration
			for range c.want {
				next, _ := f.clock.NextDeadline()
				d := next.Sub(f.clock.Now())
				got = append(got, d.Round(time.Second)/time.Second)
				f.step(d)
			}
			assert.Equal(t, c.want, got, "seconds between failed refreshes")
		})
	}
}

func TestColdFailureIsSharedAndNotRetriedBeforeBackoff(t *testing.T) {
	b := newBackend(keyA)
	b.fail(errBackend)
	gate := b.hold()
	f := newFixture(t, b, func(o *rotate.Options) { o.BackoffBase = 10 * time.Second })
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
	wg.Wait()
	assert.EqualValues(t, callers, failed.Load())
	assert.EqualValues(t, 1, b.fetches.Load(), "one backend call for every caller")
	_, err := f.token()
	assert.ErrorIs(t, err, keyprovider.ErrUnavailable, "a caller within the backoff gets the error at once")
	assert.EqualValues(t, 1, b.fetches.Load())
	assert.Equal(t, rotate.Failed, f.src.Health().State)
}

func TestInvalidate(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour),
		func(o *rotate.Options) { o.MinRefreshInterval = 5 * time.Second })
	old := f.mustToken()
	f.parked(1)
	f.b.set(keyB)

	f.src.Invalidate(keyprovider.NewKey(keyC, "")) // never the current key
	f.src.Invalidate(keyprovider.Key{})
	assert.EqualValues(t, 1, f.b.fetches.Load())

	var wg sync.WaitGroup
	for range 10000 {
		wg.Add(1)
		go func() { defer wg.Done(); f.src.Invalidate(old) }()
	}
	wg.Wait()
	f.waitFetches(2)
	f.parked(1)
	assert.Equal(t, keyB, f.mustToken().Reveal())

	f.src.Invalidate(old) // older than the current key: nothing
	f.b.set(keyC)
	cur := f.mustToken()
	f.src.Invalidate(cur) // within MinRefreshInterval of the last forced fetch
	assert.EqualValues(t, 2, f.b.fetches.Load(), "10,000 invalidations, one fetch; rate limit holds")
	f.clock.Advance(5 * time.Second)
	f.parked(1)
	f.src.Invalidate(cur)
	f.waitFetches(3)
	f.parked(1)
	assert.Equal(t, keyC, f.mustToken().Reveal())
}

// waitFetches waits until the backend has been called n times in all.
func (f *fixture) waitFetches(n int64) {
	f.t.Helper()
	timeout := time.After(10 * time.Second)
	for f.b.fetches.Load() < n {
		select {
		case <-f.b.called:
		case <-timeout:
			f.t.Fatalf("fetches = %d, want %d", f.b.fetches.Load(), n)
		}
	}
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
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	assert.Equal(t, keyA, f.mustToken().Reveal(), "a malformed rotation never evicts a working key")

	f.b.set(keyC) // well-formed, but Verify says no
	_, err = f.src.Refresh(context.Background())
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	assert.Equal(t, keyA, f.mustToken().Reveal(), "a not-yet-live rotation never evicts a working key")

	f.b.set(keyB)
	k, err := f.src.Refresh(context.Background())
	require.NoError(t, err)
	assert.Equal(t, keyB, k.Reveal())
	assert.Equal(t, keyB, f.mustToken().Reveal())
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, verified, 3, "Verify runs for each new key, and not for the unchanged first one again")
}

func TestOnRotate(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	type change struct{ old, new string }
	got := make(chan change, 10)
	cancel := f.src.OnRotate(func(old, new keyprovider.Key) { got <- change{old.Reveal(), new.Reveal()} })
	f.mustToken()
	assert.Equal(t, change{"", keyA}, <-got, "the first key is reported with a zero old key")

	_, err := f.src.Refresh(context.Background()) // same key: no notification
	require.NoError(t, err)
	f.b.set(keyB)
	_, err = f.src.Refresh(context.Background())
	require.NoError(t, err)
	assert.Equal(t, change{keyA, keyB}, <-got)
	cancel()
	f.b.set(keyC)
	_, err = f.src.Refresh(context.Background())
	require.NoError(t, err)
	assert.Equal(t, keyC, f.mustToken().Reveal())
	f.parked(1)
	require.NoError(t, f.src.Close()) // waits for the notifier
	assert.Empty(t, got, "no notification for equal keys or after cancel")
}

func TestSlowSubscriberNeverBlocksRefresher(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	release := make(chan struct{})
	f.src.OnRotate(func(old, new keyprovider.Key) { <-release })
	f.mustToken()
	for _, v := range []string{keyB, keyC} {
		f.b.set(v)
		k, err := f.src.Refresh(context.Background())
		require.NoError(t, err)
		assert.Equal(t, v, k.Reveal(), "refresh completes while the subscriber is stuck")
	}
	close(release)
}

func TestCloseStopsEverythingAndIsIdempotent(t *testing.T) {
	b := newBackend(keyA)
	gate := b.hold()
	f := newFixture(t, b)
	// A fetch is under way when Close is called: it is cancelled, and its
	// waiter is told the Source is closed.
	waiting := make(chan error, 1)
	go func() { _, err := f.src.Token(context.Background()); waiting <- err }()
	require.NoError(t, f.src.Close())
	require.NoError(t, f.src.Close())
	assert.ErrorIs(t, <-waiting, rotate.ErrClosed)
	close(gate)
	_, err := f.token()
	assert.ErrorIs(t, err, rotate.ErrClosed)
	_, err = f.src.Refresh(context.Background())
	assert.ErrorIs(t, err, rotate.ErrClosed)
	assert.Equal(t, rotate.Closed, f.src.Health().State)
	assert.ErrorIs(t, f.src.Health().Ready(), rotate.ErrClosed)
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
	for _, secret := range []string{keyA, keyB, "rotateAAAA", "rotateBBBB"} {
		assert.NotContains(t, logs, secret)
	}
	assert.Contains(t, logs, k.Fingerprint())
	h := f.src.Health()
	assert.NotContains(t, fmt.Sprintf("%+v %#v", h, h), "rotateBBBB")
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, f.src)
		assert.NotContains(t, out, "rotateBBBB", "printing the Source never shows the key")
		assert.Contains(t, out, "sk-tessera-…")
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
	assert.EqualValues(t, 3, h.Fetches)
	assert.EqualValues(t, 1, h.Failures)
	assert.EqualValues(t, 2, h.Rotations)
	assert.Equal(t, 90*time.Second, h.Age())
	assert.Equal(t, "2", h.Version)
	assert.True(t, strings.HasPrefix(h.Fingerprint, "sk-tessera-…"))
	assert.Equal(t, "stale", h.State.String())
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
		require.NoError(t, err)
	}
	close(stop)
	wg.Wait()
}

func TestTokenAfterInvalidateWaitsForTheNewKey(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	old := f.mustToken()
	gate := f.b.hold()
	f.b.set(keyB)
	f.src.Invalidate(old)
	got := make(chan keyprovider.Key, 1)
	go func() { got <- f.mustToken() }()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.src.Token(ctx)
	assert.ErrorIs(t, err, context.Canceled, "a caller waiting for the forced refresh honours its own context")
	close(gate)
	assert.Equal(t, keyB, (<-got).Reveal(), "Token after Invalidate returns the refreshed key, never the rejected one")
	assert.EqualValues(t, 2, f.b.fetches.Load())
}

func TestInvalidateWithFailingBackendServesTheOldKeyAgain(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	old := f.mustToken()
	f.b.fail(errBackend)
	f.src.Invalidate(old)
	k, err := f.src.Token(context.Background())
	require.NoError(t, err, "a failed forced refresh must not fail requests")
	assert.Equal(t, keyA, k.Reveal())
	assert.Equal(t, rotate.Stale, f.src.Health().State)
	assert.Equal(t, keyA, f.mustToken().Reveal(), "and the hot path serves it again")
}

// Callers racing the end of a forced refresh join it or take its outcome;
// none of them reads the backend again. Many rounds, to hit the instant in
// which the refresh has stored its key but not yet left the singleflight.
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
		wg.Wait()
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
		require.NoError(t, err)
		ctx := context.Background()
		old, err := src.Refresh(ctx) // races the Source's own first fetch
		require.NoError(t, err)
		b.set(keyB)
		src.Invalidate(old)
		k, err := src.Token(ctx)
		require.NoError(t, err)
		require.NoError(t, src.Close())
		if k.Reveal() != keyB {
			t.Fatalf("round %d: Token after Invalidate returned %v, the rejected key", i, k)
		}
	}
}
