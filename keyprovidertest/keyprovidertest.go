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
package keyprovidertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

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
		{"SeesRotation", testSeesRotation},
		{"MissingIsNotFound", testMissingIsNotFound},
		{"DeletedIsNotFound", testDeletedIsNotFound},
		{"TrimsWhitespace", testTrimsWhitespace},
		{"RejectsBlankValue", testRejectsBlankValue},
		{"RejectsHeaderBreakingValue", testRejectsHeaderBreaking},
		{"HonoursCancelledContext", testCancelledContext},
		{"ConcurrentFetches", testConcurrent},
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

func fetchValue(t *testing.T, p keyprovider.Provider) keyprovider.Key {
	t.Helper()
	k, err := p.Fetch(context.Background())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return k
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
				t.Errorf("error %q contains the secret", msg)
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
	_, err := p.Fetch(context.Background())
	if !errors.Is(err, keyprovider.ErrNotFound) {
		t.Fatalf("Fetch after Delete: err = %v, want ErrNotFound", err)
	}
	checkNoLeak(t, err, KeyA)
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
	_, err := provider(t, h).Fetch(context.Background())
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

func testCancelledContext(t *testing.T, h Harness) {
	set(t, h, KeyA)
	p := provider(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k, err := p.Fetch(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a cancelled context = (%v, %v), want context.Canceled", k, err)
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
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
