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
// invisible to requests, and visible in [Source.Health].
//
// [Source.Invalidate], which [keyprovider.Transport] calls on a 401, forces
// a refresh when the rejected key is still the current one, at most once per
// MinRefreshInterval however many requests fail. [Source.Refresh] forces a
// fetch and waits for it, for start-up checks, runbooks and tests.
//
// # Lifetime
//
// [Source.Close] stops the goroutines the Source started and waits for
// them; later calls to Token fail with [ErrClosed].
package rotate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyprovider/keyprovider"
)

// ErrClosed is returned by [Source.Token] and [Source.Refresh] after
// [Source.Close].
var ErrClosed = errors.New("rotate: source closed")

var errClosed = &keyprovider.Error{Provider: "rotate", Err: ErrClosed}

// snapshot is what Token reads: the key to serve, or the error to return.
type snapshot struct {
	key keyprovider.Key
	// err, when set, is returned by Token instead of key: closed, past
	// MaxStale, or a failed first fetch.
	err error
	// retryAt is, for a failed first fetch, when Token may start another
	// fetch; until then callers get err at once (a failing backend is not
	// hammered by every caller).
	retryAt time.Time
	// serve is set when Token may hand out key as it is: no err, not
	// rejected. It is the one field the hot path reads.
	serve bool
	// rejected marks key as reported by Invalidate while the forced
	// refresh runs: Token then waits for that refresh (on its own context)
	// instead of handing out the rejected key again.
	rejected bool
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

	cur atomic.Pointer[snapshot]
	sf  singleflight.Group

	ctx    context.Context // the Source's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresher and the notifier
	// inflight counts fetches under way; Add only under mu while !closed.
	inflight sync.WaitGroup

	lastForced atomic.Int64 // Unix nanoseconds of the last forced refresh
	// ended counts the fetches whose outcome is in cur; it moves after cur
	// does. fetchCold and Invalidate read it to tell a fetch that ended
	// since their look at cur from one still to come (see fetchSince).
	ended atomic.Uint64

	mu          sync.Mutex // guards the fields below; never held while calling out
	closed      bool
	lastSuccess time.Time
	lastErr     error
	failStreak  int
	fetches     uint64
	failures    uint64
	rotations   uint64
	subs        map[int]func(old, new keyprovider.Key)
	nextSub     int
	events      []rotation
	wake        chan struct{} // tells the notifier there are events
}

type rotation struct{ old, new keyprovider.Key }

// New returns a Source over p and starts its background goroutine, which
// fetches the first key at once. New does no I/O itself; it fails only for
// a nil p or a Slot outside [0, Slots), with an error that wraps
// keyprovider.ErrInvalidKey. A Token call before the first fetch completes
// waits for it.
// To fail fast at start-up, call [Source.Refresh] after New.
//
// The caller must call [Source.Close] to stop the goroutines.
func New(p keyprovider.Provider, opts ...Option) (*Source, error) {
	if p == nil {
		return nil, &keyprovider.Error{Provider: "rotate", Kind: keyprovider.ErrInvalidKey, Err: errors.New("nil Provider")}
	}
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	if o.Slots < 0 || o.Slot < 0 || o.Slot > 0 && o.Slot >= o.Slots {
		return nil, &keyprovider.Error{Provider: "rotate", Kind: keyprovider.ErrInvalidKey,
			Err: fmt.Errorf("slot %d of %d: want 0 ≤ Slot < Slots", o.Slot, o.Slots)}
	}
	s := &Source{
		p:    p,
		o:    o.resolve(),
		subs: make(map[int]func(old, new keyprovider.Key)),
		wake: make(chan struct{}, 1),
	}
	if s.o.Slots > 0 {
		s.phase = time.Duration(float64(s.o.RefreshInterval) * float64(s.o.Slot) / float64(s.o.Slots))
	} else {
		s.phase = time.Duration(s.o.Rand() * float64(s.o.RefreshInterval))
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.refresher()
	go s.notifier()
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

// token is Token's hot path: one load, one flag. It takes the slow path as
// a parameter because the inliner prices a call to a parameter at 17 and a
// call to a function at 57 (cmd/compile/internal/inline), which leaves
// Token over the budget of 80; this way Token inlines into its callers and
// a hit costs no call at all. TestTokenInlines keeps it so.
func token(ctx context.Context, s *Source, slow func(*Source, context.Context) (keyprovider.Key, error)) (keyprovider.Key, error) {
	if snap := s.cur.Load(); snap != nil && snap.serve {
		return snap.key, nil
	}
	return slow(s, ctx)
}

// tokenSlow is Token without a servable key: closed, failed, cold, or
// rejected and being refreshed.
func (s *Source) tokenSlow(ctx context.Context) (keyprovider.Key, error) {
	if snap := s.cur.Load(); snap != nil && snap.err != nil {
		if !snap.key.IsZero() || snap.retryAt.IsZero() || s.o.Clock.Now().Before(snap.retryAt) {
			return keyprovider.Key{}, snap.err
		}
	}
	k, err := s.fetchShared(ctx, true)
	if err != nil {
		return k, err
	}
	// The fetch we joined may have begun before an Invalidate rejected the
	// key it got (a first fetch racing the first 401): answer with what
	// the Source holds now, never with a key known to be rejected.
	switch snap := s.cur.Load(); {
	case snap == nil || snap.key.Equal(k) && !snap.rejected:
		return k, nil
	case snap.serve:
		return snap.key, nil
	case snap.rejected:
		return s.fetchShared(ctx, true) // joins the forced refresh
	}
	return k, nil
}

// Refresh fetches the key now (joining a fetch already running, or taking
// the outcome of one that ended while it was joining), waits for it on ctx,
// and returns the key it got or the error of the fetch. A key that
// fails validation or Verify is returned as an error and does not replace
// the current one.
func (s *Source) Refresh(ctx context.Context) (keyprovider.Key, error) {
	return s.fetchShared(ctx, false)
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
	seen := s.ended.Load() // before the look at cur
	snap := s.cur.Load()
	if snap == nil || snap.err != nil || snap.rejected || !snap.key.Equal(stale) {
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
	if !s.cur.CompareAndSwap(snap, &snapshot{key: snap.key, rejected: true}) {
		return // a new key arrived meanwhile
	}
	s.o.Logger.Warn("rotate: key rejected, refreshing", "key", stale)
	// A Token call that saw the rejected key may have started the fetch
	// already, and even finished it: then there is nothing left to do.
	s.sf.DoChan("fetch", s.fetchSince(seen)) // runs on its own goroutine
}

// OnRotate registers fn to be called after every change of the key, with
// the key it replaced (the zero Key for the first key) and the new one. It
// is called once per real change, never with equal keys, in order, from a
// goroutine of the Source's, never while a lock is held; a slow fn delays
// later notifications but never the refresher. The returned func
// unregisters fn.
func (s *Source) OnRotate(fn func(old, new keyprovider.Key)) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs[id] = fn
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

// Close stops the background goroutines and waits for them, then makes
// Token and Refresh fail with ErrClosed. A fetch under way is cancelled.
// Close is idempotent; it always returns nil.
func (s *Source) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	prev := s.cur.Load()
	snap := &snapshot{err: errClosed}
	if prev != nil {
		snap.key = prev.key // kept for Health; Token returns err
	}
	s.cur.Store(snap)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.inflight.Wait()
	return nil
}

// fetchShared runs one fetch, shared with every caller that asks meanwhile,
// and waits for it on ctx. With cold set (a Token call that found no key, or
// the fetch New starts), callers first share a look at the current state, so
// that a fetch that completed between a caller's look and its joining is
// not repeated: its outcome is answered instead. Without it (Refresh, the
// schedule, Invalidate), the backend is always read.
func (s *Source) fetchShared(ctx context.Context, cold bool) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil {
		return keyprovider.Key{}, err
	}
	var ch <-chan singleflight.Result
	if cold {
		ch = s.sf.DoChan("cold", s.fetchCold)
	} else {
		ch = s.sf.DoChan("fetch", s.fetchNow)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			return keyprovider.Key{}, r.Err
		}
		return r.Val.(keyprovider.Key), nil
	case <-ctx.Done():
		return keyprovider.Key{}, ctx.Err()
	}
}

// fetchCold answers from the current state if it is servable, or a recent
// first-fetch failure, and otherwise joins or starts a real fetch.
func (s *Source) fetchCold() (any, error) {
	ended := s.ended.Load() // before the look at cur
	if snap := s.cur.Load(); snap != nil {
		if snap.serve {
			return snap.key, nil
		}
		if !snap.retryAt.IsZero() && s.o.Clock.Now().Before(snap.retryAt) {
			return keyprovider.Key{}, snap.err
		}
	}
	r := <-s.sf.DoChan("fetch", s.fetchSince(ended))
	if r.Err != nil {
		// A failed refresh of a rejected key serves the key again.
		if snap := s.cur.Load(); snap != nil && snap.serve {
			return snap.key, nil
		}
	}
	return r.Val, r.Err
}

// fetchSince returns the function of a fetch wanted by a caller that last
// looked at cur when s.ended was seen. It runs only if no fetch was running
// for the caller to join; if one ended after the caller's look, its outcome
// is the answer, and reading the backend again would only repeat it.
func (s *Source) fetchSince(seen uint64) func() (any, error) {
	return func() (any, error) {
		if s.ended.Load() != seen {
			if snap := s.cur.Load(); snap != nil && snap.serve {
				return snap.key, nil
			} else if snap != nil && snap.err != nil {
				return keyprovider.Key{}, snap.err
			}
		}
		return s.fetchNow()
	}
}

// fetchNow reads the backend, unless the Source is closed.
func (s *Source) fetchNow() (any, error) {
	if !s.enter() {
		return keyprovider.Key{}, errClosed
	}
	defer s.inflight.Done()
	return s.fetch()
}

// enter registers a fetch about to run, unless the Source is closed, so that
// Close can wait for it.
func (s *Source) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

// fetch reads the backend once, on the Source's own context, and records
// the outcome. It is only called through s.sf.
func (s *Source) fetch() (keyprovider.Key, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.o.FetchTimeout)
	defer cancel()
	k, err := s.p.Fetch(ctx)
	if err == nil {
		err = s.check(ctx, k)
	}
	now := s.o.Clock.Now()

	s.mu.Lock()
	s.fetches++
	prev := s.cur.Load()
	if s.closed {
		s.mu.Unlock()
		return keyprovider.Key{}, errClosed
	}
	if err != nil {
		s.failures++
		s.failStreak++
		s.lastErr = err
		held := prev != nil && !prev.key.IsZero()
		switch {
		case !held:
			s.cur.Store(&snapshot{err: err, retryAt: now.Add(s.backoff(s.failStreak))})
		case prev.rejected && now.Sub(s.lastSuccess) < s.o.MaxStale:
			s.cur.Store(&snapshot{key: prev.key, serve: true}) // serve it again
		case now.Sub(s.lastSuccess) >= s.o.MaxStale:
			s.cur.Store(&snapshot{key: prev.key, err: &keyprovider.Error{
				Provider: "rotate", Kind: keyprovider.ErrUnavailable,
				Err: fmt.Errorf("no successful refresh for %s (MaxStale): %w", now.Sub(s.lastSuccess).Round(time.Second), err),
			}})
		}
		streak := s.failStreak
		s.ended.Add(1)
		s.mu.Unlock()
		s.logFailure(err, prev, streak)
		return keyprovider.Key{}, err
	}
	var old keyprovider.Key
	if prev != nil {
		old = prev.key
	}
	changed := !old.Equal(k)
	s.cur.Store(&snapshot{key: k, serve: true})
	s.ended.Add(1)
	s.lastSuccess = now
	s.lastErr = nil
	s.failStreak = 0
	if changed {
		s.rotations++
		s.events = append(s.events, rotation{old: old, new: k})
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	if changed {
		s.o.Logger.Info("rotate: new key", "old", old, "new", k)
	} else {
		s.o.Logger.Debug("rotate: key refreshed, unchanged", "key", k)
	}
	return k, nil
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
	if err := s.o.Verify(ctx, k); err != nil {
		return &keyprovider.Error{Provider: "rotate", Ref: "verify", Kind: keyprovider.ErrInvalidKey, Err: err}
	}
	return nil
}

func (s *Source) logFailure(err error, prev *snapshot, streak int) {
	attrs := []any{"error", err, "failures_in_a_row", streak}
	if prev != nil && !prev.key.IsZero() {
		attrs = append(attrs, "serving", prev.key)
	}
	// A missing secret or a refusal is a configuration problem someone has
	// to fix: say so loudly. Transient failures are warnings.
	if errors.Is(err, keyprovider.ErrNotFound) || errors.Is(err, keyprovider.ErrPermission) || errors.Is(err, keyprovider.ErrInvalidKey) {
		s.o.Logger.Error("rotate: refresh failed; keeping the last good key", attrs...)
		return
	}
	s.o.Logger.Warn("rotate: refresh failed; keeping the last good key", attrs...)
}

// refresher is the background goroutine: it fetches at once, then at this
// Source's phase of every RefreshInterval, and on backoff after failures.
// A fetch forced by Invalidate leaves the schedule as it was: were it to
// restart the interval, a rotation answered by 401s on every replica of a
// fleet would put all of them back in step. For the same reason a refresh
// that succeeds after an outage goes back to the phase, rather than
// counting an interval from whenever the backend came back.
func (s *Source) refresher() {
	defer s.wg.Done()
	var due time.Time // when the next scheduled fetch falls due; zero: now
	initial := true   // the fetch New starts
	for {
		if !due.IsZero() {
			t := s.o.Clock.NewTimer(due.Sub(s.o.Clock.Now()))
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
		}
		// A fetch a caller of Token completed just before the one New
		// starts counts as it (cold); every later due refresh fetches.
		_, err := s.fetchShared(s.ctx, initial)
		initial = false
		if s.ctx.Err() != nil {
			return
		}
		due = s.next(err)
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

// notifier delivers rotation events to the subscribers, in order, outside
// every lock.
func (s *Source) notifier() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		events := s.events
		s.events = nil
		subs := make([]func(old, new keyprovider.Key), 0, len(s.subs))
		for i := 0; i < s.nextSub; i++ {
			if fn, ok := s.subs[i]; ok {
				subs = append(subs, fn)
			}
		}
		s.mu.Unlock()
		for _, ev := range events {
			for _, fn := range subs {
				fn(ev.old, ev.new)
			}
		}
	}
}

// State is the condition of a [Source], as [Source.Health] reports it.
type State int

const (
	// Starting: no key yet, and no fetch has failed.
	Starting State = iota
	// Fresh: the last refresh succeeded.
	Fresh
	// Stale: refreshes are failing, and the last good key is served.
	Stale
	// Failed: no key can be served: the first fetch failed, or MaxStale
	// has passed since the last success.
	Failed
	// Closed: Close was called.
	Closed
)

var stateNames = [...]string{"starting", "fresh", "stale", "failed", "closed"}

// String returns the state's lower-case name.
func (st State) String() string {
	if st < 0 || int(st) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(st))
	}
	return stateNames[st]
}

// Health is a Source's condition and counters, for readiness probes and
// metrics. It holds no key: only its fingerprint.
type Health struct {
	// State is the named condition.
	State State
	// Fingerprint and Version describe the key being served ("<no key>"
	// and "" when none).
	Fingerprint, Version string
	// LastSuccess is when the last fetch succeeded (zero if none); Age is
	// the time since then.
	LastSuccess time.Time
	Age         time.Duration
	// LastError is the error of the last fetch if it failed, else nil.
	LastError error
	// Fetches, Failures and Rotations count backend fetches, failed
	// fetches, and changes of the key since New.
	Fetches, Failures, Rotations uint64
}

// Ready returns nil if the Source can serve a key (Fresh or Stale), or an
// error saying why not, for a readiness probe.
func (h Health) Ready() error {
	switch h.State {
	case Fresh, Stale:
		return nil
	case Starting:
		return errors.New("rotate: no key fetched yet")
	case Closed:
		return ErrClosed
	default:
		if h.LastError != nil {
			return fmt.Errorf("rotate: no usable key: %w", h.LastError)
		}
		return errors.New("rotate: no usable key")
	}
}

// Health returns the Source's condition and counters.
func (s *Source) Health() Health {
	now := s.o.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Health{
		LastSuccess: s.lastSuccess,
		LastError:   s.lastErr,
		Fetches:     s.fetches,
		Failures:    s.failures,
		Rotations:   s.rotations,
	}
	snap := s.cur.Load()
	var k keyprovider.Key
	if snap != nil {
		k = snap.key
	}
	h.Fingerprint, h.Version = k.Fingerprint(), k.Version()
	if !s.lastSuccess.IsZero() {
		h.Age = now.Sub(s.lastSuccess)
	}
	switch {
	case s.closed:
		h.State = Closed
	case snap == nil:
		h.State = Starting
	case snap.err != nil:
		h.State = Failed
	case s.lastErr != nil:
		h.State = Stale
	default:
		h.State = Fresh
	}
	return h
}

// String describes the Source by the state and fingerprint of its key, so
// that printing a Source never dumps its internals.
func (s *Source) String() string {
	h := s.Health()
	return "rotate.Source(" + h.State.String() + " " + h.Fingerprint + ")"
}

// GoString is [Source.String], for %#v.
func (s *Source) GoString() string { return s.String() }

// LogValue implements [slog.LogValuer] for a Health.
func (h Health) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("state", h.State.String()),
		slog.String("fingerprint", h.Fingerprint),
		slog.Duration("age", h.Age),
		slog.Uint64("fetches", h.Fetches),
		slog.Uint64("failures", h.Failures),
	}
	if h.Version != "" {
		attrs = append(attrs, slog.String("version", h.Version))
	}
	if h.LastError != nil {
		attrs = append(attrs, slog.String("last_error", h.LastError.Error()))
	}
	return slog.GroupValue(attrs...)
}
