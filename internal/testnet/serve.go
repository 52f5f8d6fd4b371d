package testnet

import (
	"net"
	"sync"
	"testing"
)

// Serve listens on a free loopback TCP port and hands each accepted
// connection to serve, one at a time, closing it when serve returns. It
// stops accepting when the test ends and waits for the connection being
// served. It returns the listening address.
func Serve(tb testing.TB, serve func(net.Conn)) *net.TCPAddr {
	tb.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr)
}
