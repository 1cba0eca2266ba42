package rotate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyprovider/keyprovider"
)

// ErrPanic is wrapped, together with keyprovider.ErrUnavailable, by the
// error of a fetch during which the Provider's Fetch or Verify panicked.
// The error says where the panic happened and the type of its value, never
// the value itself: it may hold a key.
var ErrPanic = errors.New("panic recovered")

// flight is one backend fetch, shared by every caller that asks for a fetch
// while it runs. Its outcome is written, and done closed, once, under mu.
type flight struct {
	done chan struct{}
	key  keyprovider.Key
	err  error
}

// closedFlight is what asking for a fetch of a closed Source gets.
var closedFlight = func() *flight {
	f := &flight{done: make(chan struct{}), err: errClosed}
	close(f.done)
	return f
}()

// wait waits for f to end, or for ctx to be done.
func (f *flight) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flightLocked returns the fetch under way, or starts one on its own
// goroutine (so that each caller waits on its own context, and the fetch on
// the Source's).
func (s *Source) flightLocked() *flight {
	if s.closed {
		return closedFlight
	}
	if s.flight != nil {
		return s.flight
	}
	f := &flight{done: make(chan struct{})}
	s.flight = f
	s.wg.Add(1)
	go s.run(f)
	return f
}

// finishLocked writes f's outcome and releases its waiters.
func (s *Source) finishLocked(f *flight, k keyprovider.Key, err error) {
	if s.flight == f {
		s.flight = nil
	}
	f.key, f.err = k, err
	close(f.done)
}

// run is the goroutine of flight f: it reads the backend once, on the
// Source's own context, and records the outcome.
func (s *Source) run(f *flight) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.ctx, s.o.FetchTimeout)
	defer cancel()
	start := s.o.Clock.Now()
	k, err := s.fetch(ctx)
	now := s.o.Clock.Now()
	s.m.Fetch(ctx, err, now.Sub(start))

	s.mu.Lock()
	if s.closed { // Close has answered f's waiters already
		s.fetches++
		s.mu.Unlock()
		return
	}
	prev := s.cur.Load()
	var streak int
	if err != nil {
		streak = s.failedLocked(err, prev, now)
		k = keyprovider.Key{}
	} else {
		s.succeededLocked(k, prev, now)
	}
	s.mu.Unlock()

	// Logged before the waiters are released (and outside the lock), so
	// that a caller answered by this fetch finds it in the log already.
	switch {
	case err != nil:
		s.logFailure(err, prev, streak)
	case prev == nil || !prev.key.Equal(k):
		s.o.Logger.Info("rotate: new key", "old", oldKey(prev), "new", k)
	default:
		s.o.Logger.Debug("rotate: key refreshed, unchanged", "key", k)
	}

	s.mu.Lock()
	if !s.closed { // else Close has answered f's waiters meanwhile
		s.finishLocked(f, k, err)
	}
	s.mu.Unlock()
}

func oldKey(prev *snapshot) keyprovider.Key {
	if prev == nil {
		return keyprovider.Key{}
	}
	return prev.key
}

// failedLocked records a failed fetch: without a key held, Token fails
// until the backoff has passed; with one, it is served on (again, if it was
// rejected), as stale, until MaxStale has passed since the last success. It returns
// the number of failures in a row.
func (s *Source) failedLocked(err error, prev *snapshot, now time.Time) int {
	s.fetches++
	s.failures++
	s.failStreak++
	s.lastErr = err
	switch {
	case prev == nil || prev.key.IsZero():
		s.cur.Store(&snapshot{err: err, retryAt: now.Add(s.backoff(s.failStreak))})
	case now.Sub(s.lastSuccess) >= s.o.MaxStale:
		s.cur.Store(&snapshot{key: prev.key, err: &keyprovider.Error{
			Provider: "rotate", Kind: keyprovider.ErrUnavailable,
			Err: fmt.Errorf("no successful refresh for %s (MaxStale): %w", now.Sub(s.lastSuccess).Round(time.Second), err),
		}})
	case prev.err != errStale:
		// Serve it on (again, if it was rejected), from Token's slow path,
		// which counts it.
		s.cur.Store(&snapshot{key: prev.key, err: errStale})
	}
	return s.failStreak
}

// succeededLocked records a fetched key k and, when it differs from the
// one held, queues the rotation for the subscribers.
func (s *Source) succeededLocked(k keyprovider.Key, prev *snapshot, now time.Time) {
	s.fetches++
	s.cur.Store(&snapshot{key: k})
	s.lastSuccess = now
	s.lastErr = nil
	s.failStreak = 0
	if old := oldKey(prev); !old.Equal(k) {
		s.keySeen = now
		s.rotations++
		s.announceLocked(old, k)
	}
}

// fetch reads the backend and checks what it got; a panic in the Provider
// or in Verify is an error like any other.
func (s *Source) fetch(ctx context.Context) (keyprovider.Key, error) {
	var k keyprovider.Key
	err := guard("Fetch", func() (err error) {
		k, err = s.p.Fetch(ctx)
		return err
	})
	if err != nil {
		return keyprovider.Key{}, err
	}
	return k, s.check(ctx, k)
}

// check validates k and, when it differs from the current key, runs Verify.
func (s *Source) check(ctx context.Context, k keyprovider.Key) error {
	if err := s.o.Service.Validate(k.Reveal()); err != nil {
		return &keyprovider.Error{Provider: "rotate", Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	if s.o.Verify == nil {
		return nil
	}
	if cur := s.cur.Load(); cur != nil && cur.key.Equal(k) {
		return nil
	}
	err := guard("Verify", func() error { return s.o.Verify(ctx, k) })
	if err != nil && !errors.Is(err, ErrPanic) {
		err = &keyprovider.Error{Provider: "rotate", Ref: "verify", Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	return err
}

// guard calls fn and turns a panic in it into an error wrapping
// keyprovider.ErrUnavailable and ErrPanic. Only the type of the panic's
// value is kept: the value may hold a key.
func guard(where string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &keyprovider.Error{Provider: "rotate", Kind: keyprovider.ErrUnavailable,
				Err: fmt.Errorf("%w in %s (a %T; its value is not shown)", ErrPanic, where, v)}
		}
	}()
	return fn()
}

func (s *Source) logFailure(err error, prev *snapshot, streak int) {
	attrs := []any{"error", err, "failures_in_a_row", streak}
	if prev != nil && !prev.key.IsZero() {
		attrs = append(attrs, "serving", prev.key)
	}
	// A missing secret, a refusal or a panic is a problem someone has to
	// fix: say so loudly. Transient failures are warnings.
	if errors.Is(err, keyprovider.ErrNotFound) || errors.Is(err, keyprovider.ErrPermission) ||
		errors.Is(err, keyprovider.ErrInvalidKey) || errors.Is(err, ErrPanic) {
		s.o.Logger.Error("rotate: refresh failed; keeping the last good key", attrs...)
		return
	}
	s.o.Logger.Warn("rotate: refresh failed; keeping the last good key", attrs...)
}

// refresher is the background goroutine: it fetches at once (unless a
// caller of Token already has), then at this Source's phase of every
// RefreshInterval, and on backoff after failures.
// A fetch forced by Invalidate leaves the schedule as it was: were it to
// restart the interval, a rotation answered by 401s on every replica of a
// fleet would put all of them back in step. For the same reason a refresh
// that succeeds after an outage goes back to the phase, rather than
// counting an interval from whenever the backend came back.
func (s *Source) refresher() {
	defer s.wg.Done()
	_, err := s.tokenSlow(s.ctx)
	for s.ctx.Err() == nil {
		t := s.o.Clock.NewTimer(s.next(err).Sub(s.o.Clock.Now()))
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		_, err = s.refresh(s.ctx, false)
	}
}

// next is when the next background fetch falls due after one that
// returned err: after a failure, on backoff (no later than the instant
// MaxStale runs out, so the switch to failing is on time); after a success,
// at the next instant of this Source's phase.
func (s *Source) next(err error) time.Time {
	now := s.o.Clock.Now()
	if err != nil {
		s.mu.Lock()
		streak, last := s.failStreak, s.lastSuccess
		s.mu.Unlock()
		due := now.Add(s.backoff(streak))
		if !last.IsZero() {
			if stale := last.Add(s.o.MaxStale); stale.After(now) && stale.Before(due) {
				due = stale
			}
		}
		return due
	}
	// The interval now falls in starts intoInterval ago; its instant of the
	// phase is due unless it is already past.
	interval := s.o.RefreshInterval
	intoInterval := time.Duration(now.UnixNano() % int64(interval))
	if intoInterval < 0 { // before 1970: the remainder keeps the dividend's sign
		intoInterval += interval
	}
	due := now.Add(s.phase - intoInterval)
	if !due.After(now) {
		due = due.Add(interval)
	}
	return due
}

// backoff is the delay after the n-th failure in a row: exponential from
// BackoffBase, capped at BackoffMax, drawn at random from its upper half.
func (s *Source) backoff(n int) time.Duration {
	d := s.o.BackoffBase
	for i := 1; i < n && d < s.o.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.o.BackoffMax)
	return d/2 + time.Duration(s.o.Rand()*float64(d/2))
}
