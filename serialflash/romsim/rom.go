// Package romsim is a simulated ESP ROM bootloader for tests and demo mode.
//
// It speaks the serial ROM protocol (protocol-serial-rom.md §2–§5, modelled
// after §10) over any io.ReadWriter — a pseudo-terminal master or a TCP
// connection — with chip profiles (ESP8266, ESP32, S2, S3, C3, C6), a flash
// array with NOR semantics (erase sets FF, programming only clears bits),
// boot banners on reset, optional pacing at the wire's baud rate with
// modelled erase/program times, and fault knobs for robustness tests.
//
// It follows the spec, not the flasher in serialflash, and imports nothing
// of it except the shared SLIP codec.
package romsim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash/slip"
)

// Opcodes the simulator understands (§3.1).
const (
	opFlashBegin     = 0x02
	opFlashData      = 0x03
	opFlashEnd       = 0x04
	opMemBegin       = 0x05
	opMemEnd         = 0x06
	opMemData        = 0x07
	opSync           = 0x08
	opWriteReg       = 0x09
	opReadReg        = 0x0A
	opSPISetParams   = 0x0B
	opSPIAttach      = 0x0D
	opReadFlashSlow  = 0x0E
	opChangeBaud     = 0x0F
	opFlashDeflBegin = 0x10
	opFlashDeflData  = 0x11
	opFlashDeflEnd   = 0x12
	opSPIFlashMD5    = 0x13
	opGetSecurity    = 0x14
)

// ROM error codes (§2.6).
const (
	errInvalidFormat = 0x05
	errFailed        = 0x06
	errChecksum      = 0x07
	errFlashWrite    = 0x08
	errReadLength    = 0x0A
	errDeflate       = 0x0B
	errAdler         = 0x0C
)

// Faults are the fault knobs. Counters are 1-based ("the 2nd reply"); zero
// disables a knob. They can be changed while serving with SetFaults.
type Faults struct {
	// DropReplyOp and DropReplyNth drop the Nth reply to opcode DropReplyOp
	// (and only that one).
	DropReplyOp  byte
	DropReplyNth int
	// DelayOp and Delay hold back every reply to DelayOp by Delay (a slow
	// flash chip, a congested serial server).
	DelayOp byte
	Delay   time.Duration
	// CorruptChecksumNth makes the ROM see a bad checksum on the Nth data
	// block (FLASH_DATA or FLASH_DEFL_DATA) and answer 01 07.
	CorruptChecksumNth int
	// ErrorOp and ErrorCode answer every ErrorOp request with status 01 and
	// this error byte.
	ErrorOp   byte
	ErrorCode byte
	// ErrorDataNth answers the Nth data block (after its checksum passed)
	// with status 01 and ErrorCode, as the ESP32 ROM answered a block the
	// emulated UART had dropped bytes of (01 05).
	ErrorDataNth int
	// FailFlashDataNth answers the Nth data block with 01 08 (flash write error).
	FailFlashDataNth int
	// FailFlashDataFromNth answers the Nth data block and every later one
	// with 01 08 (a flash chip that has given up).
	FailFlashDataFromNth int
	// GarbageBetweenFrames emits boot-log-like text before every reply.
	GarbageBetweenFrames bool
	// StallOp makes the ROM go silent forever on the StallNth request with
	// opcode StallOp (0 = the first one).
	StallOp  byte
	StallNth int
	// RefuseSyncUntil ignores the first N SYNC requests.
	RefuseSyncUntil int
	// NeverSync ignores every SYNC (a chip that is not in download mode
	// behaves like this).
	NeverSync bool
	// WrongMD5 answers SPI_FLASH_MD5 with a wrong digest.
	WrongMD5 bool
	// SecureDownloadMode rejects READ_REG, WRITE_REG, MEM_*, MD5, reads and
	// compressed writes as unsupported, as a chip in Secure Download Mode does.
	SecureDownloadMode bool
	// LineNoise puts random bytes on the line every few milliseconds, in
	// every state (a floating RX pin, a bad ground).
	LineNoise bool
	// UnterminatedFrame makes the ROM answer the first SYNC with the start
	// of a frame that never ends: a C0 followed by an endless stream of
	// bytes without another C0.
	UnterminatedFrame bool
	// MaxReliableBaud drops every reply while the ROM's UART runs above
	// this rate, as cheap USB-UART bridges do above 230400 Bd.
	MaxReliableBaud int
}

// Security are the security-related eFuse states reported by
// GET_SECURITY_INFO and the eFuse registers.
type Security struct {
	SecureBoot      bool
	FlashEncryption bool
	JTAGDisabled    bool
}

// Config configures a simulated ROM. The zero value is a fast, fault-free
// ROM in download mode.
type Config struct {
	// Chip selects the profile for the helpers StartPTY and StartTCP
	// (firmware.ChipESP32 is the zero value).
	Chip firmware.Chip
	// FlashImage is copied to flash at address 0 on start.
	FlashImage []byte
	// AppLog is printed after the boot banner when the chip boots normally
	// (reset without download strapping), as a running app would print it.
	AppLog []byte
	// ChattyApp makes the running app print a log line every 2–150 ms
	// for as long as it runs (the app of a board left in normal boot).
	ChattyApp bool
	// StartInApp makes the chip start as if powered on without download
	// strapping: it prints BannerNormal and AppLog and ignores SLIP until a
	// reset into download mode.
	StartInApp bool
	// ResetOnOpen (StartPTY only) resets the chip into download mode each
	// time a host opens the pty, as a board with a working auto-reset
	// circuit does when a flasher connects. For trying espdeck by hand;
	// tests leave it off and drive the lines themselves.
	ResetOnOpen bool
	// Pace delivers bytes no faster than the current baud rate allows
	// (10 bits per byte), in both directions.
	Pace bool
	// HostBaud reports the rate the host has configured on its side of the
	// line (a pty master reads it with TCGETS2), or 0 when unknown. When
	// it differs from the ROM's UART rate by more than 5 % the bytes are
	// garbled, as on a real wire.
	HostBaud func() int
	// EraseSectorTime and ProgramByteTime model the flash chip: the ROM's
	// replies to BEGIN (erase) and DATA (program) are delayed accordingly.
	EraseSectorTime time.Duration
	ProgramByteTime time.Duration
	// StrapDelay is how long after EN rises the strapping pins are sampled
	// (the RC delay on a dev board's EN line). Default 10 ms.
	StrapDelay time.Duration
	// Security sets the security eFuses.
	Security Security
	Faults   Faults
	// Logger gets one debug line per command; nil discards.
	Logger *slog.Logger

	// onHangUp (ResetOnOpen only) is told when the simulator has seen the
	// host close the port, so a test knows the next open is a new session.
	onHangUp func()
}

// LogEntry is one request the simulator received.
type LogEntry struct {
	Time time.Time
	Op   byte
	// Data is the request payload (copied; at most 64 bytes kept).
	Data []byte
	// Status is the error byte answered (0 = success); -1 when not answered.
	Status int
}

// LineEvent is one change of the modem control lines forwarded by SetLines.
type LineEvent struct {
	DTR, RTS bool
}

type state int

const (
	stateDownload state = iota // waiting for SLIP commands
	stateApp                   // running the app: SLIP ignored
	stateReset                 // EN held low: silent
	stateStalled               // stall fault fired
)

// ROM is one simulated chip. Its methods are safe for concurrent use;
// Serve must be called at most once at a time.
type ROM struct {
	p   Profile
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	faults   Faults
	flash    []byte
	regs     map[uint32]uint32
	st       state
	attached bool
	chipSize uint32
	romBaud  int
	// baudLocked says CHANGE_BAUDRATE set the rate; SYNC no longer
	// auto-bauds until the next reset.
	baudLocked bool
	dtr, rts   bool
	bootAt     time.Time // EN rose: boot when the strap delay has passed
	lines      []LineEvent
	cmdLog     []LogEntry
	lastOp     byte
	lastValue  uint32
	counts     map[byte]int
	syncs      int
	dataN      int
	baudLog    []int
	poke       chan struct{}

	// current write operation (FLASH_BEGIN / FLASH_DEFL_BEGIN)
	wr *writeOp
	// endless says an unterminated frame is being sent (UnterminatedFrame).
	endless bool
	// inflateBuf is the ROM's inflate output window; it keeps its bytes
	// from one compressed write to the next, as RAM does.
	inflateBuf []byte
}

// New returns a simulated ROM for profile p.
func New(p Profile, cfg Config) *ROM {
	if cfg.StrapDelay == 0 {
		cfg.StrapDelay = 10 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &ROM{p: p, cfg: cfg, log: log, faults: cfg.Faults,
		flash: bytes.Repeat([]byte{0xFF}, int(p.FlashSize)), regs: map[uint32]uint32{},
		chipSize: 2 << 20, romBaud: 115200, counts: map[byte]int{}, poke: make(chan struct{}, 1),
		inflateBuf: staleRAM()}
	if p.Chip == firmware.ChipESP8266 {
		r.chipSize = p.FlashSize
	}
	copy(r.flash, cfg.FlashImage)
	for k, v := range p.Registers {
		r.regs[k] = v
	}
	r.applySecurity()
	if cfg.StartInApp {
		r.st = stateApp
	}
	return r
}

// Profile returns the chip profile.
func (r *ROM) Profile() Profile { return r.p }

// Flash returns a copy of the whole flash array.
func (r *ROM) Flash() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.flash...)
}

// LoadFlash copies data into flash at addr (no NOR semantics: a preload).
func (r *ROM) LoadFlash(addr uint32, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if uint64(addr)+uint64(len(data)) > uint64(len(r.flash)) {
		return fmt.Errorf("romsim: %d bytes at 0x%x do not fit the %d-byte flash", len(data), addr, len(r.flash))
	}
	copy(r.flash[addr:], data)
	return nil
}

// Commands returns the command log.
func (r *ROM) Commands() []LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogEntry(nil), r.cmdLog...)
}

// Lines returns every modem-line change received through SetLines.
func (r *ROM) Lines() []LineEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LineEvent(nil), r.lines...)
}

// Baud returns the ROM UART's current rate.
func (r *ROM) Baud() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.romBaud
}

// BaudChanges returns every rate CHANGE_BAUDRATE switched to.
func (r *ROM) BaudChanges() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.baudLog...)
}

// InDownloadMode reports whether the ROM loader is waiting for commands.
func (r *ROM) InDownloadMode() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st == stateDownload
}

// SetFaults replaces the fault knobs.
func (r *ROM) SetFaults(f Faults) {
	r.mu.Lock()
	r.faults = f
	r.mu.Unlock()
}

// SetLines forwards the host's DTR and RTS (true = asserted) through the
// usual dev-board auto-reset circuit: EN is low only while RTS is asserted
// and DTR is not; IO0/IO9 is low only while DTR is asserted and RTS is not.
// When EN rises the chip boots after StrapDelay, into download mode if the
// boot pin is low at that moment.
func (r *ROM) SetLines(dtr, rts bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wasEN := !(r.rts && !r.dtr)
	r.dtr, r.rts = dtr, rts
	r.lines = append(r.lines, LineEvent{DTR: dtr, RTS: rts})
	en := !(rts && !dtr)
	switch {
	case wasEN && !en:
		r.st = stateReset
		r.bootAt = time.Time{}
	case !wasEN && en:
		r.bootAt = time.Now().Add(r.cfg.StrapDelay)
	}
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Reset reboots the chip now, into download mode or into the app.
func (r *ROM) Reset(download bool) {
	r.mu.Lock()
	r.st = stateReset
	if download {
		r.bootAt = time.Now().Add(-time.Second) // sample: forced download
		r.dtr, r.rts = true, false
	} else {
		r.bootAt = time.Now().Add(-time.Second)
		r.dtr, r.rts = false, false
	}
	r.mu.Unlock()
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

func (r *ROM) applySecurity() {
	s := r.cfg.Security
	switch r.p.Chip {
	case firmware.ChipESP32:
		if s.FlashEncryption {
			r.regs[0x3FF5A000] |= 1 << 20
		}
		if s.SecureBoot {
			r.regs[0x3FF5A018] |= 1 << 5
		}
		if s.JTAGDisabled {
			r.regs[0x3FF5A018] |= 1 << 6
		}
	case firmware.ChipESP8266:
	default:
		base := efuseBase(r.p)
		if s.FlashEncryption {
			r.regs[base+0x34] |= 1 << 18
		}
		if s.SecureBoot {
			r.regs[base+0x38] |= 1 << 20
		}
		if s.JTAGDisabled {
			r.regs[base+0x30] |= 1 << 19
		}
		if r.faults.SecureDownloadMode {
			r.regs[base+0x3C] |= 1 << 5
		}
	}
}

// efuseBase derives EFUSE_BASE from the MAC word the profile holds at +0x44.
func efuseBase(p Profile) uint32 {
	for _, b := range []uint32{0x3F41A000, 0x60007000, 0x60008800, 0x600B0800} {
		if _, ok := p.Registers[b+0x44]; ok {
			return b
		}
	}
	return 0
}

// Serve runs the ROM on rw until ctx ends or rw fails. The caller closes rw
// after Serve returns (that also ends Serve's reader goroutine).
func (r *ROM) Serve(ctx context.Context, rw io.ReadWriter) error {
	chunks := make(chan chunk, 16)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{b: append([]byte(nil), buf[:n]...), at: time.Now()}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	s := &session{r: r, w: rw, ctx: ctx}
	defer s.stopInflater()
	// Power-on: print the banner of the mode the chip starts in.
	r.mu.Lock()
	st, pending := r.st, !r.bootAt.IsZero()
	r.mu.Unlock()
	switch {
	case pending: // a reset is under way: its boot prints the banner
	case st == stateApp:
		s.bootBanner(false)
	case st == stateDownload:
		s.bootBanner(true)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	emit := time.NewTimer(time.Millisecond)
	defer emit.Stop()
	for {
		r.mu.Lock()
		bootAt := r.bootAt
		r.mu.Unlock()
		if !bootAt.IsZero() {
			d := time.Until(bootAt)
			if d <= 0 {
				s.boot()
				continue
			}
			timer.Reset(d)
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-r.poke:
		case <-timer.C:
		case <-emit.C:
			emit.Reset(s.emit())
		case c := <-chunks:
			if err := s.receive(c); err != nil {
				return err
			}
		}
	}
}

// chunk is bytes from the host and when they were read.
type chunk struct {
	b  []byte
	at time.Time
}

// catchUp moves the simulated clock to now when the session was idle (a
// boot banner, the first reply after a pause); small lags from sleep
// overshoot are kept so they are paid back.
func (s *session) catchUp() {
	if now := time.Now(); now.Sub(s.vt) > 5*time.Millisecond {
		s.vt = now
	}
}

// session is the state of one Serve call that only its goroutine touches.
type session struct {
	r   *ROM
	w   io.Writer
	ctx context.Context
	dec slip.Decoder
	// vt is the simulated time: every modelled delay (bytes on the wire,
	// flash busy time) advances it and the session sleeps until it, so
	// sleep overshoot does not add up over a transfer.
	vt  time.Time
	inf *inflater
	// rnd drives the unasked-for output (log line spacing, noise bytes).
	rnd uint32
	// lines counts the chatty app's log lines.
	lines uint32
}

func (s *session) rate() int {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return s.r.romBaud
}

// mismatched reports whether the host's configured rate differs from the
// ROM's by more than 5 % (bytes then arrive as garbage on both sides).
func (s *session) mismatched() bool {
	if s.r.cfg.HostBaud == nil {
		return false
	}
	h := s.r.cfg.HostBaud()
	if h <= 0 {
		return false
	}
	rom := s.rate()
	d := h - rom
	if d < 0 {
		d = -d
	}
	return d*20 > rom
}

// sleepUntil waits for t or the end of the session.
func (s *session) sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-s.ctx.Done():
	}
}

func (s *session) wireTime(n int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(s.rate())
}

// send writes p to the host, paced at the wire rate when pacing is on.
func (s *session) send(p []byte) {
	if s.mismatched() {
		g := make([]byte, len(p))
		for i := range g {
			g[i] = 0xF8 // what a too-fast byte looks like to a slower receiver
		}
		p = g
	}
	if !s.r.cfg.Pace {
		s.w.Write(p)
		return
	}
	const chunk = 32
	s.catchUp()
	for len(p) > 0 {
		n := min(chunk, len(p))
		s.w.Write(p[:n])
		s.vt = s.vt.Add(s.wireTime(n))
		s.sleepUntil(s.vt)
		p = p[n:]
	}
}

func (s *session) bootBanner(download bool) {
	if download {
		s.send([]byte(s.r.p.BannerDownload))
		return
	}
	s.send([]byte(s.r.p.BannerNormal))
	if len(s.r.cfg.AppLog) > 0 {
		s.send(s.r.cfg.AppLog)
	}
}

// boot runs when EN has been high for the strap delay.
func (s *session) boot() {
	r := s.r
	r.mu.Lock()
	download := r.dtr && !r.rts
	r.bootAt = time.Time{}
	r.attached = false
	r.romBaud = 115200
	r.baudLocked = false
	r.wr = nil
	if r.p.Chip != firmware.ChipESP8266 {
		r.chipSize = 2 << 20
	}
	if download {
		r.st = stateDownload
	} else {
		r.st = stateApp
	}
	r.mu.Unlock()
	s.stopInflater()
	s.dec.Reset()
	s.bootBanner(download)
}

// receive handles bytes from the host.
func (s *session) receive(c chunk) error {
	if s.r.cfg.Pace {
		// The bytes started arriving when the reader got them, not when
		// this goroutine got round to them.
		if s.vt.Before(c.at) {
			s.vt = c.at
		}
		s.vt = s.vt.Add(s.wireTime(len(c.b)))
		s.sleepUntil(s.vt)
	}
	s.r.mu.Lock()
	st := s.r.st
	s.r.mu.Unlock()
	if st != stateDownload {
		return nil
	}
	garbled := s.mismatched()
	var frames [][]byte
	s.dec.Feed(c.b, func(f []byte, err error) {
		if err == nil {
			frames = append(frames, append([]byte(nil), f...))
		}
	})
	for _, f := range frames {
		if garbled && !isSync(f) {
			continue // framing errors at the wrong rate; SYNC is auto-bauded
		}
		s.handle(f)
		s.r.mu.Lock()
		st := s.r.st
		s.r.mu.Unlock()
		if st != stateDownload {
			break
		}
	}
	return nil
}

// emit sends what the line carries without being asked — app log lines,
// noise, the rest of an endless frame — and returns when to come back.
func (s *session) emit() time.Duration {
	r := s.r
	r.mu.Lock()
	st, f := r.st, r.faults
	endless := r.endless
	r.mu.Unlock()
	s.rnd = s.rnd*1664525 + 1013904223
	x := s.rnd >> 8
	next := 20 * time.Millisecond // idle: look again for a knob or state change
	if f.LineNoise {
		noise := make([]byte, 1+x%7)
		for i := range noise {
			s.rnd = s.rnd*1664525 + 1013904223
			noise[i] = byte(s.rnd >> 24)
		}
		s.send(noise)
		next = time.Duration(1+x%5) * time.Millisecond
	}
	if endless {
		s.send(bytes.Repeat([]byte{0x55, 0xDB, 0xDC, 0x01}, 16))
		next = 2 * time.Millisecond
	}
	if r.cfg.ChattyApp && st == stateApp {
		s.lines++
		s.send(fmt.Appendf(nil, "I (%d) app_main: sensor reading %d, heap %d\r\n", s.lines*37, x%1000, 180000+x%5000))
		next = min(next, time.Duration(2+x%149)*time.Millisecond)
		if !f.LineNoise && !endless {
			next = time.Duration(2+x%149) * time.Millisecond
		}
	}
	return next
}

func isSync(f []byte) bool {
	return len(f) == 8+36 && f[0] == 0 && f[1] == opSync && bytes.Equal(f[8:12], []byte{0x07, 0x07, 0x12, 0x20})
}

// reply sends one response: value, output, then the status bytes.
func (s *session) reply(op byte, value uint32, out []byte, errCode byte) {
	r := s.r
	r.mu.Lock()
	f := r.faults
	r.counts[op]++
	n := r.counts[op]
	if len(r.cmdLog) > 0 {
		r.cmdLog[len(r.cmdLog)-1].Status = int(errCode)
	}
	if errCode == 0 || !(r.p.UnsupportedEchoesLast && errCode == errInvalidFormat) {
		r.lastOp, r.lastValue = op, value
	}
	rate := r.romBaud
	r.mu.Unlock()
	if f.DropReplyOp == op && f.DropReplyNth == n {
		return
	}
	if f.MaxReliableBaud > 0 && rate > f.MaxReliableBaud {
		return
	}
	if f.DelayOp == op && f.Delay > 0 {
		s.sleepUntil(time.Now().Add(f.Delay))
	}
	status := make([]byte, s.r.p.StatusLen)
	if errCode != 0 {
		status[0], status[1] = 1, errCode
	}
	pkt := make([]byte, 8, 8+len(out)+len(status))
	pkt[0], pkt[1] = 1, op
	binary.LittleEndian.PutUint16(pkt[2:], uint16(len(out)+len(status)))
	binary.LittleEndian.PutUint32(pkt[4:], value)
	pkt = append(append(pkt, out...), status...)
	var wire []byte
	if f.GarbageBetweenFrames {
		wire = append(wire, "\r\nets Jun  8 2016 00:22:57\r\nrst:0x10 (RTCWDT_RTC_RESET)\r\n"...)
	}
	s.send(slip.Encode(wire, pkt))
}

// unsupported answers a command the ROM does not implement (or refuses in
// Secure Download Mode) with status 01 05.
func (s *session) unsupported(op byte) {
	if s.r.p.UnsupportedEchoesLast {
		s.r.mu.Lock()
		lop, lval := s.r.lastOp, s.r.lastValue
		s.r.mu.Unlock()
		if lop != 0 {
			s.reply(lop, lval, nil, errInvalidFormat)
			return
		}
	}
	s.reply(op, 0, nil, errInvalidFormat)
}

func sdmAllowed(op byte) bool {
	switch op {
	case opSync, opSPIAttach, opSPISetParams, opChangeBaud, opFlashBegin, opFlashData, opFlashEnd, opGetSecurity:
		return true
	}
	return false
}

// handle processes one decoded frame.
func (s *session) handle(f []byte) {
	r := s.r
	if len(f) < 8 || f[0] != 0 {
		if len(f) >= 2 {
			s.reply(f[1], 0, nil, errInvalidFormat)
		}
		return
	}
	op := f[1]
	size := int(binary.LittleEndian.Uint16(f[2:]))
	chk := binary.LittleEndian.Uint32(f[4:])
	data := f[8:]
	r.mu.Lock()
	keep := data
	if len(keep) > 64 {
		keep = keep[:64]
	}
	r.cmdLog = append(r.cmdLog, LogEntry{Time: time.Now(), Op: op, Data: append([]byte(nil), keep...), Status: -1})
	flt := r.faults
	r.mu.Unlock()
	r.log.Debug("romsim request", "op", fmt.Sprintf("0x%02x", op), "len", len(data))
	if size != len(data) {
		s.reply(op, 0, nil, errInvalidFormat)
		return
	}
	if flt.StallOp == op && op != 0 {
		if s.stallCount(op) >= max(flt.StallNth, 1) {
			r.mu.Lock()
			r.st = stateStalled
			r.mu.Unlock()
			return
		}
	}
	if op == opSync {
		s.sync(data)
		return
	}
	if !r.p.Supports(op) || (flt.SecureDownloadMode && !sdmAllowed(op)) {
		s.unsupported(op)
		return
	}
	if flt.ErrorOp == op && flt.ErrorCode != 0 {
		s.reply(op, 0, nil, flt.ErrorCode)
		return
	}
	switch op {
	case opReadReg:
		if len(data) < 4 {
			s.reply(op, 0, nil, errInvalidFormat)
			return
		}
		s.reply(op, s.readReg(binary.LittleEndian.Uint32(data)), nil, 0)
	case opWriteReg:
		if len(data) == 0 || len(data)%16 != 0 {
			s.reply(op, 0, nil, errInvalidFormat)
			return
		}
		for i := 0; i < len(data); i += 16 {
			e := data[i:]
			s.writeReg(binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[8:]))
		}
		s.reply(op, 0, nil, 0)
	case opSPIAttach:
		if len(data) != 8 {
			s.reply(op, 0, nil, errInvalidFormat)
			return
		}
		r.mu.Lock()
		r.attached = true
		r.mu.Unlock()
		s.reply(op, 0, nil, 0)
	case opSPISetParams:
		if len(data) != 24 {
			s.reply(op, 0, nil, errInvalidFormat)
			return
		}
		r.mu.Lock()
		r.chipSize = binary.LittleEndian.Uint32(data[4:])
		r.mu.Unlock()
		s.reply(op, 0, nil, 0)
	case opChangeBaud:
		if len(data) != 8 {
			s.reply(op, 0, nil, errInvalidFormat)
			return
		}
		nb := int(binary.LittleEndian.Uint32(data))
		if nb <= 0 {
			s.reply(op, 0, nil, errFailed)
			return
		}
		s.reply(op, 0, nil, 0) // at the old rate
		r.mu.Lock()
		r.romBaud = nb
		r.baudLocked = true
		r.baudLog = append(r.baudLog, nb)
		r.mu.Unlock()
	case opGetSecurity:
		s.securityInfo()
	case opFlashBegin, opFlashDeflBegin:
		s.begin(op, data)
	case opFlashData, opFlashDeflData:
		s.data(op, chk, data)
	case opFlashEnd, opFlashDeflEnd:
		s.end(op, data)
	case opSPIFlashMD5:
		s.md5(data)
	case opReadFlashSlow:
		s.readSlow(data)
	case opMemBegin, opMemData:
		s.reply(op, 0, nil, 0)
	case opMemEnd:
		s.reply(op, 0, nil, 0)
		if len(data) >= 4 && binary.LittleEndian.Uint32(data) == 0 {
			r.mu.Lock()
			r.st = stateApp
			r.mu.Unlock()
		}
	default:
		s.unsupported(op)
	}
}

func (s *session) stallCount(op byte) int {
	n := 0
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, e := range s.r.cmdLog {
		if e.Op == op {
			n++
		}
	}
	return n
}

func (s *session) sync(data []byte) {
	want := append([]byte{0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)
	if !bytes.Equal(data, want) {
		return
	}
	r := s.r
	r.mu.Lock()
	r.syncs++
	n := r.syncs
	f := r.faults
	// The ROM's auto-baud locks onto the 0x55 pattern at whatever rate the
	// host uses. Over TCP there is no host rate: the rate CHANGE_BAUDRATE
	// set holds until the next reset.
	// After CHANGE_BAUDRATE the UART keeps the set rate until the next
	// reset: a host that goes back to 115200 without resetting the chip
	// is not heard (as seen on the ESP32 ROM, issue #11 point 3).
	if r.cfg.HostBaud != nil && !r.baudLocked {
		if h := r.cfg.HostBaud(); h > 0 {
			r.romBaud = h
		}
	}
	r.mu.Unlock()
	if f.UnterminatedFrame {
		r.mu.Lock()
		r.endless = true
		r.mu.Unlock()
		s.send([]byte{0xC0, 0x01, 0x08, 0x04, 0x00})
		return
	}
	if f.NeverSync || n <= f.RefuseSyncUntil {
		return
	}
	for range 8 {
		s.reply(opSync, 0x20120707, nil, 0)
	}
}

func (s *session) readReg(addr uint32) uint32 {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	switch addr {
	case 0x40001000:
		return r.p.Magic
	case r.p.UARTClkDiv:
		if r.romBaud > 0 {
			return r.p.ClkDivHz / uint32(r.romBaud)
		}
	}
	return r.regs[addr]
}

// writeReg applies one WRITE_REG entry and runs an SPI user command when
// the CMD register's USR bit is set (§3.6).
func (s *session) writeReg(addr, value, mask uint32) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs[addr] = r.regs[addr]&^mask | value&mask
	base := r.p.SPIBase
	if addr != base || r.regs[addr]&(1<<18) == 0 {
		return
	}
	var out uint32
	usr2 := r.regs[base+r.p.USR2]
	switch usr2 & 0xFF {
	case 0x9F:
		out = r.p.FlashID
	case 0x05, 0x35, 0x15:
		out = 0
	case 0x5A:
		if r.regs[base+0x04] == 0 {
			out = 0x50444653
		}
	default:
		out = 0
	}
	r.regs[base+r.p.W0] = out
	r.regs[addr] &^= 1 << 18
}

func (s *session) securityInfo() {
	r := s.r
	n := r.p.SecurityInfoLen
	if n == 0 {
		s.unsupported(opGetSecurity)
		return
	}
	out := make([]byte, n)
	var flags uint32
	r.mu.Lock()
	sec, sdm := r.cfg.Security, r.faults.SecureDownloadMode
	r.mu.Unlock()
	if sec.SecureBoot {
		flags |= 1
	}
	if sdm {
		flags |= 1 << 2
	}
	if sec.JTAGDisabled {
		flags |= 1 << 7
	}
	binary.LittleEndian.PutUint32(out, flags)
	if sec.FlashEncryption {
		out[4] = 1
	}
	if n >= 20 {
		binary.LittleEndian.PutUint32(out[12:], uint32(r.p.Chip))
	}
	s.reply(opGetSecurity, 0, out, 0)
}
