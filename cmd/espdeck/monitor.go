package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/symbolize"
)

const monitorUsage = `espdeck monitor --port PORT [--baud 115200] [--elf APP.elf] [--filter F] [--log FILE] [--json]

Shows what the board prints, with ESP-IDF/Arduino log levels coloured
(E red, W yellow, I green, D/V faint) and the tag in bold. With --elf, the
code addresses of a crash (Backtrace, register dumps, RISC-V MEPC/RA and
stack memory, ESP8266 epc1=) are decoded under it, and a warning appears when
the board reports an ELF SHA-256 that differs from the ELF's.

Keys (when standard input is a terminal):
  Ctrl+R  reset the board into its app (DTR/RTS)
  Ctrl+P  pause / resume the output (the port is still read)
  Ctrl+L  clear the screen
  Ctrl+]  or Ctrl+C  quit
Other keys are sent to the board (Enter as CR LF).

--filter takes levels and tags, comma separated: "W" (warnings and errors),
"wifi" (only that tag), "wifi:D,E" (wifi down to debug, errors elsewhere).
Crash reports always show. --log FILE keeps a plain-text copy of everything
received, with host timestamps (for this command it is a transcript, not the
diagnostic log).

Examples:
  espdeck monitor --port /dev/ttyUSB0 --elf build/app.elf
  espdeck monitor /dev/ttyACM0 --filter W --timestamps
  espdeck monitor --port /dev/ttyUSB0 --reset --until "Returned from app_main" --duration 30s
  espdeck monitor --port /dev/ttyUSB0 --json | jq 'select(.level=="E")'

Exit codes: 0 when quit (key, --duration, --until matched), 4 when the port
does not exist, 10 when permission is denied or the port is busy, 7 when
--until was not seen before --duration ran out, 130 on Ctrl-C signal.`

// Keys of the monitor (control characters as a raw terminal delivers them).
const (
	keyReset = 0x12 // Ctrl+R
	keyPause = 0x10 // Ctrl+P
	keyClear = 0x0c // Ctrl+L
	keyQuit  = 0x1d // Ctrl+]
	keyIntr  = 0x03 // Ctrl+C (raw mode: no signal)
)

func runMonitor(c *cli, args []string) int {
	fs, cm := c.newFlags("monitor", monitorUsage)
	fs.Lookup("log").Usage = "keep a plain-text transcript of the session (with host timestamps) in `FILE`"
	port := fs.String("port", c.getenv("ESPDECK_PORT"), "serial `PORT` or socket://HOST:PORT (default $ESPDECK_PORT)")
	baud := fs.Int("baud", 115200, "the app's console baud rate")
	elfPath := fs.String("elf", "", "decode crashes with this application `ELF`")
	filterSpec := fs.String("filter", "", "show only these tags/levels, e.g. W or wifi,E")
	timestamps := fs.Bool("timestamps", false, "prefix lines with the host time")
	reset := fs.Bool("reset", false, "reset the board into its app when the monitor starts")
	duration := fs.Duration("duration", 0, "stop after this long (for scripts)")
	until := fs.String("until", "", "stop when a line matches this `REGEXP` (for scripts)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	rep := c.reporter(cm, "")
	if *port == "" && len(pos) == 1 {
		*port = pos[0]
	} else if len(pos) > 0 {
		return rep.finish(&failure{code: exitUsage, name: "usage", message: fmt.Sprintf("unexpected arguments %q", pos), hint: "espdeck monitor --port PORT"}, nil)
	}
	if *port == "" {
		return rep.finish(&failure{code: exitUsage, name: "usage", message: "monitor needs a serial port: --port /dev/ttyUSB0",
			hint: "'espdeck list' shows the serial ports; ESPDECK_PORT sets a default"}, nil)
	}
	rep = c.reporter(cm, *port)
	filter, err := monitor.ParseFilter(*filterSpec)
	if err != nil {
		return rep.finish(&failure{code: exitUsage, name: "usage", message: "--filter: " + err.Error()}, nil)
	}
	var untilRE *regexp.Regexp
	if *until != "" {
		if untilRE, err = regexp.Compile(*until); err != nil {
			return rep.finish(&failure{code: exitUsage, name: "usage", message: fmt.Sprintf("--until %q is not a regular expression: %v", *until, err)}, nil)
		}
	}
	if *baud <= 0 {
		return rep.finish(&failure{code: exitUsage, name: "usage", message: fmt.Sprintf("--baud %d: want a positive rate such as 115200", *baud)}, nil)
	}
	// --log is this command's transcript; diagnostics go to stderr.
	logCm := *cm
	logCm.logFile = ""
	log, closeLog, err := c.logger(&logCm)
	if err != nil {
		return rep.finish(&failure{code: exitUsage, name: "usage", message: err.Error()}, nil)
	}
	defer closeLog()

	var sym *symbolize.Symbolizer
	if *elfPath != "" {
		if sym, err = symbolize.Open(*elfPath); err != nil {
			hint := "pass the unstripped .elf from the build directory, or leave out --elf"
			if e := (*symbolize.ELFError)(nil); errors.As(err, &e) {
				hint = e.Hint() + ", or leave out --elf"
			}
			return rep.finish(&failure{code: exitUsage, name: "bad_elf", message: err.Error(), hint: hint}, nil)
		}
		if err := sym.DebugInfoErr(); err != nil {
			rep.warn(err.Error())
		}
	}
	var transcript io.Writer
	if cm.logFile != "" {
		f, err := os.OpenFile(cm.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return rep.finish(&failure{code: exitUsage, name: "usage", message: "open --log file: " + err.Error()}, nil)
		}
		defer f.Close()
		transcript = f
	}

	// quitCtx ends on a quit key or --until; ctx also when --duration runs out.
	quitCtx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	ctx := quitCtx
	if *duration > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(quitCtx, *duration)
		defer stop()
	}

	// Keys: only from a terminal, which is put in raw mode for the session.
	keys := make(chan byte, 64)
	raw := false
	restore := func() {}
	if f, ok := c.stdin.(*os.File); ok && !cm.json && isTerminal(f) {
		if st, err := term.MakeRaw(f.Fd()); err == nil {
			raw = true
			var once sync.Once
			restore = func() { once.Do(func() { term.Restore(f.Fd(), st) }) }
			defer restore()
			go readKeys(f, keys)
		}
	}
	out := &monitorOutput{
		w: c.stdout, json: cm.json, raw: raw, tty: isTerminal(c.stdout),
		render:     monitor.Renderer{Theme: monitor.PlainTheme(), Timestamps: *timestamps},
		transcript: transcript, filter: filter, rep: rep,
	}
	if c.colour(c.stdout) {
		out.render.Theme = monitor.ANSITheme()
	}

	lines := make(chan monitor.Line, 4096)
	mon := monitor.New(*port, monitor.Options{Baud: *baud, Symbolizer: sym, Logger: log,
		OnLine: func(l monitor.Line) { lines <- l }})
	runErr := make(chan error, 1)
	go func() {
		runErr <- mon.Run(ctx)
		close(lines)
	}()
	if raw {
		fmt.Fprintf(c.stderr, "--- espdeck monitor on %s · Ctrl+R reset · Ctrl+P pause · Ctrl+L clear · Ctrl+] quit\r\n", *port)
	}

	quit, untilSeen, resetDone := false, false, !*reset
	for lines != nil {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			out.line(l)
			if !resetDone && l.Kind == monitor.KindNotice {
				resetDone = true // the port is open: reset as asked
				if err := mon.ResetIntoApp(ctx); err != nil {
					if cm.json {
						rep.warn(err.Error())
					} else {
						out.say("--- " + err.Error())
					}
				}
			}
			if untilRE != nil && !l.Partial && l.Kind == monitor.KindDevice && untilRE.MatchString(l.Text) {
				untilSeen = true
				cancel()
			}
		case k := <-keys:
			switch k {
			case keyQuit, keyIntr:
				quit = true
				cancel()
			case keyReset:
				if err := mon.ResetIntoApp(ctx); err != nil {
					out.say("--- " + err.Error())
				} else {
					out.say("--- reset into the app")
				}
			case keyPause:
				p := !mon.Paused()
				mon.SetPaused(p)
				out.say(map[bool]string{true: "--- paused (Ctrl+P resumes)", false: "--- resumed"}[p])
			case keyClear:
				fmt.Fprint(c.stdout, "\x1b[2J\x1b[H")
			default:
				b := []byte{k}
				if k == '\r' {
					b = []byte("\r\n")
				}
				if err := mon.Write(ctx, b); err != nil {
					log.Debug("send key", "err", err)
				}
			}
		}
	}
	err = <-runErr
	restore() // the final message needs the terminal's normal line endings
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) && quitCtx.Err() == nil
	fields := map[string]any{"port": *port, "lines": out.count, "crashes": out.crashes}
	var oe *monitor.OpenError
	switch {
	case errors.As(err, &oe):
		// The same code as serial and slot give for the same port trouble.
		name := ops.CodeOf(err)
		code := exitFor(name)
		if name == ops.CodeInternal {
			name, code = "port_error", exitUnreachable
		}
		return rep.finish(&failure{code: code, name: name, message: oe.Error(), hint: oe.Hint()}, fields)
	case err != nil && ctx.Err() == nil:
		return rep.finish(&failure{code: exitInternal, name: "monitor_failed", message: err.Error()}, fields)
	case untilSeen || quit:
		return rep.finish(nil, fields)
	case timedOut && untilRE != nil:
		return rep.finish(&failure{code: exitTransfer, name: "until_not_seen",
			message: fmt.Sprintf("no line matched --until %q within %s", *until, *duration),
			hint:    "check the baud rate and that the board runs the expected firmware (--reset restarts it)"}, fields)
	case timedOut:
		return rep.finish(nil, fields)
	}
	return rep.finish(&failure{code: exitInterrupted, name: "interrupted", message: "monitor stopped by interrupt"}, fields)
}

// readKeys forwards bytes typed on the terminal. It ends with the process
// (a read on a terminal cannot be cancelled portably).
func readKeys(f *os.File, keys chan<- byte) {
	buf := make([]byte, 64)
	for {
		n, err := f.Read(buf)
		for _, b := range buf[:n] {
			keys <- b
		}
		if err != nil {
			return
		}
	}
}

// monitorOutput writes monitor lines as text or JSON, and the transcript.
type monitorOutput struct {
	w          io.Writer
	json       bool
	raw        bool // terminal in raw mode: lines end with CR LF
	tty        bool // stdout is a terminal: partial lines are shown and redrawn
	render     monitor.Renderer
	transcript io.Writer
	filter     monitor.Filter
	rep        *reporter
	partialSeq uint64
	count      int
	crashes    int
}

func (o *monitorOutput) nl() string {
	if o.raw {
		return "\r\n"
	}
	return "\n"
}

// say prints a line of the monitor's own (key feedback).
func (o *monitorOutput) say(s string) {
	if !o.json {
		o.clearPartial()
		fmt.Fprint(o.w, s+o.nl())
	}
}

func (o *monitorOutput) clearPartial() {
	if o.partialSeq != 0 {
		fmt.Fprint(o.w, "\r\x1b[K")
		o.partialSeq = 0
	}
}

func (o *monitorOutput) line(l monitor.Line) {
	if !l.Partial {
		o.count++
		if l.Crash == monitor.CrashStart {
			o.crashes++
		}
		if o.transcript != nil {
			for _, s := range monitor.Plain(l, true) {
				io.WriteString(o.transcript, s+"\n")
			}
		}
	}
	if !o.filter.Match(l) {
		return
	}
	if o.json {
		if !l.Partial {
			o.rep.event("line", lineJSON(l))
		}
		return
	}
	if l.Partial {
		if o.tty {
			o.clearPartial()
			fmt.Fprint(o.w, strings.Join(o.render.Render(l), o.nl()))
			o.partialSeq = l.Seq
		}
		return
	}
	o.clearPartial()
	fmt.Fprint(o.w, strings.Join(o.render.Render(l), o.nl())+o.nl())
}

// lineJSON is the "line" event of --json.
func lineJSON(l monitor.Line) map[string]any {
	m := map[string]any{"seq": l.Seq, "text": l.Text, "format": l.Format.String(), "host_time": l.Time.UTC().Format(time.RFC3339Nano)}
	if l.Kind == monitor.KindNotice {
		m["source"] = "monitor"
	} else {
		m["source"] = "device"
	}
	if l.Level != monitor.LevelNone {
		m["level"] = l.Level.String()
	}
	if l.Tag != "" {
		m["tag"] = l.Tag
	}
	if l.DeviceTime != "" {
		m["device_time"] = l.DeviceTime
	}
	if l.Message != l.Text {
		m["message"] = l.Message
	}
	switch l.Crash {
	case monitor.CrashStart:
		m["crash"] = "start"
	case monitor.CrashBody:
		m["crash"] = "body"
	}
	if len(l.Decoded) > 0 {
		var ds []map[string]any
		for _, d := range l.Decoded {
			ds = append(ds, addressJSON(d.Ref.Addr, d.Ref.Label, d.Frames))
		}
		m["decoded"] = ds
	}
	if l.Warning != "" {
		m["warning"] = l.Warning
	}
	return m
}
