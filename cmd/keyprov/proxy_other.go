//go:build !unix

package main

import (
	"net"
	"os"
)

// listenUnix creates the socket at path; its permissions are set by the
// caller afterwards (there is no umask here).
func listenUnix(path string, _ os.FileMode) (net.Listener, error) {
	return net.Listen("unix", path)
}
