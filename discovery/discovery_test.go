package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
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
		AddrV4: netip.MustParseAddr("192.168.1.40"), AddrV6: netip.MustParseAddr("fe80::1").WithZone("eth0"),
		Port: 3232, TXT: []string{"board=esp32", "tcp_check=no", "ssh_upload=no", "auth_upload=yes"},
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
		AddrV6: netip.MustParseAddr("2001:db8::40"), Port: 6053,
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
		_, ok := deviceFromEntry(entry{Name: name, Port: 3232, AddrV4: netip.MustParseAddr("10.0.0.1")}, ServiceArduino, "eth0")
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

func TestPTRQueryEncoding(t *testing.T) {
	got, err := ptrQuery("_arduino._tcp.local")
	require.NoError(t, err)
	want := []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
		8, '_', 'a', 'r', 'd', 'u', 'i', 'n', 'o', 4, '_', 't', 'c', 'p', 5, 'l', 'o', 'c', 'a', 'l', 0,
		0, 12, 0, 1}
	require.Equal(t, want, got)
	_, err = ptrQuery("a..b")
	require.Error(t, err)
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

// fakeNet stands in for the network in Watcher tests: what each service
// answers, and when each query started. Each query takes the full round
// timeout, like hashicorp/mdns.
type fakeNet struct {
	mu      sync.Mutex
	answers map[string][]entry
	err     error
	starts  []time.Time
}

func (f *fakeNet) set(service string, es ...entry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[service] = es
}

func (f *fakeNet) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeNet) lookup(ctx context.Context, _ netInterface, service string, timeout time.Duration, _ *slog.Logger) ([]entry, error) {
	f.mu.Lock()
	f.starts = append(f.starts, time.Now())
	out, err := append([]entry(nil), f.answers[service]...), f.err
	f.mu.Unlock()
	time.Sleep(timeout)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (f *fakeNet) startTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.starts...)
}

func newFakeNet() *fakeNet { return &fakeNet{answers: map[string][]entry{}} }

func oneInterface([]string) ([]netInterface, []string, error) {
	return []netInterface{{Iface: net.Interface{Index: 2, Name: "eth0"}, Has4: true}}, []string{"docker0: virtual adapter"}, nil
}

func arduinoEntry(name, ip string, txt ...string) entry {
	return entry{Name: name + "._arduino._tcp.local.", Host: name + ".local.", AddrV4: netip.MustParseAddr(ip), Port: 3232, TXT: txt}
}

// testOptions browse one service over the fake network with the default
// schedule (400 ms rounds, 800 ms ±20 % apart, removal after 5 missed
// rounds), so the timing tests pin the defaults.
func testOptions(f *fakeNet) Options {
	return Options{
		Services:      []string{ServiceArduino},
		DisableSerial: true,
		lookup:        f.lookup,
		interfaces:    oneInterface,
	}
}

// next returns the next device event, skipping status events, or fails
// after a long virtual wait.
func next(t *testing.T, events <-chan Event) Event {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "event stream closed")
			if ev.Kind == StatusChanged {
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no device event within a virtual minute")
		}
	}
}

func drain(cancel context.CancelFunc, events <-chan Event) {
	cancel()
	for range events {
	}
}

func TestWatcherExpiryTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		f.set(ServiceArduino, arduinoEntry("esp32-aa", "10.0.0.5", "board=esp32", "auth_upload=no"))
		w := New(testOptions(f))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)

		start := time.Now()
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "arduino-ota/esp32-aa", ev.Device.ID)
		require.Equal(t, 400*time.Millisecond, time.Since(start), "a device appears when the first round ends")
		require.Equal(t, start.Add(400*time.Millisecond), ev.Device.FirstSeen)

		// The device goes silent. It survives ExpireAfter-1 missed rounds
		// and is removed at the end of the fifth.
		f.set(ServiceArduino)
		silentFrom := time.Now()
		ev = next(t, events)
		require.Equal(t, Removed, ev.Kind)
		require.Equal(t, "arduino-ota/esp32-aa", ev.Device.ID)
		gone := time.Since(silentFrom)
		// Five more rounds, each 0.64–0.96 s of interval plus 0.4 s of
		// listening: the grace stays about 6 s, as before the shorter rounds.
		require.GreaterOrEqual(t, gone, 5*(640*time.Millisecond+400*time.Millisecond))
		require.LessOrEqual(t, gone, 5*(960*time.Millisecond+400*time.Millisecond))
		require.Empty(t, w.Snapshot())

		// Rounds start RoundTimeout + jittered Interval apart.
		starts := f.startTimes()
		require.GreaterOrEqual(t, len(starts), 6)
		for i := 1; i < len(starts); i++ {
			gap := starts[i].Sub(starts[i-1])
			require.GreaterOrEqual(t, gap, 1040*time.Millisecond, "round %d", i)
			require.LessOrEqual(t, gap, 1360*time.Millisecond, "round %d", i)
		}
	})
}

// TestWatcherTimeToAppear starts a board answering at many phases of the
// default round schedule and checks when its Added event comes. The fake
// network answers like a responder: a round hears the board when it had
// started before one of the round's two queries (the one-shot query at the
// start, the standard query at standardQueryDelay) and the answer arrives
// before the round ends, and the round's entries
// are read when it ends. The bound is 1.5 × RoundTimeout + 1.2 × Interval
// (1.56 s): just missing the standard query costs the rest of this round,
// the longest jittered interval and the next round.
func TestWatcherTimeToAppear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var answeringSince time.Time // zero: silent
		opts := testOptions(nil)
		opts.lookup = func(ctx context.Context, _ netInterface, _ string, timeout time.Duration, _ *slog.Logger) ([]entry, error) {
			heard := func() bool {
				mu.Lock()
				defer mu.Unlock()
				return !answeringSince.IsZero() && !answeringSince.After(time.Now())
			}
			// Answers take 50 ms; one to a query sent later than that
			// before the round ends is not heard in this round.
			const answerTime = 50 * time.Millisecond
			got := heard()
			second := standardQueryDelay(timeout)
			time.Sleep(second)
			if second+answerTime <= timeout {
				got = got || heard()
			}
			time.Sleep(timeout - second)
			if !got {
				return nil, nil
			}
			return []entry{arduinoEntry("esp32-gg", "10.0.0.40")}, nil
		}
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)

		var worst, total time.Duration
		const samples = 40
		for i := range samples {
			// Phases spread over more than one round period (about 1.2 s),
			// in steps that do not divide it.
			time.Sleep(time.Duration(i%13) * 97 * time.Millisecond)
			mu.Lock()
			answeringSince = time.Now()
			mu.Unlock()
			ev := next(t, events)
			require.Equal(t, Added, ev.Kind)
			took := time.Since(answeringSince)
			worst, total = max(worst, took), total+took
			require.LessOrEqual(t, took, 1560*time.Millisecond, "sample %d", i)

			mu.Lock()
			answeringSince = time.Time{}
			mu.Unlock()
			require.Equal(t, Removed, next(t, events).Kind)
		}
		t.Logf("virtual time to appear: mean %v, max %v", total/samples, worst)
		require.Less(t, total/samples, 1200*time.Millisecond, "mean time to appear")
	})
}

func TestExpireRoundsDefault(t *testing.T) {
	require.Equal(t, 5, New(Options{}).opts.ExpireAfter, "default schedule: 5 rounds of about 1.2 s")
	require.Equal(t, 3, New(Options{RoundTimeout: 2 * time.Second}).opts.ExpireAfter, "2.8 s rounds: at least 3")
	require.Equal(t, 6, New(Options{RoundTimeout: 500 * time.Millisecond, Interval: 500 * time.Millisecond}).opts.ExpireAfter)
	require.Equal(t, 2, New(Options{ExpireAfter: 2}).opts.ExpireAfter, "an explicit value is kept")
}

func TestWatcherRefreshRunsARoundAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		opts := testOptions(f)
		opts.Interval = time.Hour // only Refresh can cause a second round soon
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)

		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Len(t, f.startTimes(), 1, "one round, then the long interval")
		f.set(ServiceArduino, arduinoEntry("esp8266-bb", "10.0.0.6", "board=d1_mini"))
		asked := time.Now()
		w.Refresh()
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		starts := f.startTimes()
		require.Len(t, starts, 2)
		require.Equal(t, asked, starts[1], "Refresh starts a round immediately")
		require.Equal(t, 400*time.Millisecond, time.Since(asked))
	})
}

func TestWatcherEventSemantics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		opts := testOptions(f)
		opts.Services = []string{ServiceArduino, ServiceESPHome}
		opts.Static = []Device{
			{Host: "192.168.4.1", Port: 3232, Addrs: []netip.Addr{netip.MustParseAddr("192.168.4.1")}},
			{ID: "demo/sim-1", Name: "sim-1", Protocol: ProtocolArduinoOTA, Host: "127.0.0.1", Port: 40001},
		}
		now := time.Now()
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)

		// Static devices come first, at once, and need no network.
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "demo/sim-1", ev.Device.ID)
		require.True(t, ev.Device.Static)
		ev = next(t, events)
		require.Equal(t, "manual/192.168.4.1:3232", ev.Device.ID)
		require.Equal(t, ProtocolManual, ev.Device.Protocol)
		require.Equal(t, "192.168.4.1", ev.Device.Name)
		require.Equal(t, now, time.Now(), "static devices are reported before any round")

		// An answer for another service on the multicast socket is ignored;
		// the same device on two answers in a round is one device.
		f.set(ServiceArduino,
			arduinoEntry("esp32-cc", "10.0.0.7", "board=esp32", "auth_upload=no"),
			entry{Name: "printer._http._tcp.local.", Host: "printer.local.", AddrV4: netip.MustParseAddr("10.0.0.9"), Port: 80, TXT: []string{"x=y"}},
			entry{Name: "esp32-cc._arduino._tcp.local.", Host: "esp32-cc.local.", AddrV6: netip.MustParseAddr("fe80::7").WithZone("eth0"), Port: 3232, TXT: []string{"board=esp32", "auth_upload=no"}},
		)
		ev = next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "arduino-ota/esp32-cc", ev.Device.ID)
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.7"), netip.MustParseAddr("fe80::7%eth0")}, ev.Device.Addrs)
		first := ev.Device.FirstSeen

		// Same answers in later rounds: no event, but LastSeen moves on.
		f.set(ServiceArduino, arduinoEntry("esp32-cc", "10.0.0.7", "board=esp32", "auth_upload=no"),
			entry{Name: "esp32-cc._arduino._tcp.local.", Host: "esp32-cc.local.", AddrV6: netip.MustParseAddr("fe80::7").WithZone("eth0"), Port: 3232, TXT: []string{"board=esp32", "auth_upload=no"}})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		select {
		case ev := <-events:
			require.Equal(t, StatusChanged, ev.Kind, "unchanged answers must not produce %v", ev.Kind)
		default:
		}
		snap := w.Snapshot()
		require.Len(t, snap, 3)
		var cc Device
		for _, d := range snap {
			if d.ID == "arduino-ota/esp32-cc" {
				cc = d
			}
		}
		require.True(t, cc.LastSeen.After(first))
		// Snapshots are copies.
		cc.Addrs[0] = netip.MustParseAddr("1.2.3.4")
		cc.TXT["board"] = "changed"
		for _, d := range w.Snapshot() {
			if d.ID == cc.ID {
				require.Equal(t, "10.0.0.7", d.Addrs[0].String())
				require.Equal(t, "esp32", d.TXT["board"])
			}
		}

		// A new address and a password: one Updated with FirstSeen kept.
		f.set(ServiceArduino, arduinoEntry("esp32-cc", "10.0.0.8", "board=esp32", "auth_upload=yes"))
		ev = next(t, events)
		require.Equal(t, Updated, ev.Kind)
		require.True(t, ev.Device.AuthUpload)
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.8")}, ev.Device.Addrs)
		require.Equal(t, first, ev.Device.FirstSeen)

		// Gone, then back: Removed, then Added with a new FirstSeen.
		f.set(ServiceArduino)
		ev = next(t, events)
		require.Equal(t, Removed, ev.Kind)
		f.set(ServiceArduino, arduinoEntry("esp32-cc", "10.0.0.8", "board=esp32", "auth_upload=yes"))
		ev = next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.True(t, ev.Device.FirstSeen.After(first))

		// Static devices never expire.
		require.Len(t, w.Snapshot(), 3)

		// The stream closes after cancel.
		cancel()
		for range events {
		}
	})
}

func TestWatcherFailedRoundsDoNotExpireDevices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNet()
		f.set(ServiceArduino, arduinoEntry("esp32-dd", "10.0.0.10"))
		w := New(testOptions(f))
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		require.Equal(t, Added, next(t, events).Kind)

		// Port 5353 is taken: queries fail. That is no evidence the device left.
		f.setErr(errors.Join(errors.New("query _arduino._tcp on eth0"), ErrPort5353Busy))
		var st Status
		for st.MDNS != StateUnavailable {
			select {
			case ev := <-events:
				require.Equal(t, StatusChanged, ev.Kind)
				st = ev.Status
			case <-time.After(time.Minute):
				t.Fatal("no status change")
			}
		}
		require.Contains(t, st.Message, "5353")
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Len(t, w.Snapshot(), 1)
		require.Equal(t, StateUnavailable, w.Status().MDNS)
		require.Equal(t, []string{"eth0"}, st.Interfaces)
		require.Equal(t, []string{"docker0: virtual adapter"}, st.Skipped)
	})
}

func TestWatcherNoInterfaceStatus(t *testing.T) {
	f := newFakeNet()
	opts := testOptions(f)
	opts.interfaces = func([]string) ([]netInterface, []string, error) {
		return nil, []string{"lo: loopback", "docker0: virtual adapter"}, nil
	}
	devs, st := New(opts).Scan(t.Context())
	require.Empty(t, devs)
	require.Equal(t, StateUnavailable, st.MDNS)
	require.Contains(t, st.Message, "no network interface")
	require.Equal(t, []string{"lo: loopback", "docker0: virtual adapter"}, st.Skipped)
	require.Empty(t, f.startTimes(), "no query without an interface")
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

func TestWatcherMergesInterfacesStably(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := testOptions(newFakeNet())
		opts.interfaces = func([]string) ([]netInterface, []string, error) {
			return []netInterface{
				{Iface: net.Interface{Index: 2, Name: "eth0"}, Has4: true},
				{Iface: net.Interface{Index: 3, Name: "wlan0"}, Has4: true},
			}, nil, nil
		}
		opts.lookup = func(ctx context.Context, ni netInterface, service string, timeout time.Duration, _ *slog.Logger) ([]entry, error) {
			ip := "10.0.0.20"
			if ni.Iface.Name == "wlan0" {
				ip = "10.1.0.20"
				timeout -= time.Millisecond // wlan0 answers first
			}
			time.Sleep(timeout)
			return []entry{arduinoEntry("esp32-ee", ip, "board=esp32")}, nil
		}
		w := New(opts)
		ctx, cancel := context.WithCancel(t.Context())
		events := w.Watch(ctx)
		defer drain(cancel, events)
		ev := next(t, events)
		require.Equal(t, Added, ev.Kind)
		require.Equal(t, "eth0", ev.Device.Interface, "the first interface in order, not the first to answer")
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.20"), netip.MustParseAddr("10.1.0.20")}, ev.Device.Addrs)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		for len(events) > 0 {
			ev := <-events
			require.Equal(t, StatusChanged, ev.Kind, "a device seen on two interfaces must not flap: %v", ev.Kind)
		}
	})
}

func TestWatcherOneFamilyIsDegraded(t *testing.T) {
	f := newFakeNet()
	f.set(ServiceArduino, arduinoEntry("esp32-ff", "10.0.0.30"))
	opts := testOptions(f)
	opts.RoundTimeout = 10 * time.Millisecond
	lookup := opts.lookup
	opts.lookup = func(ctx context.Context, ni netInterface, svc string, timeout time.Duration, l *slog.Logger) ([]entry, error) {
		es, _ := lookup(ctx, ni, svc, timeout, l)
		return es, errors.Join(errors.New("query on eth0"), errOneFamily)
	}
	devs, st := New(opts).Scan(t.Context())
	require.Len(t, devs, 1, "answers heard over the working family count")
	require.Equal(t, StateDegraded, st.MDNS)
	require.Contains(t, st.Message, "5353")
}
