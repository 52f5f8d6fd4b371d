package monitor

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/serialflash/romsim"
	"github.com/espdeck/espdeck/symbolize"
)

// linesToROM is the test decorator around the real serial port: bytes go
// through go.bug.st/serial and the pty; DTR/RTS, which a pty cannot carry,
// are forwarded to the simulated chip's auto-reset circuit.
type linesToROM struct {
	Port
	rom      *romsim.ROM
	mu       sync.Mutex
	dtr, rts bool
}

func (p *linesToROM) SetDTR(v bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dtr = v
	p.rom.SetLines(p.dtr, p.rts)
	return nil
}

func (p *linesToROM) SetRTS(v bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rts = v
	p.rom.SetLines(p.dtr, p.rts)
	return nil
}

// The simulated ESP32 holds an app that prints a boot log and crashes: the
// monitor resets it into the app over DTR/RTS, the lines arrive, the crash is
// decoded with the fixture ELF.
func TestMonitorAgainstSimulatedROM(t *testing.T) {
	if _, err := os.Stat(fixtureELF); err != nil {
		fixture.Missing(t, "fixture %s not present (%v)", fixtureELF, err)
	}
	sym, err := symbolize.Open(fixtureELF)
	require.NoError(t, err)

	appLog := strings.Join([]string{
		"\x1b[0;32mI (29) boot: ESP-IDF v5.1.2 2nd stage bootloader\x1b[0m",
		"\x1b[0;32mI (318) app_init: ELF file SHA256:  138cb4392e3b7980...\x1b[0m",
		"\x1b[0;33mW (415) wifi: no AP found\x1b[0m",
		"Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.",
		"Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60 0x40088c85:0x3ffb5f80",
		"Rebooting...",
	}, "\r\n") + "\r\n"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path, rom, stop, err := romsim.StartPTY(ctx, romsim.Config{Chip: firmware.ChipESP32, AppLog: []byte(appLog)})
	require.NoError(t, err)
	t.Cleanup(stop)

	open := func(ctx context.Context, name string, baud int) (Port, error) {
		p, err := OpenSerial(ctx, name, baud)
		if err != nil {
			return nil, err
		}
		return &linesToROM{Port: p, rom: rom}, nil
	}
	sink := newSink()
	m := New(path, Options{Symbolizer: sym, Open: open, OnLine: sink.onLine})
	mctx := startMonitor(t, m)
	sink.waitFor(t, "announcing the port", func(l Line) bool { return l.Kind == KindNotice })

	// The chip powers up in download mode (its banner may or may not be
	// read: the monitor flushes input on open); only a reset into the app
	// makes it print the app's log.
	require.True(t, rom.InDownloadMode())
	require.NoError(t, m.ResetIntoApp(mctx))
	got := sink.waitFor(t, "the end of the crash", textIs("Rebooting..."))

	// The reset reached the chip as the auto-reset circuit sees it: EN low
	// with the boot pin high, then EN high with the boot pin high.
	require.Equal(t, []romsim.LineEvent{{DTR: false, RTS: false}, {DTR: false, RTS: true}, {DTR: false, RTS: false}}, rom.Lines())
	require.False(t, rom.InDownloadMode(), "a reset into the app must not strap download mode")

	byText := map[string]Line{}
	banner := false
	for _, l := range got {
		byText[l.Text] = l
		banner = banner || strings.HasPrefix(l.Text, "ets ")
	}
	require.True(t, banner, "the ROM banner of a normal boot arrives first")
	boot := byText["I (29) boot: ESP-IDF v5.1.2 2nd stage bootloader"]
	require.Equal(t, LevelInfo, boot.Level)
	require.Equal(t, "boot", boot.Tag)
	require.Empty(t, byText["I (318) app_init: ELF file SHA256:  138cb4392e3b7980..."].Warning, "the fixture is the running ELF")
	require.Equal(t, LevelWarn, byText["W (415) wifi: no AP found"].Level)
	guru := byText["Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled."]
	require.Equal(t, CrashStart, guru.Crash)
	bt := byText["Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60 0x40088c85:0x3ffb5f80"]
	require.Len(t, bt.Decoded, 3)
	var decoded []string
	for _, d := range bt.Decoded {
		decoded = append(decoded, d.Lines()...)
	}
	require.Equal(t, []string{
		"0x400d0a2b: app_main at /home/gus/esp/32/idf-template/main/main.c:18",
		"0x400d4ad9: main_task at /home/gus/esp/32/idf/components/esp32/cpu_start.c:507",
		"0x40088c85: vPortTaskWrapper at /home/gus/esp/32/idf/components/freertos/port.c:146",
	}, decoded)
}
