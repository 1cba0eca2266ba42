package keyprovider_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

const (
	keyA = "sk-tessera-registryAAAA0001"
	keyB = "sk-tessera-registryBBBB0002"
)

// mapEnv is an environment for WithLookupEnv.
func mapEnv(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestOpenBuiltinSchemes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte(keyA+"\n"), 0o600))

	t.Run("file", func(t *testing.T) {
		p, err := keyprovider.Open(ctx, "file://"+path, keyprovider.Tessera)
		require.NoError(t, err)
		k, err := p.Fetch(ctx)
		require.NoError(t, err)
		assert.Equal(t, keyA, k.Reveal())
		// Re-read on every Fetch.
		require.NoError(t, os.WriteFile(path, []byte(keyB), 0o600))
		k, err = p.Fetch(ctx)
		require.NoError(t, err)
		assert.Equal(t, keyB, k.Reveal())
	})
	t.Run("env", func(t *testing.T) {
		vars := map[string]string{"OTHER": " " + keyA + "\n"}
		p, err := keyprovider.Open(ctx, "env://OTHER", keyprovider.Tessera, keyprovider.WithLookupEnv(mapEnv(vars)))
		require.NoError(t, err)
		k, err := p.Fetch(ctx)
		require.NoError(t, err)
		assert.Equal(t, keyA, k.Reveal())
	})
}

func TestOpenBuiltinErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.WriteFile(bad, []byte("sk-other-SECRETVALUE123"), 0o600))
	quoted := filepath.Join(dir, "quoted")
	require.NoError(t, os.WriteFile(quoted, []byte(`"sk-tessera-SECRETVALUE123"`+"\n"), 0o600))
	tests := []struct {
		name string
		ref  string
		env  map[string]string
		kind error
	}{
		{"file missing", "file://" + filepath.Join(dir, "nope"), nil, keyprovider.ErrNotFound},
		{"file is a directory", "file://" + dir, nil, keyprovider.ErrInvalidKey},
		{"a path component is a file", "file://" + bad + "/key", nil, keyprovider.ErrNotFound},
		{"file holds a quoted key", "file://" + quoted, nil, keyprovider.ErrInvalidKey},
		{"file holds a bad key", "file://" + bad, nil, keyprovider.ErrInvalidKey},
		{"variable unset", "env://NOPE", map[string]string{}, keyprovider.ErrNotFound},
		{"variable blank", "env://BLANK", map[string]string{"BLANK": "  "}, keyprovider.ErrInvalidKey},
		{"variable holds a bad key", "env://BAD", map[string]string{"BAD": "sk-other-SECRETVALUE123"}, keyprovider.ErrInvalidKey},
		{"variable holds a reference", "env://CHAIN", map[string]string{"CHAIN": "env://OTHER"}, keyprovider.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := keyprovider.Open(ctx, tc.ref, keyprovider.Tessera, keyprovider.WithLookupEnv(mapEnv(tc.env)))
			require.NoError(t, err)
			_, err = p.Fetch(ctx)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			var e *keyprovider.Error
			require.ErrorAs(t, err, &e)
			assert.NotContains(t, err.Error(), "SECRETVALUE")
		})
	}
}

func TestOpenCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := keyprovider.Open(ctx, "env://X", keyprovider.Tessera)
	assert.ErrorIs(t, err, context.Canceled)

	p, err := keyprovider.Open(context.Background(), "env://X", keyprovider.Tessera,
		keyprovider.WithLookupEnv(mapEnv(map[string]string{"X": keyA})))
	require.NoError(t, err)
	_, err = p.Fetch(ctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// A reference of a scheme this package knows, whose backend is not linked
// into the test binary, says what to import.
func TestOpenNotLinked(t *testing.T) {
	tests := []struct{ ref, pkg string }{
		{"vault://kv/tessera#api_key", "github.com/keyprovider/keyprovider/vault"},
		{"awssm://prod/tessera", "github.com/keyprovider/keyprovider/awssm"},
		{"op://Private/Tessera/credential", "github.com/keyprovider/keyprovider/onepassword"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := keyprovider.Open(context.Background(), tc.ref, keyprovider.Tessera)
			require.Error(t, err)
			assert.ErrorIs(t, err, keyprovider.ErrSchemeNotLinked)
			assert.ErrorIs(t, err, keyprovider.ErrInvalidKey)
			assert.Contains(t, err.Error(), `import _ "`+tc.pkg+`"`)

			// An explicit Resolver says to register instead.
			_, err = keyprovider.NewResolver().Open(context.Background(), tc.ref, keyprovider.Tessera)
			assert.ErrorIs(t, err, keyprovider.ErrSchemeNotLinked)
			assert.Contains(t, err.Error(), "not registered on this Resolver")
			assert.Contains(t, err.Error(), tc.pkg)
		})
	}
	assert.Equal(t, []string{"env", "file"}, keyprovider.Schemes(), "the root package links in no backend")
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := keyprovider.Open(context.Background(), "foo://bar", keyprovider.Tessera)
	var re *keyprovider.RefError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, err.Error(), `unknown scheme "foo"`)
}

// openerRecorder records what it was asked to open and returns a Provider
// of a fixed key.
type openerRecorder struct {
	got []keyprovider.OpenRequest
}

func (o *openerRecorder) OpenRef(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	o.got = append(o.got, req)
	return keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return req.Service.ParseKey(keyA, "7")
	}), nil
}

func TestResolverRegister(t *testing.T) {
	ctx := context.Background()
	r := keyprovider.NewResolver()
	rec := &openerRecorder{}
	r.Register("vault", rec)
	assert.Equal(t, []string{"env", "file", "vault"}, r.Schemes())
	assert.Equal(t, []string{"env", "file"}, keyprovider.Schemes(), "the default resolver is untouched")

	env := mapEnv(map[string]string{"VAULT_ADDR": "http://127.0.0.1:8200"})
	p, err := r.Open(ctx, "vault://kv/app#key?version=2", keyprovider.Tessera, keyprovider.WithLookupEnv(env))
	require.NoError(t, err)
	k, err := p.Fetch(ctx)
	require.NoError(t, err)
	assert.Equal(t, keyA, k.Reveal())

	require.Len(t, rec.got, 1)
	req := rec.got[0]
	assert.Equal(t, keyprovider.Ref{Scheme: "vault", Mount: "kv", Path: "app", Field: "key", Params: map[string]string{"version": "2"}}, req.Ref)
	assert.Equal(t, keyprovider.Tessera, req.Service)
	assert.Equal(t, "http://127.0.0.1:8200", req.Getenv("VAULT_ADDR"), "openers see the injected environment")
	assert.Equal(t, "", req.Getenv("AWS_REGION"))
}

func TestResolverCustomScheme(t *testing.T) {
	ctx := context.Background()
	r := keyprovider.NewResolver()
	rec := &openerRecorder{}
	r.Register("gcpsm", rec)

	_, err := keyprovider.ParseRef("gcpsm://projects/p/secrets/s")
	assert.Error(t, err, "ParseRef knows only the built-in grammar")

	ref, err := r.Parse("gcpsm://projects/p/secrets/s#f?any=thing&b=1")
	require.NoError(t, err)
	assert.Equal(t, keyprovider.Ref{Scheme: "gcpsm", Path: "projects/p/secrets/s", Field: "f", Params: map[string]string{"any": "thing", "b": "1"}}, ref)
	assert.Equal(t, "gcpsm://projects/p/secrets/s#f?any=thing&b=1", ref.String())

	_, err = r.Open(ctx, "gcpsm://projects/p/secrets/s", keyprovider.Tessera)
	require.NoError(t, err)
	require.Len(t, rec.got, 1)
}

func TestResolverRegisterPanics(t *testing.T) {
	rec := &openerRecorder{}
	tests := []struct {
		name   string
		scheme string
		o      keyprovider.Opener
		want   string
	}{
		{"duplicate", "vault", rec, "keyprovider: Register called twice for scheme vault"},
		{"built-in env", "env", rec, "keyprovider: Register called twice for scheme env"},
		{"nil opener", "awssm", nil, "nil Opener"},
		{"upper case", "Vault2", rec, "invalid scheme"},
		{"empty", "", rec, "invalid scheme"},
		{"with separator", "a://b", rec, "invalid scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := keyprovider.NewResolver()
			r.Register("vault", rec)
			got := panicValue(func() {
				if tc.o == nil {
					r.Register(tc.scheme, nil)
					return
				}
				r.Register(tc.scheme, tc.o)
			})
			require.IsType(t, "", got, "Register must panic with a string")
			assert.Contains(t, got, tc.want)
		})
	}
}

// The default resolver's RegisterScheme panics on a duplicate too: env is
// built in.
func TestRegisterSchemeDuplicatePanics(t *testing.T) {
	assert.Panics(t, func() { keyprovider.RegisterScheme("env", &openerRecorder{}) })
}

func TestOpenerErrorPassesThrough(t *testing.T) {
	boom := errors.New("boom")
	r := keyprovider.NewResolver()
	r.Register("vault", keyprovider.OpenerFunc(func(context.Context, keyprovider.OpenRequest) (keyprovider.Provider, error) {
		return nil, boom
	}))
	_, err := r.Open(context.Background(), "vault://kv/x", keyprovider.Tessera)
	assert.ErrorIs(t, err, boom)
}

func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}
