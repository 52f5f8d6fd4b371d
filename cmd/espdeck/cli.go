package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/espdeck/espdeck/internal/humanize"
)

// Exit codes, the same for every command (docs: cli.md, README "Exit codes").
const (
	exitOK          = 0
	exitInternal    = 1
	exitUsage       = 2 // bad usage or bad input file
	exitRefused     = 3 // pre-flight refusal: wrong chip, too big, invalid, signature
	exitUnreachable = 4 // no answer to the invitation, port not found, no sync
	exitAuth        = 5
	exitNoConnect   = 6 // the device never connected back (OTA)
	exitTransfer    = 7 // connection lost, stall, timeout during data
	exitDevice      = 8 // the device reported an error
	exitVerify      = 9 // verify failed after writing
	exitPermission  = 10
	exitInterrupted = 130
)

// cli is what every subcommand gets: the process's streams and environment.
// Nothing in it is global, so tests run commands in-process side by side.
type cli struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// common holds the flags every command understands.
type common struct {
	json     bool
	logLevel string
	logFile  string
	config   string
	yes      bool
	force    bool
}

// newFlags returns a flag set for "espdeck NAME" with the common flags
// registered. usage is printed by --help above the flag list; put examples in it.
func (c *cli) newFlags(name, usage string) (*flag.FlagSet, *common) {
	fs := flag.NewFlagSet("espdeck "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cm := &common{logLevel: "warn"}
	fs.BoolVar(&cm.json, "json", false, "one JSON object per line on stdout")
	// Checked while parsing, so a typo is refused by every command, also
	// by those that log nothing.
	fs.Func("log-level", "log `LEVEL`: debug, info, warn or error (default warn)", func(v string) error {
		var level slog.Level
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return errors.New("want debug, info, warn or error")
		}
		cm.logLevel = v
		return nil
	})
	fs.StringVar(&cm.logFile, "log", "", "write the log to `FILE`")
	fs.StringVar(&cm.config, "config", "", "config `FILE` (default $XDG_CONFIG_HOME/espdeck/config.toml)")
	fs.BoolVar(&cm.yes, "yes", false, "answer yes to confirmations")
	fs.BoolVar(&cm.force, "force", false, "go on despite a failed pre-flight check")
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "%s\n\nFlags:\n", strings.TrimSpace(usage))
		fs.PrintDefaults()
	}
	return fs, cm
}

// parse parses args allowing flags and positional arguments in any order
// (esptool users type "write 0x1000 boot.bin --port X"). "--" ends flags.
// It returns the positional arguments, or an error for --help (flag.ErrHelp)
// or a bad flag; the caller returns c.usageExit(err, args).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package prints its error and then the whole usage; a mistyped
	// flag would scroll its own message out of view. Print the usage only
	// for --help, and for a mistake one sentence with the next step.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			fs.SetOutput(out)
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			msg := err.Error()
			if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
				msg = "unknown flag " + name
			}
			hint := fmt.Sprintf("run '%s --help' for the flags and examples", strings.TrimSpace(fs.Name()))
			fmt.Fprintf(out, "espdeck: %s\n  %s\n", msg, hint)
			return nil, &usageError{msg: msg, hint: hint, err: err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		// The flag package stops at the first non-flag; take it and go on.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError is a command-line mistake, as a person reads it.
type usageError struct {
	msg, hint string
	err       error
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return e.err }

// usageExit turns a parse error into an exit code (0 for --help). When the
// command line asked for --json, the mistake is also a JSON result on
// stdout, so a script that reads stdout learns why nothing happened.
func (c *cli) usageExit(err error, args []string) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) && wantsJSON(args) {
		r := &reporter{json: true, out: c.stdout, human: io.Discard, start: time.Now()}
		return r.finish(&failure{code: exitUsage, name: "usage", message: ue.msg, hint: ue.hint}, nil)
	}
	return exitUsage
}

// wantsJSON reports whether args ask for --json (as parsed or not).
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		switch a {
		case "--json", "-json", "--json=true", "-json=true", "--json=1", "-json=1":
			return true
		}
	}
	return false
}

// logger builds the slog logger the common flags ask for. Logs go to the
// --log file, else to stderr; close must be called when the command ends.
func (c *cli) logger(cm *common) (log *slog.Logger, close func(), err error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cm.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", cm.logLevel)
	}
	w, close := c.stderr, func() {}
	if cm.logFile != "" {
		f, err := os.OpenFile(cm.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w, close = f, func() { f.Close() }
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), close, nil
}

// isTerminal reports whether w is a terminal (for progress bars and prompts).
func isTerminal(w any) bool {
	if sw, ok := w.(*stickyWriter); ok {
		w = sw.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// colour reports whether human output to w may use ANSI colour.
func (c *cli) colour(w io.Writer) bool {
	return isTerminal(w) && c.getenv("NO_COLOR") == "" && c.getenv("TERM") != "dumb"
}

// readSecret reads a secret from the terminal without echo. It fails when
// stdin is not a terminal (scripts use an environment variable or a file).
func (c *cli) readSecret(prompt string) (string, error) {
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return "", errors.New("a password is needed and standard input is not a terminal: use --password-env VAR or --password-file FILE")
	}
	state, err := term.GetState(f.Fd())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(c.stderr, prompt)
	type answer struct {
		b   []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		b, err := term.ReadPassword(f.Fd())
		done <- answer{b, err}
	}()
	select {
	case a := <-done:
		fmt.Fprintln(c.stderr)
		if a.err != nil {
			return "", fmt.Errorf("read password: %w", a.err)
		}
		return string(a.b), nil
	case <-c.ctx.Done():
		// Ctrl-C: give the terminal its echo back now; the blocked read ends
		// with the process, which is about to exit.
		term.Restore(f.Fd(), state)
		fmt.Fprintln(c.stderr)
		return "", fmt.Errorf("read password: %w", c.ctx.Err())
	}
}

// confirm asks a yes/no question on the terminal; --yes answers it. Without
// a terminal and without --yes the answer is no.
func (c *cli) confirm(cm *common, question string) bool {
	if cm.yes {
		return true
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		fmt.Fprintf(c.stderr, "%s [y/N] no (standard input is not a terminal; pass --yes to confirm)\n", question)
		return false
	}
	fmt.Fprintf(c.stderr, "%s [y/N] ", question)
	var line [64]byte
	n, _ := f.Read(line[:])
	ans := strings.ToLower(strings.TrimSpace(string(line[:n])))
	return ans == "y" || ans == "yes"
}

// reporter writes a command's output: JSON lines on stdout with --json, human
// lines (and a progress bar on a terminal) on stderr otherwise. It is safe
// for concurrent use because progress callbacks run on worker goroutines.
type reporter struct {
	mu       sync.Mutex
	json     bool
	out      io.Writer // JSON lines
	human    io.Writer // human text
	tty      bool      // human is a terminal: draw a progress bar
	device   string
	start    time.Time
	barShown bool
	lastBar  time.Time
}

func (c *cli) reporter(cm *common, device string) *reporter {
	return &reporter{json: cm.json, out: c.stdout, human: c.stderr, tty: isTerminal(c.stderr),
		device: device, start: time.Now()}
}

// event writes one JSON event line (no-op without --json).
func (r *reporter) event(kind string, fields map[string]any) {
	if !r.json {
		return
	}
	obj := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "event": kind}
	if r.device != "" {
		obj["device"] = r.device
	}
	for k, v := range fields {
		obj[k] = v
	}
	b, err := json.Marshal(obj)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"event": "warning", "message": "unencodable event: " + err.Error()})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out.Write(append(b, '\n'))
}

// say prints one human line (suppressed with --json, where it would mix
// with machine output only on stderr anyway).
func (r *reporter) say(format string, args ...any) {
	if r.json {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clearBar()
	fmt.Fprintf(r.human, format+"\n", args...)
}

// stage announces a new stage ("invite", "write 0x10000", …).
func (r *reporter) stage(name, detail string) {
	r.event("stage", map[string]any{"stage": name, "message": detail})
	if detail != "" {
		r.say("%s", detail)
	}
}

// warn reports something the user should know that does not stop the command.
func (r *reporter) warn(msg string) {
	r.event("warning", map[string]any{"message": msg})
	if !r.json {
		r.mu.Lock()
		r.clearBar()
		fmt.Fprintf(r.human, "warning: %s\n", msg)
		r.mu.Unlock()
	}
}

// progress reports bytes done of total in a stage; rate is bytes per second.
// On a terminal it redraws a bar at most ten times a second.
func (r *reporter) progress(stage string, done, total int64, rate float64) {
	r.event("progress", map[string]any{"stage": stage, "done": done, "total": total, "rate_bps": int64(rate)})
	if r.json || !r.tty {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(r.lastBar) < 100*time.Millisecond {
		return
	}
	r.lastBar = now
	fmt.Fprintf(r.human, "\r\033[K%s", progressBar(stage, done, total, rate, 30))
	r.barShown = true
	if done >= total {
		fmt.Fprintln(r.human)
		r.barShown = false
	}
}

func (r *reporter) clearBar() {
	if r.barShown {
		fmt.Fprint(r.human, "\r\033[K")
		r.barShown = false
	}
}

// progressBar renders "write  ███████░░░  61%  412 KiB/s".
func progressBar(stage string, done, total int64, rate float64, width int) string {
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * float64(width))
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	s := fmt.Sprintf("%-9s %s %3d%%", stage, bar, int(frac*100))
	if rate > 0 {
		s += "  " + humanize.Rate(rate)
	}
	return s
}

// failure is a command's error as a person and a script see it.
type failure struct {
	code    int    // exit code
	name    string // machine name for --json ("auth_failed", "no_connect_back", …)
	message string // what happened, one sentence
	hint    string // the next step, may be empty
}

// finish writes the result (a JSON result line, or a final human line) and
// returns the exit code. A nil f means success; fields are what was learned.
func (r *reporter) finish(f *failure, fields map[string]any) int {
	res := map[string]any{"ok": f == nil, "duration_ms": time.Since(r.start).Milliseconds()}
	for k, v := range fields {
		res[k] = v
	}
	if f != nil {
		res["error"] = f.name
		res["message"] = f.message
		if f.hint != "" {
			res["hint"] = f.hint
		}
	}
	r.event("result", res)
	if f == nil {
		return exitOK
	}
	if !r.json {
		r.mu.Lock()
		r.clearBar()
		fmt.Fprintf(r.human, "espdeck: %s\n", f.message)
		for _, line := range strings.Split(f.hint, "\n") {
			if line != "" {
				fmt.Fprintf(r.human, "  %s\n", line)
			}
		}
		r.mu.Unlock()
	}
	return f.code
}

// interrupted is the failure for a cancelled context.
func interrupted(what string) *failure {
	if what == "" {
		what = "the command"
	}
	return &failure{code: exitInterrupted, name: "interrupted",
		message: what + " was interrupted; nothing half-done is reported as success"}
}

// parseUint parses a size or address: 0x… hex, plain decimal, or a K/M suffix
// (1024-based, as ESP-IDF partition tables use).
func parseUint(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	mult := uint64(1)
	switch {
	case strings.HasSuffix(t, "K") || strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M") || strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	}
	var v uint64
	var err error
	if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X") {
		v, err = strconv.ParseUint(t[2:], 16, 64)
	} else {
		v, err = strconv.ParseUint(t, 10, 64)
	}
	if err != nil || t == "" {
		return 0, fmt.Errorf("%q is not a number (use 0x… hex, decimal, or a K/M suffix)", s)
	}
	if v > (1<<63)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v * mult, nil
}

// mdnsOff reports whether the environment turns mDNS browsing off
// (ESPDECK_MDNS=off), for networks where multicast is unwelcome. The
// in-process test harness always sets it, so no test can browse the host's
// network by accident.
func (c *cli) mdnsOff() bool {
	v := strings.ToLower(c.getenv("ESPDECK_MDNS"))
	return v == "off" || v == "0" || v == "false" || v == "no"
}
