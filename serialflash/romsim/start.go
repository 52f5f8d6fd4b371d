package romsim

import (
	"context"
	"errors"
	"fmt"
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
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, nil, fmt.Errorf("romsim: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", nil, nil, fmt.Errorf("romsim: refusing to listen on %s: the simulator serves loopback only (use 127.0.0.1)", host)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, nil, fmt.Errorf("romsim: listen on %s: %w", addr, err)
	}
	rom = New(p, cfg)
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
			rom.Reset(!cfg.StartInApp)
			err = rom.Serve(ctx, c)
			c.Close()
			if errors.Is(err, context.Canceled) {
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
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
	return ln.Addr().String(), rom, stop, nil
}
