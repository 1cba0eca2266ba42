package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotation"
)

// fileWriter rotates the key in a file (a file:// reference or a _FILE
// variable, with --write-file): nothing is staged; Promote replaces the
// file by an atomic rename of a file written beside it, with the old
// file's mode. The old key is not kept.
type fileWriter struct {
	path string
}

var _ rotation.Writer = fileWriter{}

func (w fileWriter) Stage(_ context.Context, current, next keyprovider.Key) (rotation.Staged, error) {
	if next.Equal(current) {
		return rotation.Staged{}, fmt.Errorf("%w (%w)", rotation.ErrSameKey, keyprovider.ErrInvalidKey)
	}
	return rotation.Staged{Mode: rotation.Unconditional, Next: next, Previous: current}, nil
}

func (w fileWriter) Promote(_ context.Context, s rotation.Staged) (keyprovider.Key, error) {
	fi, err := os.Stat(w.path)
	if err != nil {
		return keyprovider.Key{}, fmt.Errorf("the key file: %w", err)
	}
	old, err := os.ReadFile(w.path)
	if err != nil {
		return keyprovider.Key{}, fmt.Errorf("the key file: %w", err)
	}
	content := s.Next.Reveal()
	if bytes.HasSuffix(old, []byte("\n")) {
		content += "\n"
	}
	if err := writeFileAtomic(w.path, content, fi.Mode().Perm()); err != nil {
		if le := (*os.LinkError)(nil); errors.As(err, &le) {
			return keyprovider.Key{}, fmt.Errorf("replacing the key file: %w", err)
		}
		return keyprovider.Key{}, fmt.Errorf("writing beside the key file: %w", err)
	}
	return s.Next, nil
}

func (w fileWriter) Abandon(context.Context, rotation.Staged) (string, error) {
	return "nothing was written to the file", nil
}
