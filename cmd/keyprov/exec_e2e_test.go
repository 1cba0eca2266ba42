package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
)

// keyprovExec starts the keyprov binary's exec with exactly env as its
// environment (plus PATH and CHILD_LOG) and returns it with the child's log
// path and keyprov's combined output. It is killed and reaped at the end of
// the test.
func keyprovExec(t *testing.T, env map[string]string, args ...string) (*binRun, string, *syncBuffer) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "child.log")
	cmd := exec.Command(keyprovBin(t), append([]string{"exec"}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "CHILD_LOG=" + log}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	r := &binRun{Process: cmd.Process, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); r.status = cmd.ProcessState.ExitCode(); close(r.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-r.exited:
		case <-time.After(execWait):
			t.Error("keyprov did not exit")
		}
	})
	return r, log, out
}

// binRun is a running keyprov binary.
type binRun struct {
	*os.Process
	exited chan struct{}
	status int // once exited is closed
}

// exitStatus waits for the keyprov binary to exit and returns its status.
func exitStatus(t *testing.T, r *binRun) int {
	t.Helper()
	select {
	case <-r.exited:
		return r.status
	case <-time.After(execWait):
		t.Fatal("keyprov did not exit")
		return -1
	}
}

func TestExecBinaryForwardsSignalsAndReaps(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "tessera")
	writeKey(t, keyPath, tesseraKey)
	for _, tc := range []struct {
		sig    syscall.Signal
		name   string
		status string // what the child exits with on it: "" for the default action
		want   int
	}{
		{syscall.SIGTERM, "TERM", "", 128 + 15},
		{syscall.SIGINT, "INT", "", 128 + 2},
		{syscall.SIGHUP, "HUP", "", 128 + 1},
		{syscall.SIGQUIT, "QUIT", "", 128 + 3},
		{syscall.SIGUSR2, "USR2", "", 128 + 12},
		{syscall.SIGTERM, "TERM", "9", 9},
	} {
		t.Run(tc.name+"/"+tc.status, func(t *testing.T) {
			// The child dies of the signal (its default action, which it
			// restores: a shell's background job inherits SIGINT and
			// SIGQUIT ignored, and keyprov passes that on as any parent
			// does), or exits with the status its trap says.
			script := "trap 'exit " + tc.status + "' " + tc.name + `; echo "start $$ $TESSERA_API_KEY $OTHER" >> "$CHILD_LOG"; `
			script += `while :; do sleep 0.05; done`
			if tc.status == "" {
				script = `exec python3 -c 'import os, signal
signal.signal(signal.SIG` + tc.name + `, signal.SIG_DFL)
open(os.environ["CHILD_LOG"], "a").write("start %d %s %s\n" % (os.getpid(), os.environ["TESSERA_API_KEY"], os.environ["OTHER"]))
signal.pause()'`
			}
			cmd, log, out := keyprovExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath, "OTHER": "env://RAW", "RAW": tesseraKey2}, "--", "sh", "-c", script)
			line := waitLine(t, log)
			f := strings.Fields(line)
			require.Len(t, f, 4, "start PID KEY KEY: %q", line)
			assert.Equal(t, fp(tesseraKey), f[2], "the service's file:// reference is resolved")
			assert.Equal(t, fp(tesseraKey2), f[3], "a reference in any variable is resolved")
			pid, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			require.NoError(t, cmd.Signal(tc.sig))
			assert.Equal(t, tc.want, exitStatus(t, cmd), "output:\n%s", out.String())
			_, err = os.Stat("/proc/" + strconv.Itoa(pid))
			assert.True(t, os.IsNotExist(err), "the child was reaped: no zombie")
			assertNoKey(t, out.String())
			assert.Contains(t, out.String(), keyprovider.NewKey(tesseraKey, "").Fingerprint(), "the log names the key by its fingerprint")
		})
	}
}

func TestExecBinaryFailsClosed(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	cmd, _, out := keyprovExec(t, map[string]string{"OTHER": "file:///no/such/key", "DB": "postgres://x"}, "--", "sh", "-c", ": > "+marker)
	assert.Equal(t, exitExecFailed, exitStatus(t, cmd))
	assert.NoFileExists(t, marker)
	assert.Contains(t, out.String(), "OTHER")
}

// waitLine waits for the first line of the child's log.
func waitLine(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(execWait)
	for {
		data, _ := os.ReadFile(path)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			return fingerprinted(string(data[:i]))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child logged nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
