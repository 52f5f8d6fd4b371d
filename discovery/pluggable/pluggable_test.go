package pluggable

import (
	"bufio"
	"flag"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/arduinoproto"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts")

// driver plays the IDE's side: it writes commands and reads the JSON lines
// the tool answers with, recording both as a transcript.
type driver struct {
	t          *testing.T
	in         *io.PipeWriter
	lines      chan string
	transcript strings.Builder
}

func startSession(t *testing.T, s *Session) (*driver, chan error) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	d := &driver{t: t, in: inW, lines: make(chan string, 256)}
	done := make(chan error, 1)
	go func() {
		done <- s.Serve(t.Context(), inR, outW)
		outW.Close()
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	return d, done
}

// send writes cmd and reads n lines.
func (d *driver) send(cmd string, n int) []string {
	d.t.Helper()
	d.transcript.WriteString("> " + cmd + "\n")
	_, err := io.WriteString(d.in, cmd+"\n")
	require.NoError(d.t, err)
	return d.read(n)
}

func (d *driver) read(n int) []string {
	d.t.Helper()
	var out []string
	for range n {
		select {
		case l, ok := <-d.lines:
			require.True(d.t, ok, "the tool stopped writing")
			d.transcript.WriteString("< " + l + "\n")
			out = append(out, l)
		case <-time.After(30 * time.Second):
			d.t.Fatalf("no answer within 30 s; transcript so far:\n%s", d.transcript.String())
		}
	}
	return out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	require.Equal(t, string(want), got)
}

func otaDevice(name, ip string, port int, board string, auth bool) discovery.Device {
	a := "no"
	if auth {
		a = "yes"
	}
	return discovery.Device{ID: "arduino-ota/" + name, Name: name, Protocol: discovery.ProtocolArduinoOTA,
		Host: name + ".local", Addrs: []netip.Addr{netip.MustParseAddr(ip)}, Port: port, Board: board, AuthUpload: auth,
		TXT: map[string]string{"board": board, "auth_upload": a, "tcp_check": "no", "ssh_upload": "no"}}
}

// TestGoldenDiscoveryTranscript drives a session the way arduino-cli's
// discovery manager does (HELLO, START_SYNC, later STOP and QUIT) and then
// the LIST mode, with devices handed to the watcher as static ones so the
// transcript is exact. The mDNS path is covered in the namespace test.
func TestGoldenDiscoveryTranscript(t *testing.T) {
	var mu sync.Mutex
	var last *discovery.Watcher
	s := &Session{NewWatcher: func() *discovery.Watcher {
		w := discovery.New(discovery.Options{DisableMDNS: true, DisableSerial: true, Static: []discovery.Device{
			otaDevice("esp32-a1b2c3d4e5f6", "192.168.1.40", 3232, "esp32s3", true),
			otaDevice("esp8266-0a1b2c", "192.168.1.41", 8266, "d1_mini", false),
			{ID: "esphome/kitchen", Name: "kitchen", Protocol: discovery.ProtocolESPHome, Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.52")}, Port: 6053},
			{ID: "usb/10c4:ea60/0001", Name: "/dev/ttyUSB0", Protocol: discovery.ProtocolSerial, Path: "/dev/ttyUSB0"},
		}})
		mu.Lock()
		last = w
		mu.Unlock()
		return w
	}}
	d, done := startSession(t, s)
	d.send("LIST", 1)
	d.send(`HELLO 1 "arduino-cli 1.2.0"`, 1)
	d.send("START_SYNC", 3) // the answer, then one add per ArduinoOTA board
	mu.Lock()
	w := last
	mu.Unlock()
	_, err := w.AddStatic(t.Context(), otaDevice("esp32c3-ffeedd", "192.168.1.77", 3232, "esp32c3", false))
	require.NoError(t, err)
	d.read(1)
	d.send("LIST", 1)
	d.send("START", 1)
	d.send("STOP", 1)
	d.send("STOP", 1)
	d.send("START", 1)
	d.send("LIST", 1)
	d.send("FROB", 1)
	d.send("QUIT", 1)
	require.NoError(t, <-done)
	golden(t, "discovery.golden", d.transcript.String())
}

func TestUpdateAndRemoveEvents(t *testing.T) {
	var buf strings.Builder
	d := otaDevice("esp32-aa", "10.0.0.1", 3232, "esp32", false)
	sess := &Session{}
	sess.out = arduinoproto.NewWriter(&buf)
	sess.ports = map[string]Port{}
	sess.syncing = true
	sess.apply(discovery.Event{Kind: discovery.Added, Device: d})
	sess.apply(discovery.Event{Kind: discovery.Updated, Device: d}) // nothing the port shows changed
	d.AuthUpload = true
	sess.apply(discovery.Event{Kind: discovery.Updated, Device: d})
	d.Addrs = []netip.Addr{netip.MustParseAddr("10.0.0.2")}
	sess.apply(discovery.Event{Kind: discovery.Updated, Device: d})
	sess.apply(discovery.Event{Kind: discovery.Removed, Device: d})
	golden(t, "events.golden", buf.String())
}

// FuzzCommands feeds arbitrary command lines: every non-blank line gets
// exactly one JSON answer (events aside, which only START_SYNC can cause
// and which carry eventType add), and nothing panics.
func FuzzCommands(f *testing.F) {
	for _, s := range []string{
		"HELLO 1 \"arduino-cli 1.2.0\"\nSTART\nLIST\nSTOP\nQUIT",
		"HELLO 1 \"x\"\nSTART_SYNC\nLIST\nSTOP\nSTOP",
		"LIST\nhello 2 \"ide\"\nstart\nlist\nFROB x y\n\nQUIT extra",
		"HELLO x \"y\"\nHELLO 1 y\nHELLO 1 \"a\"\nHELLO 1 \"b\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if len(input) > 2000 {
			return
		}
		s := &Session{NewWatcher: func() *discovery.Watcher {
			return discovery.New(discovery.Options{DisableMDNS: true, DisableSerial: true,
				Static: []discovery.Device{otaDevice("esp32-fz", "10.0.0.1", 3232, "esp32", false)}})
		}}
		var out strings.Builder
		done := make(chan error, 1)
		go func() { done <- s.Serve(t.Context(), strings.NewReader(input), &out) }()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no end within 10 s for input %q", input)
		}
		want := 0
		for _, l := range strings.Split(input, "\n") {
			if strings.TrimSpace(l) == "" {
				continue
			}
			want++
			if w, _, _ := strings.Cut(strings.TrimSpace(l), " "); strings.EqualFold(w, "QUIT") {
				break
			}
		}
		got := 0
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if l == "" || strings.Contains(l, `"eventType":"add"`) {
				continue
			}
			got++
		}
		require.Equal(t, want, got, "input %q gave\n%s", input, out.String())
	})
}
