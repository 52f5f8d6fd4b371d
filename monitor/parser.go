package monitor

import (
	"strings"
	"time"

	"github.com/espdeck/espdeck/symbolize"
)

// Parser turns raw lines into Line values. It is stateful because a crash
// report spans many lines, so feed it every line of one stream in order and
// use one Parser per stream. Not safe for concurrent use.
type Parser struct {
	sym      *symbolize.Symbolizer // nil: nothing is decoded
	extract  symbolize.Extractor
	crash    bool // inside a crash block
	crashLen int
	seq      uint64
}

// maxCrashLines bounds a crash block so that a missed end marker does not
// mark the rest of the session as a crash.
const maxCrashLines = 400

// NewParser returns a parser that decodes code addresses with sym (nil: no
// decoding, crash blocks are still recognised).
func NewParser(sym *symbolize.Symbolizer) *Parser { return &Parser{sym: sym} }

// Parse parses one complete line (without its line ending) received at now.
func (p *Parser) Parse(raw string, now time.Time) Line {
	p.seq++
	l := Line{Seq: p.seq, Time: now, Kind: KindDevice, Raw: raw, Text: Clean(raw)}
	parseFormat(&l)
	p.classifyCrash(&l)
	p.decode(&l)
	p.checkSHA(&l)
	return l
}

// Partial parses an unterminated line shown early (a prompt); it does not
// advance the crash state. The complete line, parsed later with Parse, gets
// the same Seq.
func (p *Parser) Partial(raw string, now time.Time) Line {
	l := Line{Seq: p.seq + 1, Partial: true, Time: now, Kind: KindDevice, Raw: raw, Text: Clean(raw)}
	parseFormat(&l)
	return l
}

// Notice makes a line said by the monitor itself.
func (p *Parser) Notice(level Level, text string, now time.Time) Line {
	p.seq++
	return Line{Seq: p.seq, Time: now, Kind: KindNotice, Raw: text, Text: text, Message: text, Level: level, tagAt: -1}
}

// crashStarts are the headlines of crash reports (ESP-IDF on Xtensa and
// RISC-V, newlib, Arduino-ESP32, ESP8266 Arduino core and SDKs).
var crashStarts = []string{
	"Guru Meditation Error",
	"abort() was called",
	"assert failed:",
	"assertion \"",
	"***ERROR*** A stack overflow in task",
	"Stack smashing protect failure",
	"CORRUPT HEAP:",
	"Brownout detector was triggered",
	"Exception (",
	"Fatal exception",
	"Soft WDT reset",
	"User exception (panic/abort/assert)",
	cutHere,
	"Panic ",
	"panic'ed",
}

const cutHere = "--------------- CUT HERE FOR EXCEPTION DECODER ---------------"

// crashBodies are lines that belong to a crash even when its headline was
// missed (the monitor attached mid-crash, a task watchdog backtrace).
var crashBodies = []string{
	"Backtrace:", "register dump:", "Stack memory:", ">>>stack>>>", "<<<stack<<<",
	"epc1=", "EXCVADDR", "MEPC ", "Debug exception reason:",
}

func (p *Parser) classifyCrash(l *Line) {
	t := strings.TrimSpace(l.Text)
	if p.crash && strings.HasPrefix(t, cutHere) {
		// The ESP8266 core frames its dump with the same line at both ends.
		l.Crash, p.crash = CrashBody, false
		return
	}
	for _, s := range crashStarts {
		if strings.HasPrefix(t, s) || (s == "panic'ed" && strings.Contains(t, s)) {
			p.crash, p.crashLen = true, 0
			l.Crash = CrashStart
			if l.Level == LevelNone {
				l.Level = LevelError
			}
			return
		}
	}
	if p.crash {
		// A normal log line or the ROM's boot banner means the board moved on.
		if l.Format == FormatIDF || l.Format == FormatArduino || strings.HasPrefix(t, "ets ") || strings.HasPrefix(t, "rst:") {
			p.crash = false
		} else {
			p.crashLen++
			l.Crash = CrashBody
			if strings.HasPrefix(t, "Rebooting...") || p.crashLen >= maxCrashLines {
				p.crash = false
			}
			return
		}
	}
	for _, s := range crashBodies {
		if strings.Contains(t, s) {
			l.Crash = CrashBody
			p.crash, p.crashLen = true, 0
			return
		}
	}
}

func (p *Parser) decode(l *Line) {
	refs := p.extract.Line(l.Text)
	if p.sym == nil || len(refs) == 0 {
		return
	}
	for _, r := range refs {
		if !p.sym.InCode(r.Addr) {
			continue // stack pointers, data, ROM: left alone
		}
		l.Decoded = append(l.Decoded, Decoded{Ref: r, Frames: p.sym.Lookup(r.Addr)})
	}
	if len(l.Decoded) > 0 && l.Crash == CrashNone {
		l.Crash = CrashBody
	}
}

// checkSHA compares the firmware's "ELF file SHA256:" boot line (ESP-IDF
// prints it at start-up and in panics) with the ELF used for decoding.
func (p *Parser) checkSHA(l *Line) {
	if p.sym == nil {
		return
	}
	_, after, ok := strings.Cut(l.Text, "ELF file SHA256:")
	if !ok {
		return
	}
	got := strings.TrimSpace(after)
	if strings.Trim(got, "0.") == "" {
		return // all zeros: the panic handler could not read it
	}
	if err := p.sym.CheckELFSHA256(got); err != nil {
		l.Warning = err.Error()
	}
}
