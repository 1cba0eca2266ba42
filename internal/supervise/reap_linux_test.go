package supervise

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReapOrphansReapsOrphansAndLeavesChildren(t *testing.T) {
	// Make the test process a subreaper: orphans of its children become its
	// own, as they do for a container's init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	stop := ReapOrphans()
	t.Cleanup(stop)

	pidFile := filepath.Join(t.TempDir(), "orphan")
	// The child leaves a grandchild behind and exits at once: the
	// grandchild becomes ours, and exits a little later.
	for i := 0; i < 5; i++ { // several rounds: a race with the reaper would show
		c := start(t, Spec{Path: "sh", Args: []string{"-c", `sleep 0.2 & echo $! > "$1"; exit 3`, "sh", pidFile}})
		waitDone(t, c)
		if got := c.ExitCode(); got != 3 || c.waitErr == nil {
			t.Fatalf("ExitCode() = %d (wait error %v), want 3: the reaper took the child's status", got, c.waitErr)
		}
		orphan, err := strconv.Atoi(strings.TrimSpace(string(waitFile(t, pidFile))))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if reaped, _ := gone(orphan); reaped {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("orphan %d was not reaped", orphan)
			}
			time.Sleep(10 * time.Millisecond)
		}
		_ = os.Remove(pidFile)
	}
}
