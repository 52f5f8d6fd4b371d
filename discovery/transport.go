package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// packetIn is one datagram received on an interface.
type packetIn struct {
	data    []byte
	ifindex int
	src     netip.AddrPort
}

// transport moves mDNS datagrams. The browser owns one for its life; unit
// tests give it an in-memory network instead of sockets.
type transport interface {
	// Packets delivers received datagrams until Close.
	Packets() <-chan packetIn
	// Join starts receiving multicast on ifc.
	Join(ifc netInterface) error
	// Send multicasts msg from port 5353 out of ifc on the families it has;
	// oneShot also sends it from an ephemeral port, whose answers come
	// back by unicast (RFC 6762 §6.7), for responders that answer only
	// one kind of query or answer by unicast to the query's source.
	Send(ifc netInterface, msg []byte, oneShot bool) error
	// Err reports a family that could not be opened (errOneFamily), or nil.
	Err() error
	Close() error
}

var (
	groupV4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: mdnsPort}
	groupV6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: mdnsPort}
)

// udpTransport is the real transport: per address family one socket on
// port 5353, shared with the other mDNS stacks of the host
// (SO_REUSEADDR/SO_REUSEPORT) and joined to the group on every browsed
// interface, plus one ephemeral-port socket for one-shot queries.
type udpTransport struct {
	p4, o4  *ipv4.PacketConn
	p6, o6  *ipv6.PacketConn
	closers []net.PacketConn
	in      chan packetIn
	oneErr  error
	wg      sync.WaitGroup
	once    sync.Once
}

// openUDPTransport opens the sockets. It fails with ErrPort5353Busy when
// neither family's port 5353 can be shared; when only one can, it works
// over that one and Err says so.
func openUDPTransport(ctx context.Context) (transport, error) {
	t := &udpTransport{in: make(chan packetIn, 512)}
	lc := net.ListenConfig{Control: shareMDNSPort}
	var err4, err6 error
	if pc, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", mdnsPort)); err == nil {
		t.p4 = ipv4.NewPacketConn(pc)
		t.closers = append(t.closers, pc)
		if oc, err := net.ListenPacket("udp4", "0.0.0.0:0"); err == nil {
			t.o4 = ipv4.NewPacketConn(oc)
			t.closers = append(t.closers, oc)
		}
	} else {
		err4 = err
	}
	if pc, err := lc.ListenPacket(ctx, "udp6", fmt.Sprintf("[::]:%d", mdnsPort)); err == nil {
		t.p6 = ipv6.NewPacketConn(pc)
		t.closers = append(t.closers, pc)
		if oc, err := net.ListenPacket("udp6", "[::]:0"); err == nil {
			t.o6 = ipv6.NewPacketConn(oc)
			t.closers = append(t.closers, oc)
		}
	} else {
		err6 = err
	}
	switch {
	case err4 != nil && err6 != nil:
		if errors.Is(err4, syscall.EADDRINUSE) || errors.Is(err6, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("open UDP port 5353: %w", ErrPort5353Busy)
		}
		return nil, fmt.Errorf("open UDP port 5353: %w", errors.Join(err4, err6))
	case err4 != nil || err6 != nil:
		t.oneErr = fmt.Errorf("%w (%v)", errOneFamily, errors.Join(err4, err6))
	}
	for _, c := range []*ipv4.PacketConn{t.p4, t.o4} {
		if c != nil {
			_ = c.SetControlMessage(ipv4.FlagInterface, true)
			_ = c.SetMulticastTTL(255)
			_ = c.SetMulticastLoopback(true)
			t.wg.Go(func() { t.read4(c) })
		}
	}
	for _, c := range []*ipv6.PacketConn{t.p6, t.o6} {
		if c != nil {
			_ = c.SetControlMessage(ipv6.FlagInterface, true)
			_ = c.SetMulticastHopLimit(255)
			_ = c.SetMulticastLoopback(true)
			t.wg.Go(func() { t.read6(c) })
		}
	}
	return t, nil
}

func (t *udpTransport) Packets() <-chan packetIn { return t.in }
func (t *udpTransport) Err() error               { return t.oneErr }

// maxPacket is the largest mDNS message we read (RFC 6762 §17: 9000 bytes).
const maxPacket = 9000

func (t *udpTransport) read4(c *ipv4.PacketConn) {
	for {
		buf := make([]byte, maxPacket)
		n, cm, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p := packetIn{data: buf[:n]}
		if cm != nil {
			p.ifindex = cm.IfIndex
		}
		if u, ok := src.(*net.UDPAddr); ok {
			p.src = u.AddrPort()
		}
		t.in <- p
	}
}

func (t *udpTransport) read6(c *ipv6.PacketConn) {
	for {
		buf := make([]byte, maxPacket)
		n, cm, src, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p := packetIn{data: buf[:n]}
		if cm != nil {
			p.ifindex = cm.IfIndex
		}
		if u, ok := src.(*net.UDPAddr); ok {
			p.src = u.AddrPort()
		}
		t.in <- p
	}
}

// Join joins the mDNS groups on ifc. Joining twice is not an error.
func (t *udpTransport) Join(ifc netInterface) error {
	var errs []error
	i := ifc.Iface
	if ifc.Has4 && t.p4 != nil {
		if err := t.p4.JoinGroup(&i, groupV4); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			errs = append(errs, fmt.Errorf("join 224.0.0.251 on %s: %w", i.Name, err))
		}
	}
	if ifc.Has6 && t.p6 != nil {
		if err := t.p6.JoinGroup(&i, groupV6); err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			errs = append(errs, fmt.Errorf("join ff02::fb on %s: %w", i.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (t *udpTransport) Send(ifc netInterface, msg []byte, oneShot bool) error {
	var errs []error
	if ifc.Has4 {
		cm := &ipv4.ControlMessage{IfIndex: ifc.Iface.Index}
		for _, c := range []*ipv4.PacketConn{t.p4, pick(oneShot, t.o4)} {
			if c != nil {
				if _, err := c.WriteTo(msg, cm, groupV4); err != nil {
					errs = append(errs, fmt.Errorf("send mDNS query on %s: %w", ifc.Iface.Name, err))
				}
			}
		}
	}
	if ifc.Has6 {
		cm := &ipv6.ControlMessage{IfIndex: ifc.Iface.Index}
		to := &net.UDPAddr{IP: groupV6.IP, Port: mdnsPort, Zone: ifc.Iface.Name}
		for _, c := range []*ipv6.PacketConn{t.p6, pick(oneShot, t.o6)} {
			if c != nil {
				if _, err := c.WriteTo(msg, cm, to); err != nil {
					errs = append(errs, fmt.Errorf("send mDNS query on %s over IPv6: %w", ifc.Iface.Name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

func pick[T any](ok bool, v *T) *T {
	if ok {
		return v
	}
	return nil
}

// Close closes the sockets and waits for the readers. Packets still queued
// are dropped.
func (t *udpTransport) Close() error {
	t.once.Do(func() {
		for _, c := range t.closers {
			c.Close()
		}
		// Readers may be blocked handing over a packet: drain until they end.
		done := make(chan struct{})
		go func() { t.wg.Wait(); close(done) }()
		for {
			select {
			case <-t.in:
				continue
			case <-done:
			}
			break
		}
	})
	return nil
}
