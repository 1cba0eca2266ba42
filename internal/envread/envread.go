// Package envread reads a value that is given either in an environment
// variable NAME or in a file whose path is in NAME_FILE, the convention of
// Docker and Kubernetes secrets, with bounded file reads.
//
// It knows nothing of keys: it returns the sentinels below and the
// [*os.PathError] of a failed file operation, which [FileErrKind] classifies
// onto the root package's sentinels for every caller alike.
// It never puts a value it read into an error.
//
// # Rules
//
//   - A variable set to the empty string, or to white space only, counts as
//     unset: Compose and Kubernetes manifests often pass "NAME=" through.
//   - NAME and NAME_FILE both set is [ErrBothSet]; neither is [ErrNotSet].
//   - The file must be a regular file (a symbolic link to one, as Kubernetes
//     mounts secrets, is fine) of at most [MaxFileSize] bytes; a directory,
//     FIFO or device is [ErrNotRegular], a larger file [ErrTooLarge]. The
//     check is made before the file is opened, so a FIFO never blocks.
package envread

import (
	"errors"
	"fmt"
	"io"
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
	// ErrBothSet: NAME and NAME_FILE are both set; one must go.
	ErrBothSet = errors.New("both the variable and its _FILE variable are set")
	// ErrTooLarge: the file is larger than [MaxFileSize].
	ErrTooLarge = errors.New("file too large")
	// ErrNotRegular: the path names a directory, FIFO, device or socket.
	ErrNotRegular = errors.New("not a regular file")
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
// [ErrBothSet], wrapped with the variables' names. The path is returned as
// written: a relative one is relative to the working directory.
func Lookup(lookup LookupFunc, name string) (Value, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	fileVar := name + FileSuffix
	text := get(lookup, name)
	path := get(lookup, fileVar)
	switch {
	case text != "" && path != "":
		return Value{}, fmt.Errorf("%s and %s: %w; set only one", name, fileVar, ErrBothSet)
	case text != "":
		return Value{Var: name, Text: text}, nil
	case path != "":
		return Value{Var: fileVar, Path: path}, nil
	default:
		return Value{}, fmt.Errorf("%s (or %s): %w", name, fileVar, ErrNotSet)
	}
}

func get(lookup LookupFunc, name string) string {
	v, ok := lookup(name)
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}

// ReadFile reads the file at path, at most [MaxFileSize] bytes of it. It
// returns the contents as they are (untrimmed). Errors are [*os.PathError]
// values (matchable with [errors.Is] against [fs.ErrNotExist],
// [fs.ErrPermission]...), or wrap [ErrNotRegular] or [ErrTooLarge]; they name
// the path, never the contents.
func ReadFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(fi.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
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

// FileErrKind classifies a failure to read a key file onto the root
// package's sentinels: the one table for env/ and the root's file:// and
// _FILE reads.
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
