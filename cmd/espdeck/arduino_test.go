package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/monitor"
)

var updateArduino = flag.Bool("update-arduino", false, "rewrite the Arduino protocol golden transcripts")

// ideDriver plays the Arduino IDE (arduino-cli's monitor and discovery
// clients): espdeck runs in-process with piped stdin/stdout; commands are
// written one per line and the JSON answers read back, both recorded.
type ideDriver struct {
	t          *testing.T
	stdin      *io.PipeWriter
	lines      chan string
	done       chan int
	transcript strings.Builder
	replace    []string // old, new pairs applied to the transcript
}

func startIDE(t *testing.T, args ...string) *ideDriver {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	d := &ideDriver{t: t, stdin: inW, lines: make(chan string, 256), done: make(chan int, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	var stderr bytes.Buffer
	go func() {
		code := run(ctx, args, inR, outW, &stderr, func(k string) string {
			if k == "ESPDECK_MDNS" {
				return "off"
			}
			return ""
		})
		outW.Close()
		d.done <- code
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			d.lines <- sc.Text()
		}
		close(d.lines)
	}()
	return d
}

func (d *ideDriver) send(cmd string) {
	d.t.Helper()
	d.transcript.WriteString("> " + d.scrub(cmd) + "\n")
	_, err := io.WriteString(d.stdin, cmd+"\n")
	require.NoError(d.t, err)
}

func (d *ideDriver) read() string {
	d.t.Helper()
	select {
	case l, ok := <-d.lines:
		require.True(d.t, ok, "espdeck stopped writing; transcript:\n%s", d.transcript.String())
		d.transcript.WriteString("< " + d.scrub(l) + "\n")
		return l
	case <-time.After(30 * time.Second):
		d.t.Fatalf("no answer within 30 s; transcript:\n%s", d.transcript.String())
	}
	return ""
}

func (d *ideDriver) scrub(s string) string {
	for i := 0; i+1 < len(d.replace); i += 2 {
		s = strings.ReplaceAll(s, d.replace[i], d.replace[i+1])
	}
	return s
}

func (d *ideDriver) exitCode() int {
	d.t.Helper()
	select {
	case c := <-d.done:
		return c
	case <-time.After(30 * time.Second):
		d.t.Fatal("espdeck did not exit")
	}
	return -1
}

func arduinoGolden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *updateArduino {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update-arduino to create it")
	require.Equal(t, string(want), got)
}

// TestArduinoMonitorTranscript drives "espdeck arduino monitor" as
// arduino-cli does (listen on a TCP port, HELLO, DESCRIBE, CONFIGURE, OPEN,
// accept, CLOSE, QUIT) on a real pseudo-terminal through the real serial
// library, and checks that bytes pass unchanged both ways (escape
// sequences and all) and that a client that hangs up gets port_closed.
func TestArduinoMonitorTranscript(t *testing.T) {
	board, tty, err := pty.Open()
	require.NoError(t, err)
	defer board.Close()
	defer tty.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	d := startIDE(t, "arduino", "monitor")
	d.replace = []string{tty.Name(), "PTY", port, "PORT"}
	d.send(`HELLO 1 "arduino-cli 1.2.0"`)
	d.read()
	d.send("DESCRIBE")
	d.read()
	d.send("CONFIGURE baudrate 74880")
	d.read()
	d.send("CONFIGURE baudrate 12345")
	d.read()
	d.send("CONFIGURE parity E")
	d.read()
	d.send("OPEN 127.0.0.1:" + port + " /dev/espdeck-no-such-port")
	d.read()
	d.send("OPEN 127.0.0.1:" + port + " " + tty.Name())
	d.read()
	conn, err := ln.Accept()
	require.NoError(t, err)

	// Board → IDE: bytes as they are, colour codes included.
	fromBoard := "\x1b[0;32mI (312) app: hello\x1b[0m\r\nets Jun  8 2016 00:22:57\r\n\x00\xff"
	_, err = board.Write([]byte(fromBoard))
	require.NoError(t, err)
	got := make([]byte, len(fromBoard))
	_, err = io.ReadFull(conn, got)
	require.NoError(t, err)
	require.Equal(t, fromBoard, string(got))
	// IDE → board.
	_, err = conn.Write([]byte("ping\n"))
	require.NoError(t, err)
	echo := make([]byte, 5)
	_, err = io.ReadFull(board, echo)
	require.NoError(t, err)
	require.Equal(t, "ping\n", string(echo))

	d.send("OPEN 127.0.0.1:" + port + " " + tty.Name())
	d.read() // already open
	d.send("CLOSE")
	d.read()
	_, err = conn.Read(make([]byte, 1))
	require.Error(t, err, "CLOSE closes the TCP connection")
	d.send("CLOSE")
	d.read()

	// The IDE hangs up: an asynchronous port_closed.
	d.send("OPEN 127.0.0.1:" + port + " " + tty.Name())
	d.read()
	conn, err = ln.Accept()
	require.NoError(t, err)
	conn.Close()
	d.read()
	d.send("QUIT")
	d.read()
	require.Equal(t, exitOK, d.exitCode())
	arduinoGolden(t, "arduino-monitor.golden", d.transcript.String())
}

// TestArduinoDiscoveryTranscript drives "espdeck arduino discovery" as
// arduino-cli's discovery manager does. With mDNS off (as every in-process
// test runs) it finds nothing, which pins the command's wiring; the
// protocol with boards is tested in discovery/pluggable.
func TestArduinoDiscoveryTranscript(t *testing.T) {
	d := startIDE(t, "arduino", "discovery")
	d.send(`HELLO 1 "arduino-cli 1.2.0"`)
	d.read()
	d.send("START")
	d.read()
	d.send("LIST")
	d.read()
	d.send("STOP")
	d.read()
	d.send("START_SYNC")
	d.read()
	d.send("QUIT")
	d.read()
	require.Equal(t, exitOK, d.exitCode())
	arduinoGolden(t, "arduino-discovery.golden", d.transcript.String())
}

func TestArduinoUsage(t *testing.T) {
	r := runCLI(t, nil, "arduino")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "pluggable_discovery.espdeck.pattern")
	r = runCLI(t, nil, "arduino", "frob")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "want discovery or monitor")
}

// TestESP8266CoreUploadPattern runs the ESP8266 core's network upload
// pattern with espdeck as network_cmd:
//
//	"{network_cmd}" -I "{runtime.platform.path}/tools/espota.py" -i "{upload.port.address}"
//	  -p "{upload.port.properties.port}" "--auth={upload.field.password}" -f "{build.path}/{build.project_name}.bin"
//
// against the simulated ESP8266 with a password.
func TestESP8266CoreUploadPattern(t *testing.T) {
	dev := otaSim(t, otasim.Config{Flavour: otasim.ESP8266, Password: otaTestPassword})
	file, img := otaImage(t, 20_000)
	r := runCLI(t, nil, "-I", "/home/u/.arduino15/packages/esp8266/hardware/esp8266/3.1.2/tools/espota.py",
		"-i", "127.0.0.1", "-p", strconv.Itoa(int(dev.Addr().Port())), "--auth="+otaTestPassword, "-f", file)
	require.Equal(t, exitOK, r.code, r.stderr)
	requireNoSecret(t, r)
	ss, err := dev.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, img, ss[0].Received)

	// Older cores run the script without -I.
	r = runCLI(t, nil, `C:\Users\u\AppData\Local\Arduino15\packages\esp8266\hardware\esp8266\2.7.4\tools\espota.py`,
		"-i", "127.0.0.1", "-p", strconv.Itoa(int(dev.Addr().Port())), "--auth="+otaTestPassword, "-f", file)
	require.Equal(t, exitOK, r.code, r.stderr)
	_, err = dev.WaitSessions(context.Background(), 2)
	require.NoError(t, err)

	// Any other script after -I is not ours to run.
	r = runCLI(t, nil, "-I", "/tmp/other.py", "-i", "127.0.0.1")
	require.NotEqual(t, exitOK, r.code)
}

// TestESP32CoreUploadPattern runs arduino-esp32's tools.esp_ota.upload.pattern
// with espdeck ota as {cmd}:
//
//	{cmd} -i {upload.port.address} -p {upload.port.properties.port} "--auth={upload.field.password}" -f "{build.path}/{build.project_name}.bin"
func TestESP32CoreUploadPattern(t *testing.T) {
	dev := otaSim(t, otasim.Config{Password: otaTestPassword})
	file, img := otaImage(t, 30_000)
	r := runCLI(t, nil, "ota", "-i", "127.0.0.1", "-p", strconv.Itoa(int(dev.Addr().Port())), "--auth="+otaTestPassword, "-f", file)
	require.Equal(t, exitOK, r.code, r.stderr)
	requireNoSecret(t, r)
	ss, err := dev.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, img, ss[0].Received)
}

// TestNoPasswordBoardGetsEmptyAuth: the IDE passes "--auth=" for a board
// without a password; that is no password, not an empty one.
func TestNoPasswordBoardGetsEmptyAuth(t *testing.T) {
	dev := otaSim(t, otasim.Config{})
	file, img := otaImage(t, 10_000)
	r := runCLI(t, nil, "ota", "-i", "127.0.0.1", "-p", strconv.Itoa(int(dev.Addr().Port())), "--auth=", "-f", file)
	require.Equal(t, exitOK, r.code, r.stderr)
	ss, err := dev.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, img, ss[0].Received)
}

// TestPlatformIOUploadCommand runs docs/ota.md's PlatformIO recipe as pio
// expands it: upload_command = espdeck ota upload --host $UPLOAD_PORT
// $UPLOAD_FLAGS --file $SOURCE, with upload_flags = --password-env=OTA_PASSWORD.
func TestPlatformIOUploadCommand(t *testing.T) {
	dev := otaSim(t, otasim.Config{Password: otaTestPassword})
	file, img := otaImage(t, 10_000)
	r := runCLI(t, map[string]string{"OTA_PASSWORD": otaTestPassword},
		"ota", "upload", "--host", dev.Addr().String(), "--password-env=OTA_PASSWORD", "--file", file)
	require.Equal(t, exitOK, r.code, r.stderr)
	requireNoSecret(t, r)
	ss, err := dev.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, img, ss[0].Received)
}

// TestArduinoMonitorDecodes: with --elf, a Backtrace line reaches the IDE
// unchanged with its frames decoded underneath; CONFIGURE decode off turns
// that off.
func TestArduinoMonitorDecodes(t *testing.T) {
	if _, err := os.Stat(monitorFixtureELF); err != nil {
		t.Skipf("the ELF fixture is not present beside the checkout (%v)", err)
	}
	board, tty, err := pty.Open()
	require.NoError(t, err)
	defer board.Close()
	defer tty.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	d := startIDE(t, "arduino", "monitor", "--elf", monitorFixtureELF)
	d.send(`HELLO 1 "arduino-cli 1.2.0"`)
	d.read()
	d.send("DESCRIBE")
	require.Contains(t, d.read(), `"decode":{"label":"Decode crash addresses","type":"enum","value":["on","off"],"selected":"on"}`)
	d.send("OPEN " + ln.Addr().String() + " " + tty.Name())
	require.Contains(t, d.read(), `"message":"OK"`)
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	r := bufio.NewReader(conn)

	crash := "Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60\r\n"
	_, err = board.Write([]byte(crash))
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, crash, line, "the board's line passes unchanged")
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "0x400d0a2b: app_main at", "a decoded frame follows")
	require.True(t, strings.HasPrefix(line, "  "), "decoded lines are indented: %q", line)

	d.send("CONFIGURE decode off")
	require.Contains(t, d.read(), `"message":"OK"`)
	// Drain the rest of the decoded frames, then the next crash passes alone.
	_, err = board.Write([]byte("marker\r\n"))
	require.NoError(t, err)
	for line != "marker\r\n" {
		line, err = r.ReadString('\n')
		require.NoError(t, err)
	}
	_, err = board.Write([]byte(crash + "after\r\n"))
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, crash, line)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "after\r\n", line, "no decoded lines with decode off")
	d.send("QUIT")
	d.read()
	require.Equal(t, exitOK, d.exitCode())
}

// FuzzMonitorCommands feeds arbitrary command lines to the monitor
// protocol: every non-blank line up to QUIT gets exactly one answer. Ports
// never open here (the open function refuses), so no device is touched.
func FuzzMonitorCommands(f *testing.F) {
	for _, s := range []string{
		"HELLO 1 \"arduino-cli 1.2.0\"\nDESCRIBE\nCONFIGURE baudrate 9600\nOPEN 127.0.0.1:1 /dev/x\nCLOSE\nQUIT",
		"DESCRIBE\nhello 1 \"x\"\nconfigure decode on\nCONFIGURE\nOPEN\nOPEN a\nFROB\n\nQUIT now",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var out bytes.Buffer
		m := newMonitorSession(&out)
		m.open = func(context.Context, string, int) (monitor.Port, error) {
			return nil, &monitor.OpenError{Port: "x", Kind: monitor.ErrPortNotFound}
		}
		require.NoError(t, m.serve(t.Context(), strings.NewReader(input)))
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
		got := strings.Count(out.String(), "\n")
		require.Equal(t, want, got, "input %q gave\n%s", input, out.String())
	})
}
