package rotate_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
	"github.com/keyprovider/keyprovider/rotate"
)

// pickupBound is what each change of a key file must be picked up within,
// by a Source on the real clock with the default debounce (issue 17). The
// figure each case measures is logged (go test -v -run Pickup).
const pickupBound = time.Second

// pickupWait bounds the wait itself, generously, so that a missed change
// fails by name rather than by the package timeout.
const pickupWait = 5 * time.Second

// watchedProvider is what the pickup cases open: a file-backed Provider
// that is a Watcher.
type watchedProvider interface {
	keyprovider.Provider
	rotate.Watcher
}

// counting forwards to a watched Provider and tells the test about every
// Fetch, so that it can wait for the fetch that follows the watch's arming.
type counting struct {
	watchedProvider
	fetched chan struct{}
}

func (c counting) Fetch(ctx context.Context) (keyprovider.Key, error) {
	defer func() {
		select {
		case c.fetched <- struct{}{}:
		default:
		}
	}()
	return c.watchedProvider.Fetch(ctx)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// kubeletMount lays out a secret the way the kubelet's atomic writer does:
// dir/key -> ..data/key, ..data -> ..<timestamp>.
func kubeletMount(t *testing.T, dir, stampName, value string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, stampName, "key"), value)
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(stampName, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "key")); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", "key"), filepath.Join(dir, "key")); err != nil {
			t.Fatal(err)
		}
	}
}

func fileEnv(path string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if name == "TESSERA_API_KEY_FILE" {
			return path, true
		}
		return "", false
	}
}

func TestPickupOfKeyFileChanges(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir string) (path string)
		open   func(t *testing.T, path string) watchedProvider
		change func(t *testing.T, dir, path string)
	}{{
		name: "kubelet ..data swap",
		setup: func(t *testing.T, dir string) string {
			kubeletMount(t, dir, "..2026_12_01_a", keyA)
			return filepath.Join(dir, "key")
		},
		open: openFromEnv,
		change: func(t *testing.T, dir, path string) {
			kubeletMount(t, dir, "..2026_12_01_b", keyB)
			if err := os.RemoveAll(filepath.Join(dir, "..2026_12_01_a")); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name:  "rename over",
		setup: plainFile,
		open:  openEnv,
		change: func(t *testing.T, dir, path string) {
			writeFile(t, path+".tmp", keyB)
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name:   "truncate and write in place",
		setup:  plainFile,
		open:   openFileRef,
		change: func(t *testing.T, dir, path string) { writeFile(t, path, keyB) },
	}, {
		name:  "removed and re-created",
		setup: plainFile,
		open:  openEnv,
		change: func(t *testing.T, dir, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, keyB)
		},
	}, {
		name: "directory replaced",
		setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "app", "key")
			writeFile(t, p, keyA)
			return p
		},
		open: openFromEnv,
		change: func(t *testing.T, dir, path string) {
			if err := os.RemoveAll(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, keyB)
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			p := counting{watchedProvider: tc.open(t, path), fetched: make(chan struct{}, 16)}
			src, err := rotate.New(p, rotate.WithService(keyprovider.Tessera),
				rotate.WithRefreshInterval(time.Hour), // the schedule must not be what picks it up
				rotate.WithLogger(slog.New(slog.DiscardHandler)))
			must(t, err, "New")
			defer func() { must(t, src.Close(), "Close") }()
			rot := rotations(src)
			waitRotation(t, rot, keyA)
			// The watch hints once it is armed, and the Source fetches
			// then: from here on every change is seen.
			recv(t, p.fetched, "the start-up fetch")
			recv(t, p.fetched, "the fetch after the watch was armed")

			start := time.Now()
			tc.change(t, dir, path)
			select {
			case <-waitRotationCh(rot, keyB):
			case <-time.After(pickupWait):
				t.Fatalf("the change was not picked up within %s (Health: %v)", pickupWait, src.Health())
			}
			took := time.Since(start)
			t.Logf("picked up in %s", took.Round(time.Millisecond))
			if took > pickupBound {
				t.Errorf("picked up in %s, want within %s", took, pickupBound)
			}

			// The watch is armed again after the change: a write in place
			// through the path (into the new timestamped directory, the new
			// file, the new directory) is seen too.
			start = time.Now()
			writeFile(t, path, keyC)
			select {
			case <-waitRotationCh(rot, keyC):
			case <-time.After(pickupWait):
				t.Fatalf("a second change was not picked up within %s: the watch was not re-armed", pickupWait)
			}
			t.Logf("then a write in place in %s", time.Since(start).Round(time.Millisecond))
		})
	}
}

// waitRotationCh closes the returned channel once ch delivers want.
func waitRotationCh(ch <-chan keyprovider.Key, want string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := range ch {
			if k.Reveal() == want {
				return
			}
		}
	}()
	return done
}

func plainFile(t *testing.T, dir string) string {
	p := filepath.Join(dir, "key")
	writeFile(t, p, keyA)
	return p
}

func openEnv(t *testing.T, path string) watchedProvider {
	return env.ForService(keyprovider.Tessera, env.WithLookupEnv(fileEnv(path)))
}

func openFromEnv(t *testing.T, path string) watchedProvider {
	p, err := keyprovider.FromEnv(context.Background(), keyprovider.Tessera, keyprovider.WithLookupEnv(fileEnv(path)))
	must(t, err, "FromEnv")
	return p
}

func openFileRef(t *testing.T, path string) watchedProvider {
	p, err := keyprovider.Open(context.Background(), "file://"+path, keyprovider.Tessera)
	must(t, err, "Open")
	w, ok := p.(watchedProvider)
	if !ok {
		t.Fatalf("keyprovider.Open(file://...) returned a %T, not a rotate.Watcher", p)
	}
	return w
}
