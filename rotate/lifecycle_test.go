package rotate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

type change struct{ old, new string }

// subscribe registers a subscriber that sends every change to the channel
// it returns.
func subscribe(src *rotate.Source) (<-chan change, func()) {
	got := make(chan change, 16)
	cancel := src.OnRotate(func(old, new keyprovider.Key) { got <- change{old.Reveal(), new.Reveal()} })
	return got, cancel
}

func TestOnRotate(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	got, cancel := subscribe(f.src)
	f.mustToken()
	wantEq(t, recv(t, got, "first notice"), change{"", keyA}, "first notice (a zero old key)")

	_, err := f.src.Refresh(context.Background()) // same key: no notification
	must(t, err, "Refresh")
	f.b.set(keyB)
	_, err = f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	wantEq(t, recv(t, got, "rotation notice"), change{keyA, keyB}, "rotation notice")
	cancel()
	f.b.set(keyC)
	_, err = f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	f.wantKey(keyC, "after the last rotation")
	f.parked(1)
	must(t, f.src.Close(), "Close") // waits for the notifier
	if len(got) != 0 {
		t.Errorf("%d notices for equal keys or after cancel", len(got))
	}
}

// A subscriber that comes after the first key is told that key, so that
// (keyprov watch, say) it never misses the state it subscribed to; and it
// is told nothing from before it subscribed, even what is still queued.
func TestLateSubscriberIsToldTheCurrentKeyOnce(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	release := make(chan struct{})
	early := make(chan change, 16)
	f.src.OnRotate(func(old, new keyprovider.Key) {
		<-release // holds the notifier: the notices below queue up
		early <- change{old.Reveal(), new.Reveal()}
	})
	_, err := f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	f.b.set(keyB)
	_, err = f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	late, _ := subscribe(f.src)
	close(release)
	wantEq(t, recv(t, early, "first notice"), change{"", keyA}, "early subscriber's first notice")
	wantEq(t, recv(t, early, "second notice"), change{keyA, keyB}, "early subscriber's second notice")
	wantEq(t, recv(t, late, "welcome"), change{"", keyB}, "late subscriber's first notice (the key in force)")
	f.b.set(keyC)
	_, err = f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	wantEq(t, recv(t, late, "rotation"), change{keyB, keyC}, "late subscriber's next notice")
	wantEq(t, recv(t, early, "rotation"), change{keyB, keyC}, "early subscriber's next notice")
	f.parked(1)
	must(t, f.src.Close(), "Close")
	if len(late)+len(early) != 0 {
		t.Errorf("%d extra notices", len(late)+len(early))
	}
}

func TestSlowSubscriberNeverBlocksRefresher(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	release := make(chan struct{})
	f.src.OnRotate(func(old, new keyprovider.Key) { <-release })
	f.mustToken()
	for _, v := range []string{keyB, keyC} {
		f.b.set(v)
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		k, err := f.src.Refresh(ctx)
		cancel()
		must(t, err, "Refresh (completes while the subscriber is stuck)")
		wantEq(t, k.Reveal(), v, "Refresh's key")
	}
	close(release)
}

// panicky is a Provider that panics, with the key in the panic's value,
// while panics is set.
type panicky struct {
	*backend
	panics atomic.Bool
}

func (p *panicky) Fetch(ctx context.Context) (keyprovider.Key, error) {
	if p.panics.Load() {
		p.fetches.Add(1)
		panic(fmt.Sprintf("provider bug while holding %s", keyB))
	}
	return p.backend.Fetch(ctx)
}

func TestPanicInFetchIsAnErrorAndTheLastKeyIsServed(t *testing.T) {
	p := &panicky{backend: newBackend(keyA)}
	f := newFixture(t, newBackend(keyA))
	src := f.over(p, rotate.WithRefreshInterval(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := src.Refresh(ctx)
	must(t, err, "Refresh")
	p.panics.Store(true)
	_, err = src.Refresh(ctx)
	wantIs(t, err, keyprovider.ErrUnavailable, "a panic in Fetch")
	wantIs(t, err, rotate.ErrPanic, "a panic in Fetch")
	wantNoSecret(t, fmt.Sprint(err), keyB, "provider bug")
	k, err := src.Token(ctx)
	must(t, err, "Token after a panicking refresh")
	wantEq(t, k.Reveal(), keyA, "Token after a panicking refresh (the last good key)")
	wantEq(t, src.Health().State, rotate.Stale, "State")
	wantNoSecret(t, f.logs.String(), keyB, "provider bug")
}

func TestPanicInTheFirstFetchFailsTokenWithoutKillingTheProcess(t *testing.T) {
	p := &panicky{backend: newBackend(keyA)}
	p.panics.Store(true)
	f := newFixture(t, newBackend(keyA)) // for its clock and logs
	src := f.over(p)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := src.Token(ctx)
	wantIs(t, err, keyprovider.ErrUnavailable, "Token over a panicking Provider")
	wantNoSecret(t, fmt.Sprint(err), keyB)
	wantNoSecret(t, f.logs.String(), keyB, "provider bug")
}

func TestPanicInVerifyIsAnError(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour),
		rotate.WithVerify(func(_ context.Context, k keyprovider.Key) error {
			if k.Reveal() == keyB {
				panic(k.Reveal())
			}
			return nil
		}))
	f.mustToken()
	f.b.set(keyB)
	_, err := f.src.Refresh(context.Background())
	wantIs(t, err, keyprovider.ErrUnavailable, "a panic in Verify")
	wantIs(t, err, rotate.ErrPanic, "a panic in Verify")
	wantNoSecret(t, fmt.Sprint(err), keyB)
	f.wantKey(keyA, "the last good key")
	wantNoSecret(t, f.logs.String(), keyB)
}

func TestPanicInOnRotateIsLoggedAndNotificationsGoOn(t *testing.T) {
	f := newFixture(t, newBackend(keyA), rotate.WithRefreshInterval(time.Hour))
	f.src.OnRotate(func(old, new keyprovider.Key) { panic(new.Reveal()) })
	got, _ := subscribe(f.src)
	f.mustToken()
	wantEq(t, recv(t, got, "first notice"), change{"", keyA}, "the next subscriber's notice")
	f.b.set(keyB)
	_, err := f.src.Refresh(context.Background())
	must(t, err, "Refresh")
	wantEq(t, recv(t, got, "rotation"), change{keyA, keyB}, "a later notice")
	f.parked(1)
	must(t, f.src.Close(), "Close")
	logs := f.logs.String()
	wantNoSecret(t, logs, keyA, keyB)
	if n := countLines(logs, "OnRotate callback panicked"); n != 2 {
		t.Errorf("%d log lines about the callback's panics, want one each:\n%s", n, logs)
	}
}

// closer is a Provider that is an io.Closer and counts its Close calls.
type closer struct {
	*backend
	closes atomic.Int64
	err    error
}

func (c *closer) Close() error { c.closes.Add(1); return c.err }

var _ io.Closer = (*closer)(nil)

func TestCloseClosesTheProviderItOwns(t *testing.T) {
	errClose := errors.New("close failed")
	c := &closer{backend: newBackend(keyA), err: errClose}
	src, err := rotate.New(c)
	must(t, err, "New")
	wantIs(t, src.Close(), errClose, "Close returns the Provider's Close error")
	must(t, src.Close(), "second Close")
	wantEq(t, c.closes.Load(), 1, "Provider Close calls")
}

func TestCloseLeavesASharedProviderOpen(t *testing.T) {
	c := &closer{backend: newBackend(keyA)}
	var srcs []*rotate.Source
	for range 3 {
		src, err := rotate.New(c, rotate.WithSharedProvider())
		must(t, err, "New")
		srcs = append(srcs, src)
	}
	for _, src := range srcs {
		must(t, src.Close(), "Close")
	}
	wantEq(t, c.closes.Load(), 0, "Provider Close calls")
}

// stubborn is a Provider that ignores its context: a fetch returns only
// when release is closed.
type stubborn struct {
	started chan struct{}
	release chan struct{}
	closes  atomic.Int64
}

func (s *stubborn) Fetch(context.Context) (keyprovider.Key, error) {
	s.started <- struct{}{}
	<-s.release
	return keyprovider.NewKey(keyA, ""), nil
}

func (s *stubborn) Close() error { s.closes.Add(1); return nil }

func TestCloseIsBoundedWhenAFetchIgnoresItsContext(t *testing.T) {
	const timeout = 7 * time.Second
	p := &stubborn{started: make(chan struct{}, 1), release: make(chan struct{})}
	f := newFixture(t, newBackend(keyA)) // for its clock
	src := f.over(p, rotate.WithCloseTimeout(timeout), rotate.WithBackoffBase(time.Hour))
	recv(t, p.started, "the first fetch")
	closed := make(chan error, 1)
	go func() { closed <- src.Close() }()
	// Close waits on a timer of the fake clock: once it is set, run the
	// clock past it. (The refresher's own timer, if it sets one as it
	// stops, is due an hour or more from now.)
	waitDeadline(t, f, f.clock.Now().Add(timeout))
	f.clock.Advance(timeout)
	err := recv(t, closed, "Close's answer")
	wantIs(t, err, rotate.ErrStillRunning, "Close with a fetch that ignores its context")
	wantEq(t, p.closes.Load(), 0, "Provider Close calls while its fetch runs")
	close(p.release)
	must(t, closeWithin(t, src), "Close once the fetch has returned")
	wantEq(t, p.closes.Load(), 1, "Provider Close calls after its fetch returned")
}

func TestCloseIsBoundedWhenAnOnRotateCallbackHangs(t *testing.T) {
	const timeout = 3 * time.Second
	f := newFixture(t, newBackend(keyA), rotate.WithCloseTimeout(timeout), rotate.WithRefreshInterval(time.Hour))
	entered, release := make(chan struct{}), make(chan struct{})
	f.src.OnRotate(func(old, new keyprovider.Key) { close(entered); <-release })
	f.mustToken()
	recv(t, entered, "the callback")
	closed := make(chan error, 1)
	go func() { closed <- f.src.Close() }()
	waitDeadline(t, f, f.clock.Now().Add(timeout))
	f.clock.Advance(timeout)
	wantIs(t, recv(t, closed, "Close's answer"), rotate.ErrStillRunning, "Close with a callback that hangs")
	close(release)
	must(t, closeWithin(t, f.src), "Close once the callback has returned")
}

// waitDeadline waits until the earliest pending timer of f's clock is due
// at at.
func waitDeadline(t *testing.T, f *fixture, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		if next, ok := f.clock.NextDeadline(); ok && next.Equal(at) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no timer due at %s", at)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		f.clock.BlockUntil(ctx, f.clock.Pending()+1)
		cancel()
	}
}

// closeWithin calls Close, failing the test if it does not return within
// waitFor.
func closeWithin(t *testing.T, src *rotate.Source) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- src.Close() }()
	return recv(t, done, "Close's answer")
}

func countLines(text, substr string) int {
	n := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
