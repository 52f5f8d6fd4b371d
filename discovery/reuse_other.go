//go:build !unix && !windows

package discovery

import "syscall"

// shareMDNSPort does nothing where sockets have no such options.
func shareMDNSPort(_, _ string, _ syscall.RawConn) error { return nil }
