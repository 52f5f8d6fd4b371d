package monitor

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/symbolize"
)

func parseOne(s string) Line { return NewParser(nil).Parse(s, time.Time{}) }

func TestParseFormats(t *testing.T) {
	cases := []struct {
		in                string
		format            Format
		level             Level
		devTime, tag, msg string
	}{
		{"\x1b[0;31mE (1012) app: read failed\x1b[0m", FormatIDF, LevelError, "1012", "app", "read failed"},
		{"W (415) wifi:no AP", FormatIDF, LevelWarn, "415", "wifi", "no AP"},
		{"I (12:04:05.123) sntp: set", FormatIDF, LevelInfo, "12:04:05.123", "sntp", "set"},
		{"[  1034][W][WiFiGeneric.cpp:1062] _eventCallback(): Reason: 201", FormatArduino, LevelWarn, "1034", "WiFiGeneric.cpp:1062", "_eventCallback(): Reason: 201"},
		{"[E][WiFiGeneric.cpp:654] wifiLowLevelInit(): esp_wifi_init 257", FormatArduino, LevelError, "", "WiFiGeneric.cpp:654", "wifiLowLevelInit(): esp_wifi_init 257"},
		{" ets Jan  8 2013,rst cause:4, boot mode:(3,6)", FormatESP8266, LevelInfo, "", "rom", " ets Jan  8 2013,rst cause:4, boot mode:(3,6)"},
		{"Fatal exception 28(LoadProhibitedCause):", FormatESP8266, LevelError, "", "exception", "Fatal exception 28(LoadProhibitedCause):"},
		{"scandone", FormatESP8266, LevelNone, "", "sdk", "scandone"},
		{"hello world", FormatPlain, LevelNone, "", "", "hello world"},
		{"X (12) tag: not a level", FormatPlain, LevelNone, "", "", "X (12) tag: not a level"},
		{"E (12) : empty tag", FormatPlain, LevelNone, "", "", "E (12) : empty tag"},
	}
	for _, c := range cases {
		l := parseOne(c.in)
		require.Equal(t, c.format, l.Format, c.in)
		require.Equal(t, c.level, l.Level, c.in)
		require.Equal(t, c.devTime, l.DeviceTime, c.in)
		require.Equal(t, c.tag, l.Tag, c.in)
		require.Equal(t, c.msg, l.Message, c.in)
	}
}

func TestCleanRemovesEscapesAndControls(t *testing.T) {
	require.Equal(t, "I (1) a: b", Clean("\x1b[0;32mI (1) a: b\x1b[0m"))
	require.Equal(t, "title gone", Clean("\x1b]0;window\x07title gone"))
	require.Equal(t, "a\tb", Clean("a\x00\tb\x07\x7f"))
	require.Equal(t, "\uFFFD\uFFFDok", Clean("\xff\xfeok"))
	require.Equal(t, "μs ✓", Clean("μs ✓"))
	require.Equal(t, "cut", Clean("cut\x1b["), "an unfinished escape at the end is dropped")
}

func TestCrashBlockEndsAtNormalLog(t *testing.T) {
	p := NewParser(nil)
	var roles []Crash
	for _, s := range []string{
		"abort() was called at PC 0x400d1234 on core 0",
		"",
		"Backtrace: 0x400d1234:0x3ffb5f40",
		"ELF file SHA256: 0000000000000000",
		"Rebooting...",
		"after reboot",
		"E (10) task_wdt: Task watchdog got triggered.",
		"Backtrace: 0x400d1234:0x3ffb5f40",
		"I (20) app: back to normal",
	} {
		roles = append(roles, p.Parse(s, time.Time{}).Crash)
	}
	require.Equal(t, []Crash{CrashStart, CrashBody, CrashBody, CrashBody, CrashBody, CrashNone, CrashNone, CrashBody, CrashNone}, roles)
}

func TestFilter(t *testing.T) {
	lines := map[string]Line{
		"wifiW":  parseOne("W (1) wifi: w"),
		"wifiD":  parseOne("D (1) wifi: d"),
		"appE":   parseOne("E (1) app: e"),
		"appI":   parseOne("I (1) app: i"),
		"plain":  parseOne("printf"),
		"ardW":   parseOne("[  1][W][WiFiGeneric.cpp:1062] f(): x"),
		"crash":  parseOne("Guru Meditation Error: Core  0 panic'ed (LoadProhibited)"),
		"notice": NewParser(nil).Notice(LevelNone, "reset", time.Time{}),
	}
	check := func(filter string, want ...string) {
		t.Helper()
		f, err := ParseFilter(filter)
		require.NoError(t, err, filter)
		var got []string
		for _, name := range []string{"wifiW", "wifiD", "appE", "appI", "plain", "ardW", "crash", "notice"} {
			if f.Match(lines[name]) {
				got = append(got, name)
			}
		}
		require.Equal(t, want, got, filter)
	}
	check("", "wifiW", "wifiD", "appE", "appI", "plain", "ardW", "crash", "notice")
	check("W", "wifiW", "appE", "ardW", "crash", "notice")
	check("error", "appE", "crash", "notice")
	check("wifi", "wifiW", "wifiD", "crash", "notice")
	check("wifi:W", "wifiW", "crash", "notice")
	check("wifi,E", "wifiW", "wifiD", "appE", "crash", "notice")
	check("*:I app:E", "wifiW", "appE", "ardW", "crash", "notice")
	check("WiFiGeneric.cpp", "ardW", "crash", "notice")
	check("wi*", "wifiW", "wifiD", "ardW", "crash", "notice")
	_, err := ParseFilter("[bad")
	require.ErrorContains(t, err, "want a level")
}

func TestRenderTimestampsAndPlain(t *testing.T) {
	l := parseOne("\x1b[0;33mW (415) wifi: no AP\x1b[0m")
	l.Time = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)
	require.Equal(t, []string{"03:04:05.678 W (415) wifi: no AP"}, Plain(l, true))
	ansi := Renderer{Theme: ANSITheme()}.Render(l)
	require.Equal(t, "\x1b[33mW (415) \x1b[39m\x1b[33m\x1b[1mwifi\x1b[22m\x1b[39m\x1b[33m: no AP\x1b[39m", ansi[0])
	require.Equal(t, "no AP", Clean(ansi[0])[len("W (415) wifi: "):])
}

func TestOpenErrorHints(t *testing.T) {
	for _, c := range []struct {
		err  error
		kind error
		hint string
	}{
		{syscall.EACCES, ErrPermission, "dialout"},
		{syscall.ENOENT, ErrPortNotFound, "espdeck list"},
		{syscall.EBUSY, ErrPortBusy, "another program"},
	} {
		err := classifyOpenError("/dev/ttyUSB9", c.err)
		require.ErrorIs(t, err, c.kind)
		require.ErrorIs(t, err, c.err)
		var oe *OpenError
		require.ErrorAs(t, err, &oe)
		require.Contains(t, oe.Hint(), c.hint)
		require.Contains(t, err.Error(), "/dev/ttyUSB9")
	}
	require.ErrorIs(t, modemError(syscall.ENOTTY), ErrNoModemControl)
	require.Contains(t, modemError(syscall.ENOTTY).Error(), "RESET (EN) button")
}

func TestPauseHoldsLinesAndCountsDrops(t *testing.T) {
	var got []string
	m := New("x", Options{MaxHeld: 2, OnLine: func(l Line) { got = append(got, l.Text) }})
	m.SetPaused(true)
	require.True(t, m.Paused())
	m.feed([]byte("one\ntwo\nthree\nfour\n"), time.Now())
	require.Empty(t, got, "nothing is delivered while paused")
	m.SetPaused(false)
	m.deliverHeld()
	require.Equal(t, []string{"2 lines dropped while paused", "three", "four"}, got)
}

func TestLineSplitting(t *testing.T) {
	var got []Line
	now := time.Unix(1000, 0)
	m := New("x", Options{IdleFlush: time.Second, MaxLineLength: 10, OnLine: func(l Line) { got = append(got, l) }})
	m.feed([]byte("a\r"), now)
	m.feed([]byte("\nb\rc\n\n0123456789ab\nprompt> "), now)
	texts := func() []string {
		var s []string
		for _, l := range got {
			s = append(s, l.Text)
		}
		return s
	}
	require.Equal(t, []string{"a", "b", "c", "", "0123456789", "ab"}, texts(), "CR LF split over reads is one line ending; a lone CR ends a line; long lines split")
	m.idle(now.Add(500 * time.Millisecond))
	require.Len(t, got, 6, "not silent long enough yet")
	m.idle(now.Add(2 * time.Second))
	require.Len(t, got, 7)
	require.True(t, got[6].Partial)
	require.Equal(t, "prompt> ", got[6].Text)
	m.idle(now.Add(3 * time.Second))
	require.Len(t, got, 7, "a partial line is shown once")
	m.feed([]byte("ls\n"), now.Add(4*time.Second))
	require.Len(t, got, 8)
	require.False(t, got[7].Partial)
	require.Equal(t, "prompt> ls", got[7].Text)
	require.Equal(t, got[6].Seq, got[7].Seq, "the complete line replaces the partial one")
}

// A pause between CR and LF longer than IdleFlush (a busy host, a
// USB-UART's latency timer) ends the line at the CR; the LF that follows
// is the rest of that line ending, not an empty line.
func TestCRLFSplitByAPause(t *testing.T) {
	var got []string
	now := time.Unix(1000, 0)
	m := New("x", Options{IdleFlush: 50 * time.Millisecond, OnLine: func(l Line) { got = append(got, l.Text) }})
	m.feed([]byte("a\r"), now)
	m.idle(now.Add(time.Second))
	require.Equal(t, []string{"a"}, got, "a CR alone ends the line once the board is quiet")
	m.feed([]byte("\nb\r"), now.Add(2*time.Second))
	m.idle(now.Add(3 * time.Second))
	m.feed([]byte("c\n\n"), now.Add(4*time.Second))
	require.Equal(t, []string{"a", "b", "c", ""}, got, "only the LF right after the flushed CR is absorbed")
}

func FuzzParser(f *testing.F) {
	f.Add("\x1b[0;31mE (1012) app: read failed\x1b[0m\nGuru Meditation Error: Core  0 panic'ed\nBacktrace: 0x400d0a2b:0x3ffb5f40")
	f.Add("[  1034][W][WiFiGeneric.cpp:1062] _eventCallback(): x\n[E][a.cpp:1] f(): y")
	f.Add(" ets Jan  8 2013,rst cause:2\nException (28):\nepc1=0x40201e55\n>>>stack>>>\n3fffff50:  3fffdad0 40201e44\n<<<stack<<<")
	f.Add("\xff\xfe\x00\x1b]0;x\x07\x1b[")
	f.Fuzz(func(t *testing.T, text string) {
		p := NewParser(nil)
		r := Renderer{Theme: ANSITheme(), Timestamps: true}
		for _, raw := range strings.Split(text, "\n") {
			l := p.Parse(raw, time.Unix(0, 0))
			for _, c := range l.Text {
				if c < 0x20 && c != '\t' || c == 0x7f || c == 0x1b {
					t.Fatalf("control character %q left in Text %q", c, l.Text)
				}
			}
			if l.Tag != "" && l.tagAt >= 0 && l.Text[l.tagAt:l.tagAt+len(l.Tag)] != l.Tag {
				t.Fatalf("tag offset wrong in %q", l.Text)
			}
			if l.Level != LevelNone && l.Level.Severity() == 0 {
				t.Fatalf("unknown level %q", l.Level)
			}
			out := r.Render(l)
			if Clean(out[0]) != l.Time.Format("15:04:05.000")+" "+l.Text && l.Crash != CrashStart {
				t.Fatalf("rendering changed the text: %q vs %q", Clean(out[0]), l.Text)
			}
			if _, err := ParseFilter(raw); err == nil {
				_ = Filter{}.Match(l)
			}
		}
	})
}

// RISC-V panics list MEPC/RA and a stack dump; only words inside the ELF's
// code are decoded. (The fixture is an Xtensa ELF; the extraction does not
// depend on the architecture, only on the addresses.)
func TestStackWordsDecodedOnlyInCode(t *testing.T) {
	if _, err := os.Stat(fixtureELF); err != nil {
		fixture.Missing(t, "fixture %s not present (%v)", fixtureELF, err)
	}
	sym, err := symbolize.Open(fixtureELF)
	require.NoError(t, err)
	p := NewParser(sym)
	var decoded []string
	for _, s := range []string{
		"Guru Meditation Error: Core  0 panic'ed (Load access fault). Exception was unhandled.",
		"MEPC    : 0x400d0a2b  RA      : 0x400d4ad9  SP      : 0x3fc8f090  GP      : 0x3fc8b600  ",
		"",
		"Stack memory:",
		"3fc8f090: 0x00000000 0x40088c85 0x3fc8f0d0 0x4000c46c",
		"",
		"ELF file SHA256: 138cb4392e3b7980",
	} {
		for _, d := range p.Parse(s, time.Time{}).Decoded {
			decoded = append(decoded, d.Ref.Label+" "+d.Frames[len(d.Frames)-1].Function)
		}
	}
	require.Equal(t, []string{"MEPC app_main", "RA main_task", "stack vPortTaskWrapper"}, decoded,
		"0x3fc8f0d0 (RAM) and 0x4000c46c (ROM) are not the ELF's code")
}

// FuzzLineSplitter checks that no byte is lost or invented when bytes arrive
// in arbitrary pieces, and that where a read boundary falls does not change
// the lines.
func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("a\r\nb\rc\n\nlong line here\r"), uint(3))
	f.Add([]byte("\r\r\n\n\r"), uint(1))
	f.Add([]byte("I (1) x: y\r\nGuru Meditation Error\r\nBacktrace: 0x400d0a2b:0x3ffb5f40\r\n"), uint(20))
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		run := func(pieces ...[]byte) []string {
			var raws []string
			m := New("fuzz", Options{MaxLineLength: 16, OnLine: func(l Line) {
				if !l.Partial {
					raws = append(raws, l.Raw)
				}
			}})
			now := time.Unix(0, 0)
			for _, p := range pieces {
				m.feed(p, now)
			}
			m.flushPending(true)
			return raws
		}
		whole := run(data)
		k := int(cut % uint(len(data)+1))
		split := run(data[:k], data[k:])
		if strings.Join(whole, "\n") != strings.Join(split, "\n") {
			t.Fatalf("a read boundary at %d changed the lines: %q vs %q", k, whole, split)
		}
		var kept []byte
		for _, c := range data {
			if c != '\r' && c != '\n' {
				kept = append(kept, c)
			}
		}
		if strings.Join(whole, "") != string(kept) {
			t.Fatalf("bytes lost or invented: %q from %q", whole, data)
		}
		for _, r := range whole {
			if len(r) > 16 {
				t.Fatalf("line longer than MaxLineLength: %q", r)
			}
		}
	})
}
