package romsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// StartTCP starts a simulated ROM for cfg.Chip behind a TCP listener on
// addr (loopback only; "" = 127.0.0.1 on a free port), like a networked
// serial server: connect with socket://ADDR. Connections are served one at
// a time; the flash persists across them and each new connection sees the
// chip reset into download mode. There is no host baud rate on TCP: the
// ROM paces at the rate CHANGE_BAUDRATE set.
func StartTCP(ctx context.Context, cfg Config, addr string) (listenAddr string, rom *ROM, stop func(), err error) {
	p, err := ProfileFor(cfg.Chip)
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := listenLoopback(addr)
	if err != nil {
		return "", nil, nil, err
	}
	rom = New(p, cfg)
	stop = serveOneAtATime(ctx, ln, rom, func(c net.Conn) io.ReadWriter {
		rom.Reset(!cfg.StartInApp)
		return c
	})
	return ln.Addr().String(), rom, stop, nil
}

// listenLoopback listens on addr ("" = 127.0.0.1 on a free port) and
// refuses any address that is not loopback: a simulator is never
// reachable from the network.
func listenLoopback(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("romsim: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("romsim: refusing to listen on %s: the simulator serves loopback only (use 127.0.0.1)", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("romsim: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// serveOneAtATime accepts connections on ln and lets rom serve them one at
// a time, each through what session makes of it (the raw connection, or a
// protocol layer over it), until ctx ends or stop is called. stop closes
// the listener and the current connection and returns once the serving
// goroutine has ended; calling it again does nothing.
func serveOneAtATime(ctx context.Context, ln net.Listener, rom *ROM, session func(net.Conn) io.ReadWriter) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cur net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if ctx.Err() != nil {
				mu.Unlock()
				c.Close()
				return
			}
			cur = c
			mu.Unlock()
			err = rom.Serve(ctx, session(c))
			c.Close()
			if errors.Is(err, context.Canceled) {
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			ln.Close()
			mu.Lock()
			if cur != nil {
				cur.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
}
