package envread

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv ...string) LookupFunc {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name    string
		env     LookupFunc
		want    Value
		wantErr error
	}{
		{"value", env("K", " v \n"), Value{Var: "K", Text: "v"}, nil},
		{"file", env("K_FILE", "/run/k"), Value{Var: "K_FILE", Path: "/run/k"}, nil},
		{"relative file", env("K_FILE", "k.txt"), Value{Var: "K_FILE", Path: "k.txt"}, nil},
		{"blank value counts as unset", env("K", " ", "K_FILE", "/run/k"), Value{Var: "K_FILE", Path: "/run/k"}, nil},
		{"blank file counts as unset", env("K", "v", "K_FILE", ""), Value{Var: "K", Text: "v"}, nil},
		{"both", env("K", "v", "K_FILE", "/run/k"), Value{}, ErrBothSet},
		{"neither", env(), Value{}, ErrNotSet},
		{"blank both", env("K", "", "K_FILE", "\t"), Value{}, ErrNotSet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lookup(tc.env, "K")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), "K")
				assert.NotContains(t, err.Error(), "v ")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.want.Path != "", got.FromFile())
		})
	}
}

func TestLookupNilMeansProcessEnv(t *testing.T) {
	t.Setenv("ENVREAD_TEST_VAR", "x")
	got, err := Lookup(nil, "ENVREAD_TEST_VAR")
	require.NoError(t, err)
	assert.Equal(t, "x", got.Text)
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	require.NoError(t, os.WriteFile(ok, []byte(" secret\n"), 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(ok, link))
	exact := filepath.Join(dir, "exact")
	require.NoError(t, os.WriteFile(exact, []byte(strings.Repeat("a", MaxFileSize)), 0o600))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("a", MaxFileSize+1)), 0o600))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	noread := filepath.Join(dir, "noread")
	require.NoError(t, os.WriteFile(noread, []byte("secret"), 0o000))

	got, err := ReadFile(ok)
	require.NoError(t, err)
	assert.Equal(t, " secret\n", got, "ReadFile does not trim")

	got, err = ReadFile(link)
	require.NoError(t, err, "a symbolic link to a regular file, as Kubernetes mounts secrets")
	assert.Equal(t, " secret\n", got)

	got, err = ReadFile(exact)
	require.NoError(t, err)
	assert.Len(t, got, MaxFileSize)

	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "nope"), fs.ErrNotExist},
		{"too large", big, ErrTooLarge},
		{"directory", dir, ErrNotRegular},
		{"FIFO, without blocking", fifo, ErrNotRegular},
	}
	if os.Geteuid() != 0 {
		tests = append(tests, struct {
			name string
			path string
			want error
		}{"unreadable", noread, fs.ErrPermission})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFile(tc.path)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "got %v", err)
			assert.Contains(t, err.Error(), tc.path)
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}
