package supervise

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitDone waits for c to exit, failing the test past a deadline far below
// the package timeout.
func waitDone(t *testing.T, c *Child) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not exit")
	}
}

// start starts a child and kills and reaps it at the end of the test.
func start(t *testing.T, s Spec) *Child {
	t.Helper()
	c, err := Start(s)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(c.Kill)
	return c
}

// gone reports whether pid has been reaped (no /proc entry) or is a zombie
// of another parent (a reparented grandchild a container's init may not
// reap): in both cases it no longer runs.
func gone(pid int) (reaped, dead bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true, true
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return false, len(fields) > 0 && fields[0] == "Z"
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		want   int
	}{
		{"exit 0", "exit 0", 0},
		{"exit 7", "exit 7", 7},
		{"killed by TERM", "kill -TERM $$", 128 + 15},
		{"killed by KILL", "kill -KILL $$", 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := start(t, Spec{Path: "sh", Args: []string{"-c", tc.script}})
			waitDone(t, c)
			if got := c.ExitCode(); got != tc.want {
				t.Errorf("ExitCode() = %d, want %d", got, tc.want)
			}
			if reaped, _ := gone(c.Pid()); !reaped {
				t.Errorf("pid %d is still in /proc: not reaped", c.Pid())
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	_, err := Start(Spec{Path: "no-such-program-keyprov"})
	if !errors.Is(err, ErrStart) || StartStatus(err) != ExitNotFound {
		t.Errorf("missing program: err %v, status %d; want ErrStart, %d", err, StartStatus(err), ExitNotFound)
	}
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Start(Spec{Path: notExec})
	if !errors.Is(err, ErrStart) || StartStatus(err) != ExitCannotExec {
		t.Errorf("non-executable: err %v, status %d; want ErrStart, %d", err, StartStatus(err), ExitCannotExec)
	}
}

func TestChildPATHFindsTheProgram(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "keyprov-test-prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 5\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := start(t, Spec{Path: "keyprov-test-prog", Env: []string{"PATH=" + dir}})
	waitDone(t, c)
	if got := c.ExitCode(); got != 5 {
		t.Errorf("ExitCode() = %d, want 5", got)
	}
}

func TestStopKillsAfterTheTimeout(t *testing.T) {
	clock := rotatetest.NewClock(time.Unix(1_000_000, 0))
	ready := filepath.Join(t.TempDir(), "ready")
	// Ignores TERM; says when the trap is in place.
	c := start(t, Spec{Path: "sh", Args: []string{"-c", `trap '' TERM; : > "$1"; while :; do sleep 1; done`, "sh", ready}})
	waitFile(t, ready)
	type result struct {
		status int
		killed bool
	}
	res := make(chan result, 1)
	go func() {
		st, k := c.Stop(syscall.SIGTERM, 5*time.Second, clock, nil, nil)
		res <- result{st, k}
	}()
	if !clock.BlockUntil(t.Context(), 1) {
		t.Fatal("Stop set no timer")
	}
	select {
	case r := <-res:
		t.Fatalf("Stop returned %+v before the timeout", r)
	case <-time.After(100 * time.Millisecond): // the child had time to die, were TERM fatal
	}
	clock.Advance(5 * time.Second)
	select {
	case r := <-res:
		if !r.killed || r.status != 128+9 {
			t.Errorf("Stop = %+v, want killed with status %d", r, 128+9)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the timeout")
	}
}

func TestSignalReachesTheGroupTheChildMade(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild")
	// A child that makes its own process group and leaves a grandchild in it.
	script := `import os, subprocess, sys, signal
os.setpgid(0, 0)
p = subprocess.Popen(["sleep", "1000"])
open(sys.argv[1] + ".tmp", "w").write(str(p.pid))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.pause()
`
	c := start(t, Spec{Path: "python3", Args: []string{"-c", script, pidFile}})
	data := waitFile(t, pidFile)
	grandchild, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(grandchild, syscall.SIGKILL) })
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if got := c.ExitCode(); got != 128+15 {
		t.Errorf("ExitCode() = %d, want %d", got, 128+15)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, dead := gone(grandchild); dead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the grandchild in the child's group did not get the signal")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFile waits until path exists and returns its contents.
func waitFile(t *testing.T, path string) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil {
			return data
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
