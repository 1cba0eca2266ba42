package env_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/env"
)

// The key these tests must never find in an error. The prefix is not
// secret; secretPart is.
const (
	secretPart = "envS3cr3tPart0123456789"
	secretKey  = "sk-tessera-" + secretPart
	otherKey   = "sk-tessera-otherKey42"
)

func fetch(t *testing.T, p *env.Provider) (keyprovider.Key, error) {
	t.Helper()
	k, err := p.Fetch(context.Background())
	if err != nil {
		if !k.IsZero() {
			t.Errorf("Fetch returned a key %v with its error", k)
		}
		msgs := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
		for _, m := range msgs {
			if strings.Contains(m, secretPart) || strings.Contains(m, "otherKey42") {
				t.Errorf("error shows a key: %s", m)
			}
		}
		var ke *keyprovider.Error
		if !errors.As(err, &ke) || ke.Provider != "env" {
			t.Errorf("error %v is not a *keyprovider.Error from env", err)
		}
	}
	return k, err
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFetch(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "key", secretKey+"\n")
	crlfFile := writeFile(t, dir, "crlf", "  "+secretKey+"\r\n\r\n")
	tests := []struct {
		name string
		vars []string
		want string
	}{
		{"variable", []string{"TESSERA_API_KEY", secretKey}, secretKey},
		{"variable with surrounding white space", []string{"TESSERA_API_KEY", " \t" + secretKey + "\n"}, secretKey},
		{"file", []string{"TESSERA_API_KEY_FILE", keyFile}, secretKey},
		{"file with CRLF and blanks", []string{"TESSERA_API_KEY_FILE", crlfFile}, secretKey},
		{"file path with white space around", []string{"TESSERA_API_KEY_FILE", " " + keyFile + "\n"}, secretKey},
		{"empty variable yields to the file", []string{"TESSERA_API_KEY", "", "TESSERA_API_KEY_FILE", keyFile}, secretKey},
		{"blank variable yields to the file", []string{"TESSERA_API_KEY", " \n", "TESSERA_API_KEY_FILE", keyFile}, secretKey},
		{"empty file variable yields to the variable", []string{"TESSERA_API_KEY", secretKey, "TESSERA_API_KEY_FILE", ""}, secretKey},
		{"other variables are ignored", []string{"TESSERA_API_KEY", secretKey, "TESSERAL_API_KEY_FILE", "/nonexistent"}, secretKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := env.ForService(keyprovider.Tessera, env.WithLookupEnv(newFakeEnv(tc.vars...).Lookup))
			k, err := fetch(t, p)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if k.Reveal() != tc.want {
				t.Errorf("Fetch = %v, want %v", k, keyprovider.NewKey(tc.want, ""))
			}
			if k.Version() != "" {
				t.Errorf("Version() = %q, want empty: the environment has no versions", k.Version())
			}
		})
	}
}

func TestFetchErrors(t *testing.T) {
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "key", secretKey)
	blankFile := writeFile(t, dir, "blank", "\n")
	crlfFile := writeFile(t, dir, "injected", secretKey+"\r\nX-Evil: 1\n")
	tesseralFile := writeFile(t, dir, "tesseral", "tesseral_secret_key_"+secretPart)
	bigFile := writeFile(t, dir, "big", secretKey+strings.Repeat("\n", env.MaxFileSize))
	refFile := writeFile(t, dir, "ref", "vault://kv/tessera#"+secretPart)
	plainFile := writeFile(t, dir, "plain", "x")
	bomFile := writeFile(t, dir, "bom", "\ufeff"+secretKey+"\r\n")
	missing := filepath.Join(dir, "missing")
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		vars []string
		kind error
		// ref is the *keyprovider.Error's Ref; says are fragments of the
		// message.
		ref  string
		says []string
	}{
		{"neither set", nil, keyprovider.ErrNotFound, "TESSERA_API_KEY",
			[]string{"keyprovider: env TESSERA_API_KEY: key not found: neither TESSERA_API_KEY nor TESSERA_API_KEY_FILE is set"}},
		{"both set", []string{"TESSERA_API_KEY", secretKey, "TESSERA_API_KEY_FILE", keyFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"TESSERA_API_KEY and TESSERA_API_KEY_FILE are both set; set only one"}},
		{"empty variable", []string{"TESSERA_API_KEY", ""}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"TESSERA_API_KEY: set to a blank value"}},
		{"blank variable", []string{"TESSERA_API_KEY", " \r\n"}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"TESSERA_API_KEY: set to a blank value"}},
		{"blank file variable", []string{"TESSERA_API_KEY_FILE", " "}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{"env TESSERA_API_KEY_FILE: invalid key: TESSERA_API_KEY_FILE: set to a blank value"}},
		{"both blank", []string{"TESSERA_API_KEY", "", "TESSERA_API_KEY_FILE", ""}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"blank"}},
		{"key of the other service", []string{"TESSERA_API_KEY", "tesseral_secret_key_" + secretPart}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"it looks like a tesseral key"}},
		{"header injection", []string{"TESSERA_API_KEY", secretKey + "\r\nX-Evil: 1"}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"control character 0x0d"}},
		{"a reference", []string{"TESSERA_API_KEY", "vault://kv/tessera#" + secretPart}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"holds a reference", "keyprovider.FromEnv"}},
		{"double-quoted", []string{"TESSERA_API_KEY", `"` + secretKey + `"`}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"is wrapped in quotes"}},
		{"single-quoted", []string{"TESSERA_API_KEY", "'" + secretKey + "'\n"}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY",
			[]string{"is wrapped in quotes"}},
		{"missing file", []string{"TESSERA_API_KEY_FILE", missing}, keyprovider.ErrNotFound, "TESSERA_API_KEY_FILE",
			[]string{"TESSERA_API_KEY_FILE: key not found: ", missing, "no such file or directory"}},
		{"path through a file", []string{"TESSERA_API_KEY_FILE", filepath.Join(plainFile, "key")}, keyprovider.ErrNotFound, "TESSERA_API_KEY_FILE",
			[]string{plainFile, "not a directory"}},
		{"symbolic link loop", []string{"TESSERA_API_KEY_FILE", loop}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{loop, "too many levels of symbolic links"}},
		{"directory", []string{"TESSERA_API_KEY_FILE", dir}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{dir, "not a regular file (a directory)"}},
		{"file too large", []string{"TESSERA_API_KEY_FILE", bigFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{bigFile, fmt.Sprintf("more than %d bytes", env.MaxFileSize)}},
		{"blank file", []string{"TESSERA_API_KEY_FILE", blankFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{blankFile + ": invalid tessera key: empty"}},
		{"header injection in a file", []string{"TESSERA_API_KEY_FILE", crlfFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{crlfFile, "control character 0x0d"}},
		{"other service's key in a file", []string{"TESSERA_API_KEY_FILE", tesseralFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{tesseralFile, "it looks like a tesseral key"}},
		{"file saved with a byte order mark", []string{"TESSERA_API_KEY_FILE", bomFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{bomFile, "starts with a UTF-8 byte order mark"}},
		{"reference in a file", []string{"TESSERA_API_KEY_FILE", refFile}, keyprovider.ErrInvalidKey, "TESSERA_API_KEY_FILE",
			[]string{refFile, "holds a reference"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := env.ForService(keyprovider.Tessera, env.WithLookupEnv(newFakeEnv(tc.vars...).Lookup))
			_, err := fetch(t, p)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Fetch error = %v, want %v", err, tc.kind)
			}
			var ke *keyprovider.Error
			if errors.As(err, &ke) && ke.Ref != tc.ref {
				t.Errorf("Ref = %q, want %q", ke.Ref, tc.ref)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

func TestFetchBothSetIsTyped(t *testing.T) {
	p := env.New("API_KEY", env.WithLookupEnv(newFakeEnv("API_KEY", secretKey, "API_KEY_FILE", "/run/secrets/k").Lookup))
	_, err := fetch(t, p)
	var ce *env.ConflictError
	if !errors.As(err, &ce) || ce.Var != "API_KEY" || ce.FileVar != "API_KEY_FILE" {
		t.Fatalf("error %v: want an *env.ConflictError naming both variables", err)
	}
	if !errors.Is(err, keyprovider.ErrInvalidKey) {
		t.Errorf("error %v does not wrap ErrInvalidKey", err)
	}
}

func TestFetchFileErrorsKeepPathError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	p := env.New("K", env.WithLookupEnv(newFakeEnv("K_FILE", missing).Lookup))
	_, err := fetch(t, p)
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != missing || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v: want the *fs.PathError for %s reachable", err, missing)
	}
}

func TestFetchFIFODoesNotBlock(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	p := env.New("K", env.WithLookupEnv(newFakeEnv("K_FILE", fifo).Lookup))
	// Opening a FIFO for reading blocks until a writer comes; Fetch must
	// refuse it without opening it. A hang here fails by the test timeout.
	_, err := fetch(t, p)
	if !errors.Is(err, keyprovider.ErrInvalidKey) || !strings.Contains(err.Error(), "a FIFO") {
		t.Errorf("Fetch of a FIFO = %v, want ErrInvalidKey saying it is a FIFO", err)
	}
}

func TestFetchUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads any file; the mapping is covered by TestFileErrKind.
		t.Skip("running as root, which permissions do not stop")
	}
	path := writeFile(t, t.TempDir(), "key", secretKey)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := fetch(t, env.New("K", env.WithLookupEnv(newFakeEnv("K_FILE", path).Lookup)))
	if !errors.Is(err, keyprovider.ErrPermission) || !strings.Contains(err.Error(), path) {
		t.Errorf("Fetch of an unreadable file = %v, want ErrPermission naming %s", err, path)
	}
}

func TestFetchRereadsEveryTime(t *testing.T) {
	t.Run("variable", func(t *testing.T) {
		e := newFakeEnv("K", secretKey)
		p := env.New("K", env.WithLookupEnv(e.Lookup))
		k1, _ := fetch(t, p)
		e.Set("K", otherKey)
		k2, _ := fetch(t, p)
		e.Unset("K")
		_, err := fetch(t, p)
		if k1.Reveal() != secretKey || k2.Reveal() != otherKey || !errors.Is(err, keyprovider.ErrNotFound) {
			t.Errorf("fetches saw %v, %v, %v; want the first key, the second, then ErrNotFound", k1, k2, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		path := writeFile(t, dir, "k", secretKey)
		p := env.New("K", env.WithLookupEnv(newFakeEnv("K_FILE", path).Lookup))
		k1, _ := fetch(t, p)
		writeFile(t, dir, "k", otherKey+"\n")
		k2, _ := fetch(t, p)
		if k1.Reveal() != secretKey || k2.Reveal() != otherKey {
			t.Errorf("fetches saw %v then %v; want the file's contents each time", k1, k2)
		}
	})
	t.Run("switch from variable to file", func(t *testing.T) {
		path := writeFile(t, t.TempDir(), "k", otherKey)
		e := newFakeEnv("K", secretKey)
		p := env.New("K", env.WithLookupEnv(e.Lookup))
		k1, _ := fetch(t, p)
		e.Unset("K")
		e.Set("K_FILE", path)
		k2, _ := fetch(t, p)
		if k1.Reveal() != secretKey || k2.Reveal() != otherKey {
			t.Errorf("fetches saw %v then %v", k1, k2)
		}
	})
}

func TestFetchRelativePath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "k", secretKey)
	t.Chdir(dir)
	k, err := fetch(t, env.New("K", env.WithLookupEnv(newFakeEnv("K_FILE", "k").Lookup)))
	if err != nil || k.Reveal() != secretKey {
		t.Errorf("Fetch with a relative path = %v, %v", k, err)
	}
}

func TestProcessEnvironmentByDefault(t *testing.T) {
	t.Setenv("KEYPROVIDER_ENV_TEST_KEY", " "+secretKey+"\n")
	k, err := fetch(t, env.New("KEYPROVIDER_ENV_TEST_KEY"))
	if err != nil || k.Reveal() != secretKey {
		t.Errorf("Fetch from the process environment = %v, %v", k, err)
	}
	t.Setenv("KEYPROVIDER_ENV_TEST_KEY", otherKey)
	if k, _ := fetch(t, env.New("KEYPROVIDER_ENV_TEST_KEY")); k.Reveal() != otherKey {
		t.Errorf("after Setenv, Fetch = %v, want the new key", k)
	}
}

func TestServiceOptions(t *testing.T) {
	anyToken := "ghp_notATesseraKey123"
	e := newFakeEnv("TESSERA_API_KEY", anyToken, "TOKEN", anyToken)
	tests := []struct {
		name    string
		p       *env.Provider
		wantErr bool
	}{
		{"New checks only header safety", env.New("TOKEN", env.WithLookupEnv(e.Lookup)), false},
		{"ForService checks the prefix", env.ForService(keyprovider.Tessera, env.WithLookupEnv(e.Lookup)), true},
		{"WithService on New checks the prefix", env.New("TOKEN", env.WithService(keyprovider.Tessera), env.WithLookupEnv(e.Lookup)), true},
		{"an option after ForService wins", env.ForService(keyprovider.Tessera, env.WithService(keyprovider.Service{}), env.WithLookupEnv(e.Lookup)), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := fetch(t, tc.p)
			switch {
			case tc.wantErr && !errors.Is(err, keyprovider.ErrInvalidKey):
				t.Errorf("Fetch = %v, %v; want ErrInvalidKey", k, err)
			case !tc.wantErr && (err != nil || k.Reveal() != anyToken):
				t.Errorf("Fetch = %v, %v; want the token", k, err)
			}
		})
	}
}

func TestProviderDescription(t *testing.T) {
	p := env.ForService(keyprovider.Tesseral)
	if p.Var() != "TESSERAL_API_KEY" || p.FileVar() != "TESSERAL_API_KEY_FILE" {
		t.Errorf("Var, FileVar = %q, %q", p.Var(), p.FileVar())
	}
	if got := fmt.Sprint(p); got != "env(TESSERAL_API_KEY)" {
		t.Errorf("String() = %q", got)
	}
}

func TestNoVariableName(t *testing.T) {
	for name, p := range map[string]*env.Provider{
		"New(\"\")":                       env.New(""),
		"ForService of a service without": env.ForService(keyprovider.Service{Name: "x"}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := fetch(t, p)
			if !errors.Is(err, keyprovider.ErrInvalidKey) || !strings.Contains(err.Error(), "no variable name") {
				t.Errorf("Fetch = %v, want ErrInvalidKey saying there is no variable name", err)
			}
		})
	}
}

func TestFetchContext(t *testing.T) {
	p := env.New("K", env.WithLookupEnv(newFakeEnv("K", secretKey).Lookup))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	for name, tc := range map[string]struct {
		ctx  context.Context
		want error
	}{
		"cancelled": {cancelled, context.Canceled},
		"expired":   {expired, context.DeadlineExceeded},
	} {
		t.Run(name, func(t *testing.T) {
			k, err := p.Fetch(tc.ctx)
			if !errors.Is(err, tc.want) || !k.IsZero() {
				t.Errorf("Fetch = %v, %v; want no key and %v", k, err, tc.want)
			}
			for _, s := range []error{keyprovider.ErrNotFound, keyprovider.ErrInvalidKey, keyprovider.ErrPermission, keyprovider.ErrUnavailable} {
				if errors.Is(err, s) {
					t.Errorf("a context error matches %v", s)
				}
			}
		})
	}
}
