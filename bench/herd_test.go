package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
)

// slowBackend is a Provider whose every fetch waits for gate (a test) or
// for delay (a benchmark), then answers key or err.
type slowBackend struct {
	calls atomic.Int64
	gate  chan struct{}
	delay time.Duration
	key   string
	err   error
}

func (s *slowBackend) Fetch(ctx context.Context) (keyprovider.Key, error) {
	s.calls.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return keyprovider.Key{}, ctx.Err()
		}
	}
	if s.delay > 0 {
		t := time.NewTimer(s.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return keyprovider.Key{}, ctx.Err()
		}
	}
	if s.err != nil {
		return keyprovider.Key{}, s.err
	}
	return keyprovider.NewKey(s.key, ""), nil
}

var errDown = &keyprovider.Error{Provider: "bench", Kind: keyprovider.ErrUnavailable, Err: errors.New("backend down")}

// benchWait bounds every wait of these tests and benchmarks on their
// goroutines, far below the package's timeout: a herd that hangs fails at
// once, by name.
const benchWait = time.Minute

// herd runs n goroutines calling Token on src at once and returns how many
// got an error, and when the last caller had its answer.
func herd(tb testing.TB, n int, token func() error) (failed int64, last time.Duration) {
	tb.Helper()
	var wg sync.WaitGroup
	var nfail atomic.Int64
	var lastNanos atomic.Int64
	start := time.Now()
	ready := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			if token() != nil {
				nfail.Add(1)
			}
			d := int64(time.Since(start))
			for {
				cur := lastNanos.Load()
				if d <= cur || lastNanos.CompareAndSwap(cur, d) {
					break
				}
			}
		}()
	}
	close(ready)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(benchWait):
		tb.Fatalf("the herd of %d has not had its answers after %s", n, benchWait)
	}
	return nfail.Load(), time.Duration(lastNanos.Load())
}

func newSource(t testing.TB, p keyprovider.Provider) *rotate.Source {
	t.Helper()
	src, err := rotate.New(p, rotate.WithRefreshInterval(time.Hour), rotate.WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

const herdSize = 10000

// arrivals returns a token func that closes gate once n callers have
// arrived, so the backend answers while the herd is at the door.
func arrivals(n int, gate chan struct{}, token func() error) func() error {
	var arrived atomic.Int64
	return func() error {
		if arrived.Add(1) == int64(n) {
			close(gate)
		}
		return token()
	}
}

func TestHerdColdSourceFetchesOnce(t *testing.T) {
	b := &slowBackend{gate: make(chan struct{}), key: benchKey}
	src := newSource(t, b)
	failed, _ := herd(t, herdSize, arrivals(herdSize, b.gate, func() error { _, err := src.Token(context.Background()); return err }))
	if failed != 0 {
		t.Errorf("%d callers failed", failed)
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("backend fetches = %d, want exactly 1 for %d cold callers", got, herdSize)
	}
}

// rotatingBackend answers keyA on its first fetch and keyB afterwards.
type rotatingBackend struct{ calls atomic.Int64 }

func (r *rotatingBackend) Fetch(context.Context) (keyprovider.Key, error) {
	if r.calls.Add(1) == 1 {
		return keyprovider.NewKey(benchKey, "1"), nil
	}
	return keyprovider.NewKey(benchKey+"rotated", "2"), nil
}

func TestHerdInvalidateFetchesOnce(t *testing.T) {
	b := &rotatingBackend{}
	src := newSource(t, b)
	cur, err := src.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rotated := make(chan keyprovider.Key, 4) // never closed: read until version 2
	src.OnRotate(func(_, k keyprovider.Key) { rotated <- k })
	herd(t, herdSize, func() error { src.Invalidate(cur); return nil })
	// A subscriber that comes after the first key is told it first.
	timeout := time.After(benchWait)
	for v := ""; v != "2"; {
		select {
		case k := <-rotated:
			v = k.Version()
		case <-timeout:
			t.Fatalf("no notice of the rotated key within %s", benchWait)
		}
	}
	herd(t, herdSize, func() error { src.Invalidate(cur); return nil }) // an older key now: no fetch
	if got := b.calls.Load(); got != 2 {
		t.Errorf("backend fetches = %d, want 2: the first, and exactly one for %d Invalidate", got, 2*herdSize)
	}
}

func TestFailureHerdCallsBackendOnce(t *testing.T) {
	b := &slowBackend{gate: make(chan struct{}), err: errDown}
	src := newSource(t, b)
	failed, _ := herd(t, herdSize, arrivals(herdSize, b.gate, func() error { _, err := src.Token(context.Background()); return err }))
	if failed != herdSize {
		t.Errorf("%d of %d callers failed, want all", failed, herdSize)
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("backend calls = %d, want at most 1 for %d callers of a failing backend", got, herdSize)
	}
}

// BenchmarkHerd reports, per herd, the backend calls and the time until
// the last caller has its answer, for a backend that takes 5 ms.
func BenchmarkHerd(b *testing.B) {
	rotateHerd := func(backend func() *slowBackend) func(b *testing.B) {
		return func(b *testing.B) {
			var calls int64
			var last time.Duration
			for b.Loop() {
				be := backend()
				src, _ := rotate.New(be, rotate.WithRefreshInterval(time.Hour), rotate.WithLogger(discard))
				_, last = herd(b, herdSize, func() error { _, err := src.Token(context.Background()); return err })
				_ = src.Close()
				calls += be.calls.Load()
			}
			b.ReportMetric(float64(calls)/float64(b.N), "backend-calls/herd")
			b.ReportMetric(float64(last.Milliseconds()), "ms-last-answer")
		}
	}
	b.Run("cold-keyprovider-10000", rotateHerd(func() *slowBackend {
		return &slowBackend{delay: 5 * time.Millisecond, key: benchKey}
	}))
	b.Run("failing-keyprovider-10000", rotateHerd(func() *slowBackend {
		return &slowBackend{delay: 5 * time.Millisecond, err: errDown}
	}))
	b.Run("failing-oauth2-ReuseTokenSource-1000", func(b *testing.B) {
		var calls int64
		var last time.Duration
		for b.Loop() {
			be := &slowBackend{delay: 5 * time.Millisecond, err: errDown}
			ts := oauth2.ReuseTokenSource(nil, oauth2Func(func() (*oauth2.Token, error) {
				_, err := be.Fetch(context.Background())
				return nil, err
			}))
			_, last = herd(b, 1000, func() error { _, err := ts.Token(); return err })
			calls += be.calls.Load()
		}
		b.ReportMetric(float64(calls)/float64(b.N), "backend-calls/herd")
		b.ReportMetric(float64(last.Milliseconds()), "ms-last-answer")
	})
}

type oauth2Func func() (*oauth2.Token, error)

func (f oauth2Func) Token() (*oauth2.Token, error) { return f() }
