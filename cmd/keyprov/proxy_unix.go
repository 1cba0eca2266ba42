//go:build unix

package main

import (
	"net"
	"os"
	"sync"
	"syscall"
)

// umaskMu serializes the umask change: it is process-wide.
var umaskMu sync.Mutex

// listenUnix creates the socket at path with the umask set so that it is
// born with at most mode's permissions, not the default umask's.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(int(^mode & 0o777))
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
