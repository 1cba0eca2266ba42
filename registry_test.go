package keyprovider_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

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

// fetch opens ref on the default Resolver and fetches its key once.
func fetch(t *testing.T, ref string, opts ...keyprovider.EnvOption) (keyprovider.Key, error) {
	t.Helper()
	p, err := keyprovider.Open(context.Background(), ref, keyprovider.Tessera, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", ref, err)
	}
	return p.Fetch(context.Background())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenBuiltinSchemes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	writeFile(t, path, keyA+"\n")

	t.Run("file", func(t *testing.T) {
		if k, err := fetch(t, "file://"+path); err != nil || k.Reveal() != keyA {
			t.Fatalf("Fetch = %v, %v; want %s", k, err, keyprovider.NewKey(keyA, ""))
		}
		writeFile(t, path, keyB) // re-read on every Fetch
		if k, err := fetch(t, "file://"+path); err != nil || k.Reveal() != keyB {
			t.Fatalf("Fetch after a change = %v, %v", k, err)
		}
	})
	t.Run("env", func(t *testing.T) {
		env := keyprovider.WithLookupEnv(mapEnv(map[string]string{"OTHER": " " + keyA + "\n"}))
		if k, err := fetch(t, "env://OTHER", env); err != nil || k.Reveal() != keyA {
			t.Fatalf("Fetch = %v, %v", k, err)
		}
	})
}

func TestOpenBuiltinErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "sk-other-SECRETVALUE123")
	quoted := filepath.Join(dir, "quoted")
	writeFile(t, quoted, `"sk-tessera-SECRETVALUE123"`+"\n")
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
			_, err := fetch(t, tc.ref, keyprovider.WithLookupEnv(mapEnv(tc.env)))
			var e *keyprovider.Error
			if !errors.Is(err, tc.kind) || !errors.As(err, &e) {
				t.Fatalf("err = %v, want a *keyprovider.Error of kind %v", err, tc.kind)
			}
			if strings.Contains(err.Error(), "SECRETVALUE") {
				t.Errorf("err = %q shows the key", err)
			}
		})
	}
}

// A file:// path that could be a key (a key pasted after file:///) is
// never printed by the error of its Fetch.
func TestOpenFileErrorDoesNotPrintAKeyShapedPath(t *testing.T) {
	const key = "sk-tessera-Zq9x7Lm2Pr4TkV8wQ3nB"
	_, err := fetch(t, "file:///"+key)
	if !errors.Is(err, keyprovider.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "Zq9x7Lm2") {
		t.Errorf("err = %q shows the key", err)
	}
}

func TestOpenCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := keyprovider.Open(ctx, "env://X", keyprovider.Tessera); !errors.Is(err, context.Canceled) {
		t.Errorf("Open = %v, want context.Canceled", err)
	}
	p, err := keyprovider.Open(context.Background(), "env://X", keyprovider.Tessera,
		keyprovider.WithLookupEnv(mapEnv(map[string]string{"X": keyA})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Fetch(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch = %v, want context.Canceled", err)
	}
}

// A reference of a backend's scheme, whose package is not linked into the
// test binary, says what to import, or, on a Resolver of one's own, what to
// register.
func TestOpenNotLinked(t *testing.T) {
	for _, tc := range []struct{ ref, pkg string }{
		{"vault://kv/tessera#api_key", "github.com/keyprovider/keyprovider/vault"},
		{"awssm://prod/tessera", "github.com/keyprovider/keyprovider/awssm"},
		{"op://Private/Tessera/credential", "github.com/keyprovider/keyprovider/onepassword"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			_, err := keyprovider.Open(context.Background(), tc.ref, keyprovider.Tessera)
			if !errors.Is(err, keyprovider.ErrSchemeNotLinked) || !errors.Is(err, keyprovider.ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrSchemeNotLinked and ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), `import _ "`+tc.pkg+`"`) {
				t.Errorf("err = %q does not say what to import", err)
			}
			_, err = keyprovider.NewResolver().Open(context.Background(), tc.ref, keyprovider.Tessera)
			if !errors.Is(err, keyprovider.ErrSchemeNotLinked) || !strings.Contains(err.Error(), "not registered on this Resolver") || !strings.Contains(err.Error(), tc.pkg) {
				t.Errorf("err = %v, want ErrSchemeNotLinked saying to register %s", err, tc.pkg)
			}
		})
	}
}

func TestOpenUnknownScheme(t *testing.T) {
	_, err := keyprovider.Open(context.Background(), "foo://bar", keyprovider.Tessera)
	var re *keyprovider.RefError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), `unknown scheme "foo"`) {
		t.Fatalf("err = %v", err)
	}
}

// recorder is a Scheme's Open that records what it was asked to open and
// returns a Provider of a fixed key.
type recorder struct{ got []keyprovider.OpenRequest }

func (rec *recorder) open(_ context.Context, req keyprovider.OpenRequest) (keyprovider.Provider, error) {
	rec.got = append(rec.got, req)
	return keyprovider.ProviderFunc(func(context.Context) (keyprovider.Key, error) {
		return req.Service.ParseKey(keyA, "7")
	}), nil
}

func TestResolverRegister(t *testing.T) {
	ctx := context.Background()
	r := keyprovider.NewResolver()
	rec := &recorder{}
	sch := testSchemes[0] // mnt
	sch.Open = rec.open
	r.Register(sch)
	if _, err := r.Parse("mnt://kv/x"); err != nil {
		t.Errorf("the Resolver does not parse the scheme registered on it: %v", err)
	}
	if _, err := keyprovider.ParseRef("mnt://kv/x"); err == nil {
		t.Error("the default resolver parses mnt://, registered on another Resolver only: it must be untouched")
	}

	env := mapEnv(map[string]string{"MNT_ADDR": "http://127.0.0.1:8200"})
	p, err := r.Open(ctx, "mnt://kv/app#key?version=2", keyprovider.Tessera, keyprovider.WithLookupEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := p.Fetch(ctx); err != nil || k.Reveal() != keyA {
		t.Fatalf("Fetch = %v, %v", k, err)
	}
	if len(rec.got) != 1 {
		t.Fatalf("opened %d times, want 1", len(rec.got))
	}
	req := rec.got[0]
	want := keyprovider.Ref{Scheme: "mnt", Mount: "kv", Path: "app", Field: "key", Params: map[string]string{"version": "2"}}
	if !reflect.DeepEqual(req.Ref, want) || req.Service.Name != keyprovider.Tessera.Name {
		t.Errorf("request = %+v", req)
	}
	if v, ok := req.LookupEnv("MNT_ADDR"); !ok || v != "http://127.0.0.1:8200" {
		t.Errorf("the opener must see the injected environment: %q, %v", v, ok)
	}

	// With no injected environment the opener is told so: its backend then
	// uses the process environment and its own defaults.
	if _, err := r.Open(ctx, "mnt://kv/app", keyprovider.Tessera); err != nil {
		t.Fatal(err)
	}
	if rec.got[1].LookupEnv != nil {
		t.Error("LookupEnv must be nil when the caller injected none")
	}
}

func TestResolverRegisterPanics(t *testing.T) {
	testResolver() // registers mnt://, whose grammar "another grammar" contradicts
	ok := keyprovider.Scheme{Name: "dup", Open: openFixed}
	tests := []struct {
		name string
		s    keyprovider.Scheme
		want string
	}{
		{"duplicate", ok, "keyprovider: Register called twice for scheme dup"},
		{"another grammar", keyprovider.Scheme{Name: "mnt", Field: false, Open: openFixed}, "another grammar"},
		{"built-in env", keyprovider.Scheme{Name: "env", Open: openFixed}, "keyprovider: Register called twice for scheme env"},
		{"nil Open", keyprovider.Scheme{Name: "other"}, "nil Open"},
		{"upper case", keyprovider.Scheme{Name: "Vault2", Open: openFixed}, "invalid scheme"},
		{"empty", keyprovider.Scheme{Open: openFixed}, "invalid scheme"},
		{"with separator", keyprovider.Scheme{Name: "a://b", Open: openFixed}, "invalid scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := keyprovider.NewResolver()
			r.Register(ok)
			got, isString := panicValue(func() { r.Register(tc.s) }).(string)
			if !isString || !strings.Contains(got, tc.want) {
				t.Errorf("panic %q, want a string containing %q", got, tc.want)
			}
		})
	}
}

// The default resolver's RegisterScheme panics on a duplicate too: env is
// built in.
func TestRegisterSchemeDuplicatePanics(t *testing.T) {
	if panicValue(func() { keyprovider.RegisterScheme(keyprovider.Scheme{Name: "env", Open: openFixed}) }) == nil {
		t.Error("RegisterScheme of env must panic")
	}
}

func TestOpenerErrorPassesThrough(t *testing.T) {
	boom := errors.New("boom")
	r := keyprovider.NewResolver()
	r.Register(keyprovider.Scheme{Name: "boom", Open: func(context.Context, keyprovider.OpenRequest) (keyprovider.Provider, error) {
		return nil, boom
	}})
	if _, err := r.Open(context.Background(), "boom://kv/x", keyprovider.Tessera); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

func panicValue(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}
