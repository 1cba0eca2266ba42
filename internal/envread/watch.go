package envread

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/keyprovider/keyprovider/internal/redact"
)

// DefaultPollInterval is how often [Watch] looks at a file it cannot watch
// (no inotify, too many watches): about the latency a watch gives, for the
// cost of two stat calls a second.
const DefaultPollInterval = time.Second

type loggerKey struct{}

// ContextWithLogger returns ctx carrying l, the logger [Watch] writes its
// one warning to when it falls back to polling. Package rotate passes its
// Source's logger this way, so that the Watcher interface stays one method.
func ContextWithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// watchConfig is what tests change about [Watch].
type watchConfig struct {
	poll       time.Duration
	newWatcher func() (*fsnotify.Watcher, error)
}

var defaultWatchConfig = watchConfig{poll: DefaultPollInterval, newWatcher: fsnotify.NewWatcher}

// Watch reports changes of the file at path: the returned channel (buffered,
// of one) receives a value, without ever blocking the watcher, whenever the
// file may have changed, and is closed once ctx is done and the watch has
// stopped. The values are hints: the caller reads the file again.
//
// It watches directories, not the file: the file's own directory, and the
// directory of the file its symbolic links resolve to, so that the
// kubelet's swap of a mounted secret's "..data" link, a rename over the
// file and a write in place are all seen. After every change it looks
// again at what to watch: a directory that was replaced is watched anew,
// and while one is missing its nearest existing ancestor is watched, to
// see it come back.
//
// A watch that cannot be set up (no inotify, too many watches) is no error:
// Watch logs one warning (to the logger of [ContextWithLogger], else
// slog.Default) and looks at the file every [DefaultPollInterval] instead.
func Watch(ctx context.Context, path string) <-chan struct{} {
	return watchWith(ctx, path, defaultWatchConfig)
}

func watchWith(ctx context.Context, path string, cfg watchConfig) <-chan struct{} {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	fw := &fileWatch{path: abs, cfg: cfg, log: loggerFrom(ctx), out: make(chan struct{}, 1)}
	go fw.run(ctx)
	return fw.out
}

// fileWatch is one Watch: its goroutine owns every field.
type fileWatch struct {
	path     string // absolute
	resolved string // path with its symbolic links resolved, when it exists
	cfg      watchConfig
	log      *slog.Logger
	out      chan struct{}
	w        *fsnotify.Watcher
}

func (fw *fileWatch) run(ctx context.Context) {
	defer close(fw.out)
	err := fw.notify(ctx)
	if err == nil || ctx.Err() != nil {
		return
	}
	fw.log.Warn("keyprovider: cannot watch a key file's directory; polling the file instead",
		"error", redact.Error(err), "poll_interval", fw.cfg.poll)
	prev := stampOf(fw.path)
	fw.hint() // a change may have been missed while the watch failed
	fw.poll(ctx, prev)
}

// notify watches with fsnotify until ctx is done (nil) or the watch fails
// (its error).
func (fw *fileWatch) notify(ctx context.Context) error {
	w, err := fw.cfg.newWatcher()
	if err != nil {
		return err
	}
	defer w.Close() // waits for fsnotify's goroutine
	fw.w = w
	if err := fw.arm(); err != nil {
		return err
	}
	// The reader's first read and this watch started independently: a
	// change between the two would go unseen until its next scheduled
	// read. Once armed, one hint closes that gap.
	fw.hint()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errWatchClosed
			}
			if !fw.relevant(ev.Name) {
				continue
			}
			if err := fw.arm(); err != nil {
				return err
			}
			fw.hint()
		case err, ok := <-w.Errors:
			if !ok {
				return errWatchClosed
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: look again, and re-read the file.
				if err := fw.arm(); err != nil {
					return err
				}
				fw.hint()
				continue
			}
			return err
		}
	}
}

var errWatchClosed = errors.New("the file watch was closed")

// arm makes the set of watched directories the one the file needs now: its
// directory and that of its resolved target (or, when missing, their
// nearest existing ancestors). It is called after every relevant event,
// before the hint goes out, so that a change after the hint is watched and
// a change before it is seen by the read the hint causes.
func (fw *fileWatch) arm() error {
	for attempt := 0; ; attempt++ {
		want := []string{existingDir(filepath.Dir(fw.path))}
		fw.resolved = ""
		if r, err := filepath.EvalSymlinks(fw.path); err == nil {
			fw.resolved = r
			if d := existingDir(filepath.Dir(r)); !slices.Contains(want, d) {
				want = append(want, d)
			}
		}
		for _, d := range fw.w.WatchList() {
			if !slices.Contains(want, d) {
				_ = fw.w.Remove(d) // gone already, or no longer wanted
			}
		}
		err := fw.addAll(want)
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 2 {
			return err
		}
		// A directory vanished between the look and the watch: look again.
	}
}

func (fw *fileWatch) addAll(dirs []string) error {
	have := fw.w.WatchList()
	for _, d := range dirs {
		if slices.Contains(have, d) {
			continue
		}
		if err := fw.w.Add(d); err != nil {
			return err
		}
	}
	return nil
}

// existingDir returns dir, or its nearest ancestor that exists.
func existingDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// relevant reports whether an event on name can change what the file
// holds: anything in the file's own directory (the kubelet's "..data" and
// timestamped directories live there), the file's resolved target, or a
// directory on the way to either.
func (fw *fileWatch) relevant(name string) bool {
	name = filepath.Clean(name)
	if filepath.Dir(name) == filepath.Dir(fw.path) || isAncestorOrSelf(name, fw.path) {
		return true
	}
	return fw.resolved != "" && isAncestorOrSelf(name, fw.resolved)
}

func isAncestorOrSelf(dir, path string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// hint tells the reader to look again, never blocking: a hint already
// pending covers this one.
func (fw *fileWatch) hint() {
	select {
	case fw.out <- struct{}{}:
	default:
	}
}

// poll looks at the file every poll interval and, from prev on, hints when what the path
// leads to changed: another file, or the same one written since.
func (fw *fileWatch) poll(ctx context.Context, prev stamp) {
	t := time.NewTicker(fw.cfg.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cur := stampOf(fw.path); !cur.same(prev) {
			prev = cur
			fw.hint()
		}
	}
}

// stamp is what polling compares: the file the path leads to, and when and
// how it was last written.
type stamp struct{ fi os.FileInfo }

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{fi: fi}
}

func (s stamp) same(o stamp) bool {
	if s.fi == nil || o.fi == nil {
		return s.fi == nil && o.fi == nil
	}
	return os.SameFile(s.fi, o.fi) && s.fi.ModTime().Equal(o.fi.ModTime()) &&
		s.fi.Size() == o.fi.Size() && s.fi.Mode() == o.fi.Mode()
}
