package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

const otaTestPassword = "s3cret-Pa55-for-tests"

// otaSim runs a simulated device until the test ends.
func otaSim(t *testing.T, cfg otasim.Config) *otasim.Device {
	t.Helper()
	cfg.ReceiveTimeout = 5 * time.Second
	if cfg.OKDelay == 0 {
		cfg.OKDelay = 20 * time.Millisecond
	}
	d, err := otasim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	return d
}

// otaImage writes a valid ESP32 app image and returns its path and bytes.
func otaImage(t *testing.T, size int) (string, []byte) {
	t.Helper()
	img := ops.DemoAppImage(firmware.ChipESP32, "ota-test", "1.2.3", size)
	p := filepath.Join(t.TempDir(), "app.bin")
	require.NoError(t, os.WriteFile(p, img, 0o644))
	return p, img
}

func requireNoSecret(t *testing.T, r cliResult) {
	t.Helper()
	require.NotContains(t, r.stdout, otaTestPassword)
	require.NotContains(t, r.stderr, otaTestPassword)
}

func TestOTAUploadJSON(t *testing.T) {
	dev := otaSim(t, otasim.Config{Password: otaTestPassword, Scheme: otasim.SchemePBKDF2})
	file, img := otaImage(t, 80_000)
	r := runCLI(t, map[string]string{"OTA_PW": otaTestPassword}, "ota", "upload",
		"--host", dev.Addr().String(), "--file", file, "--password-env", "OTA_PW", "--json", "--log-level", "debug")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireNoSecret(t, r)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	require.Equal(t, "pbkdf2-sha256", res["auth_scheme"])
	require.EqualValues(t, len(img), res["bytes"])
	require.Contains(t, res, "duration_ms")

	var lastDone float64 = -1
	stages := []string{}
	for _, ev := range jsonLines(t, r.stdout) {
		switch ev["event"] {
		case "progress":
			done := ev["done"].(float64)
			require.GreaterOrEqual(t, done, lastDone)
			require.EqualValues(t, len(img), ev["total"])
			lastDone = done
		case "stage":
			stages = append(stages, ev["stage"].(string))
		}
	}
	require.EqualValues(t, len(img), lastDone, "progress ends at the total")
	require.Equal(t, []string{"invite", "auth", "connect", "transfer", "finalize"}, stages)

	ss, err := dev.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.True(t, bytes.Equal(img, ss[0].Received))
}

func TestOTAUploadEspotaFlags(t *testing.T) {
	dev := otaSim(t, otasim.Config{Flavour: otasim.ESP8266, Password: otaTestPassword})
	file, img := otaImage(t, 20_000)
	// What the Arduino IDE's network upload recipe passes to espota.py.
	r := runCLI(t, nil, "ota", "-r", "-i", "127.0.0.1", "-p", strconv.Itoa(int(dev.Addr().Port())),
		"--auth="+otaTestPassword, "-f", file, "-t", "5")
	require.Equal(t, exitOK, r.code, r.stderr)
	requireNoSecret(t, r)
	require.Contains(t, r.stderr, "process list", "warns that -a is visible")
	require.Empty(t, r.stdout, "human output goes to stderr")
	ss, err := dev.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, img, ss[0].Received)

	// -s uploads a filesystem image (not checked), password from a file.
	pwFile := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(otaTestPassword+"\n"), 0o600))
	fsImg := filepath.Join(t.TempDir(), "fs.bin")
	require.NoError(t, os.WriteFile(fsImg, bytes.Repeat([]byte{0xFF}, 9000), 0o644))
	r = runCLI(t, nil, "ota", "upload", "--host", dev.Addr().String(), "-s", "-f", fsImg, "--password-file", pwFile, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, true, lastResult(t, r.stdout)["filesystem"])
	ss, err = dev.WaitSessions(context.Background(), 2)
	require.NoError(t, err)
	require.Equal(t, 100, ss[1].Command)
}

func TestOTAUploadExitCodes(t *testing.T) {
	file, _ := otaImage(t, 20_000)
	big, _ := otaImage(t, 40_000)
	notApp := filepath.Join(t.TempDir(), "notapp.bin")
	require.NoError(t, os.WriteFile(notApp, bytes.Repeat([]byte{0x42}, 5000), 0o644))

	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer silent.Close()

	for _, tc := range []struct {
		name  string
		cfg   *otasim.Config
		host  string
		file  string
		extra []string
		code  int
		error string
	}{
		{name: "no answer", host: silent.LocalAddr().String(), file: file, extra: []string{"--timeout", "500ms"}, code: exitUnreachable, error: "no_answer"},
		{name: "wrong password", cfg: &otasim.Config{Password: "other"}, file: file, code: exitAuth, error: "auth_failed"},
		{name: "password needed", cfg: &otasim.Config{Password: "other"}, file: file, extra: []string{"--password-env", "NOPE_UNSET"}, code: exitUsage, error: "usage"},
		{name: "no connect back", cfg: &otasim.Config{Faults: otasim.Faults{NeverConnect: true}}, file: file, extra: []string{"--timeout", "500ms"}, code: exitNoConnect, error: "no_connect_back"},
		{name: "closed mid-transfer", cfg: &otasim.Config{Faults: otasim.Faults{CloseAfter: 3000}}, file: file, code: exitTransfer, error: "transfer_failed"},
		{name: "md5 failure", cfg: &otasim.Config{Faults: otasim.Faults{MD5Failure: true}}, file: file, code: exitDevice, error: "device_error"},
		{name: "esp8266 too large", cfg: &otasim.Config{Flavour: otasim.ESP8266, AppSlot: 30_000}, file: big, code: exitDevice, error: "device_error"},
		{name: "not an app", cfg: &otasim.Config{}, file: notApp, code: exitRefused, error: "refused"},
		{name: "missing file", cfg: &otasim.Config{}, file: filepath.Join(t.TempDir(), "nope.bin"), code: exitUsage, error: "bad_input"},
		{name: "bad host port", host: "127.0.0.1:99999", file: file, code: exitUsage, error: "usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			var dev *otasim.Device
			if tc.cfg != nil {
				dev = otaSim(t, *tc.cfg)
				host = dev.Addr().String()
			}
			args := append([]string{"ota", "upload", "--host", host, "--file", tc.file, "--json"}, tc.extra...)
			r := runCLI(t, map[string]string{"ESPDECK_PASSWORD": otaTestPassword}, args...)
			require.Equal(t, tc.code, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			requireNoSecret(t, r)
			res := lastResult(t, r.stdout)
			require.Equal(t, false, res["ok"])
			require.Equal(t, tc.error, res["error"])
			require.NotEmpty(t, res["message"])
			if tc.code != exitUsage {
				require.NotEmpty(t, res["hint"], "every failure says what to do next")
			}
			if tc.name == "not an app" {
				require.Zero(t, dev.Stats().Invitations, "refused before sending")
			}
		})
	}

	// Without --json: a sentence and the hint on stderr, nothing on stdout.
	dev := otaSim(t, otasim.Config{Faults: otasim.Faults{NeverConnect: true}})
	r := runCLI(t, nil, "ota", "upload", "--host", dev.Addr().String(), "--file", file, "--timeout", "300ms")
	require.Equal(t, exitNoConnect, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "never connected back")
	require.Contains(t, r.stderr, "firewall")

	r = runCLI(t, nil, "ota", "upload", "--file", file)
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "ota", "upload", "--help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stderr, "-i IP")
}

func TestOTAUploadInterrupted(t *testing.T) {
	dev := otaSim(t, otasim.Config{Faults: otasim.Faults{NeverConnect: true}})
	file, _ := otaImage(t, 20_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(300*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"ota", "upload", "--host", dev.Addr().String(), "--file", file, "--json", "--timeout", "1m"},
		strings.NewReader(""), &out, &errb, func(string) string { return "" })
	require.Equal(t, exitInterrupted, code, errb.String())
	res := lastResult(t, out.String())
	require.Equal(t, "interrupted", res["error"])
}

func TestSimOTAHelp(t *testing.T) {
	r := runCLI(t, nil, "sim", "ota", "--help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stderr, "--flavour")
	r = runCLI(t, nil, "sim", "ota", "--flavour", "esp31")
	require.Equal(t, exitUsage, r.code)
}

func TestSimOTARunsUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	img := filepath.Join(t.TempDir(), "demo.bin")
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"sim", "ota", "--json", "--count", "2", "--flavour", "esp8266", "--password", "pw", "--image", img},
			strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	// The devices are announced; wait until the image is written and both lines are there.
	require.Eventually(t, func() bool {
		_, err := os.Stat(img)
		return err == nil && strings.Count(out.String(), "\n") >= 2
	}, 60*time.Second, 10*time.Millisecond, "the image and both device lines")
	cancel()
	require.Equal(t, exitOK, <-done)
	lines := jsonLines(t, out.String())
	require.Len(t, lines, 2)
	require.Equal(t, "device", lines[0]["event"])
	require.True(t, strings.HasPrefix(lines[0]["addr"].(string), "127.0.0.1:"))
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	require.Equal(t, byte(0xE9), b[0])
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader on
// different goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// On a terminal, a device that asks for a password gets a no-echo prompt.
func TestOTAUploadPromptsOnTerminal(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer master.Close()
	defer tty.Close()
	dev := otaSim(t, otasim.Config{Password: otaTestPassword, Scheme: otasim.SchemePBKDF2})
	file, _ := otaImage(t, 10_000)
	go func() {
		// Answer the prompt once it is on screen.
		buf := make([]byte, 256)
		var seen []byte
		for !bytes.Contains(seen, []byte("assword")) {
			n, err := master.Read(buf)
			if err != nil {
				return
			}
			seen = append(seen, buf[:n]...)
		}
		master.Write([]byte(otaTestPassword + "\r"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out lockedBuffer
	// The prompt goes to stderr; the reader above watches the terminal, so
	// point stderr at the terminal too and keep stdout for JSON.
	code := run(ctx, []string{"ota", "upload", "--host", dev.Addr().String(), "--file", file, "--json"},
		tty, &out, tty, func(string) string { return "" })
	require.Equal(t, exitOK, code)
	res := lastResult(t, out.String())
	require.Equal(t, "pbkdf2-sha256", res["auth_scheme"])
	require.NotContains(t, out.String(), otaTestPassword)
}
