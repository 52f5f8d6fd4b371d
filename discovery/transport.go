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
	pc4, oc4, err4 := listenFamily(ctx, "udp4", "0.0.0.0")
	if err4 == nil {
		t.p4 = ipv4.NewPacketConn(pc4)
		t.closers = append(t.closers, pc4)
		if oc4 != nil {
			t.o4 = ipv4.NewPacketConn(oc4)
			t.closers = append(t.closers, oc4)
		}
	}
	pc6, oc6, err6 := listenFamily(ctx, "udp6", "[::]")
	if err6 == nil {
		t.p6 = ipv6.NewPacketConn(pc6)
		t.closers = append(t.closers, pc6)
		if oc6 != nil {
			t.o6 = ipv6.NewPacketConn(oc6)
			t.closers = append(t.closers, oc6)
		}
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
			t.wg.Go(func() { readFamily(t, c, func(cm *ipv4.ControlMessage) int { return cm.IfIndex }) })
		}
	}
	for _, c := range []*ipv6.PacketConn{t.p6, t.o6} {
		if c != nil {
			_ = c.SetControlMessage(ipv6.FlagInterface, true)
			_ = c.SetMulticastHopLimit(255)
			_ = c.SetMulticastLoopback(true)
			t.wg.Go(func() { readFamily(t, c, func(cm *ipv6.ControlMessage) int { return cm.IfIndex }) })
		}
	}
	return t, nil
}

// listenFamily opens one family's port-5353 socket, shared with the
// host's other mDNS stacks, and its ephemeral-port socket for one-shot
// queries (nil if that one cannot be opened: one-shot queries then go
// out from 5353 only). host is the family's unspecified address.
func listenFamily(ctx context.Context, network, host string) (shared, oneShot net.PacketConn, err error) {
	lc := net.ListenConfig{Control: shareMDNSPort}
	shared, err = lc.ListenPacket(ctx, network, fmt.Sprintf("%s:%d", host, mdnsPort))
	if err != nil {
		return nil, nil, err
	}
	if oc, err := net.ListenPacket(network, host+":0"); err == nil {
		oneShot = oc
	}
	return shared, oneShot, nil
}

func (t *udpTransport) Packets() <-chan packetIn { return t.in }
func (t *udpTransport) Err() error               { return t.oneErr }

// maxPacket is the largest mDNS message we read (RFC 6762 §17: 9000 bytes).
const maxPacket = 9000

// readFamily hands every datagram c receives to Packets until c is
// closed. c is one family's socket; ifindex reads the arrival interface
// from that family's control message.
func readFamily[CM any](t *udpTransport, c interface {
	ReadFrom([]byte) (int, *CM, net.Addr, error)
}, ifindex func(*CM) int) {
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
			p.ifindex = ifindex(cm)
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
