package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	fx "github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/serialflash"
)

const monitorFixtureELF = "../../../shared/fixtures/elf/esp32-app-template.elf"

// monitorCrashBlock is what the scripted board prints, over and over: a log
// line, a crash whose addresses are in the fixture ELF, and a marker.
const monitorCrashBlock = "\x1b[0;31mE (1012) app: sensor failed\x1b[0m\r\n" +
	"I (1013) wifi: still here\r\n" +
	"Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.\r\n" +
	"Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60\r\n" +
	"Rebooting...\r\n"

// scriptedBoard returns a pty slave path whose master prints block every
// 50 ms once a program has opened the slave in raw mode, until the test ends.
func scriptedBoard(t *testing.T, block string) string {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 2000; i++ { // bounded: 100 s
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Until the monitor has set raw mode, bytes would be echoed and
			// line-edited; wait for it.
			tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil || tio.Lflag&unix.ICANON != 0 {
				continue
			}
			if _, err := master.Write([]byte(block)); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		master.Close()
		slave.Close()
	})
	return slave.Name()
}

func needMonitorFixture(t *testing.T) {
	if _, err := os.Stat(monitorFixtureELF); err != nil {
		fx.Missing(t, "fixture %s not present (%v)", monitorFixtureELF, err)
	}
}

func TestMonitorCLIDecodesCrash(t *testing.T) {
	needMonitorFixture(t)
	port := scriptedBoard(t, monitorCrashBlock)
	transcript := filepath.Join(t.TempDir(), "session.log")
	r := runCLI(t, map[string]string{"NO_COLOR": "1"}, "monitor", "--port", port, "--elf", monitorFixtureELF,
		"--until", "^Rebooting", "--duration", "50s", "--log", transcript)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "E (1012) app: sensor failed\n")
	require.Contains(t, r.stdout, "Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.\n"+
		"Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60\n"+
		"  0x400d0a2b: app_main at /home/gus/esp/32/idf-template/main/main.c:18\n"+
		"  0x400d4ad9: main_task at /home/gus/esp/32/idf/components/esp32/cpu_start.c:507\n")
	require.NotContains(t, r.stdout, "\x1b[", "no colour outside a terminal")

	saved, err := os.ReadFile(transcript)
	require.NoError(t, err)
	require.Contains(t, string(saved), "Backtrace: 0x400d0a2b")
	require.Contains(t, string(saved), "  0x400d0a2b: app_main at ")
	require.Regexp(t, `(?m)^\d\d:\d\d:\d\d\.\d{3} E \(1012\) app: sensor failed$`, string(saved), "the transcript has host timestamps")
}

func TestMonitorCLIJSONAndFilter(t *testing.T) {
	needMonitorFixture(t)
	port := scriptedBoard(t, monitorCrashBlock)
	r := runCLI(t, nil, "monitor", "--port", port, "--elf", monitorFixtureELF, "--filter", "E",
		"--until", "^Rebooting", "--duration", "50s", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	var sawError, sawDecoded bool
	for _, ev := range jsonLines(t, r.stdout) {
		if ev["event"] != "line" {
			continue
		}
		require.NotEqual(t, "wifi", ev["tag"], "--filter E hides info lines")
		if ev["level"] == "E" && ev["tag"] == "app" {
			sawError = true
			require.Equal(t, "sensor failed", ev["message"])
		}
		if d, ok := ev["decoded"].([]any); ok {
			sawDecoded = true
			first := d[0].(map[string]any)
			require.Equal(t, "0x400d0a2b", first["addr"])
			fr := first["frames"].([]any)[0].(map[string]any)
			require.Equal(t, "app_main", fr["function"])
			require.EqualValues(t, 18, fr["line"])
		}
	}
	require.True(t, sawError)
	require.True(t, sawDecoded)
}

func TestMonitorCLIErrors(t *testing.T) {
	r := runCLI(t, nil, "monitor")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "espdeck list")

	r = runCLI(t, nil, "monitor", "--port", "/dev/espdeck-no-such-port", "--json")
	require.Equal(t, exitUnreachable, r.code)
	res := lastResult(t, r.stdout)
	require.Equal(t, "port_not_found", res["error"])
	require.Contains(t, res["hint"], "cable")

	r = runCLI(t, nil, "monitor", "--port", "/dev/null", "--filter", "[x")
	require.Equal(t, exitUsage, r.code)

	needMonitorFixture(t)
	port := scriptedBoard(t, "I (1) app: nothing interesting\r\n")
	r = runCLI(t, nil, "monitor", "--port", port, "--until", "never printed", "--duration", "1s")
	require.Equal(t, exitTransfer, r.code)
	require.Contains(t, r.stderr, "no line matched --until")
}

func TestMonitorCLIDurationEndsCleanly(t *testing.T) {
	port := scriptedBoard(t, "I (1) app: tick\r\n")
	r := runCLI(t, nil, "monitor", port, "--duration", "1s")
	require.Equal(t, exitOK, r.code, r.stderr)
}

func TestDecodeCLI(t *testing.T) {
	needMonitorFixture(t)
	r := runCLI(t, nil, "decode", "--elf", monitorFixtureELF, "0x400d0a2b", "0x400d4b4c:0x3ffb5f60", "3ffb5f40")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "0x400d0a2b: app_main at /home/gus/esp/32/idf-template/main/main.c:18\n"+
		"0x400d4b4c: DPORT_REG_READ at /home/gus/esp/32/idf/components/soc/esp32/include/soc/dport_access.h:79\n"+
		"            (inlined by) wdt_reset_cpu1_info_enable at /home/gus/esp/32/idf/components/esp32/cpu_start.c:262\n"+
		"0x3ffb5f40: ?? (not in the ELF's code)\n", r.stdout)

	r = runCLI(t, nil, "decode", "--elf", monitorFixtureELF, "--json", "0x400d0a2b")
	require.Equal(t, exitOK, r.code)
	res := lastResult(t, r.stdout)
	addrs := res["addresses"].([]any)
	require.Len(t, addrs, 1)
	require.Equal(t, true, addrs[0].(map[string]any)["in_code"])
	require.Equal(t, "138cb4392e3b79803b69e554ee515713d3ace655f5dab3f9fc08b1cfbfd6d727", res["elf_sha256"])

	// A pasted backtrace line as one argument.
	r = runCLI(t, nil, "decode", "--elf", monitorFixtureELF, "Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "  0x400d4ad9: main_task at ")

	// A log on standard input.
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"decode", "--elf", monitorFixtureELF}, strings.NewReader(monitorCrashBlock), &out, &errb, func(string) string { return "" })
	require.Equal(t, exitOK, code, errb.String())
	require.Contains(t, out.String(), "Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60\n  0x400d0a2b: app_main at ")

	r = runCLI(t, nil, "decode", "0x400d0a2b")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "--elf")
	r = runCLI(t, nil, "decode", "--elf", monitorFixtureELF, "main.c")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "decode", "--elf", "../../../shared/fixtures/images/helloworld-esp32.bin", "0x400d0a2b")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "not the .bin")
}

// Keys typed on a terminal: Ctrl+P pauses, Ctrl+R tries a reset (a pty board
// has no modem lines, which is said), other keys go to the board, Ctrl+]
// quits with success.
func TestMonitorCLIKeys(t *testing.T) {
	boardMaster, boardSlave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer boardMaster.Close()
	defer boardSlave.Close()
	kbdMaster, kbdSlave, err := pty.Open() // the user's terminal
	require.NoError(t, err)
	defer kbdMaster.Close()
	defer kbdSlave.Close()

	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"monitor", "--port", boardSlave.Name()}, kbdSlave, &out, &errb, func(string) string { return "" })
	}()
	// Wait for the monitor to put the keyboard in raw mode, then type.
	waitRaw := func(f *os.File) {
		for i := 0; i < 600; i++ {
			tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
			if err == nil && tio.Lflag&unix.ICANON == 0 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("the monitor never put the terminal in raw mode")
	}
	waitRaw(kbdSlave)
	waitRaw(boardSlave)
	_, err = kbdMaster.Write([]byte{keyReset})
	require.NoError(t, err)
	_, err = kbdMaster.Write([]byte("h\r"))
	require.NoError(t, err)
	// What was typed reaches the board, Enter as CR LF.
	got := make([]byte, 0, 8)
	buf := make([]byte, 8)
	for deadline := time.Now().Add(30 * time.Second); len(got) < 3 && time.Now().Before(deadline); {
		boardMaster.SetReadDeadline(time.Now().Add(time.Second))
		n, _ := boardMaster.Read(buf)
		got = append(got, buf[:n]...)
	}
	require.Equal(t, "h\r\n", string(got))
	_, err = kbdMaster.Write([]byte{keyQuit})
	require.NoError(t, err)
	select {
	case code := <-done:
		require.Equal(t, exitOK, code, errb.String())
	case <-time.After(30 * time.Second):
		t.Fatal("Ctrl+] did not quit")
	}
	require.Contains(t, out.String(), "no modem control lines; press the board's RESET (EN) button instead\r\n")
	require.Contains(t, errb.String(), "Ctrl+R reset")
}

// syncBuffer is a bytes.Buffer safe for the command's goroutines and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Issue 11 point 6: a port another espdeck holds is refused by the monitor
// with the holder's name (exit 10), even as root where TIOCEXCL does not
// stop a second open; the holder keeps its session.
func TestMonitorRefusesAPortAnotherEspdeckHolds(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	lock, err := serialflash.LockPort(slave.Name(), "espdeck serial write")
	require.NoError(t, err)
	res := runCLI(t, nil, "monitor", "--port", slave.Name(), "--json")
	require.Equal(t, exitPermission, res.code, res.stderr+res.stdout)
	require.Contains(t, res.stdout+res.stderr, "espdeck serial write")
	require.Contains(t, res.stdout, `"port_busy"`)
	lock.Unlock()
	// Released, the port can be claimed again.
	again, err := serialflash.LockPort(slave.Name(), "test")
	require.NoError(t, err)
	again.Unlock()
}
