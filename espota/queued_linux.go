//go:build linux

package espota

import (
	"net"

	"golang.org/x/sys/unix"
)

// queuedBytes returns how many bytes written to c the peer has not yet
// acknowledged (SIOCOUTQ: unsent plus in flight), so progress can show
// what the device has taken rather than what our kernel has buffered.
func queuedBytes(c *net.TCPConn) (int64, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return int64(n), true
}
