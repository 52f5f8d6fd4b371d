package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/espdeck/espdeck/symbolize"
)

// Options configures a Monitor. Every field's zero value is a usable
// default (without OnLine the lines are dropped, which only tests want).
type Options struct {
	// Baud is the port speed; default 115200 (ESP-IDF's console default).
	Baud int
	// Symbolizer decodes crash addresses; nil shows crashes undecoded.
	Symbolizer *symbolize.Symbolizer
	// RunningELFSHA256 is the app description's ELF SHA-256 of the firmware
	// on the board (hex, or a prefix of it), when known from elsewhere. A
	// mismatch with the Symbolizer's ELF is reported as a warning line.
	RunningELFSHA256 string
	// OnLine receives every line, in order, on the monitor's goroutine. It
	// must return quickly (hand the line to a channel or a buffered writer).
	OnLine func(Line)
	// Open opens the port; default OpenSerial.
	Open OpenFunc
	// IdleFlush is how long the board may stay silent mid-line before the
	// unfinished line (a prompt) is shown as a Partial line; default 250 ms.
	IdleFlush time.Duration
	// MaxLineLength splits longer lines (binary noise has no newlines);
	// default 4096 bytes.
	MaxLineLength int
	// ResetPulse is how long EN is held low for a reset; default 100 ms.
	ResetPulse time.Duration
	// ReconnectInterval is the pause between attempts to reopen a port that
	// went away (USB unplugged, a board re-enumerating); default 500 ms.
	ReconnectInterval time.Duration
	// MaxHeld bounds the lines kept while paused; older ones are dropped and
	// counted. Default 10000.
	MaxHeld int
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now returns the host time stamped on lines; default time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Baud == 0 {
		o.Baud = 115200
	}
	if o.Open == nil {
		o.Open = OpenSerial
	}
	if o.IdleFlush == 0 {
		o.IdleFlush = 250 * time.Millisecond
	}
	if o.MaxLineLength == 0 {
		o.MaxLineLength = 4096
	}
	if o.ResetPulse == 0 {
		o.ResetPulse = 100 * time.Millisecond
	}
	if o.ReconnectInterval == 0 {
		o.ReconnectInterval = 500 * time.Millisecond
	}
	if o.MaxHeld == 0 {
		o.MaxHeld = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnLine == nil {
		o.OnLine = func(Line) {}
	}
}

// Monitor reads one serial port and turns its output into Lines. Run does the
// reading; the other methods may be called from any goroutine while it runs.
//
// Sharing the port with a flash job on the same board:
//
//	reattach, err := mon.Release(ctx) // the port is closed when this returns
//	if err != nil { … }
//	defer reattach()                  // the monitor reopens it and goes on
//	… flash over the same port …
type Monitor struct {
	name string
	opts Options

	mu       sync.Mutex
	port     Port // nil while closed or released
	running  bool
	paused   bool
	held     []Line
	dropped  int
	holders  int                // flash jobs holding the released port
	release  chan chan struct{} // Release → Run: close the port, then ack
	reattach chan struct{}      // reattach func → Run: reopen
	resetCh  chan struct{}      // ResetIntoApp → Run: the board restarts, forget crash state

	// Owned by the Run goroutine.
	parser      *Parser
	buf         []byte
	cr          bool // a CR ended the buffered text; waiting to see if LF follows
	crFlushed   bool // idle ended a line at its CR: a LF next is the rest of that CR LF
	lastByte    time.Time
	partialSeen bool // the buffered text has been shown as a Partial line
}

// New returns a monitor for the port name (a device path such as
// /dev/ttyUSB0, or whatever opts.Open understands).
func New(name string, opts Options) *Monitor {
	opts.defaults()
	return &Monitor{
		name:     name,
		opts:     opts,
		release:  make(chan chan struct{}),
		reattach: make(chan struct{}, 1),
		resetCh:  make(chan struct{}, 1),
		parser:   NewParser(opts.Symbolizer),
	}
}

// Port returns the port name.
func (m *Monitor) Port() string { return m.name }

// Run opens the port and reads it until ctx ends. A port that cannot be
// opened at the start is an error (*OpenError, with a hint); a port that goes
// away later is reopened every ReconnectInterval until ctx ends. Run returns
// an error wrapping ctx.Err() when cancelled.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("monitor: Run is already running")
	}
	m.running = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.running = false
		m.mu.Unlock()
	}()

	if sym := m.opts.Symbolizer; sym != nil {
		go sym.Preload() // finite; Lookup waits for it if a crash comes first
	}
	port, err := m.opts.Open(ctx, m.name, m.opts.Baud)
	if err != nil {
		return err
	}
	m.setPort(port)
	m.notice(LevelNone, fmt.Sprintf("%s at %d baud", m.name, m.opts.Baud))
	if sym := m.opts.Symbolizer; sym != nil && m.opts.RunningELFSHA256 != "" {
		if err := sym.CheckELFSHA256(m.opts.RunningELFSHA256); err != nil {
			m.notice(LevelWarn, err.Error())
		}
	}

	chunk := make([]byte, 4096)
	for {
		if err := ctx.Err(); err != nil {
			m.closePort()
			m.flushPending(true)
			return fmt.Errorf("monitor %s: %w", m.name, err)
		}
		select {
		case ack := <-m.release:
			m.closePort()
			m.flushPending(true)
			m.notice(LevelNone, "port released for flashing")
			close(ack)
			if err := m.waitReattach(ctx); err != nil {
				return err
			}
			continue
		case <-m.resetCh:
			m.flushPending(true)
			m.parser.crash = false
		default:
		}
		m.deliverHeld()

		port := m.currentPort()
		n, err := port.Read(chunk)
		now := m.opts.Now()
		if n > 0 {
			m.feed(chunk[:n], now)
		} else if err == nil {
			m.idle(now)
		}
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			m.opts.Logger.Warn("serial read failed", "port", m.name, "err", err)
			m.closePort()
			m.flushPending(true)
			m.notice(LevelWarn, fmt.Sprintf("lost %s (%v); waiting for it to come back", m.name, err))
			if err := m.reopen(ctx); err != nil {
				return err
			}
			m.notice(LevelNone, "reconnected to "+m.name)
		}
	}
}

func (m *Monitor) waitReattach(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("monitor %s: %w", m.name, ctx.Err())
		case ack := <-m.release:
			close(ack) // another job borrows the already released port
			continue
		case <-m.reattach:
		}
		m.mu.Lock()
		lent := m.holders > 0
		m.mu.Unlock()
		if !lent {
			break
		}
	}
	if err := m.reopen(ctx); err != nil {
		return err
	}
	m.notice(LevelNone, "port reattached")
	return nil
}

// reopen tries to open the port until it works or ctx ends.
func (m *Monitor) reopen(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		port, err := m.opts.Open(ctx, m.name, m.opts.Baud)
		if err == nil {
			m.setPort(port)
			return nil
		}
		m.opts.Logger.Debug("reopen failed", "port", m.name, "attempt", attempt, "err", err)
		t := time.NewTimer(m.opts.ReconnectInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("monitor %s: %w", m.name, ctx.Err())
		case ack := <-m.release:
			// A flash job wants the port while we wait for it to come back
			// (a board re-enumerating): let it have it.
			t.Stop()
			close(ack)
			m.notice(LevelNone, "port released for flashing")
			return m.waitReattach(ctx)
		case <-t.C:
		}
	}
}

func (m *Monitor) setPort(p Port) {
	m.mu.Lock()
	m.port = p
	m.mu.Unlock()
}

func (m *Monitor) currentPort() Port {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.port
}

func (m *Monitor) closePort() {
	m.mu.Lock()
	p := m.port
	m.port = nil
	m.mu.Unlock()
	if p != nil {
		if err := p.Close(); err != nil {
			m.opts.Logger.Debug("close port", "port", m.name, "err", err)
		}
	}
}

// Release closes the port so that a flash job can open it, and returns a
// function that hands it back (the monitor reopens it and goes on reading).
// It waits until the port is closed. Several jobs may hold the port at once
// (the monitor reopens it when the last one hands it back); calling a
// reattach function more than once is harmless. Release needs Run to be
// running.
func (m *Monitor) Release(ctx context.Context) (reattach func(), err error) {
	m.mu.Lock()
	running := m.running
	if running {
		m.holders++
	}
	m.mu.Unlock()
	if !running {
		return nil, errors.New("monitor: Release needs Run to be running")
	}
	var once sync.Once
	giveBack := func() {
		once.Do(func() {
			m.mu.Lock()
			m.holders--
			m.mu.Unlock()
			select {
			case m.reattach <- struct{}{}:
			default:
			}
		})
	}
	ack := make(chan struct{})
	select {
	case m.release <- ack:
	case <-ctx.Done():
		giveBack()
		return nil, fmt.Errorf("release %s: %w", m.name, ctx.Err())
	}
	select {
	case <-ack:
	case <-ctx.Done():
		// Run will still close the port; give it back at once.
		giveBack()
		return nil, fmt.Errorf("release %s: %w", m.name, ctx.Err())
	}
	return giveBack, nil
}

// ResetIntoApp restarts the board into its application with the usual
// auto-reset circuit: DTR released (GPIO0 high: normal boot) and RTS pulsed
// (EN low, then high). Ports without modem lines give ErrNoModemControl.
func (m *Monitor) ResetIntoApp(ctx context.Context) error {
	p := m.currentPort()
	if p == nil {
		return fmt.Errorf("reset %s: %w", m.name, ErrReleased)
	}
	if err := p.SetDTR(false); err != nil {
		return fmt.Errorf("reset %s: %w", m.name, modemError(err))
	}
	if err := p.SetRTS(true); err != nil {
		return fmt.Errorf("reset %s: %w", m.name, modemError(err))
	}
	t := time.NewTimer(m.opts.ResetPulse)
	select {
	case <-ctx.Done():
		t.Stop()
		p.SetRTS(false) // never leave the chip held in reset
		return fmt.Errorf("reset %s: %w", m.name, ctx.Err())
	case <-t.C:
	}
	if err := p.SetRTS(false); err != nil {
		return fmt.Errorf("reset %s: %w", m.name, modemError(err))
	}
	select {
	case m.resetCh <- struct{}{}:
	default:
	}
	return nil
}

// Write sends p to the board (keys typed into the monitor).
func (m *Monitor) Write(ctx context.Context, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	port := m.currentPort()
	if port == nil {
		return fmt.Errorf("write to %s: %w", m.name, ErrReleased)
	}
	if _, err := port.Write(p); err != nil {
		return fmt.Errorf("write to %s: %w", m.name, err)
	}
	return nil
}

// SetPaused stops (true) or resumes (false) delivering lines. The port is
// still read while paused, so the board never blocks on a full buffer; up to
// MaxHeld lines are kept and delivered on resume.
func (m *Monitor) SetPaused(paused bool) {
	m.mu.Lock()
	m.paused = paused
	m.mu.Unlock()
}

// Paused reports whether delivery is paused.
func (m *Monitor) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.paused
}

// emit delivers a line, or holds it while paused.
func (m *Monitor) emit(l Line) {
	m.mu.Lock()
	if m.paused {
		if l.Partial {
			m.mu.Unlock()
			return
		}
		m.held = append(m.held, l)
		if len(m.held) > m.opts.MaxHeld {
			m.dropped += len(m.held) - m.opts.MaxHeld
			m.held = append(m.held[:0], m.held[len(m.held)-m.opts.MaxHeld:]...)
		}
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.opts.OnLine(l)
}

// deliverHeld hands over what was kept while paused, once resumed.
func (m *Monitor) deliverHeld() {
	m.mu.Lock()
	if m.paused || (len(m.held) == 0 && m.dropped == 0) {
		m.mu.Unlock()
		return
	}
	held, dropped := m.held, m.dropped
	m.held, m.dropped = nil, 0
	m.mu.Unlock()
	if dropped > 0 {
		m.opts.OnLine(m.parser.Notice(LevelWarn, fmt.Sprintf("%d lines dropped while paused", dropped), m.opts.Now()))
	}
	for _, l := range held {
		m.opts.OnLine(l)
	}
}

func (m *Monitor) notice(level Level, text string) {
	m.flushPending(false)
	m.emit(m.parser.Notice(level, text, m.opts.Now()))
}

// feed splits received bytes into lines. LF, CR LF and a lone CR end a line.
func (m *Monitor) feed(p []byte, now time.Time) {
	m.lastByte = now
	for _, c := range p {
		if m.crFlushed {
			// The board (or a loaded host) paused between CR and LF; the
			// line is out already, and the LF must not add an empty one.
			m.crFlushed = false
			if c == '\n' {
				continue
			}
		}
		if m.cr && c != '\n' && c != '\r' {
			m.completeLine(now)
		}
		switch c {
		case '\n':
			m.completeLine(now)
		case '\r':
			m.cr = true
		default:
			if len(m.buf) >= m.opts.MaxLineLength {
				m.completeLine(now)
			}
			m.buf = append(m.buf, c)
		}
	}
}

func (m *Monitor) completeLine(now time.Time) {
	l := m.parser.Parse(string(m.buf), now)
	m.buf, m.cr, m.crFlushed, m.partialSeen = m.buf[:0], false, false, false
	m.emit(l)
}

// idle is called after a read timed out: an unfinished line that has waited
// IdleFlush is shown as a Partial line (prompts have no newline).
func (m *Monitor) idle(now time.Time) {
	if now.Sub(m.lastByte) < m.opts.IdleFlush {
		return
	}
	if m.cr {
		m.completeLine(now)
		m.crFlushed = true
		return
	}
	if len(m.buf) > 0 && !m.partialSeen {
		m.partialSeen = true
		m.emit(m.parser.Partial(string(m.buf), now))
	}
}

// flushPending ends the buffered text: as a complete line when the stream is
// interrupted (close, release), or before a notice that would take its Seq.
func (m *Monitor) flushPending(always bool) {
	if len(m.buf) == 0 && !m.cr {
		return
	}
	if always || m.partialSeen || m.cr {
		m.completeLine(m.opts.Now())
	}
}
