package env_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
	"github.com/keyprovider/keyprovider/keyprovidertest"
)

// fakeEnv is an environment a test owns, safe for concurrent use: what
// [env.WithLookupEnv] is for.
type fakeEnv struct {
	mu   sync.Mutex
	vars map[string]string
}

func newFakeEnv(kv ...string) *fakeEnv {
	e := &fakeEnv{vars: make(map[string]string)}
	for i := 0; i+1 < len(kv); i += 2 {
		e.vars[kv[i]] = kv[i+1]
	}
	return e
}

func (e *fakeEnv) Lookup(name string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.vars[name]
	return v, ok
}

func (e *fakeEnv) Set(name, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vars[name] = value
}

func (e *fakeEnv) Unset(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.vars, name)
}

func (e *fakeEnv) option() env.Option { return env.WithLookupEnv(e.Lookup) }

// varHarness keeps the key in TESSERA_API_KEY itself.
type varHarness struct{ env *fakeEnv }

func (h *varHarness) Provider(context.Context) (keyprovider.Provider, error) {
	return env.ForService(keyprovider.Tessera, h.env.option()), nil
}
func (h *varHarness) Set(_ context.Context, v string) error {
	h.env.Set("TESSERA_API_KEY", v)
	return nil
}
func (h *varHarness) Delete(context.Context) error {
	h.env.Unset("TESSERA_API_KEY")
	return nil
}
func (h *varHarness) Close() {}

// fileHarness keeps the key in a file that TESSERA_API_KEY_FILE names,
// replaced atomically on every Set as a careful writer does.
type fileHarness struct {
	env  *fakeEnv
	path string
}

func (h *fileHarness) Provider(context.Context) (keyprovider.Provider, error) {
	return env.ForService(keyprovider.Tessera, h.env.option()), nil
}
func (h *fileHarness) Set(_ context.Context, v string) error { return writeAtomic(h.path, v) }
func (h *fileHarness) Delete(context.Context) error          { return os.Remove(h.path) }
func (h *fileHarness) Close()                                {}

// writeAtomic replaces the file at path with one holding v.
func writeAtomic(path, v string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(v); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// mountHarness lays the key out as the kubelet lays out a mounted Secret:
//
//	dir/tessera -> ..data/tessera
//	dir/..data  -> ..2024_01_01_00_00_00.000000001   (swapped atomically)
//	dir/..2024_01_01_00_00_00.000000001/tessera
//
// Set writes a new timestamped directory and swaps ..data to it, then
// removes the old one, as the kubelet's AtomicWriter does.
type mountHarness struct {
	env *fakeEnv
	dir string

	mu  sync.Mutex
	gen int
	cur string // the timestamped directory ..data points to, or ""
}

func newMountHarness(t *testing.T) *mountHarness {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join("..data", "tessera"), filepath.Join(dir, "tessera")); err != nil {
		t.Fatal(err)
	}
	return &mountHarness{env: newFakeEnv("TESSERA_API_KEY_FILE", filepath.Join(dir, "tessera")), dir: dir}
}

func (h *mountHarness) Provider(context.Context) (keyprovider.Provider, error) {
	return env.ForService(keyprovider.Tessera, h.env.option()), nil
}

func (h *mountHarness) Set(_ context.Context, v string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	ts := fmt.Sprintf("..2024_01_01_00_00_00.%09d", h.gen)
	if err := os.Mkdir(filepath.Join(h.dir, ts), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.dir, ts, "tessera"), []byte(v), 0o644); err != nil {
		return err
	}
	tmpLink := filepath.Join(h.dir, "..data_tmp")
	if err := os.Symlink(ts, tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(h.dir, "..data")); err != nil {
		return err
	}
	old := h.cur
	h.cur = ts
	if old != "" {
		return os.RemoveAll(filepath.Join(h.dir, old))
	}
	return nil
}

func (h *mountHarness) Delete(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.Remove(filepath.Join(h.dir, "..data")); err != nil {
		return err
	}
	err := os.RemoveAll(filepath.Join(h.dir, h.cur))
	h.cur = ""
	return err
}

func (h *mountHarness) Close() {}

func TestConformance(t *testing.T) {
	t.Run("variable", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(context.Context, *testing.T) (keyprovidertest.Harness, error) {
			return &varHarness{env: newFakeEnv()}, nil
		})
	})
	t.Run("file", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(_ context.Context, t *testing.T) (keyprovidertest.Harness, error) {
			path := filepath.Join(t.TempDir(), "tessera")
			return &fileHarness{env: newFakeEnv("TESSERA_API_KEY_FILE", path), path: path}, nil
		})
	})
	t.Run("kubernetes mount", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(_ context.Context, t *testing.T) (keyprovidertest.Harness, error) {
			return newMountHarness(t), nil
		})
	})
}

// TestRotationUnderLoad fetches from many goroutines while the key is
// rotated underneath, as the kubelet does to a mounted secret: every fetch
// must see the old key or the new one, whole, and never fail.
func TestRotationUnderLoad(t *testing.T) {
	for name, h := range map[string]keyprovidertest.Harness{
		"variable":         &varHarness{env: newFakeEnv()},
		"kubernetes mount": newMountHarness(t),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := h.Set(ctx, keyprovidertest.KeyA); err != nil {
				t.Fatal(err)
			}
			p, _ := h.Provider(ctx)
			const readers, rotations = 4, 50
			var wg sync.WaitGroup
			stop := make(chan struct{})
			errs := make(chan error, readers)
			for range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						k, err := p.Fetch(ctx)
						if err == nil && k.Reveal() != keyprovidertest.KeyA && k.Reveal() != keyprovidertest.KeyB {
							err = fmt.Errorf("fetched %v, neither key", k)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			for i := range rotations {
				v := keyprovidertest.KeyA
				if i%2 == 0 {
					v = keyprovidertest.KeyB
				}
				if err := h.Set(ctx, v); err != nil {
					t.Error(err)
					break
				}
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
