package envread

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
		{"empty value alone is blank", env("K", ""), Value{}, ErrBlank},
		{"empty file alone is blank", env("K_FILE", " "), Value{}, ErrBlank},
		{"both", env("K", "v", "K_FILE", "/run/k"), Value{}, ErrBothSet},
		{"neither", env(), Value{}, ErrNotSet},
		{"blank both", env("K", "", "K_FILE", "\t"), Value{}, ErrBlank},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lookup(tc.env, "K")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if msg := err.Error(); !strings.Contains(msg, "K") || strings.Contains(msg, "v ") {
					t.Errorf("message %q must name the variable and not its value", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.FromFile() != (tc.want.Path != "") {
				t.Errorf("FromFile = %v", got.FromFile())
			}
		})
	}
}

func TestLookupNilMeansProcessEnv(t *testing.T) {
	t.Setenv("ENVREAD_TEST_VAR", "x")
	got, err := Lookup(nil, "ENVREAD_TEST_VAR")
	if err != nil || got.Text != "x" {
		t.Fatalf("Lookup(nil) = %+v, %v; want x", got, err)
	}
	if v, err := Var(nil, "ENVREAD_TEST_VAR"); err != nil || v != "x" {
		t.Fatalf("Var(nil) = %q, %v; want x", v, err)
	}
}

func TestVar(t *testing.T) {
	for _, tc := range []struct {
		env     LookupFunc
		want    string
		wantErr error
	}{
		{env("K", " v\n"), "v", nil},
		{env("K", ""), "", ErrBlank},
		{env("K", "  "), "", ErrBlank},
		{env(), "", ErrNotSet},
		{env("K_FILE", "/x"), "", ErrNotSet}, // Var reads no twin
	} {
		got, err := Var(tc.env, "K")
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("Var = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
		}
	}
}

func TestCheckKeyText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"sk-tessera-abc", nil},
		{" sk-tessera-abc\n", nil},
		{`"sk-tessera-abc"`, ErrQuoted},
		{"'sk-tessera-abc'", ErrQuoted},
		{`"`, nil},
		{"vault://kv/x#k", ErrReference},
		{" env://OTHER\n", ErrReference},
		{"tesseral_secret_key_0123://x", nil}, // "_" is no scheme character
		{"1abc://x", nil},
	} {
		if got := CheckKeyText(tc.in); !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
			t.Errorf("CheckKeyText(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSplitScheme(t *testing.T) {
	for _, tc := range []struct {
		in, scheme, rest string
		ok               bool
	}{
		{"vault://kv/x", "vault", "kv/x", true},
		{"a+b-c.d://", "a+b-c.d", "", true},
		{"://x", "", "", false},
		{"1a://x", "", "", false},
		{"a_b://x", "", "", false},
		{"vault:/x", "", "", false},
	} {
		scheme, rest, ok := SplitScheme(tc.in)
		if scheme != tc.scheme || rest != tc.rest || ok != tc.ok {
			t.Errorf("SplitScheme(%q) = %q, %q, %v", tc.in, scheme, rest, ok)
		}
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrNotSet, "key not found"},
		{ErrBlank, "invalid key"},
		{ErrBothSet, "invalid key"},
		{ErrQuoted, "invalid key"},
		{ErrReference, "invalid key"},
		{ErrNotRegular, "invalid key"},
		{&fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, "key not found"},
	} {
		if got := Kind(tc.err); got.Error() != tc.want {
			t.Errorf("Kind(%v) = %v, want %s", tc.err, got, tc.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok", " secret\n", 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(ok, link); err != nil {
		t.Fatal(err)
	}
	exact := write("exact", strings.Repeat("a", MaxFileSize), 0o600)
	big := write("big", strings.Repeat("a", MaxFileSize+1), 0o600)
	noread := write("noread", "secret", 0o000)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, path, want string }{
		{"not trimmed", ok, " secret\n"},
		{"a symbolic link to a regular file, as Kubernetes mounts secrets", link, " secret\n"},
		{"exactly the limit", exact, strings.Repeat("a", MaxFileSize)},
	} {
		got, err := ReadFile(tc.path)
		if err != nil || got != tc.want {
			t.Errorf("%s: ReadFile = %d bytes, %v", tc.name, len(got), err)
		}
	}

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
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.path) || strings.Contains(msg, "secret") {
				t.Errorf("message %q must name the path and not the contents", msg)
			}
		})
	}
}

// TestReadFileFIFOSwappedIn flips a symbolic link between a regular file and
// a FIFO, as a kubelet flips a secret's link, while ReadFile reads through
// it. A check of the path followed by an open of the path can find the file
// at the check and the FIFO at the open, whose open then blocks until a
// writer comes, regardless of any deadline. ReadFile must always return.
func TestReadFileFIFOSwappedIn(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		tmp := filepath.Join(dir, "tmp")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			target := regular
			if i%2 == 1 {
				target = fifo
			}
			_ = os.Remove(tmp)
			if os.Symlink(target, tmp) == nil {
				_ = os.Rename(tmp, link)
			}
		}
	}()
	defer func() { close(stop); <-flipped }()

	done := make(chan error, 1)
	go func() {
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			if _, err := ReadFile(link); err != nil && !errors.Is(err, ErrNotRegular) && !errors.Is(err, fs.ErrNotExist) {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
	case <-time.After(6 * time.Second):
		// Unblock the reader stuck in open(2) so the test can end.
		if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		<-done
		t.Fatal("ReadFile blocked opening a FIFO swapped in under the path")
	}
}
