package rotate

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyprovider/keyprovider"
)

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
	// At is when the Health was read, by the Source's clock.
	At time.Time
	// LastSuccess is when the last fetch succeeded (zero if none).
	LastSuccess time.Time
	// LastError is the error of the last fetch if it failed, else nil.
	LastError error
	// Fetches, Failures and Rotations count backend fetches, failed
	// fetches, and changes of the key since New.
	Fetches, Failures, Rotations uint64
	// KeySince is when the key served was first fetched (zero if none):
	// the age of its version.
	KeySince time.Time
	// StaleServes counts the keys Token served while refreshes failed
	// (the last good key); Invalidations the rejections (HTTP 401)
	// reported through Invalidate for the key then current.
	StaleServes, Invalidations uint64
	// WatchRefreshes counts the fetches that a [Watcher] Provider's change
	// notices caused (each debounced burst of notices is one).
	WatchRefreshes uint64
}

// Age is the time from the last successful fetch to At, or zero if no
// fetch has succeeded.
func (h Health) Age() time.Duration {
	if h.LastSuccess.IsZero() {
		return 0
	}
	return h.At.Sub(h.LastSuccess)
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
		At:          now,
		LastSuccess: s.lastSuccess,
		LastError:   s.lastErr,
		Fetches:     s.fetches,
		Failures:    s.failures,
		Rotations:   s.rotations,

		WatchRefreshes: s.watchFetches,
		KeySince:       s.keySeen,
		StaleServes:    s.staleServes.Load(),
		Invalidations:  s.invalidations.Load(),
	}
	snap := s.cur.Load()
	var k keyprovider.Key
	if snap != nil {
		k = snap.key
	}
	h.Fingerprint, h.Version = k.Fingerprint(), k.Version()
	switch {
	case s.closed:
		h.State = Closed
	case snap == nil:
		h.State = Starting
	case snap.err != nil && snap.err != errRejected && snap.err != errStale:
		h.State = Failed
	case s.lastErr != nil:
		h.State = Stale
	default:
		h.State = Fresh
	}
	return h
}

// LogValue implements [slog.LogValuer] for a Health.
func (h Health) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("state", h.State.String()),
		slog.String("fingerprint", h.Fingerprint),
		slog.Duration("age", h.Age()),
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

// typeName names the type of a recovered panic's value, never the value.
func typeName(v any) string { return fmt.Sprintf("%T", v) }
