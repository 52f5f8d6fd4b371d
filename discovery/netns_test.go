//go:build linux

package discovery_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/ipv4"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/discovery/internal/mdnssim"
	"github.com/espdeck/espdeck/discovery/internal/netns"
)

// simDevice is one simulated board answering mDNS with a hashicorp/mdns
// server. TXT records follow what the firmware publishes (protocol doc §5).
type simDevice struct {
	instance, service string
	port              int
	txt               []string
	ips               []net.IP
	iface             *net.Interface
}

func arduinoESP32(name string, auth bool) simDevice {
	a := "no"
	if auth {
		a = "yes"
	}
	return simDevice{instance: name, service: discovery.ServiceArduino, port: 3232,
		txt: []string{"board=esp32s3", "tcp_check=no", "ssh_upload=no", "auth_upload=" + a}}
}

func arduinoESP8266(name string) simDevice {
	return simDevice{instance: name, service: discovery.ServiceArduino, port: 8266,
		txt: []string{"tcp_check=no", "ssh_upload=no", "board=d1_mini", "auth_upload=no"}}
}

func esphomeDevice(name, friendly, mac string) simDevice {
	return simDevice{instance: name, service: discovery.ServiceESPHome, port: 6053,
		txt: []string{"friendly_name=" + friendly, "version=2026.10.1", "mac=" + mac, "platform=ESP32",
			"board=esp32dev", "network=wifi", "api_encryption=Noise_NNpsk0_25519_ChaChaPoly_SHA256"}}
}

// start runs the responder until the returned stop function is called.
func (s simDevice) start(t testing.TB) (stop func()) {
	t.Helper()
	ips := s.ips
	if ips == nil {
		ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	zone, err := mdns.NewMDNSService(s.instance, s.service, "local.", s.instance+".local.", s.port, ips, s.txt)
	require.NoError(t, err)
	srv, err := mdns.NewServer(&mdns.Config{Zone: zone, Iface: s.iface, Logger: log.New(io.Discard, "", 0)})
	require.NoError(t, err)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			srv.Shutdown()
		}
	}
	t.Cleanup(stop)
	return stop
}

// fastOptions browse the named interfaces only, without USB.
func fastOptions(ifaces ...string) discovery.Options {
	return discovery.Options{Interfaces: ifaces, DisableSerial: true}
}

// waitFor reads events until match returns true or the bound passes.
func waitFor(t *testing.T, events <-chan discovery.Event, what string, match func(discovery.Event) bool) discovery.Event {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "event stream closed while waiting for %s", what)
			if match(ev) {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("no event %s within 30 s", what)
		}
	}
}

func TestNamespaceBrowseAndUpdate(t *testing.T) {
	if !netns.Run(t) {
		return
	}
	ota := arduinoESP32("esp32-a1b2c3d4e5f6", false)
	stopOTA := ota.start(t)
	arduinoESP8266("esp8266-0a1b2c").start(t)
	esphomeDevice("kitchen", "Kitchen Sensor", "a1b2c3d4e5f6").start(t)
	esphomeDevice("porch-lamp", "Porch = Lamp", "0011223344ff").start(t)
	// A foreign service in the same namespace must never show up.
	(simDevice{instance: "printer", service: "_http._tcp", port: 80, txt: []string{"path=/"}}).start(t)

	w := discovery.New(fastOptions("lo"))
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events { // drain until the watcher has stopped
		}
	}()

	want := map[string]bool{"arduino-ota/esp32-a1b2c3d4e5f6": true, "arduino-ota/esp8266-0a1b2c": true,
		"esphome/kitchen": true, "esphome/porch-lamp": true}
	got := map[string]discovery.Device{}
	waitFor(t, events, "adding all four devices", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Added {
			require.True(t, want[ev.Device.ID], "unexpected device %+v", ev.Device)
			got[ev.Device.ID] = ev.Device
		}
		return len(got) == len(want)
	})
	esp32 := got["arduino-ota/esp32-a1b2c3d4e5f6"]
	require.Equal(t, discovery.ProtocolArduinoOTA, esp32.Protocol)
	require.Equal(t, "esp32s3", esp32.Board)
	require.Equal(t, 3232, esp32.Port)
	require.False(t, esp32.AuthUpload)
	require.Equal(t, "esp32-a1b2c3d4e5f6.local", esp32.Host)
	require.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, esp32.Addrs)
	require.Equal(t, "lo", esp32.Interface)
	require.Equal(t, 8266, got["arduino-ota/esp8266-0a1b2c"].Port)
	lamp := got["esphome/porch-lamp"]
	require.Equal(t, discovery.ProtocolESPHome, lamp.Protocol)
	require.Equal(t, "Porch = Lamp", lamp.FriendlyName, "TXT split on the first '=' only")
	require.Equal(t, "2026.10.1", lamp.ESPHomeVersion)
	require.Equal(t, "0011223344ff", lamp.MAC)
	require.Equal(t, "ESP32", lamp.Platform)
	require.Equal(t, 6053, lamp.Port)

	// The board gets an OTA password: the same instance answers with new TXT.
	stopOTA()
	arduinoESP32("esp32-a1b2c3d4e5f6", true).start(t)
	ev := waitFor(t, events, "an update of esp32-a1b2c3d4e5f6", func(ev discovery.Event) bool {
		return ev.Kind == discovery.Updated && ev.Device.ID == esp32.ID
	})
	require.True(t, ev.Device.AuthUpload)
	require.Equal(t, esp32.FirstSeen, ev.Device.FirstSeen, "an update keeps FirstSeen")

	ids := []string{}
	for _, d := range w.Snapshot() {
		ids = append(ids, d.ID)
	}
	require.ElementsMatch(t, []string{"arduino-ota/esp32-a1b2c3d4e5f6", "arduino-ota/esp8266-0a1b2c", "esphome/kitchen", "esphome/porch-lamp"}, ids)
	st := w.Status()
	require.Equal(t, discovery.StateOK, st.MDNS, st.Message)
	require.Equal(t, []string{"lo"}, st.Interfaces)
}

func TestNamespacePort5353Busy(t *testing.T) {
	if !netns.Run(t) {
		return
	}
	// Another stack binding 5353 without SO_REUSEADDR, on both families.
	c4, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 5353})
	require.NoError(t, err)
	defer c4.Close()
	c6, err := net.ListenUDP("udp6", &net.UDPAddr{Port: 5353})
	if err == nil {
		defer c6.Close()
	}
	w := discovery.New(discovery.Options{Interfaces: []string{"lo"}, RoundTimeout: 300 * time.Millisecond, DisableSerial: true,
		Static: []discovery.Device{{Host: "192.0.2.10", Port: 3232}}})
	devs, st := w.Scan(t.Context())
	require.Equal(t, discovery.StateUnavailable, st.MDNS)
	require.Contains(t, st.Message, "5353")
	require.Contains(t, st.Message, "hand-added")
	require.Len(t, devs, 1, "hand-added devices are still listed")
}

func TestNamespaceIPv6OverVeth(t *testing.T) {
	if !netns.Run(t) {
		return
	}
	const peerAddr = "fd00:e5d::2"
	if netns.Role() == "peer" {
		// Second namespace: lo is set up; wait for our end of the veth pair.
		fmt.Println("peer started")
		var ifc *net.Interface
		for i := 0; i < 200 && ifc == nil; i++ {
			ifc, _ = net.InterfaceByName("veth1")
			if ifc == nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
		require.NotNil(t, ifc, "veth1 never arrived in the peer namespace")
		require.NoError(t, os.WriteFile("/proc/sys/net/ipv6/conf/veth1/accept_dad", []byte("0"), 0o644))
		netns.IP(t, "addr", "add", peerAddr+"/64", "dev", "veth1", "nodad")
		netns.IP(t, "link", "set", "veth1", "up")
		ifc, err := net.InterfaceByName("veth1")
		require.NoError(t, err)
		dev := arduinoESP32("esp32-v6only", true)
		dev.ips, dev.iface = []net.IP{net.ParseIP(peerAddr)}, ifc
		dev.start(t)
		fmt.Println("peer ready")
		netns.WaitStdinEOF()
		return
	}
	out, err := exec.Command("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1").CombinedOutput()
	if err != nil {
		t.Skipf("cannot create a veth pair here (%v: %s); the IPv6 case needs root and iproute2", err, out)
	}
	peer := netns.StartPeer(t, t.Name(), "peer")
	require.NoError(t, peer.WaitLine("peer started", 60*time.Second))
	netns.IP(t, "link", "set", "veth1", "netns", fmt.Sprint(peer.Pid))
	require.NoError(t, os.WriteFile("/proc/sys/net/ipv6/conf/veth0/accept_dad", []byte("0"), 0o644))
	netns.IP(t, "addr", "add", "fd00:e5d::1/64", "dev", "veth0", "nodad")
	netns.IP(t, "link", "set", "veth0", "up")
	require.NoError(t, peer.WaitLine("peer ready", 60*time.Second))

	ifs, err := net.Interfaces()
	require.NoError(t, err)
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	require.ElementsMatch(t, []string{"lo", "veth0"}, names, "only the test's own interfaces exist here")

	w := discovery.New(fastOptions("veth0"))
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events {
		}
	}()
	ev := waitFor(t, events, "the IPv6-only device", func(ev discovery.Event) bool { return ev.Kind == discovery.Added })
	require.Equal(t, "arduino-ota/esp32-v6only", ev.Device.ID)
	require.Equal(t, []netip.Addr{netip.MustParseAddr(peerAddr)}, ev.Device.Addrs)
	require.True(t, ev.Device.AuthUpload)
	require.Equal(t, "veth0", ev.Device.Interface)
}

// zeroconfScript advertises, with python-zeroconf (an mDNS stack we did not
// write), three ArduinoOTA instances and one ESPHome instance on one host
// with an IPv4 address only, until stdin closes. For such a host
// python-zeroconf 0.47 adds an NSEC record whose empty type bitmap
// miekg/dns refuses to unpack, and it answers a PTR query with every
// instance of the service in one packet: both broke the previous browser.
const zeroconfScript = `
import socket, sys
from zeroconf import Zeroconf, ServiceInfo
zc = Zeroconf(interfaces=["127.0.0.1"])
infos = []
for i, board in enumerate(["esp32c3", "esp32s3", "d1_mini"]):
    infos.append(ServiceInfo("_arduino._tcp.local.", "pyesp-%04d._arduino._tcp.local." % (42 + i),
        addresses=[socket.inet_aton("127.0.0.1")], port=3232 + i, server="pyesp-host.local.",
        properties={"board": board, "tcp_check": "no", "ssh_upload": "no", "auth_upload": "yes" if i == 0 else "no",
                    "note": "k=v=w", "empty": ""}))
infos.append(ServiceInfo("_esphomelib._tcp.local.", "pykitchen._esphomelib._tcp.local.",
    addresses=[socket.inet_aton("127.0.0.1")], port=6053, server="pyesp-host.local.",
    properties={"friendly_name": "Py Kitchen", "version": "2026.10.1", "mac": "a1b2c3d4e5f6", "platform": "ESP32", "board": "esp32dev"}))
for info in infos:
    zc.register_service(info)
print("registered", flush=True)
sys.stdin.read()
for info in infos:
    zc.unregister_service(info)
zc.close()
`

func zeroconfPython() (string, error) {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if err := exec.Command(py, "-c", "import zeroconf").Run(); err == nil {
			return py, nil
		}
	}
	return "", fmt.Errorf("no python3 with the zeroconf module (Debian package python3-zeroconf)")
}

func TestNamespaceInteropZeroconf(t *testing.T) {
	py, err := zeroconfPython()
	if err != nil {
		t.Skip(err.Error())
	}
	if !netns.Run(t) {
		return
	}
	script := filepath.Join(t.TempDir(), "advertise.py")
	require.NoError(t, os.WriteFile(script, []byte(zeroconfScript), 0o600))
	cmd := exec.Command(py, script)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line := make([]byte, 64)
	n, _ := io.ReadAtLeast(stdout, line, len("registered"))
	require.True(t, strings.HasPrefix(string(line[:n]), "registered"), "zeroconf said %q", line[:n])

	w := discovery.New(fastOptions("lo"))
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events {
		}
	}()
	got := map[string]discovery.Device{}
	waitFor(t, events, "the four zeroconf-advertised instances", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Added {
			got[ev.Device.ID] = ev.Device
		}
		return len(got) == 4
	})
	d := got["arduino-ota/pyesp-0042"]
	require.Equal(t, "pyesp-host.local", d.Host)
	require.Equal(t, 3232, d.Port)
	require.Equal(t, "esp32c3", d.Board)
	require.True(t, d.AuthUpload)
	require.Equal(t, "k=v=w", d.TXT["note"])
	v, ok := d.TXT["empty"]
	require.True(t, ok)
	require.Equal(t, "", v)
	require.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, d.Addrs)
	require.Equal(t, "esp32s3", got["arduino-ota/pyesp-0043"].Board)
	require.Equal(t, 3233, got["arduino-ota/pyesp-0043"].Port)
	require.False(t, got["arduino-ota/pyesp-0043"].AuthUpload)
	require.Equal(t, "d1_mini", got["arduino-ota/pyesp-0044"].Board)
	require.Equal(t, "Py Kitchen", got["esphome/pykitchen"].FriendlyName)

	// Unregistering sends goodbyes: every instance is removed.
	stdin.Close()
	gone := map[string]bool{}
	waitFor(t, events, "the goodbyes", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Removed {
			gone[ev.Device.ID] = true
		}
		return len(gone) == 4
	})
}

// TestNamespaceAnnounceGoodbyeExpire drives the cache with a responder that
// announces, changes its address and TXT, says goodbye, and one that loses
// power (no goodbye) and so expires with its TTL.
func TestNamespaceAnnounceGoodbyeExpire(t *testing.T) {
	if !netns.Run(t) {
		return
	}
	lo, err := net.InterfaceByName("lo")
	require.NoError(t, err)
	w := discovery.New(fastOptions("lo"))
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events {
		}
	}()
	// Wait until the browser has sent its first query, so the responder's
	// announcement is what it hears, not an answer to that query.
	waitFor(t, events, "the first query", func(ev discovery.Event) bool {
		return ev.Kind == discovery.StatusChanged && ev.Status.Rounds > 0
	})

	board := mdnssim.Instance{Name: "esp32-sim01", Service: discovery.ServiceArduino, IP: net.IPv4(127, 0, 0, 1), Port: 3232,
		TXT: []string{"board=esp32", "auth_upload=no"}}
	r, err := mdnssim.Start(t.Context(), lo, board)
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Announce())
	ev := waitFor(t, events, "the announced board", func(ev discovery.Event) bool { return ev.Kind == discovery.Added })
	require.Equal(t, "arduino-ota/esp32-sim01", ev.Device.ID)
	require.Equal(t, "esp32", ev.Device.Board)

	// A new address and TXT, announced with the cache-flush bit.
	board.IP, board.TXT = net.IPv4(127, 0, 0, 2), []string{"board=esp32", "auth_upload=yes"}
	r.Set(board)
	require.NoError(t, r.Announce())
	// The old address was heard less than a second ago (the answer to our
	// first query), so it may be part of the same RRset: it goes a second
	// later (RFC 6762 §10.2), possibly as a second update.
	ev = waitFor(t, events, "the update", func(ev discovery.Event) bool {
		return ev.Kind == discovery.Updated && len(ev.Device.Addrs) == 1
	})
	require.Equal(t, []netip.Addr{netip.MustParseAddr("127.0.0.2")}, ev.Device.Addrs, "the old address is flushed")
	require.True(t, ev.Device.AuthUpload)

	require.NoError(t, r.Goodbye())
	ev = waitFor(t, events, "the goodbye", func(ev discovery.Event) bool { return ev.Kind == discovery.Removed })
	require.Equal(t, "arduino-ota/esp32-sim01", ev.Device.ID)

	// A board with a 3 s TTL that loses power: removed when the TTL runs
	// out, after refresh queries nobody answers.
	short := mdnssim.Instance{Name: "esp8266-sim02", Service: discovery.ServiceArduino, IP: net.IPv4(127, 0, 0, 3), Port: 8266,
		TXT: []string{"board=d1_mini"}, TTL: 3}
	r.Set(short)
	require.NoError(t, r.Announce())
	waitFor(t, events, "the short-TTL board", func(ev discovery.Event) bool { return ev.Kind == discovery.Added })
	r.Mute()
	ev = waitFor(t, events, "expiry of the short-TTL board", func(ev discovery.Event) bool { return ev.Kind == discovery.Removed })
	require.Equal(t, "arduino-ota/esp8266-sim02", ev.Device.ID)
	require.Empty(t, w.Snapshot())
}

// avahiServices are the static services the Avahi daemon publishes: two
// ArduinoOTA instances and one ESPHome instance on one IPv4-only host.
var avahiServices = map[string]string{
	"esp-a.service": avahiService("avahi-esp-a", "_arduino._tcp", 3232, "board=esp32s3", "auth_upload=yes", "tcp_check=no", "ssh_upload=no"),
	"esp-b.service": avahiService("avahi-esp-b", "_arduino._tcp", 8266, "board=d1_mini", "auth_upload=no", "tcp_check=no", "ssh_upload=no"),
	"kitchen.service": avahiService("avahi-kitchen", "_esphomelib._tcp", 6053, "friendly_name=Avahi Kitchen", "version=2026.10.1",
		"mac=0a0b0c0d0e0f", "platform=ESP8266", "board=d1_mini", "network=wifi"),
}

func avahiService(name, typ string, port int, txt ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<?xml version=\"1.0\" standalone='no'?>\n<!DOCTYPE service-group SYSTEM \"avahi-service.dtd\">\n<service-group>\n  <name>%s</name>\n  <service>\n    <type>%s</type>\n    <port>%d</port>\n", name, typ, port)
	for _, t := range txt {
		fmt.Fprintf(&b, "    <txt-record>%s</txt-record>\n", t)
	}
	b.WriteString("  </service>\n</service-group>\n")
	return b.String()
}

const avahiConf = `[server]
host-name=avahi-sim
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=veth1
enable-dbus=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
[reflector]
[rlimits]
`

// TestNamespaceInteropAvahi browses services published by avahi-daemon, the
// mDNS stack of most Linux desktops, which ignores loopback: it runs in a
// second namespace behind a veth pair, inside its own mount namespace so
// that its services directory and /run are the test's own.
func TestNamespaceInteropAvahi(t *testing.T) {
	avahi, err := exec.LookPath("avahi-daemon")
	if err != nil {
		t.Skip("avahi-daemon is not installed (Debian package avahi-daemon)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is needed to give avahi-daemon its own mount namespace")
	}
	if !netns.Run(t) {
		return
	}
	if netns.Role() == "peer" {
		fmt.Println("peer started")
		var ifc *net.Interface
		for i := 0; i < 200 && ifc == nil; i++ {
			ifc, _ = net.InterfaceByName("veth1")
			if ifc == nil {
				time.Sleep(50 * time.Millisecond)
			}
		}
		require.NotNil(t, ifc, "veth1 never arrived in the peer namespace")
		netns.IP(t, "addr", "add", "10.77.0.2/24", "dev", "veth1")
		netns.IP(t, "link", "set", "veth1", "up", "multicast", "on")
		dir := t.TempDir()
		svc := filepath.Join(dir, "services")
		require.NoError(t, os.Mkdir(svc, 0o755))
		for name, body := range avahiServices {
			require.NoError(t, os.WriteFile(filepath.Join(svc, name), []byte(body), 0o644))
		}
		conf := filepath.Join(dir, "avahi-daemon.conf")
		require.NoError(t, os.WriteFile(conf, []byte(avahiConf), 0o644))
		script := fmt.Sprintf("mount -t tmpfs none /run && mkdir -p /run/avahi-daemon && mount --bind %s /etc/avahi/services && exec %s -f %s --no-drop-root --no-chroot --no-rlimits --no-proc-title",
			svc, avahi, conf)
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
		out, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		defer func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}()
		sc := bufio.NewScanner(out)
		ready := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Println("avahi:", line)
			if strings.Contains(line, "Server startup complete") {
				ready = true
				break
			}
		}
		require.True(t, ready, "avahi-daemon did not start")
		go func() {
			for sc.Scan() {
				fmt.Println("avahi:", sc.Text())
			}
		}()
		fmt.Println("peer ready")
		netns.WaitStdinEOF()
		return
	}
	out, err := exec.Command("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1").CombinedOutput()
	if err != nil {
		t.Skipf("cannot create a veth pair here (%v: %s); the Avahi case needs root and iproute2", err, out)
	}
	peer := netns.StartPeer(t, t.Name(), "peer")
	require.NoError(t, peer.WaitLine("peer started", 60*time.Second))
	netns.IP(t, "link", "set", "veth1", "netns", fmt.Sprint(peer.Pid))
	netns.IP(t, "addr", "add", "10.77.0.1/24", "dev", "veth0")
	netns.IP(t, "link", "set", "veth0", "up", "multicast", "on")
	require.NoError(t, peer.WaitLine("peer ready", 60*time.Second))

	ifs, err := net.Interfaces()
	require.NoError(t, err)
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	require.ElementsMatch(t, []string{"lo", "veth0"}, names, "only the test's own interfaces exist here")

	// Count Avahi's answers that carry several instances in one packet,
	// to be sure the test covers that case.
	multi := countMultiInstancePackets(t, "veth0")
	w := discovery.New(fastOptions("veth0"))
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events {
		}
	}()
	got := map[string]discovery.Device{}
	waitFor(t, events, "the three Avahi services", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Added {
			got[ev.Device.ID] = ev.Device
		}
		return len(got) == 3
	})
	a := got["arduino-ota/avahi-esp-a"]
	require.Equal(t, "avahi-sim.local", a.Host)
	require.Equal(t, []netip.Addr{netip.MustParseAddr("10.77.0.2")}, a.Addrs)
	require.Equal(t, 3232, a.Port)
	require.Equal(t, "esp32s3", a.Board)
	require.True(t, a.AuthUpload)
	require.Equal(t, "veth0", a.Interface)
	b := got["arduino-ota/avahi-esp-b"]
	require.Equal(t, 8266, b.Port)
	require.False(t, b.AuthUpload)
	k := got["esphome/avahi-kitchen"]
	require.Equal(t, "Avahi Kitchen", k.FriendlyName)
	require.Equal(t, "ESP8266", k.Platform)
	require.Equal(t, 8266, k.OTAPort())

	require.Positive(t, multi(), "Avahi answered with several instances in one packet")

	// Avahi says goodbye for everything when it stops.
	peer.Stop()
	gone := map[string]bool{}
	waitFor(t, events, "Avahi's goodbyes", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Removed {
			gone[ev.Device.ID] = true
		}
		return len(gone) == 3
	})
}

// TestNamespaceHundredBoardsInOneBurst: one responder announces 100
// instances at once (many per packet, back to back), and 100 more
// responders answer the first query together: all 200 are found.
func TestNamespaceHundredBoardsInOneBurst(t *testing.T) {
	if !netns.Run(t) {
		return
	}
	lo, err := net.InterfaceByName("lo")
	require.NoError(t, err)
	var burst []mdnssim.Instance
	for i := range 100 {
		burst = append(burst, mdnssim.Instance{Name: fmt.Sprintf("burst-%03d", i), Service: discovery.ServiceArduino,
			IP: net.IPv4(127, 0, 2, byte(i+1)), Port: 3232, TXT: []string{"board=esp32", "auth_upload=no"}})
	}
	for i := range 100 {
		r, err := mdnssim.Start(t.Context(), lo, mdnssim.Instance{Name: fmt.Sprintf("single-%03d", i), Service: discovery.ServiceArduino,
			IP: net.IPv4(127, 0, 3, byte(i+1)), Port: 8266, TXT: []string{"board=d1_mini"}})
		require.NoError(t, err)
		defer r.Close()
	}
	w := discovery.New(fastOptions("lo"))
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events {
		}
	}()
	seen := map[string]bool{}
	waitFor(t, events, "the 100 single responders", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Added {
			seen[ev.Device.ID] = true
		}
		return len(seen) == 100
	})
	r, err := mdnssim.Start(t.Context(), lo, burst...)
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Announce())
	waitFor(t, events, "the burst of 100", func(ev discovery.Event) bool {
		if ev.Kind == discovery.Added {
			seen[ev.Device.ID] = true
		}
		return len(seen) == 200
	})
	require.Len(t, w.Snapshot(), 200)
}

// countMultiInstancePackets listens on port 5353 (shared) on ifname and
// returns a function that reports how many responses so far carried PTR
// records for two or more _arduino._tcp instances.
func countMultiInstancePackets(t *testing.T, ifname string) func() int {
	t.Helper()
	ifc, err := net.InterfaceByName(ifname)
	require.NoError(t, err)
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		})
	}}
	pc, err := lc.ListenPacket(t.Context(), "udp4", "0.0.0.0:5353")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	require.NoError(t, ipv4.NewPacketConn(pc).JoinGroup(ifc, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251)}))
	var mu sync.Mutex
	n := 0
	go func() {
		buf := make([]byte, 9000)
		for {
			k, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var m dns.Msg
			if m.Unpack(buf[:k]) != nil || !m.Response {
				continue
			}
			ptrs := 0
			for _, rr := range append(m.Answer, m.Extra...) {
				if p, ok := rr.(*dns.PTR); ok && p.Hdr.Name == "_arduino._tcp.local." {
					ptrs++
				}
			}
			if ptrs >= 2 {
				mu.Lock()
				n++
				mu.Unlock()
			}
		}
	}()
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}
