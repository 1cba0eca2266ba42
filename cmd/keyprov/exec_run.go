package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/internal/supervise"
	"github.com/keyprovider/keyprovider/rotate"
)

// Exit statuses of keyprov exec itself, apart from the child's own.
const (
	// exitExecFailed: keyprov exec could not run the program (a usage
	// error, a reference that did not resolve, a key file that could not
	// be written). The child was not started. As docker run and env(1).
	exitExecFailed = 125
)

// restartDelay is the pause before a child that exited is started again
// under --restart-on-exit, so that a program that fails at once does not
// spin.
const restartDelay = time.Second

// rotateAction is what --on-rotate says to do when a key changes.
type rotateAction struct {
	// kind is "restart", "signal" or "none".
	kind string
	// sig is the signal of "signal".
	sig syscall.Signal
}

// execConfig is a parsed keyprov exec command line, and what it runs with.
type execConfig struct {
	argv     []string
	env      *childEnv
	bindings []binding
	// keyFiles maps a resolved variable to the file its key is written to.
	keyFiles map[string]string

	onRotate        rotateAction
	stopSignal      syscall.Signal
	stopTimeout     time.Duration
	debounce, splay time.Duration
	refresh         time.Duration
	timeout         time.Duration
	restartOnExit   bool
	mask            bool
	logLevel        slog.Level
	// metricsListen is --metrics-listen: where /metrics is served ("": not).
	metricsListen string
	// meterProvider records the Sources' metrics; nil means the global one.
	meterProvider metric.MeterProvider

	clock   rotate.Clock   // nil: the system clock
	rand    func() float64 // the splay's draw; nil: math/rand/v2
	signals <-chan os.Signal
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	log     *slog.Logger
	// rotateLog is the rotate.Sources' logger; nil means log.
	rotateLog *slog.Logger
	// observe, if not nil, is told of events ("started", "rotated",
	// "debounce", "applied", "exited"), for tests to follow the
	// supervisor.
	observe func(event string)
}

// supervisor runs the child, follows the keys and applies rotations.
type supervisor struct {
	execConfig
	sources []*rotate.Source
	changed chan struct{}
	// running are the keys the child was last given, by variable.
	running map[string]keyprovider.Key
	child   *supervise.Child
	// masker is the child's --mask output, flushed once it has exited.
	masker *masker
	// lastStatus is the exit status of the last child that exited.
	lastStatus int
	// quitting is set once a terminating signal was forwarded: the child
	// is not started again.
	quitting bool
}

// execute resolves the keys of cfg, runs the child and supervises it; it
// returns keyprov exec's exit status. The bindings are closed on return.
func execute(ctx context.Context, cfg execConfig) int {
	if cfg.clock == nil {
		cfg.clock = supervise.SystemClock{}
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if cfg.rotateLog == nil {
		cfg.rotateLog = cfg.log
	}
	s := &supervisor{execConfig: cfg, changed: make(chan struct{}, 1)}
	defer s.close()
	keys, ok := s.resolve(ctx)
	if !ok {
		return exitExecFailed
	}
	for _, b := range s.bindings {
		if path, ok := s.keyFiles[b.name]; ok {
			s.env.unset(b.name)
			s.env.set(b.name+"_FILE", path)
		}
	}
	defer s.removeKeyFiles()
	if err := s.writeKeyFiles(keys); err != nil {
		s.log.Error("keyprov exec: cannot write a key file; not starting the program", "err", err)
		return exitExecFailed
	}
	for i, src := range s.sources {
		name, first := s.bindings[i].name, keys[s.bindings[i].name]
		src.OnRotate(func(old, new keyprovider.Key) {
			if old.IsZero() && new.Equal(first) {
				return // the key in force when we subscribed: the child's
			}
			s.log.Info("keyprov exec: key rotated", "var", name, "old", old, "new", new)
			select {
			case s.changed <- struct{}{}:
			default:
			}
			s.event("rotated")
		})
	}
	if code, ok := s.start(keys); !ok {
		return code
	}
	return s.loop(ctx)
}

func (s *supervisor) event(e string) {
	if s.observe != nil {
		s.observe(e)
	}
}

// resolve makes a rotate.Source of every binding and waits for the first
// key of each; it logs what failed, by variable, and reports false.
func (s *supervisor) resolve(ctx context.Context) (map[string]keyprovider.Key, bool) {
	keys := make(map[string]keyprovider.Key, len(s.bindings))
	for _, b := range s.bindings {
		opts := []rotate.Option{rotate.WithService(b.svc), rotate.WithClock(s.clock), rotate.WithLogger(s.rotateLog)}
		if s.refresh > 0 {
			opts = append(opts, rotate.WithRefreshInterval(s.refresh))
		}
		if s.rand != nil {
			opts = append(opts, rotate.WithRand(s.rand))
		}
		if s.meterProvider != nil {
			opts = append(opts, rotate.WithMeterProvider(s.meterProvider))
		}
		src, err := rotate.New(b.p, opts...)
		if err != nil {
			s.log.Error("keyprov exec: cannot resolve; not starting the program", "var", b.name, "err", err)
			return nil, false
		}
		s.sources = append(s.sources, src)
	}
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for i, src := range s.sources {
		b := s.bindings[i]
		k, err := src.Token(tctx)
		if err != nil {
			s.log.Error("keyprov exec: cannot resolve; not starting the program", "var", b.name, "source", b.source, "err", err)
			return nil, false
		}
		keys[b.name] = k
		s.log.Info("keyprov exec: resolved", "var", b.name, "source", b.source, "key", k)
	}
	return keys, true
}

// close closes the sources, which close their providers, and the bindings
// that have no source.
func (s *supervisor) close() {
	for _, src := range s.sources {
		_ = src.Close()
	}
	closeBindings(s.bindings[len(s.sources):])
}

// start starts the child with keys; on failure it returns the exit status.
func (s *supervisor) start(keys map[string]keyprovider.Key) (int, bool) {
	envKeys := make(map[string]keyprovider.Key, len(keys))
	for name, k := range keys {
		if _, inFile := s.keyFiles[name]; !inFile {
			envKeys[name] = k
		}
	}
	spec := supervise.Spec{Path: s.argv[0], Args: s.argv[1:], Env: s.env.environ(envKeys),
		Stdin: s.stdin, Stdout: s.stdout, Stderr: s.stderr}
	var m *masker
	if s.mask {
		all := slices.Collect(maps.Values(keys))
		m = newMasker(append(all, slices.Collect(maps.Values(s.running))...), s.stdout, s.stderr)
		spec.Stdout, spec.Stderr = m.stdout, m.stderr
	}
	c, err := supervise.Start(spec)
	if err != nil {
		if m != nil {
			m.close()
		}
		s.log.Error("keyprov exec: cannot start the program", "program", s.argv[0], "err", err)
		return supervise.StartStatus(err), false
	}
	s.child, s.running = c, keys
	s.masker = m
	s.log.Info("keyprov exec: started", "program", s.argv[0], "pid", c.Pid())
	s.event("started")
	return 0, true
}

// reaped forgets the child, which has exited and been reaped, and writes
// out what is left of its --mask output: [supervise.Child.Done] is closed
// only once all of its output has been copied.
func (s *supervisor) reaped() {
	s.child = nil
	if s.masker != nil {
		s.masker.close()
		s.masker = nil
	}
}

// terminating reports whether sig asks the program to end. SIGHUP is not
// taken to: many programs reload on it.
func terminating(sig os.Signal) bool {
	switch sig {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT:
		return true
	}
	return false
}

func timerC(t rotate.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

// loop supervises the child until keyprov exec ends; it returns the exit
// status.
func (s *supervisor) loop(ctx context.Context) int {
	var debounce, restart rotate.Timer
	defer func() {
		for _, t := range []rotate.Timer{debounce, restart} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	for {
		var childDone <-chan struct{}
		if s.child != nil {
			childDone = s.child.Done()
		}
		select {
		case sig := <-s.signals:
			s.forward(sig)
			if s.child == nil && s.quitting {
				return s.lastStatus
			}
		case <-childDone:
			s.lastStatus = s.child.ExitCode()
			s.reaped()
			s.log.Info("keyprov exec: program exited", "status", s.lastStatus)
			if !s.restartOnExit || s.quitting {
				s.event("exited")
				return s.lastStatus
			}
			restart = s.clock.NewTimer(restartDelay)
			s.event("exited")
		case <-timerC(restart):
			restart = nil
			if code, ok := s.start(s.currentKeys()); !ok {
				return code
			}
		case <-s.changed:
			if debounce == nil {
				d := s.debounce
				if s.splay > 0 {
					d += time.Duration(s.draw() * float64(s.splay))
				}
				debounce = s.clock.NewTimer(d)
				s.event("debounce")
			}
		case <-timerC(debounce):
			debounce = nil
			if code, done := s.apply(); done {
				return code
			}
		case <-ctx.Done():
			if s.child == nil {
				return s.lastStatus
			}
			status, _ := s.child.Stop(s.stopSignal, s.stopTimeout, s.clock, nil, nil)
			s.reaped()
			return status
		}
	}
}

// noteSignal notes a terminating signal: the child is not started again.
func (s *supervisor) noteSignal(sig os.Signal) {
	if terminating(sig) {
		s.quitting = true
	}
}

// forward passes sig on to the child, and notes a terminating one.
func (s *supervisor) forward(sig os.Signal) {
	s.noteSignal(sig)
	if ss, ok := sig.(syscall.Signal); ok && s.child != nil {
		_ = s.child.Signal(ss)
	}
}

// currentKeys are the keys the sources hold now.
func (s *supervisor) currentKeys() map[string]keyprovider.Key {
	keys := make(map[string]keyprovider.Key, len(s.sources))
	for i, src := range s.sources {
		// A Source that holds a key returns it at once; past MaxStale it
		// errs, and the child keeps the key it has.
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		k, err := src.Token(ctx)
		cancel()
		if err != nil {
			k = s.running[s.bindings[i].name]
		}
		keys[s.bindings[i].name] = k
	}
	return keys
}

// apply delivers the keys the sources hold to the child, as --on-rotate
// says, when any differs from the child's. done is true when keyprov exec
// is to end with code.
func (s *supervisor) apply() (code int, done bool) {
	keys := s.currentKeys()
	changed := false
	for name, k := range keys {
		if !k.Equal(s.running[name]) {
			changed = true
		}
	}
	if !changed {
		s.log.Info("keyprov exec: keys back to those the program has; nothing to do")
		return 0, false
	}
	if err := s.writeKeyFiles(keys); err != nil {
		s.log.Error("keyprov exec: cannot write a key file; the program keeps its keys", "err", err)
		return 0, false
	}
	defer s.event("applied")
	switch {
	case s.child == nil: // waiting for --restart-on-exit: it starts with keys
		s.running = keys
	case s.onRotate.kind == "none":
		s.log.Info("keyprov exec: new keys; the program keeps running with its own (--on-rotate none)")
		s.running = keys
	case s.onRotate.kind == "signal":
		s.log.Info("keyprov exec: new keys; signalling the program", "signal", s.onRotate.sig.String())
		_ = s.child.Signal(s.onRotate.sig)
		s.running = keys
	default:
		s.log.Info("keyprov exec: new keys; restarting the program", "signal", s.stopSignal.String(), "timeout", s.stopTimeout)
		status, killed := s.child.Stop(s.stopSignal, s.stopTimeout, s.clock, s.signals, s.noteSignal)
		s.lastStatus = status
		s.reaped()
		s.log.Info("keyprov exec: program stopped", "status", status, "killed", killed)
		if s.quitting {
			return status, true
		}
		if code, ok := s.start(keys); !ok {
			return code, true
		}
	}
	return 0, false
}

func (s *supervisor) draw() float64 {
	if s.rand != nil {
		return s.rand()
	}
	return randFloat()
}
