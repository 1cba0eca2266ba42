// Package keyprovidertest is the conformance suite every backend of
// keyprovider runs, so that env, vault, awssm and onepassword behave alike
// where their users cannot see the difference.
//
// A backend's test implements [Harness] over a real server or a
// protocol-level emulator and calls [RunConformance]:
//
//	func TestConformance(t *testing.T) {
//		keyprovidertest.RunConformance(t, func(ctx context.Context, t *testing.T) (keyprovidertest.Harness, error) {
//			return newHarness(ctx, t)
//		})
//	}
//
// Each subtest gets a fresh harness, so a harness may use one secret.
//
// # What it checks
//
// A provider returns the key that was set, the same key (and version) on a
// second fetch, and the new key right after a rotation (with a new version,
// if it reports versions). A secret never set, or deleted, is
// [keyprovider.ErrNotFound], reported as a [*keyprovider.Error] naming the
// provider. Surrounding white space is trimmed; a blank value, one with a
// CR/LF inside and one longer than [keyprovider.MaxKeyLen] are
// [keyprovider.ErrInvalidKey]. A cancelled context or an expired deadline
// stays matchable with [errors.Is]. No error comes with a key, and no error
// shows the key. Concurrent fetches are safe (run the suite with -race). A
// provider that is an [io.Closer] closes idempotently: Close returns nil
// twice, and a Fetch after Close returns (an error, typically) rather than
// panic or hang. Every wait of the suite is bounded by [Wait].
package keyprovidertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
)

// Harness drives one backend for the conformance suite. Each Harness owns one
// secret, which does not exist until the first Set.
type Harness interface {
	// Provider returns a Provider that reads the harness's secret. It may be
	// called before the secret exists; the suite then expects
	// ErrNotFound from Fetch.
	Provider(ctx context.Context) (keyprovider.Provider, error)
	// Set stores value, byte for byte, as the secret's current key,
	// creating the secret if needed or rotating it (a new version, where the
	// backend has versions) if it exists.
	Set(ctx context.Context, value string) error
	// Delete removes the secret, so that the next fetch reports ErrNotFound.
	Delete(ctx context.Context) error
	// Close releases what the harness holds.
	Close()
}

// HarnessMaker makes a fresh [Harness] for one subtest.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Keys used by the suite. They carry the Tessera prefix so that providers
// configured for [keyprovider.Tessera] accept them.
const (
	KeyA = "sk-tessera-conformanceAAAA1111"
	KeyB = "sk-tessera-conformanceBBBB2222"
)

// RunConformance runs the suite against the backend that newHarness drives.
func RunConformance(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"ReturnsKeySet", testReturnsKeySet},
		{"FetchIsStable", testFetchIsStable},
		{"SeesRotation", testSeesRotation},
		{"MissingIsNotFound", testMissingIsNotFound},
		{"DeletedIsNotFound", testDeletedIsNotFound},
		{"ErrorsAreTyped", testErrorsAreTyped},
		{"TrimsWhitespace", testTrimsWhitespace},
		{"RejectsBlankValue", testRejectsBlankValue},
		{"RejectsHeaderBreakingValue", testRejectsHeaderBreaking},
		{"RejectsOverlongValue", testRejectsOverlong},
		{"HonoursCancelledContext", testCancelledContext},
		{"HonoursExpiredDeadline", testExpiredDeadline},
		{"ConcurrentFetches", testConcurrent},
		{"ClosesIdempotently", testClosesIdempotently},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := newHarness(context.Background(), t)
			if err != nil {
				t.Fatalf("making harness: %v", err)
			}
			t.Cleanup(h.Close)
			tc.run(t, h)
		})
	}
}

func provider(t *testing.T, h Harness) keyprovider.Provider {
	t.Helper()
	p, err := h.Provider(context.Background())
	if err != nil {
		t.Fatalf("Provider: %v", err)
	}
	return p
}

func set(t *testing.T, h Harness, value string) {
	t.Helper()
	if err := h.Set(context.Background(), value); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

// Wait bounds each wait of the suite (a fetch, a Close, its goroutines),
// far below the default test timeout, so that a provider that hangs fails
// the subtest that caught it, by name.
const Wait = 30 * time.Second

// within runs fn, failing the test if it has not returned after Wait. A
// panic in fn is reported by the type of its value only (it may hold a
// key).
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		fn()
	}()
	select {
	case v := <-done:
		if v != nil {
			t.Fatalf("%s panicked (a %T)", what, v)
		}
	case <-time.After(Wait):
		t.Fatalf("%s has not returned after %s", what, Wait)
	}
}

func fetchValue(t *testing.T, p keyprovider.Provider) keyprovider.Key {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	var k keyprovider.Key
	var err error
	within(t, "Fetch", func() { k, err = p.Fetch(ctx) })
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return k
}

// fetchErr fetches expecting an error: it fails the test if Fetch returns
// a key along with its error, or an error showing any of the secrets.
func fetchErr(t *testing.T, ctx context.Context, p keyprovider.Provider, secrets ...string) error {
	t.Helper()
	var k keyprovider.Key
	var err error
	within(t, "Fetch", func() { k, err = p.Fetch(ctx) })
	if err != nil && !k.IsZero() {
		t.Errorf("Fetch returned a key %v along with its error %v", k, err)
	}
	checkNoLeak(t, err, secrets...)
	return err
}

// checkNoLeak fails the test if err's message contains any of the secrets.
func checkNoLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				if len(msg) > 300 {
					msg = msg[:300] + "..."
				}
				t.Errorf("error %q contains the secret (a test key)", msg)
			}
		}
	}
}

func testReturnsKeySet(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	k := fetchValue(t, p)
	if got := k.Reveal(); got != KeyA {
		t.Errorf("Fetch = %s, want the key set (%s)", k, keyprovider.NewKey(KeyA, ""))
	}
}

func testFetchIsStable(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	first, second := fetchValue(t, p), fetchValue(t, p)
	if !first.Equal(second) || first.Version() != second.Version() {
		t.Errorf("two fetches with no change between them = %+v and %+v, want the same key and version", first, second)
	}
}

func testSeesRotation(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	first := fetchValue(t, p)
	set(t, h, KeyB)
	second := fetchValue(t, p)
	if second.Reveal() != KeyB {
		t.Fatalf("after rotation Fetch = %s, want the new key %s", second, keyprovider.NewKey(KeyB, ""))
	}
	if first.Version() != "" && first.Version() == second.Version() {
		t.Errorf("versions before and after rotation are both %q; a versioned backend must report the new version", first.Version())
	}
}

func testMissingIsNotFound(t *testing.T, h Harness) {
	p := provider(t, h)
	k, err := p.Fetch(context.Background())
	if !errors.Is(err, keyprovider.ErrNotFound) {
		t.Fatalf("Fetch of a secret never set = (%v, %v), want ErrNotFound", k, err)
	}
	if !k.IsZero() {
		t.Errorf("Fetch returned a key %v with its error", k)
	}
}

func testDeletedIsNotFound(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	fetchValue(t, p)
	if err := h.Delete(context.Background()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	err := fetchErr(t, context.Background(), p, KeyA)
	if !errors.Is(err, keyprovider.ErrNotFound) {
		t.Fatalf("Fetch after Delete: err = %v, want ErrNotFound", err)
	}
}

// testErrorsAreTyped checks that a backend's error is a *keyprovider.Error
// naming the backend, as every package of the module returns.
func testErrorsAreTyped(t *testing.T, h Harness) {
	err := fetchErr(t, context.Background(), provider(t, h))
	var ke *keyprovider.Error
	if !errors.As(err, &ke) {
		t.Fatalf("Fetch of a secret never set: err = %#v, want a *keyprovider.Error", err)
	}
	if ke.Provider == "" {
		t.Errorf("the error %q does not name its provider", err)
	}
	if ke.Kind != keyprovider.ErrNotFound {
		t.Errorf("the error's Kind = %v, want ErrNotFound", ke.Kind)
	}
}

func testTrimsWhitespace(t *testing.T, h Harness) {
	set(t, h, "  \t"+KeyA+"\r\n")
	k := fetchValue(t, provider(t, h))
	if k.Reveal() != KeyA {
		t.Errorf("Fetch of a value with surrounding white space = %q (fingerprint), want it trimmed to %s", k, keyprovider.NewKey(KeyA, ""))
	}
}

func testRejectsBlankValue(t *testing.T, h Harness) {
	set(t, h, " \n")
	err := fetchErr(t, context.Background(), provider(t, h))
	if !errors.Is(err, keyprovider.ErrInvalidKey) {
		t.Fatalf("Fetch of a blank value: err = %v, want ErrInvalidKey", err)
	}
}

func testRejectsHeaderBreaking(t *testing.T, h Harness) {
	const secretPart = "conformanceSECRETpart"
	value := "sk-tessera-" + secretPart + "\r\nX-Injected: 1"
	set(t, h, value)
	k, err := provider(t, h).Fetch(context.Background())
	if !errors.Is(err, keyprovider.ErrInvalidKey) {
		t.Fatalf("Fetch of a value with CRLF inside = (%v, %v), want ErrInvalidKey", k, err)
	}
	checkNoLeak(t, err, secretPart)
}

// testRejectsOverlong stores a value one byte longer than
// keyprovider.MaxKeyLen, such as a whole document stored by mistake.
func testRejectsOverlong(t *testing.T, h Harness) {
	secretPart := "conformanceLONG" + strings.Repeat("x", keyprovider.MaxKeyLen)
	value := "sk-tessera-" + secretPart
	value = value[:keyprovider.MaxKeyLen+1]
	set(t, h, value)
	err := fetchErr(t, context.Background(), provider(t, h), value[len("sk-tessera-"):][:40])
	if !errors.Is(err, keyprovider.ErrInvalidKey) {
		t.Fatalf("Fetch of a %d-byte value: err = %v, want ErrInvalidKey", len(value), err)
	}
}

func testCancelledContext(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := fetchErr(t, ctx, p, KeyA)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a cancelled context: err = %v, want context.Canceled", err)
	}
}

func testExpiredDeadline(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	err := fetchErr(t, ctx, p, KeyA)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch with an expired deadline: err = %v, want context.DeadlineExceeded", err)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	const goroutines, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				k, err := p.Fetch(context.Background())
				switch {
				case err != nil:
					errs <- err
				case k.Reveal() != KeyA:
					errs <- fmt.Errorf("got %v, want %v", k, keyprovider.NewKey(KeyA, ""))
				}
			}
		}()
	}
	within(t, "the concurrent fetches", wg.Wait)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testClosesIdempotently(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	c, ok := p.(io.Closer)
	if !ok {
		t.Skipf("%T is not an io.Closer", p)
	}
	fetchValue(t, p)
	for _, call := range []string{"Close", "second Close"} {
		var err error
		within(t, call, func() { err = c.Close() })
		checkNoLeak(t, err, KeyA)
		if err != nil {
			t.Errorf("%s = %v, want nil", call, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	fetchErr(t, ctx, p, KeyA) // bounded, and a panic fails the subtest
}
