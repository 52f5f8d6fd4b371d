package discovery

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/mdns"
)

// ErrPort5353Busy means no mDNS socket could be opened because another
// program holds UDP port 5353 exclusively (one that binds it without
// SO_REUSEADDR). Avahi and systemd-resolved share the port; some other
// stacks and tools do not.
var ErrPort5353Busy = errors.New("UDP port 5353 is held exclusively by another program")

// errOneFamily means a query ran, but over one address family only: the
// other family's port 5353 is held exclusively by another program.
var errOneFamily = errors.New("UDP port 5353 is held exclusively by another program for IPv4 or IPv6; mDNS works over the other family only")

// ErrNoInterface means no network interface qualifies for mDNS.
var ErrNoInterface = errors.New("no usable network interface for mDNS")

// entryBuffer is the capacity of the channel hashicorp/mdns pushes entries
// into. The library sends without blocking and drops what does not fit (an
// unbuffered channel lost 7 of 8 devices in our experiments), and every
// complete answer on the multicast socket counts, including other services.
const entryBuffer = 4096

// entry is our copy of one hashicorp/mdns ServiceEntry.
type entry struct {
	Name   string     // instance name: "esp32-a1b2c3._arduino._tcp.local."
	Host   string     // SRV target
	AddrV4 netip.Addr // last A record
	AddrV6 netip.Addr // last AAAA record, zone from the packet's source
	Port   int        // SRV port
	TXT    []string   // raw TXT strings
}

// netInterface is an interface chosen for mDNS with the families it can use.
type netInterface struct {
	Iface      net.Interface
	Has4, Has6 bool
}

// lookupFunc runs one query for service on iface for timeout and returns
// the entries seen. Tests replace it to run without a network.
type lookupFunc func(ctx context.Context, iface netInterface, service string, timeout time.Duration, log *slog.Logger) ([]entry, error)

// mdnsLookup is the real lookupFunc around hashicorp/mdns.
//
// Workarounds, each for a behaviour we met:
//   - the entries channel is large and read only after QueryContext
//     returned: the library keeps writing to an entry it already sent when
//     later packets name the same instance, so reading entries while the
//     query runs is a data race;
//   - one query per interface and service: the library sends one query per
//     call and joins multicast with the interface it is given;
//   - the library logs through the standard logger unless told otherwise:
//     its lines go to our logger at debug level, and a failed bind of port
//     5353 becomes ErrPort5353Busy instead of a line on stderr;
//   - cancelling QueryContext does not end the wait early, so the caller
//     keeps timeout short.
func mdnsLookup(ctx context.Context, iface netInterface, service string, timeout time.Duration, logger *slog.Logger) ([]entry, error) {
	ch := make(chan *mdns.ServiceEntry, entryBuffer)
	lw := &libLog{log: logger, iface: iface.Iface.Name, service: service}
	ifc := iface.Iface
	params := &mdns.QueryParam{
		Service:     service,
		Domain:      "local",
		Timeout:     timeout,
		Interface:   &ifc,
		Entries:     ch,
		DisableIPv4: !iface.Has4,
		DisableIPv6: !iface.Has6,
		Logger:      log.New(lw, "", 0),
	}
	// A standard query from port 5353 halfway into the round, once the
	// library's multicast listener is up (see sendStandardQuery). Halfway
	// rather than at once: a board that starts answering during the first
	// half of the round is still heard in this round, which shortens the
	// time to appear by up to a whole round, while the second half leaves
	// time for its answer.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTimer(standardQueryDelay(timeout))
		defer t.Stop()
		select {
		case <-t.C:
			if err := sendStandardQuery(ctx, iface, service); err != nil {
				logger.Debug("standard mDNS query not sent", "interface", iface.Iface.Name, "service", service, "err", err)
			}
		case <-stop:
		case <-ctx.Done():
		}
	})
	err := mdns.QueryContext(ctx, params)
	close(stop)
	wg.Wait()
	// QueryContext has returned, so the library touches no entry any more.
	var out []entry
	for done := false; !done; {
		select {
		case e := <-ch:
			out = append(out, copyEntry(e))
		default:
			done = true
		}
	}
	if len(out) == cap(ch) {
		logger.Warn("mDNS answers may have been dropped: entries buffer full", "interface", iface.Iface.Name, "service", service)
	}
	if err == nil && lw.bindFailed.Load() {
		return out, fmt.Errorf("query %s on %s: %w", service, iface.Iface.Name, errOneFamily)
	}
	if err != nil {
		if strings.Contains(err.Error(), "multicast udp port") && lw.bindFailed.Load() {
			return out, fmt.Errorf("query %s on %s: %w", service, iface.Iface.Name, ErrPort5353Busy)
		}
		return out, fmt.Errorf("query %s on %s: %w", service, iface.Iface.Name, err)
	}
	return out, nil
}

// standardQueryDelay is when, into a round of length timeout, the standard
// query goes out.
func standardQueryDelay(timeout time.Duration) time.Duration { return timeout / 2 }

func copyEntry(e *mdns.ServiceEntry) entry {
	out := entry{Name: e.Name, Host: e.Host, Port: e.Port, TXT: slices.Clone(e.InfoFields)}
	if a, ok := netip.AddrFromSlice(e.AddrV4); ok {
		out.AddrV4 = a.Unmap()
	}
	if e.AddrV6IPAddr != nil {
		if a, ok := netip.AddrFromSlice(e.AddrV6IPAddr.IP); ok {
			out.AddrV6 = a.WithZone(e.AddrV6IPAddr.Zone)
		}
	} else if a, ok := netip.AddrFromSlice(e.AddrV6); ok && !a.Unmap().Is4() {
		out.AddrV6 = a
	}
	return out
}

// libLog receives hashicorp/mdns's log lines. They go to our logger at
// debug level (never to stderr, which the TUI owns) and tell us when a bind
// of port 5353 failed.
type libLog struct {
	log            *slog.Logger
	iface, service string
	bindFailed     atomic.Bool
}

func (l *libLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	if strings.Contains(line, "Failed to bind") && strings.Contains(line, "address already in use") {
		l.bindFailed.Store(true)
	}
	l.log.Debug("hashicorp/mdns: "+line, "interface", l.iface, "service", l.service)
	return len(p), nil
}

// virtualPrefixes name adapters that carry no ESP boards: container and VM
// bridges. Querying them costs sockets and, on Windows, steals packets from
// the real interface (the reason arduino/mdns-discovery skips them).
var virtualPrefixes = []string{"docker", "br-", "veth", "virbr", "vboxnet", "vmnet", "VMnet", "vEthernet", "lxcbr", "lxdbr", "cni", "flannel", "cali", "podman", "tap"}

// chooseInterfaces returns the interfaces to query and, for the status, the
// ones skipped with the reason. names, when set, is used as given (loopback
// included: the namespace tests browse on lo).
func chooseInterfaces(names []string) (use []netInterface, skipped []string, err error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("list network interfaces: %w", err)
	}
	if len(names) > 0 {
		for _, name := range names {
			i := slices.IndexFunc(all, func(ifc net.Interface) bool { return ifc.Name == name })
			if i < 0 {
				skipped = append(skipped, name+": no such interface")
				continue
			}
			ni, _ := families(all[i])
			if all[i].Flags&net.FlagUp == 0 {
				skipped = append(skipped, name+": down")
				continue
			}
			use = append(use, ni)
		}
		return use, skipped, nil
	}
	for _, ifc := range all {
		reason := ""
		switch {
		case ifc.Flags&net.FlagLoopback != 0:
			reason = "loopback"
		case ifc.Flags&net.FlagUp == 0:
			continue // down interfaces are not worth a line
		case ifc.Flags&net.FlagMulticast == 0:
			reason = "no multicast"
		case slices.ContainsFunc(virtualPrefixes, func(p string) bool { return strings.HasPrefix(ifc.Name, p) }):
			reason = "virtual adapter"
		}
		if reason == "" {
			ni, routable := families(ifc)
			if routable {
				use = append(use, ni)
				continue
			}
			reason = "no routable address"
		}
		skipped = append(skipped, ifc.Name+": "+reason)
	}
	return use, skipped, nil
}

// families finds which address families ifc can query with, and whether it
// has a routable address (neither link-local nor loopback), which automatic
// selection requires. IPv6 queries go to ff02::fb, link-local scope, so any
// IPv6 address enables them.
func families(ifc net.Interface) (ni netInterface, routable bool) {
	ni = netInterface{Iface: ifc}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.Is4() {
			ni.Has4 = true
		} else {
			ni.Has6 = true
		}
		if !ip.IsLinkLocalUnicast() && !ip.IsLoopback() {
			routable = true
		}
	}
	return ni, routable
}

// serviceProtocol maps a browsed service to the device protocol.
func serviceProtocol(service string) Protocol {
	switch strings.ToLower(strings.Trim(service, ".")) {
	case ServiceArduino:
		return ProtocolArduinoOTA
	case ServiceESPHome:
		return ProtocolESPHome
	}
	return Protocol(strings.Trim(strings.TrimPrefix(strings.Trim(service, "."), "_"), "."))
}

// deviceFromEntry converts one answer for service into a Device. ok is false
// for answers that belong to another service (hashicorp/mdns delivers every
// complete entry it hears on the multicast socket) or that lack a port.
func deviceFromEntry(e entry, service, iface string) (Device, bool) {
	suffix := "." + strings.ToLower(strings.Trim(service, ".")) + ".local."
	name := e.Name
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	if !strings.HasSuffix(strings.ToLower(name), suffix) || e.Port <= 0 {
		return Device{}, false
	}
	instance := unescapeDNS(name[:len(name)-len(suffix)])
	if instance == "" {
		return Device{}, false
	}
	proto := serviceProtocol(service)
	txt := ParseTXT(e.TXT)
	d := Device{
		ID:        string(proto) + "/" + strings.ToLower(instance),
		Name:      instance,
		Protocol:  proto,
		Host:      strings.TrimSuffix(unescapeDNS(e.Host), "."),
		Port:      e.Port,
		Interface: iface,
		TXT:       txt,
		Board:     txt["board"],
	}
	if e.AddrV4.IsValid() {
		d.Addrs = append(d.Addrs, e.AddrV4)
	}
	if e.AddrV6.IsValid() {
		d.Addrs = append(d.Addrs, e.AddrV6)
	}
	switch proto {
	case ProtocolArduinoOTA:
		d.AuthUpload = strings.EqualFold(txt["auth_upload"], "yes")
	case ProtocolESPHome:
		d.Platform = txt["platform"]
		d.ESPHomeVersion = txt["version"]
		d.MAC = strings.ToLower(txt["mac"])
		d.FriendlyName = txt["friendly_name"]
	}
	return d, true
}

// unescapeDNS undoes the presentation-format escapes miekg/dns applies to
// labels ("\032" or "\ " for a space, "\." for a dot inside a label).
func unescapeDNS(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v, err := strconv.Atoi(s[i+1 : i+4]); err == nil && v < 256 {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// mergeDevice folds another sighting of the same device in one round into d
// (seen on two interfaces, or over IPv4 and IPv6): addresses are united.
func mergeDevice(d, other Device) Device {
	for _, a := range other.Addrs {
		if !slices.Contains(d.Addrs, a) {
			d.Addrs = append(d.Addrs, a)
		}
	}
	sortAddrs(d.Addrs)
	return d
}

// sortAddrs orders IPv4 before IPv6, then by value, so that a device's
// address list does not change order between rounds (which would be an
// update event for nothing).
func sortAddrs(a []netip.Addr) {
	slices.SortFunc(a, func(x, y netip.Addr) int {
		if x.Is4() != y.Is4() {
			if x.Is4() {
				return -1
			}
			return 1
		}
		return x.Compare(y)
	})
}
