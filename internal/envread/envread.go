// Package envread is the one implementation of the rules by which a key is
// given in the environment: a variable NAME holds the key, or a variable
// NAME_FILE holds the path of a file holding it (the convention of Docker
// and Kubernetes secrets). Package env's Provider and package keyprovider's
// FromEnv (its literal keys, its _FILE files and its env:// and file://
// references) all read through it, so that one input gives one error
// everywhere.
//
// It knows nothing of keys beyond the text: it returns the sentinels below
// and the [*os.PathError] of a failed file operation, and [Kind] classifies
// every one of them onto the root package's sentinels for every caller
// alike. It never puts a value it read into an error.
//
// # Rules
//
//   - A variable set to the empty string, or to white space only, yields to
//     its twin: Compose and Kubernetes manifests often pass "NAME=" through
//     beside a NAME_FILE.
//   - NAME and NAME_FILE both set (to non-blank values) is [ErrBothSet].
//   - Neither set at all is [ErrNotSet] (the root's ErrNotFound: nothing is
//     configured). One of them set, but only to a blank value, is
//     [ErrBlank] (the root's ErrInvalidKey): something is configured, and
//     it is not a key, as a blank secret is in every backend. So NAME=""
//     alone is ErrInvalidKey, for env.Provider and keyprovider.FromEnv alike.
//   - The file must be a regular file (a symbolic link to one, as Kubernetes
//     mounts secrets, is fine) of at most [MaxFileSize] bytes; a directory,
//     FIFO or device is [ErrNotRegular], a larger file [ErrTooLarge]. The
//     file is opened without blocking and then checked, so a FIFO never
//     blocks, even one swapped in under the path between two reads.
//   - A file that is missing is looked up once more before it is
//     [fs.ErrNotExist]: the kubelet swaps a mounted secret by pointing a
//     symbolic link at a new directory and then removing the old one.
//   - A value wrapped in a pair of quotes is [ErrQuoted]; a value that is a
//     reference ("scheme://...") is [ErrReference] where a key belongs.
package envread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/keyprovider/keyprovider/internal/kinds"
)

// FileSuffix is appended to a variable's name to name the variable holding
// the path of a file with its value: TESSERA_API_KEY_FILE.
const FileSuffix = "_FILE"

// MaxFileSize is the most bytes [ReadFile] reads from a file: far more than
// any key, far less than a mistake such as a log file or a disk image.
const MaxFileSize = 64 << 10

// The errors of this package, matchable with [errors.Is].
var (
	// ErrNotSet: neither NAME nor NAME_FILE is set (to a non-blank value).
	ErrNotSet = errors.New("not set")
	// ErrBlank: the variable is set, but only to white space.
	ErrBlank = errors.New("set to a blank value")
	// ErrBothSet: NAME and NAME_FILE are both set; one must go.
	ErrBothSet = errors.New("both the variable and its _FILE variable are set")
	// ErrTooLarge: the file is larger than [MaxFileSize].
	ErrTooLarge = errors.New("file too large")
	// ErrNotRegular: the path names a directory, FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrQuoted: the value is wrapped in quotes, which no key has.
	ErrQuoted = errors.New("the value is wrapped in quotes, which are not part of a key (docker run --env-file keeps them): remove them")
	// ErrReference: the value is a reference where a key belongs.
	ErrReference = errors.New("the value holds a reference (scheme://...), not the key itself")
)

// LookupFunc reads a variable, as [os.LookupEnv] does.
type LookupFunc func(name string) (value string, ok bool)

// Value is where a variable's value was found.
type Value struct {
	// Var is the variable that was set: NAME, or NAME_FILE when the value is
	// in a file.
	Var string
	// Text is the variable's value, trimmed of surrounding white space, when
	// Var is NAME; empty when the value is in a file.
	Text string
	// Path is the file's path when Var is NAME_FILE; empty otherwise.
	Path string
}

// FromFile reports whether the value is in a file (NAME_FILE was set).
func (v Value) FromFile() bool { return v.Path != "" }

// Lookup finds which of name and name_FILE is set, without reading any file.
// A nil lookup means [os.LookupEnv]. The errors are [ErrNotSet] and
// [ErrBothSet] and [ErrBlank], wrapped with the variables' names; with an
// error, Value.Var names the variable it is about (the blank one, or name
// when both or neither is set). The path is returned as
// written: a relative one is relative to the working directory.
func Lookup(lookup LookupFunc, name string) (Value, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	fileVar := name + FileSuffix
	text, textSet := get(lookup, name)
	path, pathSet := get(lookup, fileVar)
	switch {
	case text != "" && path != "":
		return Value{Var: name}, fmt.Errorf("%s and %s: %w; set only one", name, fileVar, ErrBothSet)
	case text != "":
		return Value{Var: name, Text: text}, nil
	case path != "":
		return Value{Var: fileVar, Path: path}, nil
	case textSet:
		return Value{Var: name}, fmt.Errorf("%s: %w", name, ErrBlank)
	case pathSet:
		return Value{Var: fileVar}, fmt.Errorf("%s: %w", fileVar, ErrBlank)
	default:
		return Value{Var: name}, notSetError{name: name, fileVar: fileVar}
	}
}

// notSetError names the two variables of which neither is set; it matches
// [ErrNotSet].
type notSetError struct{ name, fileVar string }

func (e notSetError) Error() string        { return "neither " + e.name + " nor " + e.fileVar + " is set" }
func (e notSetError) Is(target error) bool { return target == ErrNotSet }

// Var reads the single variable name (no _FILE twin), by the same rules:
// unset is [ErrNotSet], blank [ErrBlank]. It returns the value trimmed.
func Var(lookup LookupFunc, name string) (string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	switch v, set := get(lookup, name); {
	case v != "":
		return v, nil
	case set:
		return "", fmt.Errorf("%s: %w", name, ErrBlank)
	default:
		return "", fmt.Errorf("%s: %w", name, ErrNotSet)
	}
}

func get(lookup LookupFunc, name string) (value string, set bool) {
	v, ok := lookup(name)
	return strings.TrimSpace(v), ok
}

// KeyText returns the text of the key v names: the variable's text, or the
// contents of its file (read with [ReadFile], untrimmed). It refuses a
// value wrapped in quotes ([ErrQuoted]) and one that is a reference
// ([ErrReference]): a file, or a variable read for its key, holds the key
// itself. A caller that follows references checks [IsRef] first.
func KeyText(v Value) (string, error) {
	raw := v.Text
	if v.FromFile() {
		var err error
		if raw, err = ReadFile(v.Path); err != nil {
			return "", err
		}
	}
	if err := CheckKeyText(raw); err != nil {
		if v.FromFile() {
			return "", fmt.Errorf("%s: %w", v.Path, err)
		}
		return "", err
	}
	return raw, nil
}

// CheckKeyText refuses text that cannot be a key for a reason a user can
// fix by editing it: quotes around it ([ErrQuoted]), or a reference where
// the key belongs ([ErrReference]).
func CheckKeyText(raw string) error {
	v := strings.TrimSpace(raw)
	switch {
	case IsRef(v):
		return ErrReference
	case IsQuoted(v):
		return ErrQuoted
	}
	return nil
}

// IsQuoted reports whether v is wrapped in a pair of single or double
// quotes, which `docker run --env-file` and some .env loaders keep.
func IsQuoted(v string) bool {
	return len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0]
}

// IsRef reports whether s has the shape of a reference ("scheme://..."),
// known scheme or not: the one test of "is this value a reference" for
// every reader.
func IsRef(s string) bool {
	_, _, ok := SplitScheme(s)
	return ok
}

// SplitScheme splits "scheme://rest". ok is false if s does not start with
// a syntactically valid scheme (RFC 3986: a letter, then letters, digits,
// "+", "-" and ".") followed by "://".
func SplitScheme(s string) (scheme, rest string, ok bool) {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return s[:i], s[i+3:], true
}

// ReadFile reads the file at path, at most [MaxFileSize] bytes of it, and
// looks once more when it is missing (see the package doc). It returns the
// contents as they are (untrimmed). Errors are [*os.PathError] values
// (matchable with [errors.Is] against [fs.ErrNotExist],
// [fs.ErrPermission]...), or wrap [ErrNotRegular] or [ErrTooLarge]; they name
// the path, never the contents.
func ReadFile(path string) (string, error) {
	s, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A lookup that followed the kubelet's old link may find its
		// directory gone; looking again follows the new link.
		s, err = readFile(path)
	}
	return s, err
}

// readFile opens path without blocking (a FIFO's open would wait for a
// writer, whatever the caller's context), checks that what it opened is a
// regular file, and only then reads it. Checking the opened file, not the
// path, leaves no window for a swap between the check and the read.
func readFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	if err := clearNonblock(f); err != nil {
		return "", &fs.PathError{Op: "fcntl", Path: path, Err: err}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > MaxFileSize {
		return "", fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, MaxFileSize)
	}
	return string(b), nil
}

func kind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	default:
		return "mode " + m.String()
	}
}

// Kind classifies an error of this package onto the root package's
// sentinels: the one table for env/ and the root's env://, file:// and
// _FILE reads.
func Kind(err error) error {
	switch {
	case errors.Is(err, ErrNotSet):
		return kinds.ErrNotFound
	case errors.Is(err, ErrBlank), errors.Is(err, ErrBothSet), errors.Is(err, ErrQuoted), errors.Is(err, ErrReference):
		return kinds.ErrInvalidKey
	}
	return FileErrKind(err)
}

// FileErrKind classifies a failure to read a key file onto the root
// package's sentinels.
func FileErrKind(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		// ENOTDIR: a component of the path is a file, so the file is not
		// there.
		return kinds.ErrNotFound
	case errors.Is(err, os.ErrPermission):
		return kinds.ErrPermission
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrNotRegular),
		errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.ENAMETOOLONG):
		// Not a key file, or a path that cannot name one: a configuration
		// mistake that retrying will not cure.
		return kinds.ErrInvalidKey
	default:
		return kinds.ErrUnavailable
	}
}
