package rotate_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

// watchedBackend is a scripted backend that is also a rotate.Watcher whose
// hints the test sends.
type watchedBackend struct {
	*backend
	watching chan struct{} // closed when Watch is called
	calls    atomic.Int32

	mu     sync.Mutex
	out    chan struct{}
	closed bool
	nilCh  bool // Watch returns nil
	panics bool // Watch panics
}

func newWatchedBackend(value string) *watchedBackend {
	return &watchedBackend{backend: newBackend(value), watching: make(chan struct{})}
}

func (w *watchedBackend) Watch(ctx context.Context) <-chan struct{} {
	w.calls.Add(1)
	defer close(w.watching)
	if w.panics {
		panic("watch exploded")
	}
	if w.nilCh {
		return nil
	}
	w.mu.Lock()
	w.out = make(chan struct{}, 1)
	w.mu.Unlock()
	go func() {
		<-ctx.Done()
		w.mu.Lock()
		defer w.mu.Unlock()
		w.closed = true
		close(w.out)
	}()
	return w.out
}

// hint sends a hint as a watcher must: without blocking.
func (w *watchedBackend) hint() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	select {
	case w.out <- struct{}{}:
	default:
	}
}

var _ rotate.Watcher = (*watchedBackend)(nil)

// newWatchFixture is newFixture over a watched backend.
func newWatchFixture(t *testing.T, b *watchedBackend, opts ...rotate.Option) *fixture {
	t.Helper()
	f := &fixture{t: t, b: b.backend, clock: rotatetest.NewClock(t0), logs: &syncWriter{}}
	f.src = f.over(b, opts...)
	return f
}

func rotations(src *rotate.Source) <-chan keyprovider.Key {
	ch := make(chan keyprovider.Key, 16)
	src.OnRotate(func(_, k keyprovider.Key) { ch <- k })
	return ch
}

func waitRotation(t *testing.T, ch <-chan keyprovider.Key, want string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case k := <-ch:
			if k.Reveal() == want {
				return
			}
		case <-deadline:
			t.Fatalf("no rotation to %v within %s", keyprovider.NewKey(want, ""), waitFor)
		}
	}
}

func TestWatchHintsAreDebouncedIntoOneFetch(t *testing.T) {
	const debounce = time.Second
	b := newWatchedBackend(keyA)
	f := newWatchFixture(t, b, rotate.WithWatchDebounce(debounce))
	rot := rotations(f.src)
	waitRotation(t, rot, keyA)
	recv(t, b.watching, "Watch call")
	f.parked(1) // the refresher
	before := b.fetches.Load()

	b.set(keyB)
	b.hint()
	f.parked(2) // the debounce timer
	b.hint()
	b.hint() // one burst: both wait in the buffer of one, or are dropped
	f.clock.Advance(debounce - time.Nanosecond)
	wantEq(t, b.fetches.Load(), before, "fetches before the debounce has passed")
	f.clock.Advance(time.Nanosecond)
	waitRotation(t, rot, keyB)
	wantEq(t, b.fetches.Load(), before+1, "fetches after a burst of three hints")
	wantEq(t, f.src.Health().WatchRefreshes, uint64(1), "Health.WatchRefreshes")
	f.wantKey(keyB, "the hinted change is served")
}

func TestWatchFetchStartsAfterTheHint(t *testing.T) {
	b := newWatchedBackend(keyA)
	f := newWatchFixture(t, b)
	rot := rotations(f.src)
	waitRotation(t, rot, keyA)
	recv(t, b.watching, "Watch call")
	f.parked(1)

	// A fetch that read the backend before the change is under way.
	gate := b.hold()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = f.src.Refresh(context.Background())
	}()
	f.waitFetches(2) // the start-up fetch, then this one
	b.set(keyB)
	b.hint()
	f.parked(2)
	f.clock.Advance(rotate.DefaultWatchDebounce)
	close(gate)
	recv(t, done, "the held Refresh")
	waitRotation(t, rot, keyB)
}

func TestWatchNilAndNoWatch(t *testing.T) {
	t.Run("nil channel", func(t *testing.T) {
		b := newWatchedBackend(keyA)
		b.nilCh = true
		f := newWatchFixture(t, b)
		src := f.src
		recv(t, b.watching, "Watch call")
		if _, err := src.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		must(t, src.Close(), "Close")
	})
	t.Run("NoWatch", func(t *testing.T) {
		b := newWatchedBackend(keyA)
		f := newWatchFixture(t, b, rotate.WithNoWatch())
		src := f.src
		if _, err := src.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		must(t, src.Close(), "Close")
		wantEq(t, b.calls.Load(), int32(0), "Watch calls with NoWatch")
	})
	t.Run("panic", func(t *testing.T) {
		b := newWatchedBackend(keyA)
		b.panics = true
		f := newWatchFixture(t, b)
		src := f.src
		recv(t, b.watching, "Watch call")
		if _, err := src.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		must(t, src.Close(), "Close")
		if logs := f.logs.String(); !strings.Contains(logs, "Watch panicked") || strings.Contains(logs, "exploded") {
			t.Errorf("want the panic logged by its type only:\n%s", logs)
		}
	})
}

func TestWatchDebounceValidated(t *testing.T) {
	_, err := rotate.New(newBackend(keyA), rotate.WithWatchDebounce(-time.Second))
	wantIs(t, err, keyprovider.ErrInvalidKey, "a negative WatchDebounce")
}

// A key mounted from a Kubernetes Secret (TESSERA_API_KEY_FILE=
// /var/run/secrets/tessera/key, not a subPath mount) is picked up within a
// fraction of a second of the kubelet's swap: the Source subscribes to the
// file's Watch by itself, and keeps its schedule as the safety net.
func ExampleWatcher() {
	ctx := context.Background()
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera)
	if err != nil {
		return
	}
	src, err := rotate.New(p, rotate.WithService(keyprovider.Tessera))
	if err != nil {
		return
	}
	defer src.Close()
	src.OnRotate(func(old, new keyprovider.Key) {
		slog.Info("key rotated", "old", old, "new", new) // fingerprints only
	})
}
