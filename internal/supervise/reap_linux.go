package supervise

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// children are the pids of the Children this process started and has not
// reaped yet: the orphan reaper leaves them to their Child's Wait. mu is
// held across a Start, so that a child that exits at once is never taken
// for an orphan before its pid is known.
var children = struct {
	mu   sync.Mutex
	pids map[int]bool
	// kick wakes the reaper when a Child has been reaped: an orphan that
	// exited behind it may be waiting.
	kick chan struct{}
}{pids: map[int]bool{}, kick: make(chan struct{}, 1)}

func track(pid int) { children.pids[pid] = true }

func untrack(pid int) {
	children.mu.Lock()
	delete(children.pids, pid)
	children.mu.Unlock()
	select {
	case children.kick <- struct{}{}:
	default:
	}
}

// ReapOrphans reaps, until stop is called, every child of this process
// that is not a [Child]: the orphans a container's init (PID 1) or a
// subreaper inherits, which would otherwise stay zombies. A Child's own
// exit status is left for it: the reaper looks with waitid(WNOWAIT) before
// it reaps. stop waits for the reaper to end.
func ReapOrphans() (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGCHLD)
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			reapOnce()
			select {
			case <-sigs:
			case <-children.kick:
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(sigs)
			close(quit)
			<-done
		})
	}
}

// reapOnce reaps the orphans that have exited, up to the first exited
// child that is a Child.
func reapOnce() {
	children.mu.Lock()
	defer children.mu.Unlock()
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		pid := int(siginfoPid(&info))
		if err != nil || pid == 0 || children.pids[pid] {
			return
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err != nil {
			return
		}
	}
}

// siginfoPid is si_pid of a waitid result: Linux puts it after si_signo,
// si_errno, si_code and a pad, at offset 16, on every architecture Go
// supports (x/sys keeps the union unexported).
func siginfoPid(info *unix.Siginfo) int32 {
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), 16))
}
