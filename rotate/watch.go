package rotate

import (
	"context"

	"github.com/keyprovider/keyprovider/internal/envread"
)

// Watcher is implemented by a [keyprovider.Provider] that can tell when its
// key may have changed, so that a [Source] over it fetches at once instead
// of at its next scheduled refresh. The key files of package env (NAME_FILE)
// and of keyprovider.FromEnv and keyprovider.Open (NAME_FILE, file://)
// implement it; a Provider that wraps one can forward it.
//
// Watch starts watching and returns a channel that receives a value
// whenever the key may have changed. The values are hints: the Source
// always fetches the key again, takes a burst of hints (within
// Options.WatchDebounce) as one, and keeps its scheduled refreshes as the
// safety net, so a hint too many costs one fetch and a hint missed delays
// the pickup to the next refresh. Watch must not block; it sends without
// blocking (a buffer of one and a send that gives up when it is full), and
// it closes the channel once ctx is done and everything it started has
// stopped: [Source.Close] waits for that. A nil channel means there is
// nothing to watch (a key that is not in a file, say). A watch that cannot
// be set up is no error: it falls back to polling, or to nothing, and says
// so in a log, never to the caller.
//
// # Mounted secrets
//
// Files are watched through their directory, so that the kubelet's update
// of a mounted Secret (a new timestamped directory, then an atomic swap of
// the "..data" link, up to a kubelet sync period, about a minute, after the
// Secret changed) is picked up within a fraction of a second of the swap,
// as are a rename over the file and a write in place. A Secret mounted with
// subPath is never updated by the kubelet: there is nothing to see, and a
// restart is the only way to a new key there.
type Watcher interface {
	Watch(ctx context.Context) <-chan struct{}
}

// watch is the goroutine that subscribes to the Provider's change notices:
// after a notice it waits WatchDebounce (notices meanwhile are the same
// change), then fetches in a fetch that starts after the notice.
func (s *Source) watch(w Watcher) {
	defer s.wg.Done()
	hints := s.startWatch(w)
	if hints == nil {
		return
	}
	defer func() {
		for range hints { // wait for the watcher to stop
		}
	}()
	for {
		select {
		case <-s.ctx.Done():
			return
		case _, ok := <-hints:
			if !ok {
				return // the watcher stopped; the schedule goes on
			}
		}
		t := s.o.Clock.NewTimer(s.o.WatchDebounce)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		open := true
		select {
		case _, open = <-hints: // a notice of this same burst
		default:
		}
		s.mu.Lock()
		s.watchFetches++
		s.mu.Unlock()
		_ = s.refetch(s.ctx)
		if !open {
			return
		}
	}
}

// startWatch calls w.Watch on the Source's context, which carries its
// logger for the watcher's warnings. A panic in Watch is logged (its type
// only) and leaves the Source on its schedule.
func (s *Source) startWatch(w Watcher) (hints <-chan struct{}) {
	defer func() {
		if v := recover(); v != nil {
			hints = nil
			s.o.Logger.Error("rotate: the Provider's Watch panicked; refreshing on schedule only",
				"error", ErrPanic, "panic_type", typeName(v))
		}
	}()
	return w.Watch(envread.ContextWithLogger(s.ctx, s.o.Logger))
}

// refetch fetches in a fetch that starts now: a fetch already under way
// may have read the backend before the change, so it is waited for and
// then followed by another.
func (s *Source) refetch(ctx context.Context) error {
	for {
		s.mu.Lock()
		running := s.flight != nil
		f := s.flightLocked()
		s.mu.Unlock()
		if err := f.wait(ctx); err != nil {
			return err
		}
		if !running || f == closedFlight {
			return f.err
		}
	}
}
