//go:build unix

package discovery

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// shareMDNSPort lets a socket bind UDP port 5353 next to other mDNS stacks.
// Some stacks share the port through SO_REUSEPORT only, so both are set
// (SO_REUSEPORT best effort).
func shareMDNSPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
