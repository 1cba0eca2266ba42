// Package rotate turns a [keyprovider.Provider] into a cached
// [keyprovider.TokenSource] that follows key rotation, survives backend
// outages on its last good key, and costs nothing to read.
//
// # Reading
//
// [Source.Token] is an atomic load once a key is held: no lock, no clock
// read, no allocation. Callers that arrive before the first key share one
// backend fetch, each waiting on its own context.
//
// # Refreshing
//
// [New] starts one background goroutine that fetches the first key at once,
// then again every RefreshInterval, at a phase of the interval each Source
// draws at random once (or is given, see Options.Slot): replicas started
// together are spread over the interval at once, and nothing (a forced
// refresh, an outage, a rotation) ever puts them back in step. A fetched
// key replaces the current one only when it passes the service's format
// check and the optional Verify hook. Failures back off exponentially with
// jitter, up to RefreshInterval apart, and the last good key keeps being
// served until MaxStale has passed since the last success: a backend outage is
// invisible to requests, and visible in [Source.Health]. At most one fetch
// runs at a time; every caller that needs one joins it.
//
// [Source.Invalidate], which [keyprovider.Transport] calls on a 401, forces
// a refresh when the rejected key is still the current one, at most once per
// MinRefreshInterval however many requests fail. [Source.Refresh] forces a
// fetch and waits for it, for start-up checks, runbooks and tests.
//
// A Provider that implements [Watcher] (a key file) is also watched: a
// change is fetched WatchDebounce after it is noticed, and the schedule
// stays as the safety net. See [Watcher] for mounted Kubernetes secrets
// and the subPath limitation.
//
// A panic in the Provider's Fetch or in Verify is recovered where it
// happens: the fetch counts as failed, with an error wrapping
// [keyprovider.ErrUnavailable] and [ErrPanic], and the last good key keeps
// being served. A panic in an [Source.OnRotate] callback is recovered and
// logged, and notifications go on. The panic's value is never printed or
// logged (it may hold a key): only its type.
//
// # Notification
//
// [Source.OnRotate] subscribes to changes of the key. A subscriber
// registered after a key was fetched is told that key first, so that no
// subscriber misses the state it subscribed to.
//
// # Metrics
//
// Every Source reports OpenTelemetry metrics through the metrics API on
// Options.MeterProvider (the global MeterProvider when nil, which records
// nothing until the program sets one): backend fetches and their duration
// by service, backend and result, and its last successful fetch, key age,
// state, rotations, stale serves, 401 invalidations and forced refreshes.
// A keyprovider.Transport over the Source counts its requests on the same
// MeterProvider. Counting happens on the refresh path, never in Token. A
// MeterProvider that cannot create an instrument is logged once and the
// metrics are skipped.
//
// # Lifetime
//
// A Source owns its Provider: [Source.Close] stops the goroutines the
// Source started, waits for them (at most Options.CloseTimeout), and closes
// the Provider when it is an [io.Closer], unless Options.SharedProvider
// says that others use it too. Later calls to Token fail with [ErrClosed].
package rotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/metrics"
)

// ErrClosed is returned by [Source.Token] and [Source.Refresh] after
// [Source.Close].
var ErrClosed = errors.New("rotate: source closed")

// ErrStillRunning is returned by [Source.Close] when a fetch (a Provider
// that ignores its context) or an OnRotate callback is still running after
// Options.CloseTimeout.
var ErrStillRunning = errors.New("rotate: a fetch or an OnRotate callback is still running")

var errClosed = &keyprovider.Error{Provider: "rotate", Err: ErrClosed}

// errRejected, as a snapshot's err, marks its key as reported by
// Invalidate while the forced refresh runs: Token then waits for that
// refresh (on its own context) instead of handing out the rejected key.
var errRejected = errors.New("rotate: key rejected, refresh under way")

// errStale, as a snapshot's err, marks its key as the last good one,
// served while refreshes fail: Token serves it from its slow path, which
// counts it (Health.StaleServes), so that the hot path stays one load and
// one comparison.
var errStale = errors.New("rotate: refreshes failing, serving the last good key")

// snapshot is what Token reads: the key to serve, or the error to return.
// Its key is served as it is exactly when err is nil; a snapshot is never
// stored with neither a key nor an error.
type snapshot struct {
	key keyprovider.Key
	// err, when set, is returned by Token instead of key: closed, past
	// MaxStale, or a failed first fetch; or errRejected; or errStale, which
	// alone is served with its key.
	err error
	// retryAt is, for a failed first fetch, when Token may start another
	// fetch; until then callers get err at once (a failing backend is not
	// hammered by every caller).
	retryAt time.Time
}

// Source is a cached, self-refreshing [keyprovider.TokenSource] over a
// [keyprovider.Provider]. It also implements [keyprovider.Invalidator]. Its
// methods are safe for concurrent use.
type Source struct {
	p keyprovider.Provider
	o Options
	// phase is where in every RefreshInterval, counted from the Unix
	// epoch, the scheduled refreshes fall (see Options.Slot).
	phase time.Duration

	cur        atomic.Pointer[snapshot]
	lastForced atomic.Int64 // Unix nanoseconds of the last forced refresh

	staleServes   atomic.Uint64 // keys served while refreshes fail
	invalidations atomic.Uint64 // Invalidate calls for the current key
	m             *metrics.Source

	ctx    context.Context // the Source's lifetime; cancelled by Close
	cancel context.CancelFunc
	// wg counts the refresher, the notifier and every flight; Add only
	// under mu while !closed.
	wg       sync.WaitGroup
	stopped  chan struct{} // closed once wg is done and the Provider closed
	closeErr error         // the Provider's Close error; written before stopped is closed
	reported atomic.Bool   // closeErr was returned by a Close

	mu     sync.Mutex // guards the fields below; never held while calling out
	closed bool
	flight *flight // the fetch under way, if any
	stats
	notices
}

// stats are the counters and times behind [Source.Health].
type stats struct {
	lastSuccess time.Time
	lastErr     error
	failStreak  int
	fetches     uint64
	failures    uint64
	rotations   uint64
	// watchFetches counts the fetches a Watcher's notice caused;
	// invalidateFetches those Invalidate forced; refreshCalls the calls
	// of Refresh.
	watchFetches, invalidateFetches, refreshCalls uint64
	// keySeen is when the key held was first fetched.
	keySeen time.Time
}

// New returns a Source over p and starts its background goroutine, which
// fetches the first key at once. New does no I/O itself; it fails only for
// a nil p or an option out of range (a negative duration, a Slot outside
// [0, Slots)), with an error that wraps keyprovider.ErrInvalidKey. A Token
// call before the first fetch completes waits for it.
// To fail fast at start-up, call [Source.Refresh] after New.
//
// The Source owns p from now on: the caller must call [Source.Close], which
// stops the goroutines and closes p if it is an [io.Closer] (see
// Options.SharedProvider).
func New(p keyprovider.Provider, opts ...Option) (*Source, error) {
	if p == nil {
		return nil, &keyprovider.Error{Provider: "rotate", Kind: keyprovider.ErrInvalidKey, Err: errors.New("nil Provider")}
	}
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, &keyprovider.Error{Provider: "rotate", Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	s := &Source{p: p, o: o.resolve(), stopped: make(chan struct{})}
	s.wake = make(chan struct{}, 1)
	if s.o.Slots > 0 {
		s.phase = time.Duration(float64(s.o.RefreshInterval) * float64(s.o.Slot) / float64(s.o.Slots))
	} else {
		s.phase = time.Duration(s.o.Rand() * float64(s.o.RefreshInterval))
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.m = metrics.NewSource(s.o.MeterProvider, s.o.Logger, s.o.Service.Name, backendName(p, s.o.Backend), s.metricStats)
	s.wg.Add(2)
	go s.refresher()
	go s.notifier()
	if w, ok := p.(Watcher); ok && !s.o.NoWatch {
		s.wg.Add(1)
		go s.watch(w)
	}
	return s, nil
}

// Token returns the current key. Once a key is held it is an atomic load and
// never waits on the backend, even while a refresh is running or failing.
// Before the first key, callers share one backend fetch and each returns
// when it completes or when its own ctx is done. Past MaxStale without a
// successful refresh, Token returns an error that wraps
// keyprovider.ErrUnavailable and the last backend error; after Close, one
// that wraps ErrClosed.
func (s *Source) Token(ctx context.Context) (keyprovider.Key, error) {
	return token(ctx, s, (*Source).tokenSlow)
}

// token is Token's hot path: one load, one comparison. It takes the slow
// path as a parameter because the inliner prices a call to a parameter at
// 17 and a call to a function at 57 (cmd/compile/internal/inline), which
// leaves Token over the budget of 80; this way Token inlines into its
// callers and a hit costs no call at all. TestTokenInlines keeps it so.
func token(ctx context.Context, s *Source, slow func(*Source, context.Context) (keyprovider.Key, error)) (keyprovider.Key, error) {
	if snap := s.cur.Load(); snap != nil && snap.err == nil {
		return snap.key, nil
	}
	return slow(s, ctx)
}

// tokenSlow is Token without a servable key: closed, failed, cold, or
// rejected and being refreshed. It decides under mu whether to answer from
// the state, join the fetch under way or start one, so that a fetch that
// ended just before is answered, not repeated. After the fetch it joined,
// it looks once more: an Invalidate may have rejected the key that fetch
// got, and then it waits for the forced refresh instead.
func (s *Source) tokenSlow(ctx context.Context) (keyprovider.Key, error) {
	if snap := s.cur.Load(); snap != nil && snap.err == errStale {
		s.staleServes.Add(1)
		return snap.key, nil
	}
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, err
	}
	var joined *flight
	for {
		s.mu.Lock()
		if k, err, ok := s.answerLocked(joined); ok {
			s.mu.Unlock()
			return k, err
		}
		f := s.flightLocked()
		s.mu.Unlock()
		if err := f.wait(ctx); err != nil {
			return keyprovider.Key{}, err
		}
		joined = f
	}
}

// answerLocked returns what Token answers from the current state, and
// false when it must wait for a fetch instead. joined is the fetch the
// caller already waited for, if any: its outcome is the answer rather than
// a second fetch, unless the key is rejected (a forced refresh is running).
func (s *Source) answerLocked(joined *flight) (keyprovider.Key, error, bool) {
	snap := s.cur.Load()
	switch {
	case snap != nil && snap.err == nil:
		return snap.key, nil, true
	case snap != nil && snap.err == errStale:
		s.staleServes.Add(1)
		return snap.key, nil, true
	case snap != nil && snap.err == errRejected:
		return keyprovider.Key{}, nil, false
	case joined != nil:
		return joined.key, joined.err, true
	case snap != nil && (!snap.key.IsZero() || snap.retryAt.IsZero() || s.o.Clock.Now().Before(snap.retryAt)):
		return keyprovider.Key{}, snap.err, true
	}
	return keyprovider.Key{}, nil, false
}

// Refresh fetches the key now (joining a fetch already running), waits for
// it on ctx, and returns the key it got or the error of the fetch. A key
// that fails validation or Verify is returned as an error and does not
// replace the current one.
func (s *Source) Refresh(ctx context.Context) (keyprovider.Key, error) {
	return s.refresh(ctx, true)
}

// refresh is Refresh; counted says it is a caller's, not the schedule's.
func (s *Source) refresh(ctx context.Context, counted bool) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, err
	}
	s.mu.Lock()
	if counted {
		s.refreshCalls++
	}
	f := s.flightLocked()
	s.mu.Unlock()
	if err := f.wait(ctx); err != nil {
		return keyprovider.Key{}, err
	}
	return f.key, f.err
}

// Invalidate reports that stale was rejected by the server (HTTP 401). If
// stale is the current key, a refresh starts at once, unless one was forced
// less than MinRefreshInterval ago; until it completes, Token waits for it
// (each caller on its own context) rather than hand out the rejected key, so
// the transport's replay carries the new key. If the refresh fails, the
// rejected key is served again: a backend outage must not turn into an
// outage of the service. An older key, or the zero Key, is ignored.
// Invalidate never blocks, and does not move the refresh schedule.
func (s *Source) Invalidate(stale keyprovider.Key) {
	snap := s.cur.Load()
	if snap == nil || !snap.key.Equal(stale) {
		return
	}
	switch snap.err {
	case nil, errStale:
		s.invalidations.Add(1)
	case errRejected: // a refresh is forced already
		s.invalidations.Add(1)
		return
	default:
		return
	}
	now := s.o.Clock.Now().UnixNano()
	last := s.lastForced.Load()
	if last != 0 && now-last < int64(s.o.MinRefreshInterval) {
		return
	}
	if !s.lastForced.CompareAndSwap(last, now) {
		return // another caller won this interval
	}
	s.mu.Lock()
	if s.cur.Load() != snap {
		s.mu.Unlock()
		return // a new key arrived meanwhile, or Close
	}
	s.cur.Store(&snapshot{key: snap.key, err: errRejected})
	s.invalidateFetches++
	s.flightLocked() // joins the fetch under way, if any: it ends the rejection
	s.mu.Unlock()
	s.o.Logger.Warn("rotate: key rejected, refreshing", "key", stale)
}

// Close stops the background goroutines and waits for them, then closes
// the Provider if it is an [io.Closer] and not Options.SharedProvider, and
// returns its Close error. Token and Refresh fail with ErrClosed from the
// moment Close is called; a fetch under way is cancelled, and its waiters
// are told the Source is closed.
//
// Close waits at most Options.CloseTimeout (by the Source's clock): if a
// fetch (a Provider that ignores its context) or an OnRotate callback is
// still running then, Close returns an error wrapping [ErrStillRunning],
// and the Provider is closed when they return. (An OnRotate callback that
// calls Close is such a case.) Close is idempotent: a later call waits
// again, in the same way; once everything has stopped it returns the
// Provider's Close error if no earlier call did, and nil after that.
func (s *Source) Close() error {
	s.mu.Lock()
	first := !s.closed
	if first {
		s.closed = true
		snap := &snapshot{err: errClosed}
		if prev := s.cur.Load(); prev != nil {
			snap.key = prev.key // kept for Health; Token returns err
		}
		s.cur.Store(snap)
		if f := s.flight; f != nil {
			s.finishLocked(f, keyprovider.Key{}, errClosed)
		}
	}
	s.mu.Unlock()
	if first {
		s.cancel()
		go s.shutdown()
	}
	t := s.o.Clock.NewTimer(s.o.CloseTimeout)
	defer t.Stop()
	select {
	case <-s.stopped:
		if s.reported.CompareAndSwap(false, true) {
			return s.closeErr
		}
		return nil
	case <-t.C():
		return fmt.Errorf("%w after Close waited %s; the Provider is closed when it returns", ErrStillRunning, s.o.CloseTimeout)
	}
}

// shutdown waits for every goroutine of the Source, then closes the
// Provider if the Source owns it.
func (s *Source) shutdown() {
	s.wg.Wait()
	if c, ok := s.p.(io.Closer); ok && !s.o.SharedProvider {
		s.closeErr = c.Close()
	}
	s.m.Close()
	close(s.stopped)
}

// String describes the Source by the state and fingerprint of its key, so
// that printing a Source never dumps its internals.
func (s *Source) String() string {
	h := s.Health()
	return "rotate.Source(" + h.State.String() + " " + h.Fingerprint + ")"
}

// GoString is [Source.String], for %#v.
func (s *Source) GoString() string { return s.String() }
