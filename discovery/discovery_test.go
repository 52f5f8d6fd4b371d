package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseTXT(t *testing.T) {
	got := ParseTXT([]string{
		"board=esp32s3",
		"friendly_name=Porch = Lamp", // split on the first '=' only
		"url=http://x/?a=b&c=d",
		"empty=",     // present, empty value
		"flag",       // boolean attribute: present, no value
		"=orphan",    // no key: ignored
		"Board=dupe", // keys are case-insensitive; the first wins
		"MAC=A1B2C3D4E5F6",
		"",
	})
	require.Equal(t, map[string]string{
		"board":         "esp32s3",
		"friendly_name": "Porch = Lamp",
		"url":           "http://x/?a=b&c=d",
		"empty":         "",
		"flag":          "",
		"mac":           "A1B2C3D4E5F6",
	}, got)
	require.Nil(t, ParseTXT(nil))
	require.Nil(t, ParseTXT([]string{"", "=x"}))
}

func FuzzParseTXT(f *testing.F) {
	f.Add("board=esp32", "auth_upload=yes", "a==b")
	f.Add("", "=", "k")
	f.Add("friendly_name=x=y", "K=1", "k=2")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		fields := []string{a, b, c}
		m := ParseTXT(fields)
		for k, v := range m {
			require.NotEmpty(t, k)
			require.Equal(t, strings.ToLower(k), k)
			// The pair comes from the first field with that key.
			found := false
			for _, f := range fields {
				fk, fv, _ := strings.Cut(f, "=")
				if strings.ToLower(fk) == k {
					require.Equal(t, fv, v, "first occurrence wins, value after the first '='")
					found = true
					break
				}
			}
			require.True(t, found)
		}
	})
}

func TestDeviceFromEntryArduino(t *testing.T) {
	e := entry{
		Name: "esp32-a1b2c3d4e5f6._arduino._tcp.local.", Host: "esp32-a1b2c3d4e5f6.local.",
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.40"), netip.MustParseAddr("fe80::1").WithZone("eth0")},
		Port:  3232, TXT: []string{"board=esp32", "tcp_check=no", "ssh_upload=no", "auth_upload=yes"},
	}
	d, ok := deviceFromEntry(e, ServiceArduino, "eth0")
	require.True(t, ok)
	require.Equal(t, Device{
		ID: "arduino-ota/esp32-a1b2c3d4e5f6", Name: "esp32-a1b2c3d4e5f6", Protocol: ProtocolArduinoOTA,
		Host: "esp32-a1b2c3d4e5f6.local", Port: 3232, Board: "esp32", AuthUpload: true, Interface: "eth0",
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.40"), netip.MustParseAddr("fe80::1%eth0")},
		TXT:   map[string]string{"board": "esp32", "tcp_check": "no", "ssh_upload": "no", "auth_upload": "yes"},
	}, d)
	require.Equal(t, "192.168.1.40", d.Target())

	e.TXT = []string{"auth_upload=no"}
	d, _ = deviceFromEntry(e, ServiceArduino, "eth0")
	require.False(t, d.AuthUpload)
}

func TestDeviceFromEntryESPHome(t *testing.T) {
	e := entry{
		Name: `living\032room._esphomelib._tcp.local.`, Host: "living-room.local.",
		Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::40")}, Port: 6053,
		TXT: []string{"friendly_name=Living Room", "version=2026.10.1", "mac=A1B2C3D4E5F6",
			"platform=ESP8266", "board=d1_mini", "network=wifi"},
	}
	d, ok := deviceFromEntry(e, ServiceESPHome, "wlan0")
	require.True(t, ok)
	require.Equal(t, "esphome/living room", d.ID)
	require.Equal(t, "living room", d.Name, "DNS escapes are undone")
	require.Equal(t, ProtocolESPHome, d.Protocol)
	require.Equal(t, "Living Room", d.FriendlyName)
	require.Equal(t, "2026.10.1", d.ESPHomeVersion)
	require.Equal(t, "a1b2c3d4e5f6", d.MAC)
	require.Equal(t, "ESP8266", d.Platform)
	require.Equal(t, "d1_mini", d.Board)
	require.False(t, d.AuthUpload, "ESPHome does not say whether OTA needs a password")
	require.Equal(t, "2001:db8::40", d.Target())
}

func TestDeviceFromEntryFiltersForeignServices(t *testing.T) {
	for _, name := range []string{
		"printer._http._tcp.local.",           // another service on the multicast socket
		"esp32._arduino._tcp.example.com.",    // another domain
		"x._esphomelib._tcp.local.",           // right name, wrong browse
		"._arduino._tcp.local.",               // no instance
		"_arduino._tcp.local.",                // the service itself
		"esp32._arduino._tcp.local.evil.com.", // suffix elsewhere
	} {
		_, ok := deviceFromEntry(entry{Name: name, Port: 3232, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, ServiceArduino, "eth0")
		require.False(t, ok, name)
	}
	_, ok := deviceFromEntry(entry{Name: "esp._arduino._tcp.local.", Port: 0}, ServiceArduino, "eth0")
	require.False(t, ok, "an entry without a port is useless")
	// Case differences in the service labels are fine (DNS is case-insensitive).
	_, ok = deviceFromEntry(entry{Name: "ESP._Arduino._TCP.local.", Port: 8266}, ServiceArduino, "eth0")
	require.True(t, ok)
}

func TestUnescapeDNS(t *testing.T) {
	require.Equal(t, "a b", unescapeDNS(`a\032b`))
	require.Equal(t, "a b", unescapeDNS(`a\ b`))
	require.Equal(t, "a.b", unescapeDNS(`a\.b`))
	require.Equal(t, `x\`, unescapeDNS(`x\`))
	require.Equal(t, "plain", unescapeDNS("plain"))
}

func FuzzUnescapeDNS(f *testing.F) {
	f.Add(`a\032b\.c\\`)
	f.Add(`\999\`)
	f.Fuzz(func(t *testing.T, s string) {
		out := unescapeDNS(s)
		require.LessOrEqual(t, len(out), len(s))
		if !strings.Contains(s, `\`) {
			require.Equal(t, s, out)
		}
	})
}

func TestQueryEncoding(t *testing.T) {
	got, err := buildQuery([]wireQuestion{{Name: "_arduino._tcp.local.", Type: 12}}, nil)
	require.NoError(t, err)
	want := []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		8, '_', 'a', 'r', 'd', 'u', 'i', 'n', 'o', 4, '_', 't', 'c', 'p', 5, 'l', 'o', 'c', 'a', 'l', 0,
		0, 12, 0, 1}
	require.Equal(t, want, got, "ID 0, no flags, QU bit clear (RFC 6762 §18)")
}

func TestLookupUSB(t *testing.T) {
	for _, c := range []struct {
		vid, pid uint16
		bridge   string
		chip     string
	}{
		{0x10c4, 0xea60, "CP210x", "ESP32 or ESP8266"},
		{0x1a86, 0x7523, "CH340", "ESP32 or ESP8266"},
		{0x1a86, 0x55d3, "CH343", "ESP32 or ESP8266"},
		{0x1a86, 0x55d4, "CH9102", "ESP32 or ESP8266"},
		{0x0403, 0x6001, "FT232R", "ESP32 or ESP8266"},
		{0x0403, 0x6010, "FT2232", "ESP32"},
		{0x303a, 0x1001, "USB-Serial/JTAG", "ESP32-S3, -C3"},
		{0x303a, 0x0002, "USB-OTG", "ESP32-S2"},
		{0x303a, 0x4001, "Espressif USB", "native USB-OTG"}, // vendor-wide entry
	} {
		info, ok := LookupUSB(c.vid, c.pid)
		require.True(t, ok, "%04x:%04x", c.vid, c.pid)
		require.Contains(t, info.Bridge, c.bridge)
		require.Contains(t, info.ChipFamily, c.chip)
		require.Equal(t, c.pid, info.PID)
	}
	_, ok := LookupUSB(0x046d, 0xc52b) // a mouse receiver
	require.False(t, ok)
	require.NotEmpty(t, KnownUSB())
}

func TestSerialDevice(t *testing.T) {
	_, ok := serialDevice(SerialPort{Path: "/dev/ttyS0"})
	require.False(t, ok, "built-in UARTs are not listed")

	d, ok := serialDevice(SerialPort{Path: "/dev/ttyUSB0", IsUSB: true, VID: 0x10c4, PID: 0xea60, SerialNumber: "0001"})
	require.True(t, ok)
	require.Equal(t, "usb/10c4:ea60/0001", d.ID)
	require.Equal(t, ProtocolSerial, d.Protocol)
	require.Equal(t, "/dev/ttyUSB0", d.Target())
	require.Contains(t, d.Bridge, "CP210x")

	d, _ = serialDevice(SerialPort{Path: "/dev/ttyUSB1", IsUSB: true, VID: 0x1a86, PID: 0x7523})
	require.Equal(t, "serial//dev/ttyUSB1", d.ID, "no serial number: known by path")

	d, _ = serialDevice(SerialPort{Path: "/dev/ttyACM0", IsUSB: true, VID: 0x1234, PID: 0x5678, Product: "Widget"})
	require.Equal(t, "Widget", d.Bridge, "unknown VID:PID falls back to the product string")
	require.Empty(t, d.ChipFamily)
}

func TestDeviceJSON(t *testing.T) {
	d := Device{ID: "esphome/x", Name: "x", Protocol: ProtocolESPHome, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}
	b, err := json.Marshal(Event{Kind: Updated, Device: d})
	require.NoError(t, err)
	require.Contains(t, string(b), `"kind":"updated"`)
	require.Contains(t, string(b), `"addrs":["10.0.0.2"]`)
	require.Contains(t, string(b), `"protocol":"esphome"`)
}

func TestWatcherSerialArrivalsAndDepartures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var ports []SerialPort
		var listErr error
		setPorts := func(err error, ps ...SerialPort) {
			mu.Lock()
			defer mu.Unlock()
			ports, listErr = ps, err
		}
		w := New(Options{
			DisableMDNS:    true,
			SerialInterval: 250 * time.Millisecond,
			ListSerialPorts: func() ([]SerialPort, error) {
				mu.Lock()
				defer mu.Unlock()
				return append([]SerialPort(nil), ports...), listErr
			},
			Static: []Device{{ID: "demo/pty", Protocol: ProtocolSerial, Path: "/dev/pts/7", Name: "sim-rom"}},
		})
		require.Equal(t, StateOff, w.Status().MDNS)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		ev := next(t, events)
		require.Equal(t, "demo/pty", ev.Device.ID, "a pty is passed as a static serial device")

		cp := SerialPort{Path: "/dev/ttyUSB0", IsUSB: true, VID: 0x10c4, PID: 0xea60, SerialNumber: "A1"}
		setPorts(nil, cp, SerialPort{Path: "/dev/ttyS0"})
		ev = next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "usb/10c4:ea60/A1", ev.Device.ID)

		// Replugged elsewhere: same board (serial number), new path.
		cp.Path = "/dev/ttyUSB3"
		setPorts(nil, cp)
		ev = next(t, events)
		require.Equal(t, Updated, ev.Kind)
		require.Equal(t, "/dev/ttyUSB3", ev.Device.Path)

		// Listing fails once: nothing is removed, the status says why.
		setPorts(errors.New("sysfs unreadable"))
		time.Sleep(time.Second)
		synctest.Wait()
		require.Len(t, w.Snapshot(), 2)
		require.Equal(t, StateUnavailable, w.Status().Serial)
		require.Contains(t, w.Status().Message, "sysfs unreadable")

		// Unplugged: removed at the next poll.
		setPorts(nil)
		ev = next(t, events)
		require.Equal(t, Removed, ev.Kind)
		require.Equal(t, "usb/10c4:ea60/A1", ev.Device.ID)
		require.Equal(t, StateOK, w.Status().Serial)
	})
}

func TestWatchTwiceReturnsClosedChannel(t *testing.T) {
	w := New(Options{DisableMDNS: true, DisableSerial: true})
	ctx, cancel := context.WithCancel(t.Context())
	events := w.Watch(ctx)
	_, ok := <-w.Watch(ctx)
	require.False(t, ok)
	cancel()
	for range events {
	}
}

func TestChooseInterfacesNamed(t *testing.T) {
	use, skipped, err := chooseInterfaces([]string{"lo", "no-such-if0"})
	require.NoError(t, err)
	require.Contains(t, skipped, "no-such-if0: no such interface")
	for _, ni := range use {
		require.Equal(t, "lo", ni.Iface.Name)
	}
	auto, _, err := chooseInterfaces(nil)
	require.NoError(t, err)
	for _, ni := range auto {
		require.NotEqual(t, "lo", ni.Iface.Name, "automatic selection never uses loopback")
		require.False(t, strings.HasPrefix(ni.Iface.Name, "docker"))
	}
}

func TestOTAPort(t *testing.T) {
	require.Equal(t, 3232, Device{Protocol: ProtocolArduinoOTA, Port: 3232}.OTAPort())
	require.Equal(t, 8266, Device{Protocol: ProtocolArduinoOTA, Port: 8266}.OTAPort())
	require.Equal(t, 8266, Device{Protocol: ProtocolESPHome, Port: 6053, Platform: "ESP8266"}.OTAPort())
	require.Equal(t, 3232, Device{Protocol: ProtocolESPHome, Port: 6053, Platform: "ESP32"}.OTAPort())
	require.Equal(t, 2040, Device{Protocol: ProtocolESPHome, Port: 6053, Platform: "RP2040"}.OTAPort())
	require.Equal(t, 8892, Device{Protocol: ProtocolESPHome, Port: 6053, Platform: "BK7231N"}.OTAPort())
	require.Equal(t, 0, Device{Protocol: ProtocolESPHome, Port: 6053}.OTAPort())
	require.Equal(t, 0, Device{Protocol: ProtocolSerial, Path: "/dev/ttyUSB0"}.OTAPort())
}
