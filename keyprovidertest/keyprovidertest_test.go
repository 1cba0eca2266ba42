package keyprovidertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
)

// memHarness keeps its secret in memory; its provider does what the suite
// asks of every backend, except for the one fault it may be given.
type memHarness struct {
	fault string

	mu      sync.Mutex
	value   string
	set     bool
	version int
}

func (h *memHarness) Provider(context.Context) (keyprovider.Provider, error) {
	return &memProvider{h: h}, nil
}

// memProvider is the harness's Provider; it is an io.Closer, as backends
// that hold a client are.
type memProvider struct {
	h      *memHarness
	closed atomic.Int32
}

func (p *memProvider) Fetch(ctx context.Context) (keyprovider.Key, error) { return p.h.fetch(ctx) }

func (p *memProvider) Close() error {
	if p.closed.Add(1) > 1 && p.h.fault == "closes twice" {
		return errors.New("mem: already closed")
	}
	return nil
}

func (h *memHarness) Set(_ context.Context, v string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.value, h.set = v, true
	h.version++
	return nil
}

func (h *memHarness) Delete(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.set = false
	return nil
}

func (h *memHarness) Close() {}

func (h *memHarness) fetch(ctx context.Context) (keyprovider.Key, error) {
	if err := ctx.Err(); err != nil && h.fault != "ignores context" {
		return keyprovider.Key{}, &keyprovider.Error{Provider: "mem", Err: err}
	}
	h.mu.Lock()
	value, set, version := h.value, h.set, h.version
	h.mu.Unlock()
	if !set {
		if h.fault == "untyped errors" {
			return keyprovider.Key{}, fmt.Errorf("mem: %w", keyprovider.ErrNotFound)
		}
		return keyprovider.Key{}, &keyprovider.Error{Provider: "mem", Kind: keyprovider.ErrNotFound}
	}
	if h.fault == "does not trim" {
		return keyprovider.NewKey(value, fmt.Sprint(version)), nil
	}
	k, err := keyprovider.Tessera.ParseKey(value, fmt.Sprint(version))
	if err != nil {
		err = &keyprovider.Error{Provider: "mem", Kind: keyprovider.ErrInvalidKey, Err: err}
		switch h.fault {
		case "leaks the value":
			err = fmt.Errorf("%w (value %q)", err, value)
		case "returns a key with its error":
			return keyprovider.NewKey(value, ""), err
		}
		return keyprovider.Key{}, err
	}
	if h.fault == "stale version" {
		k = keyprovider.NewKey(k.Reveal(), "1")
	}
	return k, nil
}

// TestSuitePassesACorrectProvider runs the suite over the in-memory
// harness, as a backend's test does.
func TestSuitePassesACorrectProvider(t *testing.T) {
	keyprovidertest.RunConformance(t, func(context.Context, *testing.T) (keyprovidertest.Harness, error) {
		return &memHarness{}, nil
	})
}

// TestSuiteCatchesFaults runs the suite over providers with one fault each,
// in a child process (a failing subtest would fail this test), and checks
// that the subtest meant to catch the fault fails.
func TestSuiteCatchesFaults(t *testing.T) {
	if fault := os.Getenv("KEYPROVIDERTEST_FAULT"); fault != "" {
		keyprovidertest.RunConformance(t, func(context.Context, *testing.T) (keyprovidertest.Harness, error) {
			return &memHarness{fault: fault}, nil
		})
		return
	}
	tests := []struct{ fault, caughtBy string }{
		{"leaks the value", "RejectsHeaderBreakingValue"},
		{"returns a key with its error", "RejectsBlankValue"},
		{"ignores context", "HonoursCancelledContext"},
		{"does not trim", "TrimsWhitespace"},
		{"untyped errors", "ErrorsAreTyped"},
		{"stale version", "SeesRotation"},
		{"closes twice", "ClosesIdempotently"},
	}
	for _, tc := range tests {
		t.Run(tc.fault, func(t *testing.T) {
			// The child has its own deadline, far below this package's.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSuiteCatchesFaults$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "KEYPROVIDERTEST_FAULT="+tc.fault)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a provider that %s:\n%s", tc.fault, out)
			}
			if want := "--- FAIL: TestSuiteCatchesFaults/" + tc.caughtBy + " "; !strings.Contains(string(out), want) {
				t.Errorf("a provider that %s did not fail %s:\n%s", tc.fault, tc.caughtBy, out)
			}
		})
	}
}
