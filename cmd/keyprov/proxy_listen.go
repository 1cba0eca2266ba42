package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/keyprovider/keyprovider"
)

// listenSpec is a parsed --listen.
type listenSpec struct {
	unix bool
	// addr is host:port for TCP, the socket's path for unix.
	addr string
	// host is the TCP host as given ("127.0.0.1", "localhost").
	host string
}

// parseListen reads --listen: "unix:PATH", or host:port on a loopback
// address ("127.0.0.1:8787", "[::1]:8787", "localhost:8787"). Any other host
// ("0.0.0.0:8787", a LAN address) is refused unless allowRemote.
func parseListen(s string, allowRemote bool) (listenSpec, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return listenSpec{}, errors.New("--listen unix: needs a path")
		}
		return listenSpec{unix: true, addr: path}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return listenSpec{}, fmt.Errorf("--listen %q: want host:port or unix:PATH", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return listenSpec{}, fmt.Errorf("--listen %q: bad port", s)
	}
	if !isLoopbackHost(host) && !allowRemote {
		return listenSpec{}, fmt.Errorf("--listen %q is not a loopback address: the proxy lends the key to whoever reaches it; give --allow-non-loopback to listen there anyway", s)
	}
	return listenSpec{addr: s, host: host}, nil
}

// isLoopbackHost reports whether host is "localhost" or a loopback IP, as
// the Transport decides where plain HTTP may go.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// String shows where the proxy listens, with the port it got.
func (l listenSpec) String(a net.Addr) string {
	if l.unix {
		return "unix:" + l.addr
	}
	return a.String()
}

// hosts are the Host values the proxy answers for: the listen address as
// given and as bound, and for loopback "localhost", "127.0.0.1" and
// "[::1]" with the bound port. A Unix socket accepts "localhost" (what
// curl --unix-socket and most clients send) with or without a port.
func (l listenSpec) hosts(a net.Addr) []string {
	if l.unix {
		return []string{"localhost", "localhost:80"}
	}
	_, port, _ := net.SplitHostPort(a.String())
	hosts := []string{a.String(), net.JoinHostPort(l.host, port)}
	if isLoopbackHost(l.host) {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			hosts = append(hosts, net.JoinHostPort(h, port))
		}
	}
	return hosts
}

// open listens. A Unix socket is created with mode (and group), never
// more open than that even for an instant, after removing a stale socket
// left at the path (never another kind of file). Closing the listener
// removes the socket.
func (l listenSpec) open(mode os.FileMode, group string) (net.Listener, error) {
	if !l.unix {
		return net.Listen("tcp", l.addr)
	}
	if fi, err := os.Lstat(l.addr); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("--listen unix:%s: the path exists and is not a socket", l.addr)
		}
		if c, err := net.Dial("unix", l.addr); err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("--listen unix:%s: another process is listening there", l.addr)
		}
		_ = os.Remove(l.addr)
	}
	ln, err := listenUnix(l.addr, mode)
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	fail := func(err error) (net.Listener, error) { _ = ln.Close(); return nil, err }
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			return fail(err)
		}
		if err := os.Chown(l.addr, -1, gid); err != nil {
			return fail(fmt.Errorf("--socket-group: %w", err))
		}
	}
	if err := os.Chmod(l.addr, mode); err != nil {
		return fail(fmt.Errorf("--socket-mode: %w", err))
	}
	return ln, nil
}

func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}

// localTokenPrefix starts every generated local token, so that one is
// never mistaken for a service key (and a redactor still finds it).
const localTokenPrefix = "kpl_"

// minTokenLen is the shortest local token read from a file: 128 bits in
// hex, or in the base64 most generators print, is longer.
const minTokenLen = 22

// loadToken returns the local token in path, or, if there is no such
// file, a new random one (256 bits) written there with mode 0600, created
// exclusively so that a file someone else put there first is not
// overwritten. A token read is refused if it is short, has blanks or
// control bytes, or looks like a key of svc.
func loadToken(path string, svc keyprovider.Service) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newTokenFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(tok) < minTokenLen:
		return "", fmt.Errorf("--token-file %s: the token is %d bytes long; want at least %d (128 bits of randomness)", path, len(tok), minTokenLen)
	case (keyprovider.Service{}).Validate(tok) != nil:
		return "", fmt.Errorf("--token-file %s: the token must be printable ASCII without blanks", path)
	case svc.KeyPrefix != "" && strings.HasPrefix(tok, svc.KeyPrefix):
		return "", fmt.Errorf("--token-file %s: the token looks like a %s key; the local token must not be the real key", path, svc.Name)
	}
	return tok, nil
}

func newTokenFile(path string) (string, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := localTokenPrefix + hex.EncodeToString(b)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return tok, nil
}
