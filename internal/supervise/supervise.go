// Package supervise starts a child process and stays its parent: it sends
// it signals (to its process group when the child made one), stops it with
// a signal and a deadline before SIGKILL, reaps it, and reports its exit
// status the way a shell does (128+N for a child killed by signal N).
//
// It is the process half of `keyprov exec`; it knows nothing of keys.
package supervise

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keyprovider/keyprovider/rotate"
)

// Exit statuses for a child that could not be started, as POSIX shells,
// env(1) and docker run use them.
const (
	// ExitCannotExec is the status for a program that was found but could
	// not be executed (permission denied, not an executable).
	ExitCannotExec = 126
	// ExitNotFound is the status for a program that was not found.
	ExitNotFound = 127
)

// ErrStart is wrapped by the errors of [Start].
var ErrStart = errors.New("supervise: cannot start the program")

// Spec is what to run.
type Spec struct {
	// Path is the program: a name looked up in PATH (of Env, else of this
	// process), or a path.
	Path string
	// Args are the arguments, without the program name.
	Args []string
	// Env is the child's whole environment, "NAME=VALUE" entries. Nil
	// means an empty environment.
	Env []string
	// Stdin, Stdout and Stderr are the child's streams. Nil means the
	// null device for Stdin and discarded output, as in [exec.Cmd]; an
	// [*os.File] is handed to the child as it is (a terminal stays a
	// terminal).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Child is a running (or exited) child process. Its methods are safe for
// concurrent use.
type Child struct {
	cmd  *exec.Cmd
	done chan struct{}
	// state and waitErr are set before done is closed.
	state   *os.ProcessState
	waitErr error
}

// Start starts the program and a goroutine that reaps it when it exits.
// Its error wraps [ErrStart] and the error of [exec.Cmd.Start]; use
// [StartStatus] to turn it into an exit status.
func Start(s Spec) (*Child, error) {
	path, err := lookPath(s.Path, s.Env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	cmd := exec.Command(path, s.Args...)
	cmd.Args[0] = s.Path
	cmd.Env = s.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr
	children.mu.Lock() // the orphan reaper must not take it before it is tracked
	err = cmd.Start()
	if err == nil {
		track(cmd.Process.Pid)
	}
	children.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStart, err)
	}
	c := &Child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		c.state = cmd.ProcessState
		untrack(cmd.Process.Pid)
		close(c.done)
	}()
	return c, nil
}

// lookPath finds the program as the child's PATH (the last PATH entry of
// env, else this process's) would.
func lookPath(name string, env []string) (string, error) {
	path, had := os.LookupEnv("PATH")
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			path, had = v, true
			break
		}
	}
	if strings.Contains(name, "/") || !had {
		return exec.LookPath(name)
	}
	var firstErr error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p, err := exec.LookPath(dir + string(filepath.Separator) + name)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, os.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// StartStatus is the exit status for an error of [Start]: [ExitNotFound]
// for a program that does not exist, [ExitCannotExec] otherwise.
func StartStatus(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return ExitNotFound
	}
	return ExitCannotExec
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Done is closed once the child has exited and been reaped, and all of
// its output to a Stdout or Stderr that is not an [*os.File] has been
// copied.
func (c *Child) Done() <-chan struct{} { return c.done }

// ExitCode is the child's exit status once Done is closed: its exit code,
// or 128+N when signal N killed it. Before, it is -1.
func (c *Child) ExitCode() int {
	select {
	case <-c.done:
	default:
		return -1
	}
	return statusOf(c.state)
}

func statusOf(st *os.ProcessState) int {
	if st == nil {
		return ExitCannotExec
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// Signal sends sig to the child: to its process group when the child is
// the leader of one of its own (it called setpgid or setsid), otherwise to
// the child alone, so that a child's own workers get a Ctrl-C as they
// would from a terminal. Signalling a child that has exited is a no-op.
func (c *Child) Signal(sig syscall.Signal) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	pid := c.cmd.Process.Pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid && pgid != syscall.Getpgrp() {
		return syscall.Kill(-pid, sig)
	}
	return c.cmd.Process.Signal(sig)
}

// Stop sends sig and waits, on clock, up to timeout for the child to exit;
// then it sends SIGKILL and waits for the child to be reaped. Signals that
// arrive on forward meanwhile are passed on to the child. It returns the
// child's exit status and whether it had to kill it. A nil clock is the
// system clock; seen, if not nil, is told of every signal forwarded.
func (c *Child) Stop(sig syscall.Signal, timeout time.Duration, clock rotate.Clock, forward <-chan os.Signal, seen func(os.Signal)) (status int, killed bool) {
	if clock == nil {
		clock = SystemClock{}
	}
	_ = c.Signal(sig)
	t := clock.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return c.ExitCode(), false
		case s := <-forward:
			if ss, ok := s.(syscall.Signal); ok {
				_ = c.Signal(ss)
			}
			if seen != nil {
				seen(s)
			}
		case <-t.C():
			_ = c.Signal(syscall.SIGKILL)
			_ = c.cmd.Process.Kill() // the child itself, if it left its group
			<-c.done
			return c.ExitCode(), true
		}
	}
}

// Kill kills the child (and its group, as Signal does) and waits until it
// has been reaped. It is for cleaning up; Stop is the polite way.
func (c *Child) Kill() {
	_ = c.Signal(syscall.SIGKILL)
	_ = c.cmd.Process.Kill()
	<-c.done
}

// SystemClock is the real clock, as a [rotate.Clock].
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a [time.Timer] as a [rotate.Timer].
func (SystemClock) NewTimer(d time.Duration) rotate.Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }
