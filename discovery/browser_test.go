package discovery

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// memNet is an in-memory link for the browser's logic under synctest
// (virtual time): it records the queries the browser sends and delivers the
// packets a test injects. End-to-end behaviour over real sockets is covered
// by the namespace tests.
type memNet struct {
	mu      sync.Mutex
	in      chan packetIn
	queries []sentQuery
	respond func(q wirePacket) [][]byte // answers to a query, delivered 20 ms later
	err     error                       // what Err reports
}

type sentQuery struct {
	at      time.Time
	ifindex int
	pkt     wirePacket
	oneShot bool
}

func newMemNet() *memNet { return &memNet{in: make(chan packetIn, 1024)} }

func (m *memNet) open(context.Context) (transport, error) { return m, nil }
func (m *memNet) Packets() <-chan packetIn                { return m.in }
func (m *memNet) Join(netInterface) error                 { return nil }
func (m *memNet) Err() error                              { return m.err }
func (m *memNet) Close() error                            { return nil }

func (m *memNet) Send(ifc netInterface, msg []byte, oneShot bool) error {
	p := parsePacket(msg)
	m.mu.Lock()
	m.queries = append(m.queries, sentQuery{at: time.Now(), ifindex: ifc.Iface.Index, pkt: p, oneShot: oneShot})
	respond := m.respond
	m.mu.Unlock()
	if respond != nil {
		for _, r := range respond(p) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				m.inject(ifc.Iface.Index, r)
			}()
		}
	}
	return nil
}

func (m *memNet) inject(ifindex int, msg []byte) {
	m.in <- packetIn{data: msg, ifindex: ifindex, src: netip.MustParseAddrPort("10.0.0.250:5353")}
}

func (m *memNet) setRespond(f func(q wirePacket) [][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.respond = f
}

func (m *memNet) sent() []sentQuery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sentQuery(nil), m.queries...)
}

// board describes one simulated ArduinoOTA instance for response packets.
type board struct {
	name, ip string
	port     uint16
	ttl      uint32
	txt      []string
}

func (b board) instance() string { return b.name + "._arduino._tcp.local." }
func (b board) host() string     { return b.name + ".local." }

// records returns the records an ESP responder sends for b, with the
// cache-flush bit on the unique records (RFC 6762 §10.2).
func (b board) records() []dns.RR {
	flush := uint16(dns.ClassINET | cacheFlushBit)
	ttl := b.ttl
	if ttl == 0 && b.port != 0 {
		ttl = 120
	}
	rrs := []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: "_arduino._tcp.local.", Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: b.instance()},
		&dns.SRV{Hdr: dns.RR_Header{Name: b.instance(), Rrtype: dns.TypeSRV, Class: flush, Ttl: ttl}, Port: max(b.port, 1), Target: b.host()},
		&dns.TXT{Hdr: dns.RR_Header{Name: b.instance(), Rrtype: dns.TypeTXT, Class: flush, Ttl: ttl}, Txt: b.txt},
	}
	if b.ip != "" {
		rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: b.host(), Rrtype: dns.TypeA, Class: flush, Ttl: ttl}, A: net.ParseIP(b.ip)})
	}
	return rrs
}

func response(rrs ...dns.RR) []byte {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}, Answer: rrs}
	out, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return out
}

func esp(name, ip string, txt ...string) board {
	return board{name: name, ip: ip, port: 3232, ttl: 120, txt: txt}
}

func memOptions(m *memNet) Options {
	return Options{
		Services:      []string{ServiceArduino},
		DisableSerial: true,
		openTransport: m.open,
		interfaces: func([]string) ([]netInterface, []string, error) {
			return []netInterface{{Iface: net.Interface{Index: 2, Name: "eth0"}, Has4: true}}, []string{"docker0: virtual adapter"}, nil
		},
	}
}

// next returns the next device event, skipping status events, or fails
// after a long virtual wait.
func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	timeout := time.After(time.Hour)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "event stream closed")
			if ev.Kind == StatusChanged {
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no device event within a virtual hour")
		}
	}
}

// quiet asserts that no device event comes for d of virtual time.
func quiet(t *testing.T, events <-chan Event, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-events:
			require.Equal(t, StatusChanged, ev.Kind, "unexpected %v of %s", ev.Kind, ev.Device.ID)
		case <-timeout:
			return
		}
	}
}

func drain(cancel context.CancelFunc, events <-chan Event) {
	cancel()
	for range events {
	}
}

func TestBrowserAnnouncementUpdateGoodbye(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		opts := memOptions(m)
		opts.Static = []Device{{Host: "192.168.4.1", Port: 3232, Addrs: []netip.Addr{netip.MustParseAddr("192.168.4.1")}}}
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		require.Equal(t, "manual/192.168.4.1:3232", next(t, events).Device.ID, "static devices come first")

		time.Sleep(3 * time.Second)
		// An unsolicited announcement is an Added event at once, not at
		// the next query.
		cc := esp("esp32-cc", "10.0.0.7", "board=esp32", "auth_upload=no")
		sent := time.Now()
		m.inject(2, response(cc.records()...))
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, sent, time.Now(), "announcement to event takes no virtual time")
		require.Equal(t, "arduino-ota/esp32-cc", ev.Device.ID)
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.7")}, ev.Device.Addrs)
		require.Equal(t, "eth0", ev.Device.Interface)
		require.Equal(t, "esp32", ev.Device.Board)
		first := ev.Device.FirstSeen

		// Repeats (ESP responders announce three times) and a foreign
		// service change nothing.
		m.inject(2, response(cc.records()...))
		m.inject(2, response(&dns.PTR{Hdr: dns.RR_Header{Name: "_http._tcp.local.", Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 120}, Ptr: "printer._http._tcp.local."}))
		quiet(t, events, 2*time.Second)

		// DHCP gives it a new address, and a password is set: the
		// cache-flush bit replaces the old records, one Updated.
		cc2 := esp("esp32-cc", "10.0.0.8", "board=esp32", "auth_upload=yes")
		m.inject(2, response(cc2.records()...))
		ev = next(t, events)
		require.Equal(t, Updated, ev.Kind)
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.8")}, ev.Device.Addrs)
		require.True(t, ev.Device.AuthUpload)
		require.Equal(t, first, ev.Device.FirstSeen)

		// Goodbye (TTL 0): removed at once.
		bye := cc2
		bye.ttl = 0
		bye.port = 3232
		rrs := cc2.records()
		for _, rr := range rrs {
			rr.Header().Ttl = 0
		}
		sent = time.Now()
		m.inject(2, response(rrs[0]))
		ev = next(t, events)
		require.Equal(t, Removed, ev.Kind)
		require.Equal(t, sent, time.Now(), "goodbye to removal takes no virtual time")
		require.Len(t, w.Snapshot(), 1, "the static device stays")

		// Back again: Added with a new FirstSeen.
		m.inject(2, response(cc2.records()...))
		ev = next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.True(t, ev.Device.FirstSeen.After(first))
	})
}

func TestBrowserTTLExpiryAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)

		// A board that answers every question about itself stays.
		dd := esp("esp32-dd", "10.0.0.10", "board=esp32")
		m.setRespond(func(q wirePacket) [][]byte { return [][]byte{response(dd.records()...)} })
		require.Equal(t, Added, next(t, events).Kind)
		quiet(t, events, 10*time.Minute)

		// It goes silent (power cut, no goodbye): removed when its TTL of
		// 120 s runs out, after refresh queries at 80–97 % of it.
		m.setRespond(nil)
		silent := time.Now()
		ev := next(t, events)
		require.Equal(t, Removed, ev.Kind)
		gone := time.Since(silent)
		require.LessOrEqual(t, gone, 120*time.Second)
		require.Greater(t, gone, 60*time.Second, "not before its TTL says")
		var refreshes []time.Duration
		for _, q := range m.sent() {
			if q.at.After(silent) && slices.ContainsFunc(q.pkt.Questions, func(x wireQuestion) bool { return x.Name == dd.instance() }) {
				refreshes = append(refreshes, q.at.Sub(silent))
			}
		}
		require.GreaterOrEqual(t, len(refreshes), 4, "refresh queries for the instance: %v", refreshes)
		last := silent.Add(gone).Add(-120 * time.Second) // when the records were last received
		for _, r := range refreshes {
			frac := float64(silent.Add(r).Sub(last)) / float64(120*time.Second)
			// 80–97 % of the TTL, or down to 70 % when it joins another
			// record's refresh that is due (dueRefresh coalesces them).
			require.True(t, frac >= 0.70 && frac < 0.98, "refresh at %.2f of the TTL", frac)
		}
	})
}

func TestBrowserQueryScheduleAndKnownAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		ee := esp("esp32-ee", "10.0.0.11")
		ee.ttl = 4500 // long enough that no refresh query mixes in
		m.setRespond(func(q wirePacket) [][]byte { return [][]byte{response(ee.records()...)} })
		opts := memOptions(m)
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		start := time.Now()
		require.Equal(t, Added, next(t, events).Kind)
		time.Sleep(10 * time.Minute)
		synctest.Wait()

		var at []time.Duration
		for _, q := range m.sent() {
			at = append(at, q.at.Sub(start))
			require.Equal(t, "_arduino._tcp.local.", q.pkt.Questions[0].Name)
		}
		// 0, 1, 3, 7, 15, 31, 63 s, then every 60 s.
		require.Equal(t, []time.Duration{0, 1, 3, 7, 15, 31, 63, 123, 183, 243, 303, 363, 423, 483, 543},
			func() []time.Duration {
				out := make([]time.Duration, len(at))
				for i, d := range at {
					out[i] = d / time.Second
				}
				return out
			}())
		q := m.sent()
		require.True(t, q[0].oneShot, "browse queries also go out as one-shot queries")
		require.Empty(t, q[0].pkt.Records, "nothing known yet")
		require.Len(t, q[1].pkt.Records, 1, "the known PTR is listed as a known answer")
		require.Equal(t, ee.instance(), q[1].pkt.Records[0].Target)

		// Refresh asks at once and starts the back-off over.
		asked := time.Now()
		w.Refresh()
		time.Sleep(4 * time.Second)
		synctest.Wait()
		q = m.sent()[len(at):]
		require.Len(t, q, 3)
		require.Equal(t, asked, q[0].at)
		require.Equal(t, asked.Add(time.Second), q[1].at)
		require.Equal(t, asked.Add(3*time.Second), q[2].at)
	})
}

// TestBrowserAssemblesAnyOrder feeds records in the orders other stacks use:
// addresses before the SRV (python-zeroconf), an instance split over
// packets, several instances in one packet, and an NSEC record with an
// empty type bitmap in the middle of the packet.
func TestBrowserAssemblesAnyOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)

		a, b, c := esp("multi-a", "10.0.1.1", "board=a"), esp("multi-b", "10.0.1.2", "board=b"), esp("multi-c", "10.0.1.3", "board=c")
		ra, rb, rc := a.records(), b.records(), c.records()
		nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: a.host(), Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 120}, NextDomain: a.host()}
		pkt := response(ra[3], rb[3], rc[3], ra[0], rb[0], rc[0], ra[1], rb[1], rc[1], ra[2], rb[2], rc[2])
		pkt = withEmptyNSEC(t, pkt, nsec)
		m.inject(2, pkt)
		got := map[string]string{}
		for len(got) < 3 {
			ev := next(t, events)
			require.Equal(t, Added, ev.Kind)
			got[ev.Device.Name] = ev.Device.Board
		}
		require.Equal(t, map[string]string{"multi-a": "a", "multi-b": "b", "multi-c": "c"}, got)

		// One instance over three packets, the address first.
		d := esp("split-d", "10.0.1.4", "board=d")
		rd := d.records()
		m.inject(2, response(rd[3]))
		m.inject(2, response(rd[1], rd[2]))
		quiet(t, events, 50*time.Millisecond)
		m.inject(2, response(rd[0]))
		ev := next(t, events)
		require.Equal(t, "split-d", ev.Device.Name)
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.1.4")}, ev.Device.Addrs)
	})
}

// withEmptyNSEC appends nsec to the answer section of pkt with an empty
// type bitmap (a window with no bytes), as python-zeroconf 0.47 sends it
// and miekg/dns refuses to unpack.
func withEmptyNSEC(t *testing.T, pkt []byte, nsec *dns.NSEC) []byte {
	t.Helper()
	name := make([]byte, 256)
	n, err := dns.PackDomainName(nsec.NextDomain, name, 0, nil, false)
	require.NoError(t, err)
	owner := make([]byte, 256)
	on, err := dns.PackDomainName(nsec.Hdr.Name, owner, 0, nil, false)
	require.NoError(t, err)
	rdata := append(name[:n:n], 0, 0) // window 0, length 0
	rr := append(owner[:on:on], 0, byte(dns.TypeNSEC), 0x80, 1, 0, 0, 0, 120, 0, byte(len(rdata)))
	rr = append(rr, rdata...)
	// Insert after the header's records: answers are last in our packets,
	// so append and bump ANCOUNT, then move it to the middle by rebuilding:
	// simplest is to put it first in the answer section.
	hdr := append([]byte(nil), pkt[:12]...)
	an := int(hdr[6])<<8 | int(hdr[7])
	an++
	hdr[6], hdr[7] = byte(an>>8), byte(an)
	out := append(hdr, rr...)
	// The original answers follow; compression pointers in them point into
	// the original packet, so rebuild them without compression.
	var msg dns.Msg
	require.NoError(t, msg.Unpack(pkt))
	msg.Compress = false
	plain, err := msg.Pack()
	require.NoError(t, err)
	return append(out, plain[12:]...)
}

func TestBrowserResolvesIncompleteInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		time.Sleep(2 * time.Second)

		// Only the PTR arrives; the browser asks for the rest itself.
		f := esp("esp8266-ff", "10.0.0.30", "board=d1_mini")
		rf := f.records()
		m.setRespond(func(q wirePacket) [][]byte {
			var out [][]byte
			for _, qq := range q.Questions {
				switch {
				case qq.Name == f.instance() && qq.Type == dns.TypeSRV:
					out = append(out, response(rf[1]))
				case qq.Name == f.instance() && qq.Type == dns.TypeTXT:
					out = append(out, response(rf[2]))
				case qq.Name == f.host() && qq.Type == dns.TypeA:
					out = append(out, response(rf[3]))
				}
			}
			return out
		})
		sent := time.Now()
		m.inject(2, response(rf[0]))
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "d1_mini", ev.Device.Board)
		require.LessOrEqual(t, time.Since(sent), 2*resolveDelay+100*time.Millisecond, "asked after resolveDelay, answered 20 ms later")
	})
}

func TestBrowserHundredInOneBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		var all []dns.RR
		for i := range 100 {
			all = append(all, esp(fmt.Sprintf("esp32-%03d", i), fmt.Sprintf("10.0.2.%d", i+1), "board=esp32").records()...)
		}
		// One responder answering for 100 boards: as many records per
		// packet as fit in 1400 bytes.
		var pkts [][]byte
		for len(all) > 0 {
			n := min(len(all), 20)
			pkts = append(pkts, response(all[:n]...))
			all = all[n:]
		}
		m.setRespond(func(wirePacket) [][]byte { return pkts })
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		start := time.Now()
		seen := map[string]bool{}
		for len(seen) < 100 {
			ev := next(t, events)
			require.Equal(t, Added, ev.Kind)
			seen[ev.Device.ID] = true
		}
		require.Less(t, time.Since(start), time.Second)
	})
}

func TestBrowserPortBusyAndOneFamily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := memOptions(newMemNet())
		opts.openTransport = func(context.Context) (transport, error) {
			return nil, fmt.Errorf("open UDP port 5353: %w", ErrPort5353Busy)
		}
		opts.Static = []Device{{Host: "192.0.2.10", Port: 3232}}
		devs, st := New(opts).Scan(t.Context())
		require.Equal(t, StateUnavailable, st.MDNS)
		require.Contains(t, st.Message, "5353")
		require.Contains(t, st.Message, "hand-added")
		require.Len(t, devs, 1)

		m := newMemNet()
		m.err = errOneFamily
		m.setRespond(func(wirePacket) [][]byte { return [][]byte{response(esp("esp32-gg", "10.0.0.40").records()...)} })
		opts = memOptions(m)
		devs, st = New(opts).Scan(t.Context())
		require.Len(t, devs, 1, "answers over the working family count")
		require.Equal(t, StateDegraded, st.MDNS)
		require.Contains(t, st.Message, "5353")
	})
}

func TestBrowserNoInterfaceStatus(t *testing.T) {
	m := newMemNet()
	opts := memOptions(m)
	opts.interfaces = func([]string) ([]netInterface, []string, error) {
		return nil, []string{"lo: loopback", "docker0: virtual adapter"}, nil
	}
	opts.RoundTimeout = 10 * time.Millisecond
	devs, st := New(opts).Scan(t.Context())
	require.Empty(t, devs)
	require.Equal(t, StateUnavailable, st.MDNS)
	require.Contains(t, st.Message, "no network interface")
	require.Equal(t, []string{"lo: loopback", "docker0: virtual adapter"}, st.Skipped)
	require.Empty(t, m.sent(), "no query without an interface")
}

func TestBrowserMergesInterfacesStably(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		opts := memOptions(m)
		opts.interfaces = func([]string) ([]netInterface, []string, error) {
			return []netInterface{
				{Iface: net.Interface{Index: 2, Name: "eth0"}, Has4: true},
				{Iface: net.Interface{Index: 3, Name: "wlan0"}, Has4: true},
			}, nil, nil
		}
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		time.Sleep(time.Second)
		m.inject(3, response(esp("esp32-ee", "10.1.0.20").records()...))
		m.inject(2, response(esp("esp32-ee", "10.0.0.20").records()...))
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		if len(ev.Device.Addrs) < 2 { // the two packets were taken one by one
			ev = next(t, events)
			require.Equal(t, Updated, ev.Kind)
		}
		require.Equal(t, "eth0", ev.Device.Interface, "the first interface in order, not the first to answer")
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.1.0.20")}, ev.Device.Addrs)
		m.inject(3, response(esp("esp32-ee", "10.1.0.20").records()...))
		m.inject(2, response(esp("esp32-ee", "10.0.0.20").records()...))
		quiet(t, events, 10*time.Second)
	})
}

func TestBrowserIgnoresOtherInterfacesAndQueries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		rr := esp("esp32-hh", "10.0.0.50").records()
		m.inject(7, response(rr...)) // an interface we do not browse
		q := &dns.Msg{Question: []dns.Question{{Name: "_arduino._tcp.local.", Qtype: dns.TypePTR, Qclass: dns.ClassINET}}, Answer: rr}
		b, err := q.Pack()
		require.NoError(t, err)
		m.inject(2, b) // someone's query with known answers: not evidence
		quiet(t, events, 5*time.Second)
		require.Empty(t, w.Snapshot())
	})
}

// TestBrowserSettledQueryRate settles a browser with 100 boards (TTL
// 120 s, announced at random moments of two minutes, answering every
// question about themselves) and counts the queries it sends over the next
// ten minutes: browse queries every 60 s plus the refreshes, which share
// packets. The target is at most one query per second per interface.
func TestBrowserSettledQueryRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		boards := map[string]board{}
		var all []board
		for i := range 100 {
			b := esp(fmt.Sprintf("esp32-%03d", i), fmt.Sprintf("10.0.3.%d", i+1), "board=esp32")
			all = append(all, b)
			boards[b.instance()], boards[b.host()] = b, b
		}
		m.setRespond(func(q wirePacket) [][]byte {
			known := map[string]bool{}
			for _, r := range q.Records {
				known[r.Target] = true
			}
			var rrs []dns.RR
			for _, qq := range q.Questions {
				if qq.Name == "_arduino._tcp.local." {
					for _, b := range all {
						if !known[b.instance()] {
							rrs = append(rrs, b.records()...)
						}
					}
				} else if b, ok := boards[qq.Name]; ok {
					rrs = append(rrs, b.records()...)
				}
			}
			var out [][]byte
			for len(rrs) > 0 {
				n := min(len(rrs), 20)
				out = append(out, response(rrs[:n]...))
				rrs = rrs[n:]
			}
			return out
		})
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		go func() {
			for range events {
			}
		}()
		for _, b := range all {
			time.Sleep(1200 * time.Millisecond)
			m.inject(2, response(b.records()...))
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		require.Len(t, w.Snapshot(), 100)
		before := len(m.sent())
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		sent := len(m.sent()) - before
		t.Logf("settled with 100 boards: %d queries in 10 minutes (%.2f per second)", sent, float64(sent)/600)
		require.LessOrEqual(t, sent, 600, "at most one query per second")
		require.Len(t, w.Snapshot(), 100, "refreshes keep every board")
	})
}

// TestBrowserWithoutArrivalInterface: where the system does not say which
// interface a packet came in on (Windows), the source address decides, or
// the only browsed interface.
func TestBrowserWithoutArrivalInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemNet()
		w := New(memOptions(m))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		m.inject(0, response(esp("esp32-noif", "10.0.0.77").records()...))
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "eth0", ev.Device.Interface)
	})
}
