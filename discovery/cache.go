package discovery

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// maxCacheRecords bounds the record cache, so a flood of records from a busy
// or hostile network cannot grow it without limit. New records beyond it are
// dropped until others expire; 100 boards need about 500.
const maxCacheRecords = 8192

// cacheKey identifies one record on one interface. Caches are kept per
// interface (RFC 6762 §14): the same board seen on two links is two sets of
// records, merged only when devices are assembled.
type cacheKey struct {
	ifindex int
	name    string // lowercased owner name
	typ     uint16
	rdata   string
}

type cacheEntry struct {
	rec      wireRecord
	ifindex  int
	received time.Time
	expires  time.Time
	refresh  []time.Time // refresh query times still to come (§5.2)
}

// recordCache holds the records heard, with their TTLs. It is not safe for
// concurrent use; the browser owns it.
type recordCache struct {
	entries map[cacheKey]*cacheEntry
	dropped int // records not stored because the cache was full
}

func newRecordCache() *recordCache {
	return &recordCache{entries: make(map[cacheKey]*cacheEntry)}
}

func keyOf(r wireRecord, ifindex int) cacheKey {
	return cacheKey{ifindex: ifindex, name: strings.ToLower(r.Name), typ: r.Type, rdata: r.rdataKey()}
}

// add stores one received record and reports whether the set of records
// changed (a new record, a removed one), as opposed to a mere TTL renewal.
//
//   - TTL 0 is a goodbye: the record is removed at once (RFC 6762 §10.1
//     allows a one-second grace; removing at once is what people expect
//     when a board says it is leaving).
//   - The cache-flush bit replaces every other record of the same name and
//     type (§10.2): one received more than a second ago is removed at once
//     (a new address or TXT supersedes the old one), one received within
//     the last second expires a second from now, since it may belong to
//     the same RRset sent over several packets. Records of one packet
//     (the same now) never flush each other.
func (c *recordCache) add(r wireRecord, ifindex int, now time.Time) bool {
	k := keyOf(r, ifindex)
	changed := false
	if r.CacheFlush {
		for ok, e := range c.entries {
			if ok.ifindex != ifindex || ok.typ != k.typ || ok.name != k.name || ok.rdata == k.rdata || e.received.Equal(now) {
				continue
			}
			if now.Sub(e.received) > time.Second {
				delete(c.entries, ok)
				changed = true
			} else if flushAt := now.Add(time.Second); e.expires.After(flushAt) {
				e.expires, e.refresh = flushAt, nil
			}
		}
	}
	if r.TTL == 0 {
		if _, ok := c.entries[k]; ok {
			delete(c.entries, k)
			changed = true
		}
		return changed
	}
	e, ok := c.entries[k]
	if !ok {
		if len(c.entries) >= maxCacheRecords {
			c.dropped++
			return changed
		}
		e = &cacheEntry{ifindex: ifindex}
		c.entries[k] = e
		changed = true
	}
	ttl := time.Duration(r.TTL) * time.Second
	e.rec, e.received, e.expires = r, now, now.Add(ttl)
	// Refresh queries at 80, 85, 90 and 95 % of the TTL, each with up to
	// 2 % of random variation so that queriers do not ask in step (§5.2).
	e.refresh = e.refresh[:0]
	for _, pct := range []int64{80, 85, 90, 95} {
		jitter := rand.Int64N(int64(ttl)/50 + 1)
		e.refresh = append(e.refresh, now.Add(time.Duration(int64(ttl)*pct/100+jitter)))
	}
	return changed
}

// expire removes the records whose TTL has run out and reports whether any was.
func (c *recordCache) expire(now time.Time) bool {
	changed := false
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
			changed = true
		}
	}
	return changed
}

// dueRefresh returns the records, among those wanted, whose next refresh
// time has come, and advances their schedule. When one is due, those due
// within the next tenth of their TTL are asked for in the same query, so
// that many boards' refreshes share packets instead of each sending its
// own.
func (c *recordCache) dueRefresh(now time.Time, wanted func(*cacheEntry) bool) []*cacheEntry {
	due := false
	for _, e := range c.entries {
		if len(e.refresh) > 0 && !now.Before(e.refresh[0]) && wanted(e) {
			due = true
			break
		}
	}
	if !due {
		// Drop refresh points of records nobody wants, so next() does not
		// wake the browser for them again and again.
		for _, e := range c.entries {
			for len(e.refresh) > 0 && !now.Before(e.refresh[0]) {
				e.refresh = e.refresh[1:]
			}
		}
		return nil
	}
	var out []*cacheEntry
	for _, e := range c.entries {
		horizon := now.Add(time.Duration(e.rec.TTL) * time.Second / 10)
		if len(e.refresh) == 0 || horizon.Before(e.refresh[0]) {
			continue
		}
		// Asked now: the attempts already due, or the next one early.
		e.refresh = e.refresh[1:]
		for len(e.refresh) > 0 && !now.Before(e.refresh[0]) {
			e.refresh = e.refresh[1:]
		}
		if wanted(e) {
			out = append(out, e)
		}
	}
	return out
}

// next returns the earliest expiry or refresh time, or the zero time.
func (c *recordCache) next() time.Time {
	var t time.Time
	for _, e := range c.entries {
		for _, x := range []time.Time{e.expires, firstOr(e.refresh)} {
			if !x.IsZero() && (t.IsZero() || x.Before(t)) {
				t = x
			}
		}
	}
	return t
}

func firstOr(ts []time.Time) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[0]
}

// assembly is what the cache says about the browsed services right now.
type assembly struct {
	devices map[string]Device
	// missing are questions whose answers would complete an instance: SRV
	// and TXT of an instance known only by its PTR, addresses of a host.
	missing map[int][]wireQuestion // by interface index
}

// assemble builds the devices of services from the cache, interface by
// interface in the order given (the first interface a device is seen on
// names it, so the result is stable), PTR → SRV/TXT → A/AAAA, whatever the
// order and packets the records came in. A device needs its PTR, SRV and
// at least one address.
func (c *recordCache) assemble(services []string, ifaces []netInterface) assembly {
	type nameType struct {
		ifindex int
		name    string
		typ     uint16
	}
	idx := make(map[nameType][]*cacheEntry)
	for k, e := range c.entries {
		nt := nameType{k.ifindex, k.name, k.typ}
		idx[nt] = append(idx[nt], e)
	}
	latest := func(es []*cacheEntry) *cacheEntry {
		var best *cacheEntry
		for _, e := range es {
			if best == nil || e.received.After(best.received) {
				best = e
			}
		}
		return best
	}
	out := assembly{devices: make(map[string]Device), missing: make(map[int][]wireQuestion)}
	for _, ni := range ifaces {
		ix := ni.Iface.Index
		for _, svc := range services {
			ptrName := strings.ToLower(strings.Trim(svc, ".")) + ".local."
			ptrs := idx[nameType{ix, ptrName, dns.TypePTR}]
			slices.SortFunc(ptrs, func(a, b *cacheEntry) int { return strings.Compare(a.rec.Target, b.rec.Target) })
			for _, ptr := range ptrs {
				inst := strings.ToLower(ptr.rec.Target)
				srv := latest(idx[nameType{ix, inst, dns.TypeSRV}])
				if srv == nil {
					out.missing[ix] = append(out.missing[ix], wireQuestion{ptr.rec.Target, dns.TypeSRV}, wireQuestion{ptr.rec.Target, dns.TypeTXT})
					continue
				}
				host := strings.ToLower(srv.rec.Target)
				var addrs []netip.Addr
				for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
					for _, a := range idx[nameType{ix, host, typ}] {
						addr := a.rec.Addr
						if addr.Is6() && (addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast()) {
							addr = addr.WithZone(ni.Iface.Name)
						}
						addrs = append(addrs, addr)
					}
				}
				if len(addrs) == 0 {
					out.missing[ix] = append(out.missing[ix], wireQuestion{srv.rec.Target, dns.TypeA})
					if ni.Has6 {
						out.missing[ix] = append(out.missing[ix], wireQuestion{srv.rec.Target, dns.TypeAAAA})
					}
					continue
				}
				e := entry{Name: ptr.rec.Target, Host: srv.rec.Target, Port: srv.rec.Port, Addrs: addrs}
				if txt := latest(idx[nameType{ix, inst, dns.TypeTXT}]); txt != nil {
					e.TXT = txt.rec.TXT
				}
				d, ok := deviceFromEntry(e, svc, ni.Iface.Name)
				if !ok {
					continue
				}
				if prev, dup := out.devices[d.ID]; dup {
					d = mergeDevice(prev, d)
				}
				sortAddrs(d.Addrs)
				out.devices[d.ID] = d
			}
		}
	}
	return out
}

// knownAnswers lists the PTR records for service on ifindex that still have
// more than half their TTL, for known-answer suppression (RFC 6762 §7.1).
func (c *recordCache) knownAnswers(service string, ifindex int, now time.Time) []knownAnswer {
	ptrName := strings.ToLower(strings.Trim(service, ".")) + ".local."
	var out []knownAnswer
	for k, e := range c.entries {
		if k.ifindex != ifindex || k.typ != dns.TypePTR || k.name != ptrName {
			continue
		}
		total := time.Duration(e.rec.TTL) * time.Second
		left := e.expires.Sub(now)
		if left*2 > total {
			out = append(out, knownAnswer{Name: e.rec.Name, Target: e.rec.Target, TTL: uint32(left / time.Second)})
		}
	}
	slices.SortFunc(out, func(a, b knownAnswer) int { return strings.Compare(a.Target, b.Target) })
	return out
}
