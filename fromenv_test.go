package keyprovider_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/keyprovidertest"
)

// testEnv is an environment tests can change while providers read it.
type testEnv struct {
	mu   sync.Mutex
	vars map[string]string
}

func newTestEnv(kv ...string) *testEnv {
	e := &testEnv{vars: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.vars[kv[i]] = kv[i+1]
	}
	return e
}

func (e *testEnv) Lookup(name string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.vars[name]
	return v, ok
}

func (e *testEnv) Set(name, value string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vars[name] = value
}

func (e *testEnv) Unset(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.vars, name)
}

func (e *testEnv) opt() keyprovider.EnvOption { return keyprovider.WithLookupEnv(e.Lookup) }

// wantKey fails t unless k holds want; it never prints a key, only
// fingerprints.
func wantKey(t *testing.T, k keyprovider.Key, err error, want string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !k.Equal(keyprovider.NewKey(want, "")) {
		t.Fatalf("Fetch = %s, want %s", k, keyprovider.NewKey(want, ""))
	}
}

func TestFromEnvLiteral(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv("TESSERA_API_KEY", "  "+keyA+"\n")
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	if err != nil {
		t.Fatal(err)
	}
	if src := p.Source(); !reflect.DeepEqual(src, keyprovider.EnvSource{Var: "TESSERA_API_KEY"}) || src.Ref.Scheme != "" || src.String() != "TESSERA_API_KEY (literal key)" {
		t.Errorf("Source = %+v (%s)", src, src)
	}
	k, err := p.Fetch(ctx)
	wantKey(t, k, err, keyA)

	// A literal is re-read on every Fetch.
	env.Set("TESSERA_API_KEY", keyB)
	k, err = p.Fetch(ctx)
	wantKey(t, k, err, keyB)

	// Turned into a reference after FromEnv: a clear error, not a key.
	env.Set("TESSERA_API_KEY", "env://OTHER")
	if _, err = p.Fetch(ctx); !errors.Is(err, keyprovider.ErrInvalidKey) || !strings.Contains(err.Error(), "restart") {
		t.Errorf("Fetch of a variable turned reference = %v", err)
	}
	env.Unset("TESSERA_API_KEY")
	if _, err = p.Fetch(ctx); !errors.Is(err, keyprovider.ErrNotFound) {
		t.Errorf("Fetch of an unset variable = %v, want ErrNotFound", err)
	}
	if err := p.Close(); err != nil {
		t.Error(err)
	}
}

func TestFromEnvReference(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv("TESSERA_API_KEY", "env://SHARED_TESSERA_KEY", "SHARED_TESSERA_KEY", keyA)
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	if err != nil {
		t.Fatal(err)
	}
	want := keyprovider.EnvSource{Var: "TESSERA_API_KEY", Ref: keyprovider.Ref{Scheme: "env", Path: "SHARED_TESSERA_KEY"}}
	if !reflect.DeepEqual(p.Source(), want) {
		t.Errorf("Source = %+v, want %+v", p.Source(), want)
	}
	if got := p.Source().String(); got != "TESSERA_API_KEY=env://SHARED_TESSERA_KEY" {
		t.Errorf("Source().String() = %q", got)
	}
	if got := fmt.Sprint(p); got != "keyprovider.FromEnv(TESSERA_API_KEY=env://SHARED_TESSERA_KEY)" {
		t.Errorf("Sprint = %q", got)
	}
	k, err := p.Fetch(ctx)
	wantKey(t, k, err, keyA)
	env.Set("SHARED_TESSERA_KEY", keyB)
	k, err = p.Fetch(ctx)
	wantKey(t, k, err, keyB)
}

func TestFromEnvFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tessera")
	writeFile(t, path, keyA+"\n")

	env := newTestEnv("TESSERA_API_KEY_FILE", path, "TESSERA_API_KEY", "")
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	if err != nil {
		t.Fatalf("an empty TESSERA_API_KEY counts as unset: %v", err)
	}
	want := keyprovider.EnvSource{Var: "TESSERA_API_KEY_FILE", Ref: keyprovider.Ref{Scheme: "file", Path: path}}
	if !reflect.DeepEqual(p.Source(), want) {
		t.Errorf("Source = %+v, want %+v", p.Source(), want)
	}
	// (The test's directory name is long and mixes letters and digits, so
	// String may show it as a fingerprint, in case it is a key.)
	if got := p.Source().String(); !strings.HasPrefix(got, "TESSERA_API_KEY_FILE=/") || !strings.HasSuffix(got, "/tessera") {
		t.Errorf("Source().String() = %q", got)
	}
	k, err := p.Fetch(ctx)
	wantKey(t, k, err, keyA)

	// Re-read on every Fetch, as a kubelet rotates a mounted secret: a new
	// file renamed over the old one.
	tmp := filepath.Join(dir, ".tmp")
	writeFile(t, tmp, keyB)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	k, err = p.Fetch(ctx)
	wantKey(t, k, err, keyB)

	// The file holds a key, never a reference.
	writeFile(t, path, "env://OTHER")
	if _, err = p.Fetch(ctx); !errors.Is(err, keyprovider.ErrInvalidKey) {
		t.Errorf("Fetch of a file holding a reference = %v, want ErrInvalidKey", err)
	}
}

func TestFromEnvFileRelativePath(t *testing.T) {
	env := newTestEnv("TESSERA_API_KEY_FILE", "secrets/tessera")
	p, err := keyprovider.FromEnv(context.Background(), keyprovider.Tessera, env.opt())
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	src := p.Source()
	if want := filepath.Join(wd, "secrets/tessera"); src.Ref.Path != want {
		t.Errorf("path = %q, want %q", src.Ref.Path, want)
	}
	again, err := keyprovider.ParseRef(src.Ref.String())
	if err != nil || !reflect.DeepEqual(again, src.Ref) {
		t.Errorf("ParseRef(%q) = %+v, %v; want %+v", src.Ref.String(), again, err, src.Ref)
	}
}

func TestFromEnvErrors(t *testing.T) {
	const secret = "sk-tessera-DoNotEchoMe0123456789"
	tests := []struct {
		name     string
		env      []string
		kind     error
		contains []string
	}{
		{"missing", nil, keyprovider.ErrNotFound, []string{"neither TESSERA_API_KEY nor TESSERA_API_KEY_FILE is set"}},
		{"blank", []string{"TESSERA_API_KEY", " \n"}, keyprovider.ErrInvalidKey, []string{"TESSERA_API_KEY", "blank"}},
		{"empty", []string{"TESSERA_API_KEY", ""}, keyprovider.ErrInvalidKey, []string{"blank"}},
		{"empty file variable", []string{"TESSERA_API_KEY_FILE", ""}, keyprovider.ErrInvalidKey, []string{"TESSERA_API_KEY_FILE", "blank"}},
		{"both set", []string{"TESSERA_API_KEY", secret, "TESSERA_API_KEY_FILE", "/run/secrets/tessera"}, keyprovider.ErrInvalidKey, []string{"both", "set only one"}},
		{"literal of another service", []string{"TESSERA_API_KEY", "tesseral_secret_key_DoNotEchoMe0123456789"}, keyprovider.ErrInvalidKey, []string{"looks like a tesseral key"}},
		{"literal with a newline inside", []string{"TESSERA_API_KEY", "sk-tessera-DoNotEchoMe\n0123456789"}, keyprovider.ErrInvalidKey, []string{"control character"}},
		{"literal without prefix", []string{"TESSERA_API_KEY", "DoNotEchoMe0123456789"}, keyprovider.ErrInvalidKey, []string{`does not start with "sk-tessera-"`}},
		{"unknown scheme", []string{"TESSERA_API_KEY", "foo://bar"}, keyprovider.ErrInvalidKey, []string{"TESSERA_API_KEY", `unknown scheme "foo"`}},
		{"key-like scheme", []string{"TESSERA_API_KEY", "sk-tessera-DoNotEchoMe://x"}, keyprovider.ErrInvalidKey, []string{"not shown"}},
		{"not linked", []string{"TESSERA_API_KEY", "awssm://prod/tessera"}, keyprovider.ErrSchemeNotLinked, []string{"TESSERA_API_KEY", `import _ "github.com/keyprovider/keyprovider/awssm"`}},
		{"quoted literal", []string{"TESSERA_API_KEY", `"sk-tessera-DoNotEchoMe0123456789"`}, keyprovider.ErrInvalidKey, []string{"wrapped in quotes"}},
		{"quoted reference", []string{"TESSERA_API_KEY", `'vault://kv/tessera#api_key'`}, keyprovider.ErrInvalidKey, []string{"wrapped in quotes"}},
		{"refers to itself", []string{"TESSERA_API_KEY", "env://TESSERA_API_KEY"}, keyprovider.ErrInvalidKey, []string{"refers to itself"}},
		// A key pasted where a reference belongs (issue 18.3).
		{"key after file://", []string{"TESSERA_API_KEY", "file://" + secret}, keyprovider.ErrInvalidKey, []string{"TESSERA_API_KEY", "absolute path"}},
		{"key after env://", []string{"TESSERA_API_KEY", "env://" + secret}, keyprovider.ErrInvalidKey, []string{"variable name"}},
		{"key in a vault:// reference", []string{"TESSERA_API_KEY", "vault://kv/" + secret}, keyprovider.ErrSchemeNotLinked, nil},
		{"key as a version", []string{"TESSERA_API_KEY", "vault://kv/t?version=" + secret}, keyprovider.ErrSchemeNotLinked, nil},
		{"key in an op:// reference", []string{"TESSERA_API_KEY", "op://v/i/" + secret}, keyprovider.ErrSchemeNotLinked, nil},
		{"unprefixed key after file://", []string{"TESSERA_API_KEY", "file://Zq9x7DoNotEchoMeLm2Pr4TkV8wQ3nB"}, keyprovider.ErrInvalidKey, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := keyprovider.FromEnv(context.Background(), keyprovider.Tessera, newTestEnv(tc.env...).opt())
			if err == nil || p != nil {
				t.Fatalf("FromEnv = %v, %v; want an error", p, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("err = %v, want %v", err, tc.kind)
			}
			for _, want := range tc.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
			for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				if strings.Contains(msg, "DoNotEchoMe") {
					t.Errorf("the error shows the key: %s", msg)
				}
			}
		})
	}
}

func TestFromEnvServiceWithoutEnvVar(t *testing.T) {
	if _, err := keyprovider.FromEnv(context.Background(), keyprovider.Service{Name: "x"}); !errors.Is(err, keyprovider.ErrInvalidKey) {
		t.Errorf("err = %v, want ErrInvalidKey", err)
	}
}

// An explicit Resolver's FromEnv uses the schemes registered on it, and
// closes what its opener returned.
func TestResolverFromEnv(t *testing.T) {
	ctx := context.Background()
	r := keyprovider.NewResolver()
	closed := 0
	sch := testSchemes[0] // mnt
	sch.Open = func(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
		return &closingProvider{key: keyA, closed: &closed}, nil
	}
	r.Register(sch)
	env := newTestEnv("TESSERA_API_KEY", "mnt://kv/tessera#api_key")
	p, err := r.FromEnv(ctx, keyprovider.Tessera, env.opt())
	if err != nil {
		t.Fatal(err)
	}
	k, err := p.Fetch(ctx)
	wantKey(t, k, err, keyA)
	if err := p.Close(); err != nil || closed != 1 {
		t.Errorf("Close = %v, closed %d times; want nil, 1", err, closed)
	}
	if _, err = keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt()); !errors.Is(err, keyprovider.ErrInvalidKey) || errors.Is(err, keyprovider.ErrSchemeNotLinked) {
		t.Errorf("the default resolver must not know mnt://: %v", err)
	}
}

type closingProvider struct {
	key    string
	closed *int
}

func (p *closingProvider) Fetch(context.Context) (keyprovider.Key, error) {
	return keyprovider.NewKey(p.key, ""), nil
}

func (p *closingProvider) Close() error { *p.closed++; return nil }

// The conformance suite, run on FromEnv's two indirect sources: a _FILE and
// an env:// reference.
func TestFromEnvConformance(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(ctx context.Context, t *testing.T) (keyprovidertest.Harness, error) {
			path := filepath.Join(t.TempDir(), "tessera")
			return &fileHarness{path: path, env: newTestEnv("TESSERA_API_KEY_FILE", path)}, nil
		})
	})
	t.Run("env reference", func(t *testing.T) {
		keyprovidertest.RunConformance(t, func(ctx context.Context, t *testing.T) (keyprovidertest.Harness, error) {
			return &envRefHarness{env: newTestEnv("TESSERA_API_KEY", "env://THE_KEY")}, nil
		})
	})
}

type fileHarness struct {
	path string
	env  *testEnv
}

func (h *fileHarness) Provider(ctx context.Context) (keyprovider.Provider, error) {
	return keyprovider.FromEnv(ctx, keyprovider.Tessera, h.env.opt())
}
func (h *fileHarness) Set(_ context.Context, v string) error {
	return os.WriteFile(h.path, []byte(v), 0o600)
}
func (h *fileHarness) Delete(context.Context) error {
	err := os.Remove(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
func (h *fileHarness) Close() {}

type envRefHarness struct{ env *testEnv }

func (h *envRefHarness) Provider(ctx context.Context) (keyprovider.Provider, error) {
	return keyprovider.FromEnv(ctx, keyprovider.Tessera, h.env.opt())
}
func (h *envRefHarness) Set(_ context.Context, v string) error { h.env.Set("THE_KEY", v); return nil }
func (h *envRefHarness) Delete(context.Context) error          { h.env.Unset("THE_KEY"); return nil }
func (h *envRefHarness) Close()                                {}

// BenchmarkFromEnvFetch measures a Fetch of a literal key, re-read from the
// environment each time.
func BenchmarkFromEnvFetch(b *testing.B) {
	env := newTestEnv("TESSERA_API_KEY", keyA)
	p, err := keyprovider.FromEnv(context.Background(), keyprovider.Tessera, env.opt())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Fetch(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEnvProviderWatchesFilesOnly(t *testing.T) {
	type watcher interface {
		Watch(context.Context) <-chan struct{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lit, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, keyprovider.WithLookupEnv(func(name string) (string, bool) {
		if name == "TESSERA_API_KEY" {
			return "sk-tessera-literalAAAA1111", true
		}
		return "", false
	}))
	if err != nil {
		t.Fatal(err)
	}
	if ch := watcher(lit).Watch(ctx); ch != nil {
		t.Error("a literal key: Watch should return nil")
	}
	path := filepath.Join(t.TempDir(), "key")
	file, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, keyprovider.WithLookupEnv(func(name string) (string, bool) {
		if name == "TESSERA_API_KEY_FILE" {
			return path, true
		}
		return "", false
	}))
	if err != nil {
		t.Fatal(err)
	}
	ch := watcher(file).Watch(ctx)
	if ch == nil {
		t.Fatal("a _FILE key: Watch returned nil")
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the watch did not stop within 5s of the cancellation")
		}
	}
}
