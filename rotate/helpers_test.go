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

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every wait of a test on a goroutine, far below the
// package's timeout, so that a hang fails the one test, by name.
const waitFor = 10 * time.Second

const (
	keyA = "sk-tessera-rotateAAAA1111"
	keyB = "sk-tessera-rotateBBBB2222"
	keyC = "sk-tessera-rotateCCCC3333"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

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
	f := &fixture{t: t, b: b, clock: rotatetest.NewClock(t0), logs: &syncWriter{}}
	f.src = f.over(b, opts...)
	return f
}

// over returns another Source on the fixture's clock and logs, over p.
func (f *fixture) over(p keyprovider.Provider, opts ...rotate.Option) *rotate.Source {
	f.t.Helper()
	base := []rotate.Option{
		rotate.WithClock(f.clock),
		rotate.WithLogger(slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		rotate.WithRand(func() float64 { return 0.5 }),
	}
	src, err := rotate.New(p, append(base, opts...)...)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	f.t.Cleanup(func() { _ = src.Close() })
	return src
}

// parked waits until the refresher is parked on its timer (n timers).
func (f *fixture) parked(n int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if !f.clock.BlockUntil(ctx, n) {
		f.t.Fatal("refresher never parked on its timer")
	}
}

// step advances the clock by d and waits for the refresher to park again.
func (f *fixture) step(d time.Duration) {
	f.t.Helper()
	f.clock.Advance(d)
	f.parked(1)
}

// due is how long until the next pending timer fires.
func (f *fixture) due() time.Duration {
	f.t.Helper()
	next, ok := f.clock.NextDeadline()
	if !ok {
		f.t.Fatal("no timer pending")
	}
	return next.Sub(f.clock.Now())
}

// token calls Token, bounded by waitFor.
func (f *fixture) token() (keyprovider.Key, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	return f.src.Token(ctx)
}

func (f *fixture) mustToken() keyprovider.Key {
	f.t.Helper()
	k, err := f.token()
	if err != nil {
		f.t.Fatalf("Token: %v", err)
	}
	return k
}

// wantKey fails unless Token serves want.
func (f *fixture) wantKey(want string, why string) {
	f.t.Helper()
	if got := f.mustToken(); got.Reveal() != want {
		f.t.Errorf("Token = %v, want %v: %s", got, keyprovider.NewKey(want, ""), why)
	}
}

// waitFetches waits until the backend has been called n times in all.
func (f *fixture) waitFetches(n int64) {
	f.t.Helper()
	timeout := time.After(waitFor)
	for f.b.fetches.Load() < n {
		select {
		case <-f.b.called:
		case <-timeout:
			f.t.Fatalf("fetches = %d, want %d", f.b.fetches.Load(), n)
		}
	}
}

// recv receives from ch, failing the test after waitFor.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("no %s within %s", what, waitFor)
		var zero T
		return zero
	}
}

// waitGroup waits for wg, failing the test after waitFor.
func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	recv(t, done, "end of the goroutines")
}

func wantIs(t *testing.T, err, target error, why string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("err = %v, want one wrapping %v: %s", err, target, why)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantEq[T comparable](t *testing.T, got, want T, what string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("a secret (%d bytes) is shown in %d bytes of output", len(s), len(text))
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
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
