package keyprovider_test

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/keyprovider/keyprovider"
)

func TestErrorMessage(t *testing.T) {
	pathErr := &fs.PathError{Op: "open", Path: "/run/secrets/tessera", Err: fs.ErrNotExist}
	tests := []struct {
		name string
		err  *keyprovider.Error
		want string
	}{
		{"everything", &keyprovider.Error{Provider: "env", Ref: "TESSERA_API_KEY_FILE", Kind: keyprovider.ErrNotFound, Err: pathErr},
			"keyprovider: env TESSERA_API_KEY_FILE: key not found: open /run/secrets/tessera: file does not exist"},
		{"no ref", &keyprovider.Error{Provider: "static", Kind: keyprovider.ErrNotFound},
			"keyprovider: static: key not found"},
		{"no cause", &keyprovider.Error{Provider: "vault", Ref: "kv/tessera", Kind: keyprovider.ErrPermission},
			"keyprovider: vault kv/tessera: permission denied"},
		{"context error, no kind", &keyprovider.Error{Provider: "awssm", Ref: "arn:x", Err: context.Canceled},
			"keyprovider: awssm arn:x: context canceled"},
		{"no provider", &keyprovider.Error{Kind: keyprovider.ErrUnavailable, Err: errors.New("503")},
			"keyprovider: backend unavailable: 503"},
		{"cause that already says its kind", &keyprovider.Error{Provider: "env", Ref: "K", Kind: keyprovider.ErrInvalidKey,
			Err: keyprovider.Tessera.Validate("")},
			"keyprovider: env K: invalid tessera key: empty"},
		{"nothing", &keyprovider.Error{}, "keyprovider:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	sentinels := []error{keyprovider.ErrNotFound, keyprovider.ErrInvalidKey, keyprovider.ErrPermission, keyprovider.ErrUnavailable}
	cause := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}
	for _, kind := range sentinels {
		t.Run(kind.Error(), func(t *testing.T) {
			var err error = &keyprovider.Error{Provider: "p", Ref: "r", Kind: kind, Err: cause}
			for _, other := range sentinels {
				if got, want := errors.Is(err, other), other == kind; got != want {
					t.Errorf("errors.Is(err, %v) = %v, want %v", other, got, want)
				}
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe != cause {
				t.Error("errors.As does not reach the cause")
			}
			if !errors.Is(err, fs.ErrPermission) {
				t.Error("errors.Is does not see through the cause")
			}
			var ke *keyprovider.Error
			if !errors.As(err, &ke) || ke.Provider != "p" || ke.Ref != "r" {
				t.Errorf("errors.As(*Error) = %+v", ke)
			}
		})
	}
	t.Run("context errors stay matchable", func(t *testing.T) {
		for _, cerr := range []error{context.Canceled, context.DeadlineExceeded} {
			err := &keyprovider.Error{Provider: "p", Err: cerr}
			if !errors.Is(err, cerr) {
				t.Errorf("errors.Is(%v, %v) = false", err, cerr)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					t.Errorf("a context error matches %v", s)
				}
			}
		}
	})
	t.Run("nil kind and cause", func(t *testing.T) {
		if got := (&keyprovider.Error{}).Unwrap(); len(got) != 0 {
			t.Errorf("Unwrap() = %v, want nothing", got)
		}
	})
	t.Run("wrapped further", func(t *testing.T) {
		err := errors.Join(errors.New("other"), &keyprovider.Error{Kind: keyprovider.ErrUnavailable, Err: cause})
		if !errors.Is(err, keyprovider.ErrUnavailable) || !errors.Is(err, fs.ErrPermission) {
			t.Error("kind and cause are lost inside errors.Join")
		}
	})
}

func TestStaticSource(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "1")
	t.Run("returns its key", func(t *testing.T) {
		got, err := keyprovider.StaticSource(k).Token(context.Background())
		if err != nil || !got.Equal(k) || got.Version() != "1" {
			t.Errorf("Token() = %v, %v; want %v", got, err, k)
		}
	})
	t.Run("zero key is not found", func(t *testing.T) {
		got, err := keyprovider.StaticSource(keyprovider.Key{}).Token(context.Background())
		var ke *keyprovider.Error
		if !errors.Is(err, keyprovider.ErrNotFound) || !errors.As(err, &ke) || ke.Provider != "static" {
			t.Errorf("Token() = %v, %v; want an *Error from static wrapping ErrNotFound", got, err)
		}
		if !got.IsZero() {
			t.Errorf("Token() returned %v with its error", got)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got, err := keyprovider.StaticSource(k).Token(ctx)
		if !errors.Is(err, context.Canceled) || !got.IsZero() {
			t.Errorf("Token() = %v, %v; want context.Canceled and no key", got, err)
		}
	})
}

func TestProviderFunc(t *testing.T) {
	k := keyprovider.NewKey(secretKey, "")
	var p keyprovider.Provider = keyprovider.ProviderFunc(func(ctx context.Context) (keyprovider.Key, error) {
		if v := ctx.Value(ctxKey{}); v != "marker" {
			t.Errorf("the function got another context (value %v)", v)
		}
		return k, nil
	})
	got, err := p.Fetch(context.WithValue(context.Background(), ctxKey{}, "marker"))
	if err != nil || !got.Equal(k) {
		t.Errorf("Fetch() = %v, %v", got, err)
	}
}

type ctxKey struct{}
