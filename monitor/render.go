package monitor

import "strings"

// Paint styles a piece of text. nil means "no style".
type Paint func(string) string

// Theme is how a Renderer styles each part of a line. The CLI uses ANSITheme
// or PlainTheme; the TUI fills one with its lipgloss styles' Render methods.
// The tag is painted first and then wrapped in its level's paint, so Tag
// should only change the weight (bold), not the colour.
type Theme struct {
	Error, Warn, Info, Faint Paint // log levels; Faint serves D and V
	Tag                      Paint // the tag inside a levelled line
	Crash                    Paint // crash headlines (Guru Meditation, abort, Exception)
	Decoded                  Paint // decoded frames under a crash line
	Notice                   Paint // the monitor's own lines
	Time                     Paint // host timestamps
}

// sgr wraps s in an ANSI Select Graphic Rendition pair. The "off" codes
// reset only what "on" set, so a bold tag inside a red line stays red.
func sgr(on, off string) Paint {
	return func(s string) string { return "\x1b[" + on + "m" + s + "\x1b[" + off + "m" }
}

// ANSITheme is the terminal palette: E red, W yellow, I green, D/V faint,
// the tag bold, crash headlines bold red on the default background.
func ANSITheme() Theme {
	return Theme{
		Error:   sgr("31", "39"),
		Warn:    sgr("33", "39"),
		Info:    sgr("32", "39"),
		Faint:   sgr("2", "22"),
		Tag:     sgr("1", "22"),
		Crash:   sgr("1;31", "22;39"),
		Decoded: sgr("36", "39"),
		Notice:  sgr("2;3", "22;23"),
		Time:    sgr("2", "22"),
	}
}

// PlainTheme styles nothing: for pipes, files and NO_COLOR.
func PlainTheme() Theme { return Theme{} }

// Renderer turns Lines into text. The zero value renders plain text without
// timestamps.
type Renderer struct {
	Theme Theme
	// Timestamps prefixes each line with the host time it arrived.
	Timestamps bool
	// TimeFormat is the time layout for Timestamps; default "15:04:05.000".
	TimeFormat string
}

func paint(p Paint, s string) string {
	if p == nil || s == "" {
		return s
	}
	return p(s)
}

// levelPaint returns the paint for a level (nil for none).
func (t Theme) levelPaint(l Level) Paint {
	switch l {
	case LevelError:
		return t.Error
	case LevelWarn:
		return t.Warn
	case LevelInfo:
		return t.Info
	case LevelDebug, LevelVerbose:
		return t.Faint
	}
	return nil
}

// Render returns the text lines for l: the line itself, then its decoded
// frames and its warning, each without a line ending.
func (r Renderer) Render(l Line) []string {
	th := r.Theme
	prefix := ""
	if r.Timestamps && !l.Time.IsZero() {
		tf := r.TimeFormat
		if tf == "" {
			tf = "15:04:05.000"
		}
		prefix = paint(th.Time, l.Time.Format(tf)) + " "
	}
	var main string
	switch {
	case l.Kind == KindNotice:
		p := th.Notice
		if lp := th.levelPaint(l.Level); lp != nil && l.Level.Severity() <= 2 {
			p = lp
		}
		main = paint(p, "--- "+l.Text)
	case l.Crash == CrashStart:
		main = paint(th.Crash, l.Text)
	default:
		main = r.body(l)
	}
	out := []string{prefix + main}
	indent := strings.Repeat(" ", len(stripTimeWidth(prefix, r, l)))
	for _, d := range l.Decoded {
		for _, s := range d.Lines() {
			out = append(out, indent+"  "+paint(th.Decoded, s))
		}
	}
	if l.Warning != "" {
		out = append(out, indent+paint(th.Warn, "warning: "+l.Warning))
	}
	return out
}

// stripTimeWidth returns the unstyled timestamp prefix, for indenting.
func stripTimeWidth(prefix string, r Renderer, l Line) string {
	if prefix == "" {
		return ""
	}
	tf := r.TimeFormat
	if tf == "" {
		tf = "15:04:05.000"
	}
	return l.Time.Format(tf) + " "
}

// body paints a device line: the whole line in its level's colour and the
// tag in bold, as ESP-IDF's own colour option does.
func (r Renderer) body(l Line) string {
	th := r.Theme
	lp := th.levelPaint(l.Level)
	t := l.Text
	if l.Tag == "" || l.tagAt < 0 || l.tagAt+len(l.Tag) > len(t) || t[l.tagAt:l.tagAt+len(l.Tag)] != l.Tag {
		return paint(lp, t)
	}
	end := l.tagAt + len(l.Tag)
	return paint(lp, t[:l.tagAt]) + paint(lp, paint(th.Tag, l.Tag)) + paint(lp, t[end:])
}

// Plain renders l as uncoloured text with a timestamp, for transcripts.
func Plain(l Line, timestamps bool) []string {
	return Renderer{Timestamps: timestamps}.Render(l)
}
