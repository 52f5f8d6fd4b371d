package discovery

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Browser timing that is not an option.
const (
	// reopenAfter is how long the browser waits before trying to open
	// port 5353 again after it could not.
	reopenAfter = 5 * time.Second
	// recheckInterfaces is how often the set of interfaces is looked at
	// again (a Wi-Fi that reconnects, a new USB Ethernet adapter).
	recheckInterfaces = 5 * time.Second
	// resolveDelay is how long an incomplete instance (a PTR without its
	// SRV, an SRV without addresses) waits for the rest of its records,
	// which usually follow in the same burst, before they are asked for.
	resolveDelay = 200 * time.Millisecond
	// batchPackets is how many queued packets are folded into the cache
	// before devices are assembled again.
	batchPackets = 256
)

// browser is one run of the mDNS cache over an open transport.
type browser struct {
	w       *Watcher
	tr      transport
	cache   *recordCache
	ifaces  []netInterface
	skipped []string
	ifErr   error
	asked   map[string]time.Time // last time a completing question was sent, by interface|name|type
	sent    int                  // queries sent
	sendErr error                // the last send's error
}

func (w *Watcher) newBrowser(tr transport) *browser {
	return &browser{w: w, tr: tr, cache: newRecordCache(), asked: make(map[string]time.Time)}
}

// mdnsLoop browses until ctx ends, reopening port 5353 while it cannot be
// opened.
func (w *Watcher) mdnsLoop(ctx context.Context) {
	for ctx.Err() == nil {
		tr, err := w.opts.openTransport(ctx)
		if err != nil {
			w.applyMDNS(ctx, nil, mdnsState{err: err})
			t := time.NewTimer(reopenAfter)
			select {
			case <-ctx.Done():
			case <-w.refresh:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		b := w.newBrowser(tr)
		b.run(ctx, false)
		tr.Close()
	}
}

// scanMDNS sends one query on every interface and listens for RoundTimeout.
func (w *Watcher) scanMDNS(ctx context.Context) {
	tr, err := w.opts.openTransport(ctx)
	if err != nil {
		w.applyMDNS(ctx, nil, mdnsState{err: err})
		return
	}
	defer tr.Close()
	sctx, cancel := context.WithTimeout(ctx, w.opts.RoundTimeout)
	defer cancel()
	w.newBrowser(tr).run(sctx, true)
}

// run is the browser's event loop: it takes every packet that arrives,
// queries on the back-off schedule, refreshes records before their TTL runs
// out, expires them, and applies the assembled devices after each change.
// A scan sends one query and never sends more than the completing questions.
func (b *browser) run(ctx context.Context, scan bool) {
	o := b.w.opts
	now := time.Now()
	b.chooseInterfaces()
	gap := o.Interval
	nextQuery := now
	nextCheck := now.Add(recheckInterfaces)
	var resolveAt time.Time
	b.apply(ctx)
	for {
		deadline := nextCheck
		for _, t := range []time.Time{nextQuery, b.cache.next(), resolveAt} {
			if !t.IsZero() && t.Before(deadline) {
				deadline = t
			}
		}
		timer := time.NewTimer(time.Until(deadline))
		changed := false
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case p := <-b.tr.Packets():
			changed = b.take(p, time.Now())
			for i := 1; i < batchPackets; i++ {
				select {
				case p := <-b.tr.Packets():
					changed = b.take(p, time.Now()) || changed
					continue
				default:
				}
				break
			}
		case <-b.w.refresh:
			if !scan {
				nextQuery, gap = time.Now(), o.Interval
			}
		case <-timer.C:
		}
		timer.Stop()
		now = time.Now()
		if !now.Before(nextCheck) {
			if b.chooseInterfaces() {
				nextQuery = now // ask on the new interface now
			}
			nextCheck = now.Add(recheckInterfaces)
		}
		if b.cache.expire(now) {
			changed = true
		}
		b.refreshDue(now)
		if !nextQuery.IsZero() && !now.Before(nextQuery) {
			b.query(now)
			if scan {
				nextQuery = time.Time{}
			} else {
				nextQuery = now.Add(gap)
				gap = min(2*gap, o.MaxInterval)
			}
			b.apply(ctx) // the status counts queries
		}
		if changed {
			if a := b.apply(ctx); len(a.missing) > 0 && resolveAt.IsZero() {
				resolveAt = now.Add(resolveDelay)
			}
		}
		if !resolveAt.IsZero() && !now.Before(resolveAt) {
			resolveAt = time.Time{}
			b.resolve(now)
		}
	}
}

// chooseInterfaces looks at the interfaces again, joins new ones and
// reports whether any was new.
func (b *browser) chooseInterfaces() bool {
	ifaces, skipped, err := b.w.opts.interfaces(b.w.opts.Interfaces)
	if err == nil && len(ifaces) == 0 {
		err = ErrNoInterface
	}
	added := false
	var joinErrs []error
	for _, ni := range ifaces {
		if !slices.ContainsFunc(b.ifaces, func(o netInterface) bool { return o.Iface.Index == ni.Iface.Index }) {
			added = true
		}
		if err := b.tr.Join(ni); err != nil {
			joinErrs = append(joinErrs, err)
		}
	}
	if err == nil {
		err = errors.Join(joinErrs...)
	}
	b.ifaces, b.skipped, b.ifErr = ifaces, skipped, err
	return added
}

func (b *browser) iface(index int) (netInterface, bool) {
	for _, ni := range b.ifaces {
		if ni.Iface.Index == index {
			return ni, true
		}
	}
	return netInterface{}, false
}

// ifaceFor picks the browsed interface a packet from src came in on, for
// systems that do not report the arrival interface (Windows): the one whose
// subnet holds src, else the only one browsed, else none (0).
func (b *browser) ifaceFor(src netip.Addr) int {
	src = src.Unmap()
	for _, ni := range b.ifaces {
		if src.Is6() && src.IsLinkLocalUnicast() && src.Zone() == ni.Iface.Name {
			return ni.Iface.Index
		}
		addrs, _ := ni.Iface.Addrs()
		for _, a := range addrs {
			if pfx, err := netip.ParsePrefix(a.String()); err == nil && pfx.Contains(src.WithZone("")) {
				return ni.Iface.Index
			}
		}
	}
	if len(b.ifaces) == 1 {
		return b.ifaces[0].Iface.Index
	}
	return 0
}

// take folds one datagram into the cache. Queries (ours looped back, and
// other hosts') carry no records to cache; packets from interfaces we do
// not browse are ignored.
func (b *browser) take(p packetIn, now time.Time) bool {
	if p.ifindex == 0 {
		p.ifindex = b.ifaceFor(p.src.Addr())
	}
	if _, ok := b.iface(p.ifindex); !ok {
		return false
	}
	pkt := parsePacket(p.data)
	if !pkt.Response {
		return false
	}
	if pkt.Skipped > 0 || pkt.Truncated {
		b.w.opts.Logger.Debug("mDNS packet partly skipped", "from", p.src, "skipped_records", pkt.Skipped, "truncated", pkt.Truncated)
	}
	changed := false
	for _, r := range pkt.Records {
		if b.add(r, p.ifindex, now) {
			changed = true
		}
	}
	return changed
}

// add caches r unless it is of no use to the browsed services: PTRs of
// other services, SRV and TXT of their instances. Address records are
// kept, since any host may be the target of a browsed instance.
func (b *browser) add(r wireRecord, ifindex int, now time.Time) bool {
	name := strings.ToLower(r.Name)
	switch r.Type {
	case dns.TypePTR:
		if !slices.Contains(b.serviceNames(), name) {
			return false
		}
	case dns.TypeSRV, dns.TypeTXT:
		if !slices.ContainsFunc(b.serviceNames(), func(s string) bool { return strings.HasSuffix(name, "."+s) }) {
			return false
		}
	}
	return b.cache.add(r, ifindex, now)
}

// serviceNames returns the browsed services as lowercased owner names.
func (b *browser) serviceNames() []string {
	out := make([]string, 0, len(b.w.opts.Services))
	for _, s := range b.w.opts.Services {
		out = append(out, strings.ToLower(strings.Trim(s, "."))+".local.")
	}
	return out
}

// query sends one query for every browsed service on every interface, with
// the PTRs already known as known answers. It goes out from port 5353 and
// as a one-shot query from an ephemeral port: some responders (hashicorp/mdns's
// server among them) answer every query by unicast to its source, and a
// unicast answer to port 5353 may be handed to another program sharing the
// port. Once settled this is two packets a minute per interface.
func (b *browser) query(now time.Time) {
	var errs []error
	for _, ni := range b.ifaces {
		var qs []wireQuestion
		var known []knownAnswer
		for _, svc := range b.w.opts.Services {
			qs = append(qs, wireQuestion{Name: strings.Trim(svc, ".") + ".local.", Type: dns.TypePTR})
			known = append(known, b.cache.knownAnswers(svc, ni.Iface.Index, now)...)
		}
		if err := b.send(ni, qs, known, true); err != nil {
			errs = append(errs, err)
		}
	}
	b.sent++
	b.sendErr = errors.Join(errs...)
}

func (b *browser) send(ni netInterface, qs []wireQuestion, known []knownAnswer, oneShot bool) error {
	msg, err := buildQuery(qs, known)
	if err != nil {
		return err
	}
	return b.tr.Send(ni, msg, oneShot)
}

// refreshDue asks again for the records of browsed instances that reached a
// refresh point (80–95 % of their TTL), one query per interface.
func (b *browser) refreshDue(now time.Time) {
	due := b.cache.dueRefresh(now, func(*cacheEntry) bool { return true })
	byIface := make(map[int][]wireQuestion)
	for _, e := range due {
		q := wireQuestion{Name: e.rec.Name, Type: e.rec.Type}
		if !slices.Contains(byIface[e.ifindex], q) {
			byIface[e.ifindex] = append(byIface[e.ifindex], q)
		}
	}
	for ix, qs := range byIface {
		if ni, ok := b.iface(ix); ok {
			_ = b.send(ni, qs, nil, false)
		}
	}
}

// resolve asks for the records that would complete instances, each at most
// once a second.
func (b *browser) resolve(now time.Time) {
	a := b.cache.assemble(b.w.opts.Services, b.ifaces)
	for ix, qs := range a.missing {
		ni, ok := b.iface(ix)
		if !ok {
			continue
		}
		var ask []wireQuestion
		for _, q := range qs {
			k := strconv.Itoa(ix) + "|" + strings.ToLower(q.Name) + "|" + strconv.Itoa(int(q.Type))
			if t, ok := b.asked[k]; ok && now.Sub(t) < time.Second {
				continue
			}
			b.asked[k] = now
			ask = append(ask, q)
		}
		for len(ask) > 0 {
			n := min(len(ask), 20)
			_ = b.send(ni, ask[:n], nil, true)
			ask = ask[n:]
		}
	}
}

// apply assembles the devices and hands them to the watcher.
func (b *browser) apply(ctx context.Context) assembly {
	a := b.cache.assemble(b.w.opts.Services, b.ifaces)
	var names []string
	for _, ni := range b.ifaces {
		names = append(names, ni.Iface.Name)
	}
	err := errors.Join(b.ifErr, b.tr.Err(), b.sendErr)
	b.w.applyMDNS(ctx, a.devices, mdnsState{ifaces: names, skipped: b.skipped, err: err, queries: b.sent})
	return a
}

// mdnsState is what the browser reports besides devices.
type mdnsState struct {
	ifaces, skipped []string
	err             error
	queries         int
}

// applyMDNS replaces the mDNS devices with devices (nil: no news about
// devices, only about the state) and sends the events.
func (w *Watcher) applyMDNS(ctx context.Context, devices map[string]Device, s mdnsState) {
	now := w.opts.Now()
	var evs []Event
	w.mu.Lock()
	if devices != nil {
		// A hand-added or USB entry with the same ID wins.
		evs = w.mergeLocked(fromMDNS, devices, now, func(other source) bool { return other != fromMDNS })
	}
	st := w.status.clone()
	st.Rounds = s.queries
	if s.ifaces != nil || s.skipped != nil {
		st.Interfaces, st.Skipped = s.ifaces, s.skipped
	}
	err := s.err
	switch {
	case errors.Is(err, ErrPort5353Busy):
		st.MDNS = StateUnavailable
		w.mdnsMsg = "UDP port 5353 is held exclusively by another program, so mDNS cannot listen; showing USB and hand-added devices only (stop that program or add the device with --host)"
	case errors.Is(err, ErrNoInterface):
		st.MDNS = StateUnavailable
		w.mdnsMsg = "no network interface is up with multicast and a routable address; showing USB and hand-added devices only"
	case errors.Is(err, errOneFamily):
		st.MDNS = StateDegraded
		w.mdnsMsg = errOneFamily.Error()
	case err != nil && len(s.ifaces) == 0:
		st.MDNS = StateUnavailable
		w.mdnsMsg = "mDNS cannot run (" + firstLine(err) + "); showing USB and hand-added devices only"
	case err != nil:
		st.MDNS = StateDegraded
		w.mdnsMsg = "some mDNS queries failed (" + firstLine(err) + ")"
	case s.queries == 0:
		// nothing asked yet: the state stays as it was (starting)
	default:
		st.MDNS, w.mdnsMsg = StateOK, ""
	}
	st.Message = joinMsgs(w.mdnsMsg, w.serialMsg)
	evs = w.setStatusLocked(st, evs)
	w.mu.Unlock()
	w.emit(ctx, evs)
}
