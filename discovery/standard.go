package discovery

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// sendStandardQuery multicasts one RFC 6762 query for service from UDP port
// 5353 on iface, next to the one-shot query hashicorp/mdns sends from an
// ephemeral port. Responders answer it by multicast, which the library's
// multicast listener hears. This works around two library pitfalls:
//   - responders that ignore one-shot (legacy) queries from ports other
//     than 5353 (hashicorp/mdns issue #144) are heard at all;
//   - responders that put the A record before the SRV record in a packet
//     (python-zeroconf does) leave the library's entry without an address
//     (issue #145); a second answer in the same round completes it, because
//     by then the host name is aliased to the instance entry.
//
// The socket shares port 5353 (SO_REUSEADDR, SO_REUSEPORT) like every mDNS
// stack does; when another program holds the port exclusively the bind
// fails and nothing is sent (the caller then reports ErrPort5353Busy from
// the library).
func sendStandardQuery(ctx context.Context, iface netInterface, service string) error {
	msg, err := ptrQuery(strings.Trim(service, ".") + ".local")
	if err != nil {
		return err
	}
	var errs []error
	if iface.Has4 {
		errs = append(errs, sendFrom5353(ctx, "udp4", iface.Iface.Index, msg, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}))
	}
	if iface.Has6 {
		errs = append(errs, sendFrom5353(ctx, "udp6", iface.Iface.Index, msg,
			&net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353, Zone: iface.Iface.Name}))
	}
	return errors.Join(errs...)
}

func sendFrom5353(ctx context.Context, network string, ifindex int, msg []byte, to *net.UDPAddr) error {
	lc := net.ListenConfig{Control: shareMDNSPort}
	addr := "0.0.0.0:5353"
	if network == "udp6" {
		addr = "[::]:5353"
	}
	pc, err := lc.ListenPacket(ctx, network, addr)
	if err != nil {
		return fmt.Errorf("open %s socket on port 5353: %w", network, err)
	}
	defer pc.Close()
	ifc, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("interface %d: %w", ifindex, err)
	}
	if network == "udp4" {
		err = ipv4.NewPacketConn(pc).SetMulticastInterface(ifc)
	} else {
		err = ipv6.NewPacketConn(pc).SetMulticastInterface(ifc)
	}
	if err != nil {
		return fmt.Errorf("send mDNS queries out of %s: %w", ifc.Name, err)
	}
	if _, err := pc.WriteTo(msg, to); err != nil {
		return fmt.Errorf("send standard mDNS query to %s: %w", to, err)
	}
	return nil
}

// ptrQuery encodes a DNS query for name's PTR records with ID 0 and the
// unicast-response bit clear, as RFC 6762 §18 asks of multicast queries.
func ptrQuery(name string) ([]byte, error) {
	msg := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(msg[4:], 1) // QDCOUNT
	for _, label := range strings.Split(strings.Trim(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return nil, fmt.Errorf("bad DNS name %q", name)
		}
		msg = append(msg, byte(len(label)))
		msg = append(msg, label...)
	}
	msg = append(msg, 0, 0, 12, 0, 1) // root, QTYPE PTR, QCLASS IN
	return msg, nil
}
