package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyprovider/keyprovider"
	"github.com/keyprovider/keyprovider/rotate/rotatetest"
)

// The exec tests run keyprov exec's supervisor in the test process, on a
// fake clock, with real children in Python and sh. Each wait has its own
// deadline, far below the package timeout.
const execWait = 15 * time.Second

// execChild is a Python program that logs to $CHILD_LOG what it sees: a
// "start" line with its pid, its key (from TESSERA_API_KEY_FILE when set,
// else TESSERA_API_KEY), what TESSERA_API_KEY holds and OTHER; a line per
// SIGHUP (the key, re-read) and SIGUSR1. On SIGTERM it exits with
// $CHILD_TERM_STATUS (0).
const execChild = `import os, signal, sys
log = open(os.environ["CHILD_LOG"], "a")
def w(s):
    log.write(s + "\n")
    log.flush()
def key():
    f = os.environ.get("TESSERA_API_KEY_FILE")
    if f:
        return "file:" + open(f).read().strip()
    return os.environ.get("TESSERA_API_KEY", "-")
signal.signal(signal.SIGHUP, lambda *a: w("hup %d %s" % (os.getpid(), key())))
signal.signal(signal.SIGUSR1, lambda *a: w("usr1 %d" % os.getpid()))
signal.signal(signal.SIGTERM, lambda *a: sys.exit(int(os.environ.get("CHILD_TERM_STATUS", "0"))))
w("start %d key=%s env=%s other=%s" % (os.getpid(), key(), os.environ.get("TESSERA_API_KEY", "-"), os.environ.get("OTHER", "-")))
while True:
    signal.pause()
`

// execRun is a keyprov exec under test.
type execRun struct {
	t      *testing.T
	clock  *rotatetest.Clock
	sigs   chan os.Signal
	events chan string
	out    *syncBuffer // keyprov's own output: its log, and the child's stdout and stderr
	done   chan int
	log    string // the child's log
	code   int    // keyprov's exit status, once done
}

// startExec runs keyprov exec with args in an environment of vars (plus
// PATH and CHILD_LOG), on a fake clock.
func startExec(t *testing.T, vars map[string]string, args ...string) *execRun {
	t.Helper()
	r := &execRun{
		t:      t,
		clock:  rotatetest.NewClock(time.Unix(1_800_000_000, 0)),
		sigs:   make(chan os.Signal, 4),
		events: make(chan string, 1024),
		out:    &syncBuffer{},
		done:   make(chan int, 1),
		log:    filepath.Join(t.TempDir(), "child.log"),
	}
	environ := []string{"PATH=" + os.Getenv("PATH"), "CHILD_LOG=" + r.log}
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cfg, code := prepareExec(ctx, args, environ, false, r.out)
	if code >= 0 {
		cancel()
		r.code = code
		close(r.done)
		return r
	}
	cfg.clock, cfg.rand = r.clock, func() float64 { return 0.5 }
	cfg.signals, cfg.stdout, cfg.stderr = r.sigs, r.out, r.out
	cfg.log = slog.New(slog.NewTextHandler(r.out, nil))
	cfg.observe = func(e string) {
		select {
		case r.events <- e:
		default:
			t.Errorf("event %q dropped", e)
		}
	}
	go func() { r.done <- execute(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		r.wait()
		for _, pid := range r.pids() { // were anything left, it goes now
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		assertNoKey(t, r.out.String())
	})
	return r
}

// wait waits for keyprov exec to end and returns its exit status; it moves
// the fake clock on, so that a stop timeout passes.
func (r *execRun) wait() int {
	r.t.Helper()
	deadline := time.After(execWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case code, ok := <-r.done:
			if ok {
				r.code = code
				close(r.done)
			}
			return r.code
		case <-tick.C:
			r.clock.Advance(time.Second)
		case <-deadline:
			r.t.Fatal("keyprov exec did not end")
		}
	}
}

// waitEvent waits for the event e, skipping others.
func (r *execRun) waitEvent(e string) {
	r.t.Helper()
	deadline := time.After(execWait)
	for {
		select {
		case got := <-r.events:
			if got == e {
				return
			}
		case <-deadline:
			r.t.Fatalf("no %q event; output:\n%s", e, r.out.String())
		}
	}
}

// quiet asserts that no event but those allowed happens for a while: a
// negative check, so a bounded real wait.
func (r *execRun) quiet(allowed ...string) {
	r.t.Helper()
	deadline := time.After(300 * time.Millisecond)
	for {
		select {
		case got := <-r.events:
			if !contains(allowed, got) {
				r.t.Errorf("unexpected event %q", got)
			}
		case <-deadline:
			return
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// lines returns the child's log once it has at least n lines.
func (r *execRun) lines(n int) []string {
	r.t.Helper()
	deadline := time.Now().Add(execWait)
	for {
		data, _ := os.ReadFile(r.log)
		lines := strings.Split(strings.TrimSpace(fingerprinted(string(data))), "\n")
		if len(data) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the child logged %q; want %d lines; output:\n%s", fingerprinted(string(data)), n, r.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fingerprinted is s with every test key replaced by its fingerprint, so
// that what the tests compare, and a failure prints, holds no key.
func fingerprinted(s string) string {
	var pairs []string
	for _, k := range allKeys {
		pairs = append(pairs, k, fp(k))
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// pids are the pids of the children started so far.
func (r *execRun) pids() []int {
	data, _ := os.ReadFile(r.log)
	var pids []int
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "start" {
			if pid, err := strconv.Atoi(f[1]); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// refresh moves the clock past the next refresh of every key, once the
// Sources wait on their timers (n of them).
func (r *execRun) refresh(n int, interval time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), execWait)
	defer cancel()
	require.True(r.t, r.clock.BlockUntil(ctx, n), "the Sources set no refresh timers")
	r.clock.Advance(interval)
}

// assertReaped fails if pid is still in /proc (a zombie included).
func assertReaped(t *testing.T, pid int) {
	t.Helper()
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	assert.True(t, os.IsNotExist(err), "pid %d is still in /proc: not reaped", pid)
}

// writeKey replaces the key file at path atomically, as a secret mount does.
func writeKey(t *testing.T, path, key string) {
	t.Helper()
	require.NoError(t, writeFileAtomic(path, key+"\n", 0o600))
}

// childScript writes execChild to a file and returns its path.
func childScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "child.py")
	require.NoError(t, os.WriteFile(path, []byte(execChild), 0o600))
	return path
}

func TestExecRestartsOnceOnARotatedFileKey(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "tessera")
	writeKey(t, keyPath, tesseraKey)
	r := startExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath, "OTHER": "postgres://db/app"},
		"--refresh-interval", "1m", "--debounce", "2s", "--", "python3", childScript(t))
	r.waitEvent("started")
	first := r.lines(1)[0]
	assert.Contains(t, first, "key="+fp(tesseraKey)+" env="+fp(tesseraKey)+" other=postgres://db/app",
		"the child sees the key, never the reference; other URLs pass through")

	writeKey(t, keyPath, tesseraKey2)
	r.refresh(1, time.Minute)
	r.waitEvent("rotated")
	r.waitEvent("debounce")
	r.clock.Advance(2 * time.Second)
	r.waitEvent("started")
	r.waitEvent("applied")
	lines := r.lines(2)
	require.Len(t, lines, 2, "exactly one restart")
	assert.Contains(t, lines[1], "key="+fp(tesseraKey2))
	pids := r.pids()
	require.Len(t, pids, 2)
	assert.NotEqual(t, pids[0], pids[1])
	assertReaped(t, pids[0])

	// A refresh that returns the same value changes nothing.
	writeKey(t, keyPath, tesseraKey2)
	r.refresh(1, time.Minute)
	r.refresh(1, 0) // the refresh has run: its next timer is set
	r.quiet()
	r.clock.Advance(5 * time.Second)
	r.quiet()
	assert.Len(t, r.lines(2), 2, "no restart when the key did not change")

	r.sigs <- syscall.SIGTERM
	assert.Equal(t, 0, r.wait(), "the child's exit status")
	assertReaped(t, pids[1])
}

func TestExecSignalsAndRewritesTheKeyFile(t *testing.T) {
	dir := t.TempDir()
	keyPath, kf := filepath.Join(dir, "tessera"), filepath.Join(dir, "run", "key")
	require.NoError(t, os.Mkdir(filepath.Dir(kf), 0o700))
	writeKey(t, keyPath, tesseraKey)
	r := startExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath},
		"--refresh-interval", "1m", "--debounce", "1s", "--on-rotate", "signal:HUP",
		"--key-file", "TESSERA_API_KEY="+kf, "--", "python3", childScript(t))
	r.waitEvent("started")
	assert.Contains(t, r.lines(1)[0], "key=file:"+fp(tesseraKey)+" env=-", "the key is in the file, not the environment")
	info, err := os.Stat(kf)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	writeKey(t, keyPath, tesseraKey2)
	r.refresh(1, time.Minute)
	r.waitEvent("debounce")
	r.clock.Advance(time.Second)
	r.waitEvent("applied")
	lines := r.lines(2)
	require.Len(t, lines, 2)
	pid := r.pids()[0]
	assert.Equal(t, "hup "+strconv.Itoa(pid)+" file:"+fp(tesseraKey2), lines[1], "one signal, the new key in the file")
	r.quiet()
	assert.Len(t, r.pids(), 1, "no restart")
	info, err = os.Stat(kf)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	r.sigs <- syscall.SIGUSR1
	assert.Equal(t, "usr1 "+strconv.Itoa(pid), r.lines(3)[2], "SIGUSR1 forwarded")
	r.sigs <- syscall.SIGTERM
	assert.Equal(t, 0, r.wait())
	assert.NoFileExists(t, kf, "the key file goes with the program")
}

func TestExecDebouncesKeysThatChangeTogether(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeKey(t, a, tesseraKey)
	writeKey(t, b, tesseralKey)
	r := startExec(t, map[string]string{"TESSERA_API_KEY": "file://" + a, "OTHER": "file://" + b},
		"--refresh-interval", "1m", "--debounce", "2s", "--splay", "10s", "--", "python3", childScript(t))
	r.waitEvent("started")
	assert.Contains(t, r.lines(1)[0], "other="+fp(tesseralKey), "any variable's reference is resolved")

	writeKey(t, a, tesseraKey2)
	writeKey(t, b, tesseraKey)
	r.refresh(2, time.Minute)
	r.waitEvent("debounce")
	r.clock.Advance(6 * time.Second) // 2s of debounce, 5s of splay (rand 0.5 of 10s): not yet
	r.quiet("rotated")
	assert.Len(t, r.lines(1), 1)
	r.clock.Advance(time.Second)
	r.waitEvent("started")
	r.waitEvent("applied")
	lines := r.lines(2)
	require.Len(t, lines, 2, "one restart for both keys")
	assert.Contains(t, lines[1], "key="+fp(tesseraKey2))
	assert.Contains(t, lines[1], "other="+fp(tesseraKey))
	r.quiet()
	assert.Len(t, r.lines(2), 2)
}

func TestExecExitStatuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		status int
	}{
		{"the child's code", []string{"--", "sh", "-c", "exit 7"}, 7},
		{"128+N for a signal", []string{"--", "sh", "-c", "kill -KILL $$"}, 128 + 9},
		{"program not found", []string{"--", "no-such-program-keyprov"}, 127},
		{"no program", []string{"--on-rotate", "none"}, exitExecFailed},
		{"bad --on-rotate", []string{"--on-rotate", "signal:NOPE", "--", "true"}, exitExecFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startExec(t, nil, tc.args...)
			assert.Equal(t, tc.status, r.wait())
		})
	}
}

func TestExecRestartOnExit(t *testing.T) {
	r := startExec(t, nil, "--restart-on-exit", "--", "sh", "-c", `echo "start $$" >> "$CHILD_LOG"; exit 3`)
	r.waitEvent("exited")
	r.clock.Advance(restartDelay)
	r.waitEvent("exited")
	assert.Len(t, r.pids(), 2, "started again")
	r.sigs <- syscall.SIGTERM // no child running: keyprov ends with the last status
	assert.Equal(t, 3, r.wait())
}

func TestExecFailsClosed(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	for _, vars := range []map[string]string{
		{"TESSERA_API_KEY": "file:///no/such/file"},
		{"OTHER": "file:///no/such/file"},
		{"TESSERA_API_KEY": "vault://kv/x#k", "VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t"},
		{"TESSERA_API_KEY_FILE": "/no/such/file"},
		{"TESSERA_API_KEY": "file:///etc/hostname", "OTHER": "env://MISSING"},
	} {
		r := startExec(t, vars, "--timeout", "5s", "--", "sh", "-c", ": > "+marker)
		assert.Equal(t, exitExecFailed, r.wait(), "%v", vars)
		assert.NoFileExists(t, marker, "the program was not started")
		assert.Regexp(t, "TESSERA_API_KEY|OTHER", r.out.String(), "the variable is named")
	}
}

func TestExecScrubAndOnly(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "tessera")
	writeKey(t, keyPath, tesseraKey)
	script := `echo "start $$ $TESSERA_API_KEY ${OTHER} ${VAULT_ADDR:-none} ${AWS_REGION:-none}" >> "$CHILD_LOG"`
	r := startExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath, "OTHER": "file://" + keyPath,
		"VAULT_ADDR": "http://127.0.0.1:8200", "AWS_REGION": "eu-west-1"},
		"--only", "TESSERA_API_KEY", "--scrub", "--", "sh", "-c", script)
	assert.Equal(t, 0, r.wait())
	assert.Equal(t, "start "+strconv.Itoa(r.pids()[0])+" "+fp(tesseraKey)+" file://"+keyPath+" none eu-west-1", r.lines(1)[0])
}

func TestExecMask(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "tessera")
	writeKey(t, keyPath, tesseraKey)
	script := `echo "out $TESSERA_API_KEY"; echo "err $TESSERA_API_KEY" >&2; printf 'last %s' "$TESSERA_API_KEY"`
	r := startExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath}, "--mask", "--", "sh", "-c", script)
	assert.Equal(t, 0, r.wait())
	fp := fp(tesseraKey)
	out := r.out.String()
	for _, want := range []string{"out " + fp + "\n", "err " + fp + "\n", "last " + fp} {
		assert.Contains(t, out, want)
	}
	assertNoKey(t, out)
}

func TestMaskWriterKeepsAKeySplitAcrossWrites(t *testing.T) {
	var dst bytes.Buffer
	m := newMasker([]keyprovider.Key{keyprovider.NewKey(tesseraKey, "")}, &dst, &dst)
	long := strings.Repeat("x", maskFlushAt-10)
	for _, chunk := range []string{long, tesseraKey[:20], tesseraKey[20:], " tail\nnext"} {
		_, _ = m.stdout.Write([]byte(chunk))
	}
	m.close()
	assert.True(t, dst.String() == long+fp(tesseraKey)+" tail\nnext", "the key was not replaced whole") // no diff: it would print the key
}

func BenchmarkMaskWriter(b *testing.B) {
	m := newMasker([]keyprovider.Key{keyprovider.NewKey(tesseraKey, ""), keyprovider.NewKey(tesseralKey, "")}, io.Discard, io.Discard)
	line := []byte(strings.Repeat("a log line of a typical length, ", 3) + "\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _ = m.stdout.Write(line)
	}
}

func TestExecFileTwinAndEnvFiles(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "tessera")
	writeKey(t, keyPath, tesseraKey)
	otherPath := filepath.Join(dir, "other")
	writeKey(t, otherPath, tesseralKey)
	first, second := filepath.Join(dir, "first.env"), filepath.Join(dir, "second.env")
	require.NoError(t, os.WriteFile(first, []byte("OTHER=literal\nTESSERAL_API_KEY=file://"+otherPath+"\nMODE=first\n"), 0o600))
	require.NoError(t, os.WriteFile(second, []byte("MODE=second\n"), 0o600))
	script := `echo "start $$ $TESSERA_API_KEY ${TESSERA_API_KEY_FILE:-unset} $TESSERAL_API_KEY $OTHER $MODE" >> "$CHILD_LOG"`
	r := startExec(t, map[string]string{"TESSERA_API_KEY_FILE": keyPath, "OTHER": "env://NOPE", "MODE": "process"},
		"--env-file", first, "--env-file", second, "--", "sh", "-c", script)
	assert.Equal(t, 0, r.wait(), r.out.String())
	assert.Equal(t, "start "+strconv.Itoa(r.pids()[0])+" "+fp(tesseraKey)+" unset "+fp(tesseralKey)+" literal second", r.lines(1)[0],
		"the _FILE twin becomes the variable; env files add to the environment, later ones winning")
}

func TestExecOnRotateNoneOnlyLogs(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "tessera")
	writeKey(t, keyPath, tesseraKey)
	r := startExec(t, map[string]string{"TESSERA_API_KEY": "file://" + keyPath},
		"--refresh-interval", "1m", "--debounce", "1s", "--on-rotate", "none", "--", "python3", childScript(t))
	r.waitEvent("started")
	writeKey(t, keyPath, tesseraKey2)
	r.refresh(1, time.Minute)
	r.waitEvent("debounce")
	r.clock.Advance(time.Second)
	r.waitEvent("applied")
	r.quiet()
	assert.Len(t, r.lines(1), 1, "neither restarted nor signalled")
	assert.Contains(t, r.out.String(), "key rotated")
	assert.Contains(t, r.out.String(), fp(tesseraKey2), "the log names the new key by its fingerprint")
	r.sigs <- syscall.SIGINT
	assert.Equal(t, 128+2, r.wait(), "SIGINT forwarded: Python dies of it")
}
