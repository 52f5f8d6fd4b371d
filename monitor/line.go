package monitor

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/espdeck/espdeck/symbolize"
)

// Level is a log level letter as ESP-IDF and Arduino print it.
type Level byte

// Levels, in ESP-IDF's order of severity. LevelNone marks lines without one.
const (
	LevelNone    Level = 0
	LevelError   Level = 'E'
	LevelWarn    Level = 'W'
	LevelInfo    Level = 'I'
	LevelDebug   Level = 'D'
	LevelVerbose Level = 'V'
)

// String returns the level letter, or "" for LevelNone.
func (l Level) String() string {
	if l == LevelNone {
		return ""
	}
	return string(rune(l))
}

// Severity orders levels: 1 for errors up to 5 for verbose, 0 for none.
func (l Level) Severity() int {
	switch l {
	case LevelError:
		return 1
	case LevelWarn:
		return 2
	case LevelInfo:
		return 3
	case LevelDebug:
		return 4
	case LevelVerbose:
		return 5
	}
	return 0
}

// ParseLevel accepts a level letter or word: "E", "error", "w", "warn",
// "warning", "info", "debug", "verbose".
func ParseLevel(s string) (Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "e", "error":
		return LevelError, true
	case "w", "warn", "warning":
		return LevelWarn, true
	case "i", "info":
		return LevelInfo, true
	case "d", "debug":
		return LevelDebug, true
	case "v", "verbose":
		return LevelVerbose, true
	}
	return LevelNone, false
}

// Format is the log format a line was recognised as.
type Format uint8

const (
	FormatPlain   Format = iota // not a known log format
	FormatIDF                   // "E (123) tag: message" (also ESP8266 RTOS SDK)
	FormatArduino               // "[   123][E][file.cpp:12] func(): message"
	FormatESP8266               // ESP8266 ROM, non-OS SDK and Arduino core lines
)

func (f Format) String() string {
	switch f {
	case FormatIDF:
		return "esp-idf"
	case FormatArduino:
		return "arduino"
	case FormatESP8266:
		return "esp8266"
	}
	return "plain"
}

// Kind says where a Line comes from.
type Kind uint8

const (
	KindDevice Kind = iota // printed by the board
	KindNotice             // said by the monitor: connected, reset, port released, …
)

// Crash says whether a line belongs to a crash report.
type Crash uint8

const (
	CrashNone  Crash = iota
	CrashStart       // the headline: "Guru Meditation Error …", "abort() was called …", "Exception (28):"
	CrashBody        // register dumps, backtraces, stack dumps that follow
)

// Line is one line of monitor output, parsed. The TUI and the CLI render the
// same values.
type Line struct {
	// Seq numbers lines in the order the monitor produced them. A line shown
	// early because the board stopped mid-line (a prompt) has Partial set; the
	// complete line comes later with the same Seq and replaces it.
	Seq     uint64
	Partial bool
	Time    time.Time // host time at which the line was complete
	Kind    Kind
	Raw     string // as received, without the line ending (may hold ANSI codes)
	Text    string // printable: ANSI codes and control characters removed
	Format  Format
	Level   Level
	// DeviceTime is the board's timestamp as printed ("1234" ms, or
	// "12:34:56.789" with ESP-IDF's system-time option), "" if none.
	DeviceTime string
	Tag        string // ESP-IDF tag, Arduino "file.cpp:12", ESP8266 "rom"/"sdk"/…
	Message    string
	Crash      Crash
	Decoded    []Decoded // code addresses found on this line, with their frames
	// Warning is a problem the monitor noticed about this line, e.g. that the
	// running firmware's ELF SHA-256 differs from the ELF used for decoding.
	Warning string

	tagAt int // byte offset of Tag in Text, -1 if not present
}

// Decoded is one code address found in a line and what it decodes to.
type Decoded struct {
	Ref    symbolize.Ref
	Frames []symbolize.Frame // innermost first; see symbolize.Frame
}

// Lines renders the decoded address as "0x400d1234: app_main at main/main.c:42"
// (plus "(inlined by)" lines).
func (d Decoded) Lines() []string { return symbolize.Format(d.Ref.Addr, d.Frames) }

// Source-level patterns. ESP-IDF's tag is anything up to the first ": ".
var (
	idfRE     = regexp.MustCompile(`^([EWIDV]) \(([0-9]+|[0-9:.]+)\) ([^:]*?): ?(.*)$`)
	arduinoRE = regexp.MustCompile(`^\[ *([0-9]+)\]\[([EWIDV])\]\[([^\]]*)\] ?(.*)$`)
	// Arduino-ESP32 before 2.0 printed no timestamp.
	arduinoOldRE = regexp.MustCompile(`^\[([EWIDV])\]\[([^\]]*)\] ?(.*)$`)
	// ESP8266 Arduino core debug output: "[HTTP-Client] begin…".
	bracketTagRE = regexp.MustCompile(`^\[([A-Za-z][A-Za-z0-9 _.:-]{0,31})\] ?(.*)$`)
)

// ESP8266 non-OS SDK chatter, by the words it starts with.
var sdkPrefixes = []string{"wifi evt:", "scandone", "state: ", "pm open", "pm close", "mode : ", "dhcp client", "ip:", "add if", "del if", "bcn ", "aid ", "cnt ", "connected with ", "reconnect", "sleep enable", "SDK ver:", "SDK:", "phy ver:", "usl", "no buf", "f r0", "f 0,"}

// parseFormat fills Format, Level, DeviceTime, Tag, Message from l.Text.
func parseFormat(l *Line) {
	t := l.Text
	l.tagAt = -1
	l.Message = t
	// The first bytes tell which pattern can match; skip the others.
	idfLike := len(t) > 4 && strings.IndexByte("EWIDV", t[0]) >= 0 && t[1] == ' ' && t[2] == '('
	bracket := len(t) > 2 && t[0] == '['
	if m := match(idfLike, idfRE, t); m != nil && m[6] < m[7] {
		l.Format, l.Level = FormatIDF, Level(t[m[2]])
		l.DeviceTime, l.Tag, l.Message = t[m[4]:m[5]], t[m[6]:m[7]], t[m[8]:m[9]]
		l.tagAt = m[6]
		return
	}
	if m := match(bracket, arduinoRE, t); m != nil {
		l.Format, l.DeviceTime, l.Level = FormatArduino, t[m[2]:m[3]], Level(t[m[4]])
		l.Tag, l.Message, l.tagAt = t[m[6]:m[7]], t[m[8]:m[9]], m[6]
		return
	}
	if m := match(bracket, arduinoOldRE, t); m != nil {
		l.Format, l.Level = FormatArduino, Level(t[m[2]])
		l.Tag, l.Message, l.tagAt = t[m[4]:m[5]], t[m[6]:m[7]], m[4]
		return
	}
	trimmed := strings.TrimLeft(t, " ")
	switch {
	case strings.HasPrefix(trimmed, "ets ") && strings.Contains(trimmed, "rst cause:"):
		// ESP8266 ROM banner: " ets Jan  8 2013,rst cause:2, boot mode:(3,6)".
		l.Format, l.Level, l.Tag = FormatESP8266, LevelInfo, "rom"
		return
	case strings.HasPrefix(trimmed, "Exception (") || strings.HasPrefix(trimmed, "Fatal exception") ||
		strings.HasPrefix(trimmed, "Soft WDT reset") || strings.HasPrefix(trimmed, "User exception"):
		l.Format, l.Level, l.Tag = FormatESP8266, LevelError, "exception"
		return
	}
	for _, p := range sdkPrefixes {
		if strings.HasPrefix(t, p) {
			l.Format, l.Tag = FormatESP8266, "sdk"
			return
		}
	}
	if m := match(bracket, bracketTagRE, t); m != nil {
		l.Format, l.Tag, l.Message, l.tagAt = FormatESP8266, t[m[2]:m[3]], t[m[4]:m[5]], m[2]
		return
	}
}

func match(possible bool, re *regexp.Regexp, s string) []int {
	if !possible {
		return nil
	}
	return re.FindStringSubmatchIndex(s)
}

// Clean returns s without ANSI escape sequences and control characters, and
// with invalid UTF-8 (line noise, a wrong baud rate) replaced by U+FFFD.
func Clean(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			i = skipEscape(s, i)
			continue
		case c == '\t':
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			// drop: NUL padding, bells, stray CRs
		case c < utf8.RuneSelf:
			b.WriteByte(c)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				b.WriteRune(utf8.RuneError)
				i++
				continue
			}
			if r >= 0x80 && r < 0xa0 { // C1 controls
				i += size
				continue
			}
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		i++
	}
	return b.String()
}

// skipEscape returns the index after the escape sequence starting at s[i].
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters and intermediates, then a final byte @..~
		for i++; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return i
	case ']': // OSC: up to BEL or ESC \
		for i++; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	}
	return i + 1 // two-byte sequence
}
