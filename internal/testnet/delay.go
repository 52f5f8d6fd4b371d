// Package testnet models a slow network path on loopback for benchmarks
// and the tests that keep them honest; the kernel's netem is not needed.
//
// A Proxy forwards TCP connections and delivers every byte half the round
// trip after it was read, in each direction. Towards the device at most
// Window bytes are in flight; credit comes back half a round trip after
// the bytes were delivered (the ACK's trip back), so a sender is limited
// by window/RTT as on a real Wi-Fi path to an ESP.
package testnet

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Config describes the modelled path.
type Config struct {
	// RTT is the round trip; each direction delays by half of it.
	RTT time.Duration
	// Window is the device's receive window (lwIP's TCP_WND on an ESP);
	// 0 leaves the path towards the device unlimited.
	Window int
	// Backend returns where an accepted connection is forwarded. It is
	// asked once per connection, so it may change between connections.
	Backend func() string
	// DeviceDials says the device is the side that connects to the proxy
	// (ArduinoOTA's connection back to the uploader); otherwise the
	// device is the backend.
	DeviceDials bool
}

// Proxy is a running delayed path. It stops when the test ends.
type Proxy struct {
	cfg    Config
	oneWay time.Duration
	ln     *net.TCPListener
	closed chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

// NewProxy listens on a free loopback port and forwards what arrives
// there over the path cfg describes.
func NewProxy(tb testing.TB, cfg Config) *Proxy {
	tb.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{cfg: cfg, oneWay: cfg.RTT / 2, ln: ln, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Port is the proxy's listening port.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// OneWay waits half the round trip, or until the proxy closes: what a
// datagram of the same path takes.
func (p *Proxy) OneWay() {
	if p.oneWay > 0 {
		select {
		case <-time.After(p.oneWay):
		case <-p.closed:
		}
	}
}

func (p *Proxy) close() {
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.AcceptTCP()
		if err != nil {
			return
		}
		c, err := net.Dial("tcp4", p.cfg.Backend())
		if err != nil {
			in.Close()
			continue
		}
		out := c.(*net.TCPConn)
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		device, host := out, in
		if p.cfg.DeviceDials {
			device, host = in, out
		}
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.pipe(device, host, p.cfg.Window) }()
		go func() { defer p.wg.Done(); p.pipe(host, device, 0) }()
	}
}

// pipe copies src to dst, delivering each read oneWay later. With window
// > 0 at most window bytes are in flight; credit returns oneWay after the
// bytes were delivered (the ACK's trip back).
func (p *Proxy) pipe(dst, src *net.TCPConn, window int) {
	type item struct {
		due  time.Time
		data []byte
	}
	q := make(chan item, 1<<16)
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	credit := window
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			// Never leave the reader waiting for credit that cannot come.
			mu.Lock()
			credit = 1 << 30
			mu.Unlock()
			cond.Broadcast()
		}()
		for it := range q {
			if d := time.Until(it.due); d > 0 {
				select {
				case <-time.After(d):
				case <-p.closed:
					return
				}
			}
			if _, err := dst.Write(it.data); err != nil {
				return
			}
			if window > 0 {
				n := len(it.data)
				time.AfterFunc(p.oneWay, func() {
					mu.Lock()
					credit += n
					mu.Unlock()
					cond.Broadcast()
				})
			}
		}
		dst.CloseWrite()
	}()
	buf := make([]byte, 16<<10)
	for {
		limit := len(buf)
		if window > 0 {
			mu.Lock()
			for credit <= 0 {
				cond.Wait()
			}
			limit = min(limit, credit)
			mu.Unlock()
		}
		n, err := src.Read(buf[:limit])
		if n > 0 {
			if window > 0 {
				mu.Lock()
				credit -= n
				mu.Unlock()
			}
			q <- item{due: time.Now().Add(p.oneWay), data: append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			break
		}
	}
	close(q)
	<-done
}
