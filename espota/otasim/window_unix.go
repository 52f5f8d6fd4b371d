//go:build unix

package otasim

import "syscall"

// smallReceiveBuffer sets the socket's receive buffer before it connects,
// so the advertised window is small from the start (shrinking it after the
// handshake makes Linux stall the connection).
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, deviceWindow)
	}); err != nil {
		return err
	}
	return serr
}
