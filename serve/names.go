package serve

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/espdeck/espdeck/internal/pki"
)

// Endpoint is one listen address and the names boards reach it by.
type Endpoint struct {
	Listen string    // host:port as given to net.Listen
	Port   string    // the port
	Names  pki.Names // what the server certificate must name for it
}

// ResolveListen works out what a listen address is reached by: a wildcard
// host (":8443", "0.0.0.0:8443") means every address of every interface,
// loopback included, plus this computer's host name and host name.local;
// an IP means that IP; a host name means that name and its addresses.
// extraHosts (e.g. a DNS name on the LAN) are added to every endpoint.
func ResolveListen(listen string, extraHosts []string) (Endpoint, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return Endpoint{}, &Error{Op: "read --listen " + listen, Err: err, Next: "give ADDR:PORT, e.g. :8443 or 192.168.1.10:8443"}
	}
	ep := Endpoint{Listen: listen, Port: port}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified()):
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return Endpoint{}, &Error{Op: "list this computer's addresses", Err: err, Next: "listen on one address: --listen IP:PORT"}
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() && !n.IP.IsMulticast() {
				if ip != nil && ip.To4() != nil && n.IP.To4() == nil {
					continue // 0.0.0.0 is IPv4 only
				}
				ep.Names.IPs = append(ep.Names.IPs, n.IP)
			}
		}
		ep.Names.Hosts = append(ep.Names.Hosts, "localhost")
		if h, err := os.Hostname(); err == nil && h != "" {
			h = strings.ToLower(h)
			ep.Names.Hosts = append(ep.Names.Hosts, h)
			if !strings.Contains(h, ".") {
				ep.Names.Hosts = append(ep.Names.Hosts, h+".local")
			}
		}
	case ip != nil:
		ep.Names.IPs = append(ep.Names.IPs, ip)
	default:
		ep.Names.Hosts = append(ep.Names.Hosts, host)
		if ips, err := net.LookupIP(host); err == nil {
			ep.Names.IPs = append(ep.Names.IPs, ips...)
		}
	}
	ep.Names.Hosts = append(ep.Names.Hosts, extraHosts...)
	return ep, nil
}

// URLs are the base URLs of an endpoint, LAN addresses first: what a board
// is told to fetch from.
func (ep Endpoint) URLs(scheme string) []string {
	var lan, loop []string
	for _, ip := range ep.Names.IPs {
		u := fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(ip.String(), ep.Port))
		if ip.IsLoopback() {
			loop = append(loop, u)
		} else {
			lan = append(lan, u)
		}
	}
	for _, h := range ep.Names.Hosts {
		u := fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(h, ep.Port))
		if h == "localhost" {
			loop = append(loop, u)
		} else {
			lan = append(lan, u)
		}
	}
	return append(lan, loop...)
}
