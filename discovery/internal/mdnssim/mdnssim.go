//go:build linux

// Package mdnssim is an mDNS responder for tests, written from RFC 6762/6763
// and from what ESP responders are seen to send, not from espdeck's browser
// (it does not import it). It advertises instances over IPv4 multicast on
// one interface, announces them (RFC 6762 §8.3), answers queries by
// multicast with several instances per packet, and says goodbye (TTL 0).
// Records that must be unique carry the cache-flush bit, as ESP-IDF's and
// the ESP8266 core's responders set it. It is for tests only and must run
// inside a network namespace the test made.
package mdnssim

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Instance is one advertised service instance.
type Instance struct {
	Name    string // instance label: "esp32-a1b2c3"
	Service string // "_arduino._tcp"
	Host    string // host label without .local (default Name)
	IP      net.IP // IPv4 address of the host
	Port    uint16
	TXT     []string
	TTL     uint32 // default 120, as ESP responders use
}

func (in Instance) instance() string { return in.Name + "." + in.Service + ".local." }
func (in Instance) host() string {
	if in.Host != "" {
		return in.Host + ".local."
	}
	return in.Name + ".local."
}

func (in Instance) ttl() uint32 {
	if in.TTL == 0 {
		return 120
	}
	return in.TTL
}

// Records returns the instance's records with the given TTL.
func (in Instance) Records(ttl uint32) []dns.RR {
	flush := uint16(dns.ClassINET | 0x8000)
	return []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: in.Service + ".local.", Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: in.instance()},
		&dns.SRV{Hdr: dns.RR_Header{Name: in.instance(), Rrtype: dns.TypeSRV, Class: flush, Ttl: ttl}, Port: in.Port, Target: in.host()},
		&dns.TXT{Hdr: dns.RR_Header{Name: in.instance(), Rrtype: dns.TypeTXT, Class: flush, Ttl: ttl}, Txt: in.TXT},
		&dns.A{Hdr: dns.RR_Header{Name: in.host(), Rrtype: dns.TypeA, Class: flush, Ttl: ttl}, A: in.IP.To4()},
	}
}

// Responder answers for a set of instances until Close.
type Responder struct {
	conn  *ipv4.PacketConn
	raw   net.PacketConn
	iface *net.Interface
	mu    sync.Mutex
	insts []Instance
	mute  bool
	wg    sync.WaitGroup
}

var group = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}

// Start opens port 5353 (shared) on iface and answers queries for insts.
func Start(ctx context.Context, iface *net.Interface, insts ...Instance) (*Responder, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", "0.0.0.0:5353")
	if err != nil {
		return nil, err
	}
	r := &Responder{conn: ipv4.NewPacketConn(pc), raw: pc, iface: iface, insts: insts}
	if err := r.conn.JoinGroup(iface, group); err != nil {
		pc.Close()
		return nil, err
	}
	_ = r.conn.SetMulticastInterface(iface)
	_ = r.conn.SetMulticastTTL(255)
	_ = r.conn.SetMulticastLoopback(true)
	r.wg.Go(r.serve)
	return r, nil
}

// Set replaces the advertised instances (a new address or TXT); call
// Announce afterwards to tell the network.
func (r *Responder) Set(insts ...Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.insts = insts
}

// Mute stops answering queries without a goodbye: a board that lost power.
func (r *Responder) Mute() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mute = true
}

// Announce multicasts every instance's records once, all in as few packets
// as fit 1400 bytes, and answers queries again after a Goodbye or Mute.
func (r *Responder) Announce() error {
	r.mu.Lock()
	insts := append([]Instance(nil), r.insts...)
	r.mute = false
	r.mu.Unlock()
	var rrs []dns.RR
	for _, in := range insts {
		rrs = append(rrs, in.Records(in.ttl())...)
	}
	return r.send(rrs)
}

// Goodbye multicasts every instance's records with TTL 0 (RFC 6762 §10.1)
// and stops answering for them: records said goodbye to are no longer
// valid, so a query that arrives after the goodbye gets no answer (before,
// the simulator answered it with the full TTL and brought the board back,
// which made a namespace test miss its remove event under load).
func (r *Responder) Goodbye() error {
	r.mu.Lock()
	insts := append([]Instance(nil), r.insts...)
	r.mute = true
	r.mu.Unlock()
	var rrs []dns.RR
	for _, in := range insts {
		rrs = append(rrs, in.Records(0)...)
	}
	return r.send(rrs)
}

func (r *Responder) send(rrs []dns.RR) error {
	for len(rrs) > 0 {
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Compress: true}
		for len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs[0])
			if m.Len() > 1400 && len(m.Answer) > 1 {
				m.Answer = m.Answer[:len(m.Answer)-1]
				break
			}
			rrs = rrs[1:]
		}
		b, err := m.Pack()
		if err != nil {
			return err
		}
		if _, err := r.conn.WriteTo(b, &ipv4.ControlMessage{IfIndex: r.iface.Index}, group); err != nil {
			return err
		}
	}
	return nil
}

// serve answers PTR queries for the services and SRV/TXT/A questions for
// the instances, by multicast, leaving out PTRs the querier listed as
// known answers with more than half their TTL (§7.1).
func (r *Responder) serve() {
	buf := make([]byte, 9000)
	for {
		n, _, src, err := r.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var q dns.Msg
		if q.Unpack(buf[:n]) != nil || q.Response {
			continue
		}
		r.mu.Lock()
		insts, mute := append([]Instance(nil), r.insts...), r.mute
		r.mu.Unlock()
		if mute {
			continue
		}
		known := map[string]bool{}
		for _, rr := range q.Answer {
			if p, ok := rr.(*dns.PTR); ok {
				known[strings.ToLower(p.Ptr)] = true
			}
		}
		var out []dns.RR
		for _, qq := range q.Question {
			for _, in := range insts {
				rec := in.Records(in.ttl())
				switch {
				case qq.Qtype == dns.TypePTR && strings.EqualFold(qq.Name, in.Service+".local."):
					if !known[strings.ToLower(in.instance())] {
						out = append(out, rec...)
					}
				case strings.EqualFold(qq.Name, in.instance()) && (qq.Qtype == dns.TypeSRV || qq.Qtype == dns.TypeTXT || qq.Qtype == dns.TypeANY):
					out = append(out, rec[1:]...)
				case strings.EqualFold(qq.Name, in.host()) && (qq.Qtype == dns.TypeA || qq.Qtype == dns.TypeANY):
					out = append(out, rec[3])
				}
			}
		}
		if len(out) == 0 {
			continue
		}
		if u, ok := src.(*net.UDPAddr); ok && u.Port != 5353 {
			// A one-shot query: answer by unicast to its port (§6.7).
			m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: q.Id, Response: true, Authoritative: true}, Question: q.Question, Answer: out, Compress: true}
			if b, err := m.Pack(); err == nil {
				_, _ = r.raw.WriteTo(b, u)
			}
			continue
		}
		_ = r.send(out)
	}
}

// Close stops answering (without a goodbye) and closes the socket.
func (r *Responder) Close() error {
	err := r.raw.Close()
	r.wg.Wait()
	return err
}
