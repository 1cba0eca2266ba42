package envread_test

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/envread"
)

// TestFileErrKind covers, for env/ and the root alike, the classification of file errors, including those
// a test cannot cause for real when it runs as root (EACCES) or on a healthy
// disk (EIO).
func TestFileErrKind(t *testing.T) {
	pe := func(errno error) error { return &fs.PathError{Op: "open", Path: "/run/secrets/k", Err: errno} }
	tests := []struct {
		err  error
		want error
	}{
		{pe(syscall.ENOENT), keyprovider.ErrNotFound},
		{pe(syscall.ENOTDIR), keyprovider.ErrNotFound},
		{pe(syscall.EACCES), keyprovider.ErrPermission},
		{pe(syscall.EPERM), keyprovider.ErrPermission},
		{pe(syscall.EIO), keyprovider.ErrUnavailable},
		{pe(syscall.ELOOP), keyprovider.ErrInvalidKey},
		{pe(syscall.ENAMETOOLONG), keyprovider.ErrInvalidKey},
		{pe(syscall.EMFILE), keyprovider.ErrUnavailable},
		{fmt.Errorf("/x: %w", envread.ErrTooLarge), keyprovider.ErrInvalidKey},
		{fmt.Errorf("/x: %w (a directory)", envread.ErrNotRegular), keyprovider.ErrInvalidKey},
		{errors.New("something else"), keyprovider.ErrUnavailable},
	}
	for _, tc := range tests {
		if got := envread.FileErrKind(tc.err); got != tc.want {
			t.Errorf("FileErrKind(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
