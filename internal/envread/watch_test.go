package envread

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/goleak"
)

// hintWait bounds every wait for a hint, far below the package timeout.
const hintWait = 5 * time.Second

func waitHint(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the channel closed instead of hinting", what)
		}
	case <-time.After(hintWait):
		t.Fatalf("%s: no hint within %s", what, hintWait)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	deadline := time.After(hintWait)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the channel was not closed within %s of the cancellation", hintWait)
		}
	}
}

// syncBuffer is a log sink the watcher's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatchSeesWriteInPlaceAndStopsOnCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := Watch(ctx, path)
	waitHint(t, ch, "armed") // the hint that follows arming
	if err := os.WriteFile(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitHint(t, ch, "write in place")
	cancel()
	waitClosed(t, ch)
}

func TestWatchRearmsWhenTheDirectoryAppears(t *testing.T) {
	defer goleak.VerifyNone(t)
	root := t.TempDir()
	dir := filepath.Join(root, "secrets")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The key's directory is missing below dir: its nearest ancestor, dir,
	// is watched until it appears, then the directory itself.
	path := filepath.Join(dir, "app", "key")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := Watch(ctx, path)
	waitHint(t, ch, "armed")
	if err := os.Mkdir(filepath.Join(dir, "app"), 0o700); err != nil {
		t.Fatal(err)
	}
	waitHint(t, ch, "the key's directory created")
	if err := os.WriteFile(path, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitHint(t, ch, "the key created in the new directory")
	cancel()
	waitClosed(t, ch)
}

func TestWatchDegradesToPollingWithOneWarning(t *testing.T) {
	defer goleak.VerifyNone(t)
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(ContextWithLogger(context.Background(),
		slog.New(slog.NewTextHandler(&logs, nil))))
	failing := watchConfig{poll: 5 * time.Millisecond, newWatcher: func() (*fsnotify.Watcher, error) {
		return nil, errors.New("inotify_init1: too many open files")
	}}
	ch := watchWith(ctx, path, failing)
	waitHint(t, ch, "degraded") // a change may have been missed: look once
	for _, content := range []string{"two!", "three"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		waitHint(t, ch, "polled change "+content)
	}
	cancel()
	waitClosed(t, ch)
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("logged %d warnings, want exactly 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "polling") {
		t.Errorf("the warning does not say it polls: %s", logs.String())
	}
}

func TestStampSeesSwapAndRemoval(t *testing.T) {
	dir := t.TempDir()
	a, b, link := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "key")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("same"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	before := stampOf(link)
	if !before.same(stampOf(link)) {
		t.Fatal("an unchanged file differs from itself")
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if gone := stampOf(link); gone.same(before) || !gone.same(stampOf(link)) {
		t.Error("a removed file is not told apart from the file, or from itself")
	}
	if err := os.Symlink(b, link); err != nil {
		t.Fatal(err)
	}
	if stampOf(link).same(before) {
		t.Error("a link swapped to another file of the same size and content looks the same")
	}
}

func TestRelevant(t *testing.T) {
	fw := &fileWatch{path: "/run/secrets/app/key", resolved: "/run/secrets/app/..2026_12_01/key"}
	for name, want := range map[string]bool{
		"/run/secrets/app/key":                 true,
		"/run/secrets/app/..data":              true, // the kubelet's swap
		"/run/secrets/app/..data_tmp":          true,
		"/run/secrets/app/..2026_12_01/key":    true, // a write in place through the link
		"/run/secrets/app":                     true, // the directory replaced
		"/run/secrets":                         true,
		"/run/secrets/other/key":               false,
		"/run/secrets/app-two":                 false,
		"/run/secrets/app/..2026_12_01/other":  false,
		"/run/secrets/app/..2026_12_01/key.sw": false,
	} {
		if got := fw.relevant(name); got != want {
			t.Errorf("relevant(%q) = %v, want %v", name, got, want)
		}
	}
}
