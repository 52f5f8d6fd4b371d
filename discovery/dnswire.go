package discovery

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// mDNS wire details (RFC 6762).
const (
	mdnsPort      = 5353
	classMask     = 0x7fff // the top bit of an RR class is the cache-flush bit (§10.2)
	cacheFlushBit = 0x8000
	headerLen     = 12
	flagQR        = 0x8000 // a response
	flagTC        = 0x0200 // more known answers follow (§7.2)
)

// wireRecord is one resource record of a received packet that the browser
// keeps: PTR, SRV, TXT, A or AAAA, class IN.
type wireRecord struct {
	Name       string // owner name, presentation format, as sent (case kept)
	Type       uint16
	TTL        uint32
	CacheFlush bool

	Target string     // PTR: the instance; SRV: the host
	Port   int        // SRV
	TXT    []string   // TXT strings, DNS escapes undone
	Addr   netip.Addr // A or AAAA
}

// rdataKey identifies a record's data, to tell "the same record again" from
// "another record of the same name and type".
func (r wireRecord) rdataKey() string {
	switch r.Type {
	case dns.TypePTR:
		return strings.ToLower(r.Target)
	case dns.TypeSRV:
		return strings.ToLower(r.Target) + ":" + strconv.Itoa(r.Port)
	case dns.TypeTXT:
		return strings.Join(r.TXT, "\x00")
	}
	return r.Addr.String()
}

// wireQuestion is one question of a received packet.
type wireQuestion struct {
	Name string
	Type uint16
}

// wirePacket is what parsePacket understood of one datagram.
type wirePacket struct {
	Response  bool
	Questions []wireQuestion
	Records   []wireRecord // answer, authority and additional sections alike
	Skipped   int          // records dropped as malformed or of no interest
	Truncated bool         // the packet ended inside a record: the rest is lost
}

// parsePacket reads an mDNS message leniently: a record whose data cannot
// be decoded (an NSEC with an empty type bitmap, an unknown type, a bad
// SRV) is skipped over its RDLENGTH and the next record is read, so one odd
// record never hides the others. Reading stops only where the framing
// itself is broken (a bad owner name or a record running past the end),
// because nothing after that point can be located; what was read until
// then is kept. It never panics and allocates in proportion to the packet.
func parsePacket(msg []byte) wirePacket {
	var p wirePacket
	if len(msg) < headerLen {
		p.Truncated = true
		return p
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	p.Response = flags&flagQR != 0
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	rrs := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:])) + int(binary.BigEndian.Uint16(msg[10:]))
	off := headerLen
	for range qd {
		name, next, err := dns.UnpackDomainName(msg, off)
		if err != nil || next+4 > len(msg) {
			p.Truncated = true
			return p
		}
		p.Questions = append(p.Questions, wireQuestion{Name: name, Type: binary.BigEndian.Uint16(msg[next:])})
		off = next + 4
	}
	for range rrs {
		name, next, err := dns.UnpackDomainName(msg, off)
		if err != nil || next+10 > len(msg) {
			p.Truncated = true
			return p
		}
		typ := binary.BigEndian.Uint16(msg[next:])
		class := binary.BigEndian.Uint16(msg[next+2:])
		ttl := binary.BigEndian.Uint32(msg[next+4:])
		rdlen := int(binary.BigEndian.Uint16(msg[next+8:]))
		start := next + 10
		end := start + rdlen
		if end > len(msg) {
			p.Truncated = true
			return p
		}
		off = end
		if class&classMask != dns.ClassINET {
			p.Skipped++
			continue
		}
		r, ok := decodeRdata(msg, name, typ, class, ttl, start, rdlen)
		if !ok {
			p.Skipped++
			continue
		}
		p.Records = append(p.Records, r)
	}
	return p
}

// decodeRdata decodes the data of a record of a kept type with miekg/dns.
// Other types are not decoded at all.
func decodeRdata(msg []byte, name string, typ, class uint16, ttl uint32, start, rdlen int) (wireRecord, bool) {
	switch typ {
	case dns.TypePTR, dns.TypeSRV, dns.TypeTXT, dns.TypeA, dns.TypeAAAA:
	default:
		return wireRecord{}, false
	}
	h := dns.RR_Header{Name: name, Rrtype: typ, Class: class & classMask, Ttl: ttl, Rdlength: uint16(rdlen)}
	// The record ends at start+rdlen: miekg/dns reads TXT strings to the
	// end of the slice it is given.
	rr, _, err := dns.UnpackRRWithHeader(h, msg[:start+rdlen], start)
	if err != nil || rr == nil {
		return wireRecord{}, false
	}
	r := wireRecord{Name: name, Type: typ, TTL: ttl, CacheFlush: class&cacheFlushBit != 0}
	switch v := rr.(type) {
	case *dns.PTR:
		r.Target = v.Ptr
	case *dns.SRV:
		if v.Port == 0 || v.Target == "" {
			return wireRecord{}, false
		}
		r.Target, r.Port = v.Target, int(v.Port)
	case *dns.TXT:
		r.TXT = make([]string, 0, len(v.Txt))
		for _, s := range v.Txt {
			if s != "" {
				r.TXT = append(r.TXT, unescapeDNS(s))
			}
		}
	case *dns.A:
		a, ok := netip.AddrFromSlice(v.A.To4())
		if !ok {
			return wireRecord{}, false
		}
		r.Addr = a
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(v.AAAA.To16())
		if !ok {
			return wireRecord{}, false
		}
		r.Addr = a
	default:
		return wireRecord{}, false
	}
	return r, true
}

// knownAnswer is a record we already hold, listed in a query so that
// responders do not repeat it (RFC 6762 §7.1).
type knownAnswer struct {
	Name, Target string
	TTL          uint32
}

// maxQuerySize keeps a query inside one Ethernet frame. Known answers that
// do not fit are left out: their responders answer again, which costs
// bandwidth, never correctness.
const maxQuerySize = 1400

// buildQuery encodes a multicast query (ID 0, unicast-response bit clear) for
// questions, with PTR known answers appended while they fit.
func buildQuery(questions []wireQuestion, known []knownAnswer) ([]byte, error) {
	m := new(dns.Msg)
	m.Compress = true
	for _, q := range questions {
		m.Question = append(m.Question, dns.Question{Name: dns.Fqdn(q.Name), Qtype: q.Type, Qclass: dns.ClassINET})
	}
	for _, k := range known {
		m.Answer = append(m.Answer, &dns.PTR{
			Hdr: dns.RR_Header{Name: dns.Fqdn(k.Name), Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: k.TTL},
			Ptr: dns.Fqdn(k.Target),
		})
		if m.Len() > maxQuerySize {
			m.Answer = m.Answer[:len(m.Answer)-1]
			break
		}
	}
	return m.Pack()
}
