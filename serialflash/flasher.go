package serialflash

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/espdeck/espdeck/firmware"
)

// Progress reports work within one stage. It is delivered on the worker
// goroutine and must return quickly.
type Progress struct {
	// Stage is "sync", "erase", "write", "verify", "read" or "reset".
	Stage string
	// Addr is the flash address of the region the stage works on.
	Addr uint32
	// Region and Regions count regions in a multi-region write (1-based).
	Region, Regions int
	Done, Total     int64
	// Rate is bytes of payload per second since the stage began.
	Rate float64
}

// Options configure Open. Zero values give the documented defaults.
type Options struct {
	// Baud is the rate to switch to after syncing at 115200; 0 or 115200
	// stays at 115200. ESP8266 ROMs cannot change rate and stay at 115200.
	Baud int
	// Chip, when not firmware.ChipUnknown (or the zero value ChipESP32
	// with ChipSet false), must match the detected chip.
	Chip firmware.Chip
	// ChipSet says Chip was given (ChipESP32 is the zero value).
	ChipSet bool
	// Before selects the reset into download mode.
	Before ResetMode
	// ConnectAttempts bounds reset+sync rounds (default 7).
	ConnectAttempts int
	// SyncTries is the SYNC tries per round (default 5).
	SyncTries int
	// SyncTimeout waits for the first SYNC reply (default 100 ms).
	SyncTimeout time.Duration
	// CommandTimeout is the silence allowed before a reply (default 3 s).
	CommandTimeout time.Duration
	// EraseTimeoutPerMB scales FLASH_BEGIN (the ROM erases up front) and
	// FLASH_DEFL_DATA timeouts (default 40 s per 1,000,000 bytes).
	EraseTimeoutPerMB time.Duration
	// MD5TimeoutPerMB scales SPI_FLASH_MD5 (default 8 s per 1,000,000 bytes).
	MD5TimeoutPerMB time.Duration
	// BootLogWait is how long to collect the boot log after a reset
	// (default 150 ms).
	BootLogWait time.Duration
	// NoCompress writes uncompressed even where the ROM can inflate
	// (the same as Compress: CompressNever).
	NoCompress bool
	// Compress chooses when writes may go compressed; the zero value is
	// CompressSafe, which never changes a byte outside the regions.
	Compress Compression
	// NoDiff writes every sector of a region even where the flash already
	// holds the data (by default, where the ROM has SPI_FLASH_MD5, only
	// the sectors that differ are written).
	NoDiff bool
	// MaxResumes bounds how often one region's write continues after a
	// block failed (0 = the default 3; negative = never resume).
	MaxResumes int
	// FlashSize overrides the detected flash size (bytes); needed in
	// Secure Download Mode where RDID is impossible.
	FlashSize uint32
	// OnProgress receives progress; may be nil.
	OnProgress func(Progress)
	// OnNotice receives things a person should know that do not stop the
	// operation (baud step-down, unverifiable region); may be nil.
	OnNotice func(string)
	// Logger gets protocol-level debug logs; nil discards.
	Logger *slog.Logger
	// Owner names this use of the port for a second process that finds it
	// busy (e.g. "espdeck serial write"); default "espdeck".
	Owner string

	// unsafeAlwaysCompress compresses every region without padding, as
	// espdeck did before the ROM's window behaviour was known (§13.1).
	// Only benchmarks and tests set it, to measure and show the damage.
	unsafeAlwaysCompress bool
}

func (o *Options) defaults() {
	if o.ConnectAttempts <= 0 {
		o.ConnectAttempts = 7
	}
	if o.SyncTries <= 0 {
		o.SyncTries = 5
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 100 * time.Millisecond
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 3 * time.Second
	}
	if o.EraseTimeoutPerMB <= 0 {
		o.EraseTimeoutPerMB = 40 * time.Second
	}
	if o.MD5TimeoutPerMB <= 0 {
		o.MD5TimeoutPerMB = 8 * time.Second
	}
	if o.BootLogWait <= 0 {
		o.BootLogWait = 150 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Flasher is a connection to a chip's ROM loader in download mode. It is
// not safe for concurrent use.
type Flasher struct {
	opts  Options
	port  Port
	c     *conn
	usb   string
	chip  firmware.Chip
	regs  chipRegs
	baud  int
	info  ChipInfo
	sdm   bool
	noDTR bool
	// attached says SPI_ATTACH and SPI_SET_PARAMS were sent.
	attached bool
	// paramSize is the flash size SPI_SET_PARAMS told the ROM.
	paramSize uint32
}

// Open opens port (a device path or socket://HOST:PORT) and connects to the
// chip's ROM loader: reset into download mode, sync, detect, baud change,
// flash attach. The caller must Close the Flasher.
func Open(ctx context.Context, port string, opts Options) (*Flasher, error) {
	owner := opts.Owner
	if owner == "" {
		owner = "espdeck"
	}
	p, err := OpenPortAs(ctx, port, owner)
	if err != nil {
		return nil, err
	}
	f, err := openOn(ctx, p, usbID(port), opts)
	if err != nil {
		p.Close()
		return nil, err
	}
	return f, nil
}

// OpenWithPort connects through an already open port (tests pass a
// decorated real port that forwards DTR/RTS to a simulator). On success the
// Flasher owns p; on failure the caller still does.
func OpenWithPort(ctx context.Context, p Port, opts Options) (*Flasher, error) {
	return openOn(ctx, p, "", opts)
}

func openOn(ctx context.Context, p Port, usb string, opts Options) (*Flasher, error) {
	opts.defaults()
	f := &Flasher{opts: opts, port: p, c: newConn(p, opts.Logger), usb: usb, baud: 115200}
	if err := f.connect(ctx); err != nil {
		return nil, err
	}
	if err := f.detect(ctx); err != nil {
		return nil, err
	}
	if opts.ChipSet && opts.Chip != firmware.ChipUnknown && opts.Chip != f.chip {
		return nil, withHint(fmt.Errorf("%w: expected %v, found %v", ErrWrongChip, opts.Chip, f.chip),
			fmt.Sprintf("use --chip %s or --chip auto", keyOf(f.chip)))
	}
	if opts.Baud > 0 && opts.Baud != 115200 && opts.Baud != f.baud {
		if err := f.raiseBaud(ctx, opts.Baud); err != nil {
			return nil, err
		}
	}
	if err := f.attach(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

func keyOf(c firmware.Chip) string {
	if ci, ok := c.Info(); ok {
		return ci.Key
	}
	return "auto"
}

func (f *Flasher) progress(p Progress) {
	if f.opts.OnProgress != nil {
		f.opts.OnProgress(p)
	}
}

func (f *Flasher) notice(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.opts.Logger.Info(msg)
	if f.opts.OnNotice != nil {
		f.opts.OnNotice(msg)
	}
}

// Chip returns the detected chip.
func (f *Flasher) Chip() firmware.Chip { return f.chip }

// Baud returns the current link rate.
func (f *Flasher) Baud() int { return f.baud }

// Port returns the underlying port (for a monitor after flashing).
func (f *Flasher) Port() Port { return f.port }

// Close closes the port.
func (f *Flasher) Close() error { return f.port.Close() }

var (
	bootRe    = regexp.MustCompile(`boot:(0x[0-9a-fA-F]+)(?: \(([^)\r\n]*)\))?`)
	boot8266  = regexp.MustCompile(`boot mode:\((\d)`)
	waitingRe = regexp.MustCompile(`waiting for download`)
)

// bootMode reads a boot log: download reports whether the banner shows
// download mode, seen whether a banner was found at all, and desc the
// strapping text.
func bootMode(log []byte) (download, seen bool, desc string) {
	s := string(log)
	if idx := bootRe.FindAllStringSubmatchIndex(s, -1); idx != nil {
		last := idx[len(idx)-1]
		value := s[last[2]:last[3]]
		mode := ""
		if last[4] >= 0 {
			mode = s[last[4]:last[5]]
		}
		desc = strings.TrimSpace("boot:" + value + " " + paren(mode))
		up := strings.ToUpper(mode)
		// Only a "waiting for download" after the last banner counts.
		dl := strings.Contains(up, "DOWNLOAD") || strings.Contains(up, "UART_BOOT") || waitingRe.MatchString(s[last[1]:])
		return dl, true, desc
	}
	if m := boot8266.FindAllStringSubmatch(s, -1); m != nil {
		last := m[len(m)-1]
		return last[1] == "1", true, "boot mode:(" + last[1] + ",…)"
	}
	return false, false, ""
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// lineKind tells what out-of-frame bytes look like: "text" (lines of
// printable characters: an app's log), "noise" (mostly unprintable) or ""
// (too little to tell).
func lineKind(b []byte) string {
	if len(b) < 16 {
		return ""
	}
	text, nl := 0, false
	for _, c := range b {
		switch {
		case c == '\n':
			nl = true
			text++
		case c == '\r' || c == '\t' || (c >= 0x20 && c < 0x7F):
			text++
		}
	}
	switch {
	case nl && text*10 >= len(b)*9:
		return "text"
	case text*10 < len(b)*7:
		return "noise"
	}
	return ""
}

// lastLine returns the last complete non-empty line of text, cut to max.
func lastLine(b []byte, max int) string {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && (i < len(lines)-1 || len(lines) == 1) {
			if len(l) > max {
				l = l[:max]
			}
			return printable([]byte(l), max)
		}
	}
	return ""
}

// printable renders line noise for an error message.
func printable(b []byte, max int) string {
	if len(b) > max {
		b = b[len(b)-max:]
	}
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
		case c >= 0x20 && c < 0x7F:
			sb.WriteByte(c)
		default:
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}

var syncPayload = append([]byte{0x07, 0x07, 0x12, 0x20}, []byte(strings.Repeat("\x55", 32))...)

// connect resets and syncs (§4.3).
func (f *Flasher) connect(ctx context.Context) error {
	strats := strategies(f.opts.Before, f.usb)
	var lastLog []byte
	sawDownload := false
	for attempt := range f.opts.ConnectAttempts {
		st := strats[attempt%len(strats)]
		if f.noDTR {
			st = NoReset{}
		}
		// Without a reset the ROM may still run at the rate a previous
		// command switched it to (it keeps it until reset): every other
		// round listens at one of the usual raised rates.
		rate := 115200
		if _, none := st.(NoReset); none && attempt%2 == 1 {
			cands := leftoverRates(f.opts.Baud)
			rate = cands[(attempt/2)%len(cands)]
		}
		if rate != f.baud {
			if err := f.port.SetBaudRate(rate); err != nil {
				return err
			}
			f.baud = rate
		}
		f.progress(Progress{Stage: "sync", Done: int64(attempt), Total: int64(f.opts.ConnectAttempts)})
		f.c.flush()
		f.c.takeSeen()
		if err := st.Reset(ctx, f.port); err != nil {
			if errors.Is(err, ErrNoModemLines) {
				if !f.noDTR {
					f.notice("this port has no modem control lines (DTR/RTS); the chip was not reset — put it in download mode by hand (hold BOOT, tap EN)")
				}
				f.noDTR = true
			} else if ctx.Err() != nil {
				return fmt.Errorf("connect: %w", ctx.Err())
			} else {
				return fmt.Errorf("reset (%s): %w", st.Name(), err)
			}
		}
		// Collect the boot log the reset produced.
		f.c.drain(ctx, f.opts.BootLogWait, max(4*f.opts.BootLogWait, time.Second))
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		bootLog := f.c.takeSeen()
		// What is seen while listening at another rate than 115200 is
		// garbled; it only stands in when nothing else was seen.
		if len(bootLog) > 0 && (rate == 115200 || len(lastLog) == 0) {
			lastLog = bootLog
			f.opts.Logger.Debug("boot log", "text", printable(bootLog, 300))
		}
		if dl, seen, _ := bootMode(bootLog); seen && dl {
			sawDownload = true
		}
		for range f.opts.SyncTries {
			ok, err := f.sync(ctx)
			if err != nil {
				return err
			}
			if ok {
				f.c.takeSeen()
				if f.baud != 115200 {
					f.notice("the chip was still at %d Bd from an earlier command (the ROM keeps a rate until it is reset); continuing at that rate", f.baud)
				}
				return nil
			}
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("connect: %w", err)
			}
		}
		if seen := f.c.takeSeen(); len(seen) > 0 && (rate == 115200 || len(lastLog) == 0) {
			lastLog = seen
		}
	}
	return f.noSyncError(lastLog, sawDownload)
}

func (f *Flasher) noSyncError(log []byte, sawDownload bool) error {
	dl, seen, desc := bootMode(log)
	if lineKind(log) == "noise" {
		return withHint(fmt.Errorf("%w: the line carries noise, not replies (seen: %q)", ErrNoSync, printable(log, 60)),
			"a wrong baud rate on an adapter that does not auto-baud, a loose ground or a floating RX pin: check the cable and wiring, and that this is the board's port")
	}
	switch {
	case seen && !dl:
		return withHint(fmt.Errorf("%w (%s)", ErrWrongBootMode, desc),
			"put the chip in download mode: hold the BOOT (IO0) button, tap EN/RST, release BOOT, then try again; if the board resets by itself, its auto-reset circuit or the adapter's DTR/RTS wiring is missing")
	case (seen && dl) || sawDownload:
		return withHint(fmt.Errorf("%w: the chip is in download mode but does not answer", ErrNoSync),
			"the line from this computer to the chip (TX→RX) is not working: check the wiring or cable, and that no other program holds the port")
	case f.noDTR:
		return withHint(fmt.Errorf("%w: %w", ErrNoSync, ErrNoModemLines),
			"put the board in download mode by hand: hold BOOT, tap EN/RST, release BOOT, then run the command again with --before no-reset")
	}
	switch lineKind(log) {
	case "text":
		return withHint(fmt.Errorf("%w: the board is running an app and printing; it is not in download mode (last output: %q)", ErrWrongBootMode, lastLine(log, 100)),
			"hold BOOT, tap EN (RST), release BOOT, then run the command again; if the board has an auto-reset circuit, use --before default-reset")
	}
	what := "nothing"
	if len(log) > 0 {
		what = fmt.Sprintf("%q", printable(log, 120))
	}
	return withHint(fmt.Errorf("%w (seen on the line: %s)", ErrNoSync, what),
		"check that this is the board's port, the cable carries data, and the board is powered; if auto-reset does not work, hold BOOT and tap EN, then use --before no-reset")
}

// syncAtThisRate sends SYNC up to SyncTries times back to back, without
// a reset or a rate change in between, and reports whether the ROM
// answered one. It is how a chip that is known to be listening is found
// again after a lost reply; finding one that may not be listening is
// connect's job.
func (f *Flasher) syncAtThisRate(ctx context.Context) (bool, error) {
	for range f.opts.SyncTries {
		ok, err := f.sync(ctx)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// sync sends one SYNC and reports whether a reply came (§3.2). The
// remaining copies of the 8 replies are drained.
func (f *Flasher) sync(ctx context.Context) (bool, error) {
	f.c.flush()
	if err := f.c.write(ctx, encodeRequest(OpSync, syncPayload, 0)); err != nil {
		return false, err
	}
	got := false
	// One deadline for the first reply; after it, a short one for the
	// other copies. Bytes that are not replies extend neither.
	deadline := time.Now().Add(f.opts.SyncTimeout)
	for range 16 {
		fr, err := f.c.readFrameUntil(ctx, deadline)
		if err != nil {
			if ctx.Err() != nil {
				return false, fmt.Errorf("sync: %w", ctx.Err())
			}
			if errors.Is(err, ErrTimeout) {
				break
			}
			return false, fmt.Errorf("sync: %w", err)
		}
		r, err := parseResponse(fr)
		if err != nil || r.op != OpSync {
			continue
		}
		if _, err := r.status(0); err == nil {
			if !got {
				deadline = time.Now().Add(50 * time.Millisecond)
			}
			got = true
		}
	}
	return got, nil
}

func (f *Flasher) readReg(ctx context.Context, addr uint32) (uint32, error) {
	var d [4]byte
	binary.LittleEndian.PutUint32(d[:], addr)
	v, _, err := f.c.command(ctx, OpReadReg, d[:], 0, 0, f.opts.CommandTimeout)
	if err != nil {
		return 0, fmt.Errorf("read register 0x%08X: %w", addr, err)
	}
	return v, nil
}

func (f *Flasher) writeReg(ctx context.Context, addr, value, mask uint32) error {
	d := make([]byte, 16)
	binary.LittleEndian.PutUint32(d, addr)
	binary.LittleEndian.PutUint32(d[4:], value)
	binary.LittleEndian.PutUint32(d[8:], mask)
	if _, _, err := f.c.command(ctx, OpWriteReg, d, 0, 0, f.opts.CommandTimeout); err != nil {
		return fmt.Errorf("write register 0x%08X: %w", addr, err)
	}
	return nil
}

// detect identifies the chip (§4.4).
func (f *Flasher) detect(ctx context.Context) error {
	r, err := f.c.exchange(ctx, OpGetSecurityInfo, nil, 0, f.opts.CommandTimeout)
	var secOut []byte
	if err == nil {
		if out, e := r.status(20); e == nil {
			secOut = out
		} else if out, e := r.status(12); e == nil {
			secOut = out
		} else {
			err = e
		}
	}
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("detect chip: %w", ctx.Err())
	}
	if len(secOut) >= 12 {
		f.info.Security = securityFromInfo(secOut)
		f.sdm = f.info.Security.SecureDownloadMode
	}
	if len(secOut) == 20 {
		id := binary.LittleEndian.Uint32(secOut[12:])
		c, ok := firmware.ChipByID(uint16(id))
		if !ok || id > 0xFFFF {
			return withHint(fmt.Errorf("detect chip: unknown chip ID %d", id), "this espdeck does not know the chip; use esptool for it")
		}
		f.setChip(c)
		return nil
	}
	magic, merr := f.readReg(ctx, 0x40001000)
	if merr != nil {
		var ce *CommandError
		if errors.As(merr, &ce) && ce.Unsupported() && len(secOut) == 12 {
			// Only the ESP32-S2 lacks the chip id yet has Secure Download Mode.
			f.sdm = true
			f.setChip(firmware.ChipESP32S2)
			return nil
		}
		return fmt.Errorf("detect chip: %w", merr)
	}
	c, ok := firmware.ChipByMagic(magic)
	if !ok {
		return withHint(fmt.Errorf("detect chip: unknown magic value 0x%08X", magic), "this espdeck does not know the chip; use esptool for it")
	}
	f.setChip(c)
	return nil
}

func (f *Flasher) setChip(c firmware.Chip) {
	f.chip = c
	f.regs = regsFor(c)
	f.info.Chip = c
	f.info.StubLess = true
	f.info.Revision = -1
	f.opts.Logger.Debug("chip detected", "chip", c.String(), "secure_download", f.sdm)
}

// baudCommandValue is what CHANGE_BAUDRATE must carry for the ROM to end
// up at baud (§4.7 quirks).
func (f *Flasher) baudCommandValue(ctx context.Context, baud int) int {
	switch f.chip {
	case firmware.ChipESP32:
		if f.sdm {
			return baud
		}
		cal, err1 := f.readReg(ctx, 0x3FF5F06C)
		ck, err2 := f.readReg(ctx, 0x3FF5A010)
		if err1 != nil || err2 != nil {
			return baud
		}
		romXtal := float64((cal>>7)&0x1FFFFFF) * 15625 * float64(ck&0xFF) / 40
		valid := 26e6
		if romXtal > 33e6 {
			valid = 40e6
		}
		if romXtal == 0 {
			return baud // blank calibration: esptool would send 0
		}
		return int(float64(baud) * romXtal / valid)
	case firmware.ChipESP32C2:
		if mhz := f.crystal(ctx); mhz == 26 {
			return baud * 40 / 26
		}
	}
	return baud
}

// leftoverRates lists the raised rates a ROM may still be at: the one
// asked for first, then the usual ones.
func leftoverRates(asked int) []int {
	out := []int{}
	if asked > 115200 {
		out = append(out, asked)
	}
	for _, r := range []int{460800, 921600, 230400} {
		if r != asked {
			out = append(out, r)
		}
	}
	return out
}

// stepDown lists the rates to try, from want down to 230400.
func stepDown(want int) []int {
	out := []int{want}
	for _, r := range []int{921600, 460800, 230400} {
		if r < want {
			out = append(out, r)
		}
	}
	return out
}

// raiseBaud switches to want, stepping down when the link fails at a rate
// (§4.7, §13: a failed change is a reason to reconnect at 115200, not fatal).
func (f *Flasher) raiseBaud(ctx context.Context, want int) error {
	if !f.regs.changeBaud || f.chip == firmware.ChipESP8266 {
		f.notice("the %v ROM cannot change its baud rate; staying at 115200", f.chip)
		return nil
	}
	for _, rate := range stepDown(want) {
		err := f.tryBaud(ctx, rate)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("change baud rate: %w", ctx.Err())
		}
		f.notice("the link did not work at %d Bd (%v); back to 115200 and trying a lower rate", rate, err)
		if rerr := f.reconnect(ctx); rerr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("change baud rate: %w", ctx.Err())
			}
			hint := fmt.Sprintf("reset the board (hold BOOT, tap EN, release BOOT) and retry with --baud 115200; this link cannot reset the chip, and the ROM keeps %d Bd until it is reset", rate)
			if !f.noDTR && f.opts.Before != ResetNone {
				hint = "retry with --baud 115200; if that fails too, reset the board by hand (hold BOOT, tap EN)"
			}
			return withHint(fmt.Errorf("%w: the chip acknowledged the switch to %d Bd, then did not answer at %d Bd nor back at 115200 (%v)", ErrBaudChange, rate, rate, Message(err)), hint)
		}
	}
	f.notice("staying at 115200 Bd")
	return nil
}

func (f *Flasher) tryBaud(ctx context.Context, rate int) error {
	var d [8]byte
	binary.LittleEndian.PutUint32(d[:], uint32(f.baudCommandValue(ctx, rate)))
	if _, _, err := f.c.command(ctx, OpChangeBaudrate, d[:], 0, 0, f.opts.CommandTimeout); err != nil {
		return err
	}
	if err := f.port.SetBaudRate(rate); err != nil {
		return err
	}
	f.baud = rate
	if err := sleep(ctx, 50*time.Millisecond); err != nil {
		return err
	}
	f.c.flush()
	// Probe the new rate with a harmless command, as often as a connect
	// round tries: one lost or late reply (an adapter settling on the new
	// rate, a busy host) is no reason to give up a rate that works.
	if ok, err := f.syncAtThisRate(ctx); ok || err != nil {
		return err
	}
	return fmt.Errorf("no answer at %d Bd: %w", rate, ErrTimeout)
}

// reconnect goes back to 115200 and syncs again (resetting where the port
// has lines), then re-attaches the flash if it was attached.
func (f *Flasher) reconnect(ctx context.Context) error {
	if err := f.port.SetBaudRate(115200); err != nil {
		return err
	}
	f.baud = 115200
	if err := sleep(ctx, 50*time.Millisecond); err != nil {
		return err
	}
	ok, err := f.sync(ctx)
	if err != nil {
		return err
	}
	if !ok {
		if err := f.connect(ctx); err != nil {
			return fmt.Errorf("reconnect at 115200 Bd: %w", err)
		}
	}
	if f.attached {
		f.attached = false
		return f.attach(ctx)
	}
	return nil
}

// attach sends SPI_ATTACH and SPI_SET_PARAMS with the detected size (§4.8).
func (f *Flasher) attach(ctx context.Context) error {
	if f.chip == firmware.ChipESP8266 {
		// No SPI_ATTACH in the ESP8266 ROM: an empty FLASH_BEGIN attaches.
		if err := f.begin(ctx, OpFlashBegin, 0, 0, 0x400, 0, f.opts.CommandTimeout); err != nil {
			return fmt.Errorf("attach flash: %w", err)
		}
	} else {
		cfg := uint32(0)
		if f.chip == firmware.ChipESP32 && !f.sdm {
			cfg = f.esp32PadConfig(ctx)
		}
		d := make([]byte, 8)
		binary.LittleEndian.PutUint32(d, cfg)
		if _, _, err := f.c.command(ctx, OpSPIAttach, d, 0, 0, f.opts.CommandTimeout); err != nil {
			return fmt.Errorf("attach flash: %w", err)
		}
	}
	size := f.opts.FlashSize
	if !f.sdm {
		id, err := f.flashID(ctx)
		if err != nil {
			return err
		}
		f.info.FlashID = id
		if s := flashSizeFromID(id); s != 0 {
			f.info.FlashSize = s
			if size == 0 {
				size = s
			}
		} else {
			f.notice("flash id 0x%06X gives no size; assuming 4 MB (pass a size to override)", id)
		}
	}
	if size == 0 {
		size = 4 << 20
		if f.sdm {
			size = 16 << 20
		}
	}
	if f.info.FlashSize == 0 {
		f.info.FlashSize = f.opts.FlashSize
	}
	if f.chip != firmware.ChipESP8266 {
		d := make([]byte, 24)
		binary.LittleEndian.PutUint32(d[4:], size)
		binary.LittleEndian.PutUint32(d[8:], 0x10000)
		binary.LittleEndian.PutUint32(d[12:], 0x1000)
		binary.LittleEndian.PutUint32(d[16:], 0x100)
		binary.LittleEndian.PutUint32(d[20:], 0xFFFF)
		if _, _, err := f.c.command(ctx, OpSPISetParams, d, 0, 0, f.opts.CommandTimeout); err != nil {
			return fmt.Errorf("set flash parameters: %w", err)
		}
	}
	f.paramSize = size
	f.attached = true
	return nil
}

// esp32PadConfig builds SPI_ATTACH's pin word from the ESP32 pad eFuses.
func (f *Flasher) esp32PadConfig(ctx context.Context) uint32 {
	w3, err1 := f.readReg(ctx, 0x3FF5A00C)
	w5, err2 := f.readReg(ctx, 0x3FF5A014)
	if err1 != nil || err2 != nil {
		return 0
	}
	clk, q, d, cs := field(w5, 4, 0), field(w5, 9, 5), field(w5, 14, 10), field(w5, 19, 15)
	hd := field(w3, 8, 4)
	if clk|q|d|cs|hd == 0 {
		return 0
	}
	return hd<<24 | cs<<18 | d<<12 | q<<6 | clk
}

// flashID runs RDID through the SPI controller registers (§3.6).
func (f *Flasher) flashID(ctx context.Context) (uint32, error) {
	r := f.regs
	base := r.spiBase
	oldUsr, err := f.readReg(ctx, base+r.usr)
	if err != nil {
		return 0, fmt.Errorf("read flash id: %w", err)
	}
	oldUsr2, err := f.readReg(ctx, base+r.usr2)
	if err != nil {
		return 0, fmt.Errorf("read flash id: %w", err)
	}
	steps := [][2]uint32{}
	if r.misoDlen != 0 {
		steps = append(steps, [2]uint32{base + r.misoDlen, 23})
	} else {
		steps = append(steps, [2]uint32{base + r.usr1, 23 << 8})
	}
	steps = append(steps, [2]uint32{base + r.usr, 1<<31 | 1<<28}, [2]uint32{base + r.usr2, 7<<28 | 0x9F},
		[2]uint32{base + r.w0, 0}, [2]uint32{base, 1 << 18})
	for _, s := range steps {
		if err := f.writeReg(ctx, s[0], s[1], 0xFFFFFFFF); err != nil {
			return 0, fmt.Errorf("read flash id: %w", err)
		}
	}
	done := false
	for range 10 {
		v, err := f.readReg(ctx, base)
		if err != nil {
			return 0, fmt.Errorf("read flash id: %w", err)
		}
		if v&(1<<18) == 0 {
			done = true
			break
		}
	}
	if !done {
		return 0, withHint(fmt.Errorf("read flash id: the SPI command did not complete: %w", ErrTimeout), "the flash chip does not respond: check the board's power and its flash")
	}
	id, err := f.readReg(ctx, base+r.w0)
	if err != nil {
		return 0, fmt.Errorf("read flash id: %w", err)
	}
	f.writeReg(ctx, base+r.usr, oldUsr, 0xFFFFFFFF)
	f.writeReg(ctx, base+r.usr2, oldUsr2, 0xFFFFFFFF)
	return id & 0xFFFFFF, nil
}

func (f *Flasher) crystal(ctx context.Context) int {
	if f.regs.xtalFixed != 0 {
		return f.regs.xtalFixed
	}
	v, err := f.readReg(ctx, f.regs.uartClkDiv)
	if err != nil {
		return 0
	}
	est := float64(f.baud) * float64(v&0xFFFFF) / 1e6
	if f.chip == firmware.ChipESP8266 {
		est /= 2
	}
	if est > 33 {
		return 40
	}
	return 26
}

// Info reads the chip's identity, flash and security state. In Secure
// Download Mode only what GET_SECURITY_INFO reports is known.
func (f *Flasher) Info(ctx context.Context) (ChipInfo, error) {
	info := f.info
	if f.sdm {
		info.Security.SecureDownloadMode = true
		return info, nil
	}
	rd := func(ctx context.Context, a uint32) (uint32, error) { return f.readReg(ctx, a) }
	// The UART_CLKDIV estimate is only valid at the rate the ROM started
	// at; the divisor scales with the rate, so the product stays right.
	info.CrystalMHz = f.crystal(ctx)
	mac, err := readMAC(ctx, f.chip, f.regs, rd)
	if err != nil {
		return info, fmt.Errorf("read MAC: %w", err)
	}
	info.MAC = mac
	rev, err := readRevision(ctx, f.chip, f.regs, rd)
	if err != nil {
		return info, fmt.Errorf("read chip revision: %w", err)
	}
	info.Revision = rev
	sec, err := readSecurityEfuse(ctx, f.chip, f.regs, rd)
	if err != nil {
		return info, fmt.Errorf("read security eFuses: %w", err)
	}
	if info.Security.Known {
		// GET_SECURITY_INFO flags are authoritative; eFuses add the version.
		sec.Flags = info.Security.Flags
		sec.SecureDownloadMode = info.Security.SecureDownloadMode
		sec.SecureBoot = sec.SecureBoot || info.Security.SecureBoot
	}
	info.Security = sec
	f.info = info
	return info, nil
}
