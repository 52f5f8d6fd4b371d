package tui

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// checkHostInput validates a host typed into the add-host prompt:
// "host", "host:port", "[v6]:port" or a bare IPv6 address, where host is
// an IP address or a DNS name. It returns the address normalised to
// "host:port" (port 3232 when none is given), or an error that says what
// is wrong and what a good entry looks like. It looks nothing up: that a
// board answers there is for the board to show.
func checkHostInput(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("nothing typed: enter a host name or an IP address, with :port when it is not 3232")
	}
	host, port := s, "3232"
	switch {
	case strings.HasPrefix(s, "["):
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", fmt.Errorf("%q: an IPv6 address with a port is written [fe80::1]:3232", s)
		}
		host, port = h, p
	case strings.Count(s, ":") == 1:
		h, p, _ := strings.Cut(s, ":")
		host, port = h, p
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q is not a port number: use 1 to 65535 (ArduinoOTA listens on 3232 on ESP32, 8266 on ESP8266)", port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return "", fmt.Errorf("%s is not the address of one board: type the board's own address", host)
		}
		return net.JoinHostPort(ip.String(), port), nil
	}
	if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
		return "", fmt.Errorf("%q is not an IPv6 address", s)
	}
	if err := checkHostName(host); err != nil {
		return "", fmt.Errorf("%q is not a host name or an IP address: %v (e.g. greenhouse-ctl.local or 192.168.1.40)", host, err)
	}
	return net.JoinHostPort(host, port), nil
}

// checkHostName accepts DNS names: dot-separated labels of letters,
// digits and hyphens, no label starting or ending with a hyphen.
func checkHostName(h string) error {
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return fmt.Errorf("the name is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("a name has at most 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return fmt.Errorf("two dots in a row")
		}
		if len(label) > 63 {
			return fmt.Errorf("a part between dots has at most 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("a part between dots does not start or end with a hyphen")
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("a name has only letters, digits, hyphens and dots, not %q", c)
			}
		}
	}
	return nil
}
