//go:build unix

package envread

import (
	"os"
	"syscall"
)

// clearNonblock puts f, opened with O_NONBLOCK and known to be a regular
// file, back into blocking mode before it is read.
func clearNonblock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
