//go:build unix

package esphomesim

import "syscall"

// setReceiveBuffer sets the listening socket's receive buffer, which
// accepted connections inherit, so the advertised window is small from
// the first segment (shrinking it later makes Linux stall the connection).
func setReceiveBuffer(c syscall.RawConn, size int) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	}); err != nil {
		return err
	}
	return serr
}
