package espota

// Throughput over a modelled network path: ours against an espota.py-style
// stop-and-wait client and a plain TCP bulk send, side by side.
//
//	go test -run '^$' -bench Upload1MiB -benchtime 1x ./espota
//
// The kernel here has no netem, so a proxy models the path: it delays
// every UDP datagram and every TCP byte (internal/testnet) by half the
// round trip in each direction, and it lets at most deviceWindow bytes be
// in flight towards the device (lwIP's default TCP_WND on arduino-esp32,
// 4 × 1436), returning window credit one round trip after the bytes left
// — so a sender is limited by window/RTT as on a real Wi-Fi path to an
// ESP32.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/internal/testnet"
)

// deviceWindow is the receive window of an ESP32 (lwIP TCP_WND).
const deviceWindow = 5744

// delayPath is a delaying UDP+TCP proxy in front of a simulated device.
// The client sends its invitation to udpAddr; the proxy rewrites the
// invitation's host port to its own TCP proxy so that the device's
// connection back runs through the delayed path too.
type delayPath struct {
	tcp     *testnet.Proxy
	udp     *net.UDPConn // client side
	up      *net.UDPConn // device side (connected)
	mu      sync.Mutex
	client  *net.UDPAddr
	backend string // where TCP connections are forwarded
	wg      sync.WaitGroup
}

// newDelayPath starts a path to device's UDP port. The device dials the
// TCP side; with device "" there is no UDP side and the TCP backend set
// with setBackend is the device (plain bulk send).
func newDelayPath(tb testing.TB, rtt time.Duration, device string) *delayPath {
	tb.Helper()
	p := &delayPath{}
	p.tcp = testnet.NewProxy(tb, testnet.Config{RTT: rtt, Window: deviceWindow, DeviceDials: device != "",
		Backend: func() string {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.backend
		}})
	var err error
	if p.udp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		tb.Fatal(err)
	}
	if device != "" {
		dev, _ := net.ResolveUDPAddr("udp4", device)
		if p.up, err = net.DialUDP("udp4", nil, dev); err != nil {
			tb.Fatal(err)
		}
		p.wg.Add(2)
		go p.udpForward()
		go p.udpBackward()
	}
	// Runs before the TCP proxy's cleanup, whose close releases the
	// datagrams still waiting out their one-way delay.
	tb.Cleanup(p.close)
	return p
}

func (p *delayPath) udpAddr() string { return p.udp.LocalAddr().String() }

func (p *delayPath) setBackend(addr string) {
	p.mu.Lock()
	p.backend = addr
	p.mu.Unlock()
}

func (p *delayPath) close() {
	p.udp.Close()
	if p.up != nil {
		p.up.Close()
	}
	p.wg.Wait()
}

func (p *delayPath) udpForward() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := p.udp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.client = from
		p.mu.Unlock()
		msg := p.rewriteInvitation(append([]byte(nil), buf[:n]...))
		go func() { p.tcp.OneWay(); p.up.Write(msg) }()
	}
}

func (p *delayPath) udpBackward() {
	defer p.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, err := p.up.Read(buf)
		if err != nil {
			return
		}
		msg := append([]byte(nil), buf[:n]...)
		p.mu.Lock()
		to := p.client
		p.mu.Unlock()
		go func() { p.tcp.OneWay(); p.udp.WriteToUDP(msg, to) }()
	}
}

// rewriteInvitation points the device's connection back at the proxy.
func (p *delayPath) rewriteInvitation(msg []byte) []byte {
	f := strings.Fields(string(msg))
	if len(f) != 4 || (f[0] != "0" && f[0] != "100") {
		return msg
	}
	p.setBackend("127.0.0.1:" + f[1])
	return fmt.Appendf(nil, "%s %d %s %s\n", f[0], p.tcp.Port(), f[2], f[3])
}

// stopAndWait uploads like espota.py: invitation, then 1024-byte chunks,
// each followed by a blocking read of the device's reply.
func stopAndWait(ctx context.Context, device string, image []byte) error {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer ln.Close()
	udp, err := net.Dial("udp4", device)
	if err != nil {
		return err
	}
	defer udp.Close()
	md := md5hex(string(image))
	udp.Write(invitation(cmdFlash, ln.Addr().(*net.TCPAddr).Port, int64(len(image)), md))
	udp.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := udp.Read(buf)
	if err != nil || string(buf[:n]) != "OK" {
		return fmt.Errorf("invitation: %q %v", buf[:n], err)
	}
	ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	var replies bytes.Buffer
	for off := 0; off < len(image); off += 1024 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err := conn.Write(image[off:min(off+1024, len(image))]); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf[:10])
		if err != nil {
			return err
		}
		replies.Write(buf[:n])
	}
	for !strings.Contains(replies.String(), "OK") {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf[:32])
		if err != nil {
			return fmt.Errorf("final reply: %w", err)
		}
		replies.Write(buf[:n])
	}
	return nil
}

// bulkSink receives len bytes on each connection and answers "OK".
func bulkSink(tb testing.TB, size int) string {
	return testnet.Serve(tb, func(c net.Conn) {
		io.CopyN(io.Discard, c, int64(size))
		c.Write([]byte("OK"))
	}).String()
}

// bulkSend writes image in one go through addr and waits for "OK".
func bulkSend(addr string, image []byte) error {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write(image); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "OK" {
		return fmt.Errorf("bulk reply %q: %v", got, err)
	}
	return nil
}

func benchSim(tb testing.TB) *otasim.Device {
	d, err := otasim.New(otasim.Config{AppSlot: 2 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// setupPath builds a delayed path for method and returns a function that
// runs one upload over it.
func setupPath(tb testing.TB, method string, rtt time.Duration, image []byte) func() error {
	ctx := context.Background()
	switch method {
	case "espdeck":
		dev := benchSim(tb)
		p := newDelayPath(tb, rtt, dev.Addr().String())
		port := p.udp.LocalAddr().(*net.UDPAddr).Port
		return func() error {
			_, err := Upload(ctx, Target{Host: "127.0.0.1", Port: port}, image, Options{})
			return err
		}
	case "stop-and-wait":
		dev := benchSim(tb)
		p := newDelayPath(tb, rtt, dev.Addr().String())
		return func() error { return stopAndWait(ctx, p.udpAddr(), image) }
	case "tcp-bulk":
		p := newDelayPath(tb, rtt, "")
		p.setBackend(bulkSink(tb, len(image)))
		return func() error { return bulkSend(p.tcp.Addr(), image) }
	}
	tb.Fatalf("unknown method %s", method)
	return nil
}

func BenchmarkUpload1MiB(b *testing.B) {
	image := specImage(1 << 20)
	for _, rtt := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond} {
		for _, method := range []string{"espdeck", "stop-and-wait", "tcp-bulk"} {
			b.Run(fmt.Sprintf("rtt=%s/%s", rtt, method), func(b *testing.B) {
				upload := setupPath(b, method, rtt, image)
				b.SetBytes(int64(len(image)))
				for b.Loop() {
					if err := upload(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestBenchHarness keeps the benchmark's proxy and baselines honest: each
// method moves the whole image through a delayed path.
func TestBenchHarness(t *testing.T) {
	image := specImage(48 << 10)
	for _, method := range []string{"espdeck", "stop-and-wait", "tcp-bulk"} {
		t.Run(method, func(t *testing.T) {
			upload := setupPath(t, method, 2*time.Millisecond, image)
			for range 2 { // a path carries several uploads, as in the benchmark
				if err := upload(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
