//go:build !unix

package otasim

import "syscall"

// smallReceiveBuffer is a no-op where setting it portably is not worth it.
func smallReceiveBuffer(_, _ string, _ syscall.RawConn) error { return nil }
