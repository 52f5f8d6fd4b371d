//go:build !unix

package esphomesim

import "syscall"

func setReceiveBuffer(syscall.RawConn, int) error { return nil }
