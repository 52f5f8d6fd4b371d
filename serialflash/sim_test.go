package serialflash_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// linePort decorates a real port opened through go.bug.st/serial: a pty
// cannot carry DTR/RTS, so the decorator forwards them to the simulated
// ROM and records the order. Every byte still goes through the library.
type linePort struct {
	serialflash.Port
	rom *romsim.ROM
	// noDTRWire models an adapter whose DTR is not wired to IO0: resets
	// reach EN but the chip always boots normally.
	noDTRWire bool
	mu        sync.Mutex
	dtr       bool
	rts       bool
	log       []string
}

func (p *linePort) SetDTR(on bool) error {
	p.mu.Lock()
	p.dtr = on && !p.noDTRWire
	p.log = append(p.log, lineName("D", on))
	d, r := p.dtr, p.rts
	p.mu.Unlock()
	p.rom.SetLines(d, r)
	return nil
}

func (p *linePort) SetRTS(on bool) error {
	p.mu.Lock()
	p.rts = on
	p.log = append(p.log, lineName("R", on))
	d, r := p.dtr, p.rts
	p.mu.Unlock()
	p.rom.SetLines(d, r)
	return nil
}

func (p *linePort) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log...)
}

func lineName(l string, on bool) string {
	if on {
		return l + "1"
	}
	return l + "0"
}

// fastOpts keeps tests quick and tolerant of a loaded machine. Replies
// that should come get generous waits: with short ones a busy machine made
// a working baud rate look broken (an extra step down), and a timed-out
// GET_SECURITY_INFO let its late answer be read as the next command's.
// Tests that expect no answer ask for short waits themselves (noSyncOpts,
// TestFaultKnobs): there the answer never comes, so only time is at stake.
func fastOpts() serialflash.Options {
	return serialflash.Options{
		Before: serialflash.ResetNone, ConnectAttempts: 3, SyncTries: 3,
		SyncTimeout: 2 * time.Second, CommandTimeout: 10 * time.Second, BootLogWait: 50 * time.Millisecond,
	}
}

// noSyncOpts are fastOpts for a chip that is not meant to answer SYNC.
func noSyncOpts() serialflash.Options {
	o := fastOpts()
	o.SyncTimeout = 300 * time.Millisecond
	return o
}

type simEnv struct {
	path string
	rom  *romsim.ROM
}

func startPTY(t *testing.T, cfg romsim.Config) simEnv {
	t.Helper()
	path, rom, stop, err := romsim.StartPTY(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(stop)
	return simEnv{path: path, rom: rom}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openPTY(t *testing.T, env simEnv, opts serialflash.Options) *serialflash.Flasher {
	t.Helper()
	f, err := serialflash.Open(testCtx(t), env.path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// firmwareLike returns n bytes that compress like a real app image: code-ish
// random words with repeats and zero/FF runs.
func firmwareLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]byte, 0, n)
	for len(out) < n {
		switch r.IntN(4) {
		case 0:
			out = append(out, bytes.Repeat([]byte{0}, r.IntN(32))...)
		case 1:
			if len(out) > 64 {
				k := r.IntN(len(out) - 32)
				out = append(out, out[k:k+r.IntN(32)]...)
			}
		default:
			for range r.IntN(16) {
				out = append(out, byte(r.IntN(256)))
			}
		}
	}
	return out[:n]
}

func TestDetectAndInfoEveryProfile(t *testing.T) {
	t.Parallel()
	want := map[firmware.Chip]struct {
		mac string
		rev int
		mhz int
	}{
		firmware.ChipESP8266: {"18:fe:34:a1:b2:c3", 0, 26},
		firmware.ChipESP32:   {"24:0a:c4:12:34:56", 300, 40},
		firmware.ChipESP32S2: {"7c:df:a1:00:11:22", 100, 40},
		firmware.ChipESP32S3: {"f4:12:fa:43:21:10", 2, 40},
		firmware.ChipESP32C3: {"58:cf:79:0a:0b:0c", 4, 40},
		firmware.ChipESP32C6: {"40:4c:ca:01:02:03", 1, 40},
	}
	for _, p := range romsim.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			env := startPTY(t, romsim.Config{Chip: p.Chip})
			f := openPTY(t, env, fastOpts())
			require.Equal(t, p.Chip, f.Chip())
			info, err := f.Info(testCtx(t))
			require.NoError(t, err)
			w := want[p.Chip]
			require.Equal(t, w.mac, info.MAC)
			require.Equal(t, w.rev, info.Revision)
			require.Equal(t, w.mhz, info.CrystalMHz)
			require.Equal(t, p.FlashID, info.FlashID)
			require.Equal(t, p.FlashSize, info.FlashSize)
			require.False(t, info.Security.SecureBoot)
			require.False(t, info.Security.FlashEncryption)
		})
	}
}

func TestSecurityFlags(t *testing.T) {
	t.Parallel()
	for _, chip := range []firmware.Chip{firmware.ChipESP32, firmware.ChipESP32S3} {
		env := startPTY(t, romsim.Config{Chip: chip, Security: romsim.Security{SecureBoot: true, FlashEncryption: true, JTAGDisabled: true}})
		f := openPTY(t, env, fastOpts())
		info, err := f.Info(testCtx(t))
		require.NoError(t, err)
		require.True(t, info.Security.SecureBoot, chip)
		require.Equal(t, 2, info.Security.SecureBootVersion, chip)
		require.True(t, info.Security.FlashEncryption, chip)
		require.True(t, info.Security.JTAGDisabled, chip)
	}
}

func TestWriteVerifyReadBackCompressedAndPlain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		chip       firmware.Chip
		noCompress bool
	}{{firmware.ChipESP32, false}, {firmware.ChipESP32S3, false}, {firmware.ChipESP32C3, true}, {firmware.ChipESP8266, false}} {
		t.Run(tc.chip.String(), func(t *testing.T) {
			t.Parallel()
			env := startPTY(t, romsim.Config{Chip: tc.chip})
			opts := fastOpts()
			opts.NoCompress = tc.noCompress
			var notices []string
			opts.OnNotice = func(s string) { notices = append(notices, s) }
			var stages []string
			opts.OnProgress = func(p serialflash.Progress) {
				if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
					stages = append(stages, p.Stage)
				}
			}
			// Neighbours of the written regions must survive.
			require.NoError(t, env.rom.LoadFlash(0x20000, bytes.Repeat([]byte{0xA5}, 0x1000)))
			f := openPTY(t, env, opts)
			regions := []serialflash.Region{
				{Addr: 0x1000, Data: firmwareLike(5000, 1)},
				{Addr: 0x10000, Data: firmwareLike(40000, 2)}, // large enough to go compressed
			}
			require.NoError(t, f.WriteFlash(testCtx(t), regions))
			flash := env.rom.Flash()
			for _, r := range regions {
				require.Equal(t, r.Data, flash[r.Addr:int(r.Addr)+len(r.Data)])
			}
			require.Equal(t, bytes.Repeat([]byte{0xA5}, 0x1000), flash[0x20000:0x21000], "a write erased past its region")
			require.Contains(t, stages, "erase")
			require.Contains(t, stages, "write")

			var ops []byte
			for _, c := range env.rom.Commands() {
				ops = append(ops, c.Op)
			}
			require.NotContains(t, ops, byte(0x04), "FLASH_END must never follow a write")
			require.NotContains(t, ops, byte(0x12), "FLASH_DEFL_END must never follow a write")
			switch {
			case tc.chip == firmware.ChipESP8266:
				require.NotContains(t, ops, byte(0x10), "ESP8266 ROM has no compressed download")
				require.NotEmpty(t, notices, "an unverifiable write is said")
			case tc.noCompress:
				require.NotContains(t, ops, byte(0x10))
				require.Contains(t, ops, byte(0x13), "verified with SPI_FLASH_MD5")
			default:
				require.Contains(t, ops, byte(0x10), "compressed where the ROM supports it")
				require.Contains(t, ops, byte(0x13), "verified with SPI_FLASH_MD5")
			}
			if tc.chip != firmware.ChipESP8266 {
				back, err := f.ReadFlash(testCtx(t), 0x10000, 40000)
				require.NoError(t, err)
				require.Equal(t, regions[1].Data, back)
			}
		})
	}
}

func TestEraseRegion(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32C3})
	require.NoError(t, env.rom.LoadFlash(0, bytes.Repeat([]byte{0x11}, 0x4000)))
	f := openPTY(t, env, fastOpts())
	require.NoError(t, f.EraseRegion(testCtx(t), 0x1000, 0x2000))
	flash := env.rom.Flash()
	require.Equal(t, bytes.Repeat([]byte{0x11}, 0x1000), flash[:0x1000])
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 0x2000), flash[0x1000:0x3000])
	require.Equal(t, bytes.Repeat([]byte{0x11}, 0x1000), flash[0x3000:0x4000])
	require.ErrorIs(t, f.EraseRegion(testCtx(t), 0x1001, 0x1000), serialflash.ErrBadArgument)
}

func TestUnalignedWriteKeepsSectorHead(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	f := openPTY(t, env, fastOpts())
	data := []byte("hello, unaligned world")
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x8010, Data: data}}))
	flash := env.rom.Flash()
	require.Equal(t, data, flash[0x8010:0x8010+len(data)])
}

func TestWriteTooBigRefused(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	f := openPTY(t, env, fastOpts())
	err := f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x3FF000, Data: make([]byte, 0x2000)}})
	require.ErrorIs(t, err, serialflash.ErrTooBig)
}

func TestSocketPort(t *testing.T) {
	t.Parallel()
	addr, rom, stop, err := romsim.StartTCP(context.Background(), romsim.Config{Chip: firmware.ChipESP32S3}, "")
	require.NoError(t, err)
	t.Cleanup(stop)
	opts := fastOpts()
	opts.Baud = 921600
	f, err := serialflash.Open(testCtx(t), "socket://"+addr, opts)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, firmware.ChipESP32S3, f.Chip())
	data := firmwareLike(20000, 3)
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: data}}))
	require.Equal(t, data, rom.Flash()[0x10000:0x10000+len(data)])
	require.Equal(t, []int{921600}, rom.BaudChanges())
}

func TestBaudChangeOverPTY(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	opts := fastOpts()
	opts.Baud = 460800
	f := openPTY(t, env, opts)
	require.Equal(t, 460800, f.Baud())
	require.Equal(t, []int{460800}, env.rom.BaudChanges(), "the ROM saw CHANGE_BAUDRATE")
	data := firmwareLike(3000, 4)
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0, Data: data}}))
}

func TestBaudStepDownWhenLinkFails(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32C3, Faults: romsim.Faults{MaxReliableBaud: 230400}})
	opts := fastOpts()
	opts.Baud = 921600
	// The ROM keeps a rate it switched to until it is reset, so stepping
	// down needs a port that can reset the chip.
	opts.Before = serialflash.ResetDefault
	var notices []string
	opts.OnNotice = func(s string) { notices = append(notices, s) }
	port, err := serialflash.OpenPort(testCtx(t), env.path)
	require.NoError(t, err)
	f, err := serialflash.OpenWithPort(testCtx(t), &linePort{Port: port, rom: env.rom}, opts)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	require.Equal(t, 230400, f.Baud(), "stepped down to the fastest working rate")
	require.GreaterOrEqual(t, len(notices), 2, "each step down is said")
	data := firmwareLike(3000, 5)
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0, Data: data}}))
}

func TestSyncThroughNoiseAndRefusals(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32S3, Faults: romsim.Faults{RefuseSyncUntil: 4, GarbageBetweenFrames: true}})
	f := openPTY(t, env, fastOpts())
	require.Equal(t, firmware.ChipESP32S3, f.Chip())
	_, err := f.Info(testCtx(t))
	require.NoError(t, err)
}

func TestResetDecoratorClassicSequence(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, StartInApp: true, AppLog: []byte("I (31) boot: ESP-IDF v5.1\r\n")})
	port, err := serialflash.OpenPort(testCtx(t), env.path)
	require.NoError(t, err)
	lp := &linePort{Port: port, rom: env.rom}
	defer lp.Close()
	opts := fastOpts()
	opts.Before = serialflash.ResetDefault
	f, err := serialflash.OpenWithPort(testCtx(t), lp, opts)
	require.NoError(t, err)
	require.Equal(t, firmware.ChipESP32, f.Chip())
	require.True(t, env.rom.InDownloadMode())
	// The first strategy is the tight reset: EN low (D0 R1), then IO0 low
	// while EN rises (D1 then R0), then IO0 released.
	got := lp.lines()
	require.Equal(t, []string{"D0", "R0", "D0", "D1", "R1", "D1", "D0", "R1", "D0", "D1", "R0", "D1", "D0", "R0", "D0", "D0"}, got[:16])
	require.NoError(t, f.HardReset(testCtx(t)))
	require.False(t, env.rom.InDownloadMode(), "hard reset through RTS boots the app")
}

func TestClassicResetOrder(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	port, err := serialflash.OpenPort(testCtx(t), env.path)
	require.NoError(t, err)
	lp := &linePort{Port: port, rom: env.rom}
	defer lp.Close()
	require.NoError(t, serialflash.ClassicReset{Delay: 50 * time.Millisecond}.Reset(testCtx(t), lp))
	require.Equal(t, []string{"D0", "R1", "D0", "D1", "R0", "D1", "D0"}, lp.lines())
}

func TestWrongBootMode(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, StartInApp: true})
	port, err := serialflash.OpenPort(testCtx(t), env.path)
	require.NoError(t, err)
	lp := &linePort{Port: port, rom: env.rom, noDTRWire: true}
	defer lp.Close()
	opts := noSyncOpts()
	opts.Before = serialflash.ResetDefault
	opts.ConnectAttempts = 2
	ctx := testCtx(t)
	_, err = serialflash.OpenWithPort(ctx, lp, opts)
	require.ErrorIs(t, err, serialflash.ErrWrongBootMode)
	require.Contains(t, err.Error(), "boot:0x13")
	require.Contains(t, serialflash.Hint(err), "hold the BOOT")
	require.NoError(t, ctx.Err(), "ended by its own bound, not by the test's hang guard")
}

func TestNoModemLinesSaid(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, Faults: romsim.Faults{NeverSync: true}})
	opts := noSyncOpts()
	opts.Before = serialflash.ResetDefault
	opts.ConnectAttempts = 2
	_, err := serialflash.Open(testCtx(t), env.path, opts)
	require.ErrorIs(t, err, serialflash.ErrNoSync)
	require.True(t, errors.Is(err, serialflash.ErrNoModemLines) || errors.Is(err, serialflash.ErrNoSync))
}

func TestPortErrors(t *testing.T) {
	t.Parallel()
	_, err := serialflash.Open(testCtx(t), "/dev/does-not-exist-espdeck", fastOpts())
	require.ErrorIs(t, err, serialflash.ErrPortNotFound)
	require.NotEmpty(t, serialflash.Hint(err))

	// One owner per port, for root too (where TIOCEXCL does not stop a
	// second open): the second espdeck is told who holds the port.
	env := startPTY(t, romsim.Config{})
	p, err := serialflash.OpenPortAs(testCtx(t), env.path, "espdeck monitor")
	require.NoError(t, err)
	_, err = serialflash.Open(testCtx(t), env.path, fastOpts())
	require.ErrorIs(t, err, serialflash.ErrPortBusy)
	require.Equal(t, "port_busy", serialflash.Code(err))
	require.Contains(t, err.Error(), fmt.Sprintf("held by espdeck monitor, PID %d", os.Getpid()))
	require.NotEmpty(t, serialflash.Hint(err))
	require.NoError(t, p.Close())
	// Released on close: the next owner gets it.
	f := openPTY(t, env, fastOpts())
	require.NoError(t, f.Close())
}

func TestSecureDownloadModeInfo(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32S3, Faults: romsim.Faults{SecureDownloadMode: true}})
	f := openPTY(t, env, fastOpts())
	info, err := f.Info(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, firmware.ChipESP32S3, info.Chip, "identified by GET_SECURITY_INFO's chip id")
	require.True(t, info.Security.SecureDownloadMode)
	require.Equal(t, -1, info.Revision, "eFuses are unreadable in Secure Download Mode")
	require.Empty(t, info.MAC)
	_, err = f.ReadFlash(testCtx(t), 0, 64)
	require.ErrorIs(t, err, serialflash.ErrUnsupported)
}

// On a link that cannot reset the chip, a failed baud change is said as
// that — with the rate and the way out — not as a cable problem.
func TestFailedBaudChangeSaidAsSuch(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, Faults: romsim.Faults{MaxReliableBaud: 115200}})
	opts := noSyncOpts()
	opts.Baud = 460800
	opts.ConnectAttempts = 1
	_, err := serialflash.Open(testCtx(t), env.path, opts)
	require.ErrorIs(t, err, serialflash.ErrBaudChange)
	require.Equal(t, "baud_change_failed", serialflash.Code(err))
	require.Contains(t, err.Error(), "460800 Bd")
	require.Contains(t, serialflash.Hint(err), "--baud 115200")
	require.NotContains(t, serialflash.Hint(err), "cable")
}

// A command that left the ROM at a raised rate without resetting it (a
// port without lines, --after no-reset) does not lock the next command
// out: it finds the ROM at that rate.
func TestRateLeftByAnEarlierCommand(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	opts := fastOpts()
	opts.SyncTimeout = 300 * time.Millisecond
	opts.Baud = 921600
	f, err := serialflash.Open(testCtx(t), env.path, opts)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Equal(t, 921600, env.rom.Baud())
	opts.Baud = 460800
	opts.ConnectAttempts = 0 // the default rounds listen at each usual rate
	var notices []string
	opts.OnNotice = func(s string) { notices = append(notices, s) }
	g := openPTY(t, env, opts)
	require.Contains(t, strings.Join(notices, "\n"), "still at 921600 Bd")
	require.Equal(t, 460800, g.Baud())
	_, err = g.Info(testCtx(t))
	require.NoError(t, err)
}

// rfc2217:// as ser2net and esptool speak it: the chip starts in its app,
// espdeck resets it into download mode with DTR/RTS sent through the
// protocol, raises the rate through the protocol, writes and verifies.
func TestRFC2217Port(t *testing.T) {
	t.Parallel()
	addr, rom, stop, err := romsim.StartRFC2217(context.Background(), romsim.Config{Chip: firmware.ChipESP32C3, StartInApp: true,
		AppLog: []byte("I (31) app: hello\r\n")}, "")
	require.NoError(t, err)
	t.Cleanup(stop)
	opts := fastOpts()
	opts.Before = serialflash.ResetDefault
	opts.Baud = 460800
	f, err := serialflash.Open(testCtx(t), "rfc2217://"+addr, opts)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, firmware.ChipESP32C3, f.Chip())
	require.NotEmpty(t, rom.Lines(), "DTR/RTS went through the protocol")
	require.Equal(t, 460800, f.Baud())
	require.Equal(t, []int{460800}, rom.BaudChanges())
	data := append(firmwareLike(40000, 41), bytes.Repeat([]byte{0xFF, 0xFF, 0x00}, 100)...) // IAC bytes in the data
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: data}}))
	require.Equal(t, data, rom.Flash()[0x10000:0x10000+len(data)])
	back, err := f.ReadFlash(testCtx(t), 0x10000, 256)
	require.NoError(t, err)
	require.Equal(t, data[:256], back)
}
