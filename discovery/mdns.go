package discovery

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
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

// entry is one browsed instance as the cache assembled it.
type entry struct {
	Name  string       // instance name: "esp32-a1b2c3._arduino._tcp.local."
	Host  string       // SRV target
	Addrs []netip.Addr // A and AAAA records of Host (link-local IPv6 with zone)
	Port  int          // SRV port
	TXT   []string     // TXT strings
}

// netInterface is an interface chosen for mDNS with the families it can use.
type netInterface struct {
	Iface      net.Interface
	Has4, Has6 bool
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
		} else if ifc.Flags&net.FlagLoopback == 0 {
			// IPv6 multicast does not work over loopback (sendmsg fails
			// with "network is unreachable").
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

// deviceFromEntry converts one instance of service into a Device. ok is
// false for instances of another service or domain and for those without a
// port.
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
	d.Addrs = slices.Clone(e.Addrs)
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

// mergeDevice folds another sighting of the same device into d (seen on two
// interfaces): addresses are united.
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
// address list does not change order between assemblies (which would be an
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
