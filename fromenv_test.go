package keyprovider_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

func TestFromEnvLiteral(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv("TESSERA_API_KEY", "  "+keyA+"\n")
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	require.NoError(t, err)
	assert.Equal(t, keyprovider.EnvSource{Var: "TESSERA_API_KEY"}, p.Source())
	assert.True(t, p.Source().IsLiteral())
	assert.Equal(t, "TESSERA_API_KEY (literal key)", p.Source().String())

	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyA, k.Reveal())

	// A literal is re-read on every Fetch.
	env.Set("TESSERA_API_KEY", keyB)
	k, err = p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyB, k.Reveal())

	// Turned into a reference after FromEnv: a clear error, not a key.
	env.Set("TESSERA_API_KEY", "env://OTHER")
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
	assert.Contains(t, err.Error(), "restart")

	env.Unset("TESSERA_API_KEY")
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrNotFound)
	assert.NoError(t, p.Close())
}

func TestFromEnvReference(t *testing.T) {
	ctx := context.Background()
	env := newTestEnv("TESSERA_API_KEY", "env://SHARED_TESSERA_KEY", "SHARED_TESSERA_KEY", keyA)
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	require.NoError(t, err)
	assert.Equal(t, keyprovider.EnvSource{Var: "TESSERA_API_KEY", Ref: keyprovider.Ref{Scheme: "env", Path: "SHARED_TESSERA_KEY"}}, p.Source())
	assert.Equal(t, "TESSERA_API_KEY=env://SHARED_TESSERA_KEY", p.Source().String())
	assert.Equal(t, "keyprovider.FromEnv(TESSERA_API_KEY=env://SHARED_TESSERA_KEY)", fmt.Sprint(p))
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyA, k.Reveal())
	env.Set("SHARED_TESSERA_KEY", keyB)
	k, err = p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyB, k.Reveal())
}

func TestFromEnvFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tessera")
	require.NoError(t, os.WriteFile(path, []byte(keyA+"\n"), 0o600))

	env := newTestEnv("TESSERA_API_KEY_FILE", path, "TESSERA_API_KEY", "")
	p, err := keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	require.NoError(t, err, "an empty TESSERA_API_KEY counts as unset")
	assert.Equal(t, keyprovider.EnvSource{Var: "TESSERA_API_KEY_FILE", Ref: keyprovider.Ref{Scheme: "file", Path: path}}, p.Source())
	assert.Equal(t, "TESSERA_API_KEY_FILE="+path, p.Source().String())
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyA, k.Reveal())

	// Re-read on every Fetch, as a kubelet rotates a mounted secret: a new
	// file renamed over the old one.
	tmp := filepath.Join(dir, ".tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(keyB), 0o600))
	require.NoError(t, os.Rename(tmp, path))
	k, err = p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyB, k.Reveal())

	// The file holds a key, never a reference.
	require.NoError(t, os.WriteFile(path, []byte("env://OTHER"), 0o600))
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}

func TestFromEnvFileRelativePath(t *testing.T) {
	env := newTestEnv("TESSERA_API_KEY_FILE", "secrets/tessera")
	src, err := keyprovider.SourceFromEnv(keyprovider.Tessera, env.opt())
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(wd, "secrets/tessera"), src.Ref.Path)
	again, err := keyprovider.ParseRef(src.Ref.String())
	require.NoError(t, err)
	assert.Equal(t, src.Ref, again)
}

func TestFromEnvErrors(t *testing.T) {
	const secret = "sk-tessera-DoNotEchoMe0123456789"
	tests := []struct {
		name     string
		env      []string
		kind     error
		contains []string
	}{
		{"missing", nil, keyprovider.ErrNotFound, []string{"TESSERA_API_KEY", "TESSERA_API_KEY_FILE", "not set"}},
		{"blank", []string{"TESSERA_API_KEY", " \n"}, keyprovider.ErrNotFound, []string{"not set"}},
		{"both set", []string{"TESSERA_API_KEY", secret, "TESSERA_API_KEY_FILE", "/run/secrets/tessera"}, keyprovider.ErrInvalidKey, []string{"both", "set only one"}},
		{"literal of another service", []string{"TESSERA_API_KEY", "tesseral_secret_key_DoNotEchoMe0123456789"}, keyprovider.ErrInvalidKey, []string{"looks like a tesseral key"}},
		{"literal with a newline inside", []string{"TESSERA_API_KEY", "sk-tessera-DoNotEchoMe\n0123456789"}, keyprovider.ErrInvalidKey, []string{"control character"}},
		{"literal without prefix", []string{"TESSERA_API_KEY", "DoNotEchoMe0123456789"}, keyprovider.ErrInvalidKey, []string{`does not start with "sk-tessera-"`}},
		{"unknown scheme", []string{"TESSERA_API_KEY", "foo://bar"}, keyprovider.ErrInvalidKey, []string{"TESSERA_API_KEY", `unknown scheme "foo"`}},
		{"key-like scheme", []string{"TESSERA_API_KEY", "sk-tessera-DoNotEchoMe://x"}, keyprovider.ErrInvalidKey, []string{"not shown"}},
		{"missing part", []string{"TESSERA_API_KEY", "vault://kv#api_key"}, keyprovider.ErrInvalidKey, []string{"TESSERA_API_KEY", "mount and a path"}},
		{"unknown parameter", []string{"TESSERA_API_KEY", "vault://kv/t#k?versoin=2"}, keyprovider.ErrInvalidKey, []string{`unknown parameter "versoin"`}},
		{"not linked", []string{"TESSERA_API_KEY", "awssm://prod/tessera"}, keyprovider.ErrSchemeNotLinked, []string{"TESSERA_API_KEY", `import _ "github.com/keyprovider/keyprovider/awssm"`}},
		{"quoted literal", []string{"TESSERA_API_KEY", `"sk-tessera-DoNotEchoMe0123456789"`}, keyprovider.ErrInvalidKey, []string{"wrapped in quotes"}},
		{"quoted reference", []string{"TESSERA_API_KEY", `'vault://kv/tessera#api_key'`}, keyprovider.ErrInvalidKey, []string{"wrapped in quotes"}},
		{"refers to itself", []string{"TESSERA_API_KEY", "env://TESSERA_API_KEY"}, keyprovider.ErrInvalidKey, []string{"refers to itself"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := keyprovider.FromEnv(context.Background(), keyprovider.Tessera, newTestEnv(tc.env...).opt())
			require.Error(t, err)
			assert.Nil(t, p)
			assert.ErrorIs(t, err, tc.kind)
			for _, want := range tc.contains {
				assert.Contains(t, err.Error(), want)
			}
			for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				assert.NotContains(t, msg, "DoNotEchoMe")
			}
		})
	}
}

func TestFromEnvServiceWithoutEnvVar(t *testing.T) {
	_, err := keyprovider.FromEnv(context.Background(), keyprovider.Service{Name: "x"})
	assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
}

func TestSourceFromEnv(t *testing.T) {
	env := newTestEnv("TESSERAL_API_KEY", "vault://kv/tesseral#api_key?version=4")
	src, err := keyprovider.SourceFromEnv(keyprovider.Tesseral, env.opt())
	require.NoError(t, err, "SourceFromEnv opens nothing, so an unlinked scheme is fine")
	assert.Equal(t, "TESSERAL_API_KEY=vault://kv/tesseral#api_key?version=4", src.String())
	assert.False(t, src.IsLiteral())
}

// An explicit Resolver's FromEnv uses the openers registered on it, and
// closes what its opener returned.
func TestResolverFromEnv(t *testing.T) {
	ctx := context.Background()
	r := keyprovider.NewResolver()
	closed := 0
	r.Register("vault", keyprovider.OpenerFunc(func(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
		return &closingProvider{key: keyA, closed: &closed}, nil
	}))
	env := newTestEnv("TESSERA_API_KEY", "vault://kv/tessera#api_key")
	p, err := r.FromEnv(ctx, keyprovider.Tessera, env.opt())
	require.NoError(t, err)
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyA, k.Reveal())
	require.NoError(t, p.Close())
	assert.Equal(t, 1, closed)

	_, err = keyprovider.FromEnv(ctx, keyprovider.Tessera, env.opt())
	assert.ErrorIs(t, err, keyprovider.ErrSchemeNotLinked, "the default resolver is not affected")
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
