package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/keyprovider/keyprovider"
)

// writeKeyFiles writes the key of every --key-file variable to its file.
func (s *supervisor) writeKeyFiles(keys map[string]keyprovider.Key) error {
	for name, path := range s.keyFiles {
		k, ok := keys[name]
		if !ok || k.Equal(s.running[name]) && s.running != nil {
			continue
		}
		if err := writeFileAtomic(path, k.Reveal()+"\n", 0o600); err != nil {
			return fmt.Errorf("--key-file %s: %w", name, err)
		}
		s.log.Info("keyprov exec: key written", "var", name, "file", path, "key", k)
	}
	return nil
}

// removeKeyFiles removes the key files once keyprov exec ends: the
// program they were for is gone, and a key at rest is one more to leak.
func (s *supervisor) removeKeyFiles() {
	for name, path := range s.keyFiles {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			s.log.Warn("keyprov exec: cannot remove a key file", "var", name, "file", path, "err", err)
		}
	}
}

// writeFileAtomic writes data to path with mode perm: to a temporary file
// in the same directory, synced, then renamed over path, so that a reader
// sees the old key or the new one, never a part. A failed rename is an
// *os.LinkError; path is untouched whatever fails.
func writeFileAtomic(path, data string, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = io.WriteString(f, data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// maskFlushAt is how much of a line without a newline --mask holds before
// writing it out anyway; it keeps the last MaxKeyLen bytes back, so a key
// split across writes is still replaced.
const maskFlushAt = 64 << 10

// masker is the stdout and stderr of a child under --mask: each line is
// written out with every key replaced by its fingerprint.
type masker struct {
	stdout, stderr *maskWriter
}

func newMasker(keys []keyprovider.Key, stdout, stderr io.Writer) *masker {
	var pairs []string
	sorted := slices.Clone(keys)
	// Longer keys first, so that a key containing another is replaced whole.
	slices.SortFunc(sorted, func(a, b keyprovider.Key) int { return len(b.Reveal()) - len(a.Reveal()) })
	for _, k := range sorted {
		if !k.IsZero() {
			pairs = append(pairs, k.Reveal(), k.Fingerprint())
		}
	}
	r := strings.NewReplacer(pairs...)
	return &masker{stdout: &maskWriter{dst: stdout, r: r}, stderr: &maskWriter{dst: stderr, r: r}}
}

// close writes out what is left of an unfinished last line.
func (m *masker) close() {
	m.stdout.flush()
	m.stderr.flush()
}

type maskWriter struct {
	mu  sync.Mutex
	dst io.Writer
	r   *strings.Replacer
	buf []byte
}

// Write buffers p and writes out the complete lines, masked. It never
// fails: an error of the destination drops the output, as a closed
// terminal would, rather than stopping the child.
func (w *maskWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if i := bytes.LastIndexByte(w.buf, '\n'); i >= 0 {
		_, _ = io.WriteString(w.dst, w.r.Replace(string(w.buf[:i+1])))
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
	if len(w.buf) > maskFlushAt {
		s := w.r.Replace(string(w.buf))
		cut := len(s) - keyprovider.MaxKeyLen
		_, _ = io.WriteString(w.dst, s[:cut])
		w.buf = append(w.buf[:0], s[cut:]...)
	}
	return len(p), nil
}

func (w *maskWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		_, _ = io.WriteString(w.dst, w.r.Replace(string(w.buf)))
		w.buf = w.buf[:0]
	}
}
