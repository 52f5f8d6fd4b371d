package tui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
)

// maxMonitorLines bounds the scrollback.
const maxMonitorLines = 5000

// monitorState is one monitor session on a serial board.
type monitorState struct {
	session int
	row     string
	name    string
	cancel  context.CancelFunc
	lines   []LogLine
	vp      viewport.Model
	paused  bool // the view is frozen; lines keep arriving
	follow  bool // the view sticks to the tail
	held    int  // lines that arrived while paused
	closed  bool
	err     string
	ch      <-chan LogLine
	yielded int // the job the port was given to; 0 when attached
	filter  string
	ctx     context.Context
	// waiting is set while another reader (a chip or partition read) has
	// the port: two readers would each get part of the bytes, so the
	// monitor opens only once that read has ended.
	waiting bool
}

// portBusy says whether a read other than the monitor's holds the row's
// serial port: a chip-info or partition read still in flight.
func (m Model) portBusy(rowKey string) bool {
	if ps := m.parts[rowKey]; ps != nil && ps.busy {
		return true
	}
	if c, ok := m.chips[rowKey]; ok && !c.loaded {
		return true
	}
	return false
}

// startWaitingMonitor opens the port for a monitor that was waiting for
// it, once no other read holds it.
func (m *Model) startWaitingMonitor() tea.Cmd {
	mon := m.mon
	if mon == nil || !mon.waiting || mon.yielded != 0 || m.portBusy(mon.row) {
		return nil // a flash has the port: reattachMonitor opens it after
	}
	r := m.rowByKey(mon.row)
	if r == nil || r.ser == nil {
		return nil
	}
	mon.waiting = false
	m.logf(slog.LevelInfo, "monitor %s on %s", mon.name, r.ser.Port)
	return openMonitor(mon.ctx, m.be.Monitor, mon.session, *r.ser)
}

// yieldMonitor gives a monitored port to a serial flash job: the monitor
// lets go of it and reattaches when the job ends.
func (m *Model) yieldMonitor(j *job) {
	mon := m.mon
	if mon == nil || mon.row != j.row || j.req.Route != RouteSerial || mon.yielded != 0 {
		return
	}
	mon.cancel()
	mon.session = -1 // lines still in flight from the old session are dropped
	mon.yielded = j.id
	mon.waiting = false // reattachMonitor decides when to open again
	m.logf(slog.LevelInfo, "monitor %s: port handed to the flash", mon.name)
}

// reattachMonitor opens the port again after the job it was yielded to.
func (m *Model) reattachMonitor(jobID int) tea.Cmd {
	mon := m.mon
	if mon == nil || mon.yielded != jobID {
		return nil
	}
	r := m.rowByKey(mon.row)
	if r == nil || r.ser == nil {
		return nil
	}
	m.monSession++
	ctx, cancel := context.WithCancel(m.ctx)
	mon.session, mon.cancel, mon.ctx, mon.yielded, mon.closed = m.monSession, cancel, ctx, 0, false
	if m.portBusy(mon.row) { // the partitions are read again after a serial flash
		mon.waiting = true
		return nil
	}
	m.logf(slog.LevelInfo, "monitor %s: reattached", mon.name)
	return openMonitor(ctx, m.be.Monitor, mon.session, *r.ser)
}

func (m *Model) openMonitor(r *row) tea.Cmd {
	m.closeMonitor()
	m.monSession++
	ctx, cancel := context.WithCancel(m.ctx)
	vp := viewport.New()
	vp.SoftWrap = false // lines are word-wrapped before they reach the viewport
	m.mon = &monitorState{session: m.monSession, row: r.key, name: r.name, cancel: cancel, ctx: ctx, vp: vp, follow: true}
	m.screen = screenMonitor
	m.current = r.key
	m.resizeMonitor()
	m.mon.waiting = true
	return m.startWaitingMonitor()
}

// closeMonitor ends the session and releases the port.
func (m *Model) closeMonitor() {
	if m.mon != nil {
		m.mon.cancel()
		m.mon = nil
	}
}

func (m *Model) resizeMonitor() {
	if m.mon == nil {
		return
	}
	h := m.height - 5 // header, title, status line, help bar, margin
	if m.showLog {
		h -= 8
	}
	m.mon.vp.SetWidth(m.width)
	m.mon.vp.SetHeight(max(h, 3))
	m.refreshMonitor()
}

func (m *Model) refreshMonitor() {
	mon := m.mon
	if mon == nil || mon.paused {
		return
	}
	out := make([]string, 0, len(mon.lines))
	for _, l := range mon.lines {
		if mon.filter != "" && !strings.Contains(strings.ToLower(l.Tag+": "+l.Text), strings.ToLower(mon.filter)) {
			continue
		}
		for _, r := range m.renderLogLine(l) {
			// A long line (an ELF warning, a register dump) wraps at words
			// instead of being cut at the terminal's edge.
			out = append(out, wrapStyled(r, m.width, 4)...)
		}
	}
	mon.vp.SetContentLines(out)
	if mon.follow {
		mon.vp.GotoBottom()
	}
}

func (m *Model) updateMonitorMsg(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case monitorOpenedMsg:
		if m.mon == nil || msg.session != m.mon.session {
			return nil
		}
		if msg.err != nil {
			m.mon.err = msg.err.Error()
			m.mon.closed = true
			m.fail(fmt.Sprintf("monitor %s: %v", m.mon.name, msg.err))
			return nil
		}
		m.mon.ch = msg.lines
		return waitMonitor(m.ctx, msg.session, msg.lines)
	case monitorLinesMsg:
		if m.mon == nil || msg.session != m.mon.session {
			return nil
		}
		mon := m.mon
		mon.lines = append(mon.lines, msg.lines...)
		if over := len(mon.lines) - maxMonitorLines; over > 0 {
			mon.lines = append(mon.lines[:0:0], mon.lines[over:]...)
		}
		if mon.paused {
			mon.held += len(msg.lines)
		}
		m.refreshMonitor()
		if msg.closed {
			mon.closed = true
			m.logf(slog.LevelInfo, "monitor %s: port closed", mon.name)
			return nil
		}
		return m.rearmMonitor(msg.session)
	case resetDoneMsg:
		if msg.err != nil {
			m.fail("reset into app: " + msg.err.Error())
		} else {
			m.logf(slog.LevelInfo, "reset into app")
		}
	}
	return nil
}

// rearmMonitor keeps draining the session's channel.
func (m *Model) rearmMonitor(session int) tea.Cmd {
	return waitMonitor(m.ctx, session, m.mon.ch)
}

func (m *Model) monitorKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	mon := m.mon
	switch {
	case key.Matches(msg, k.Back):
		m.closeMonitor()
		m.screen = screenDetail
		return nil
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case mon == nil:
		return nil
	case key.Matches(msg, k.Pause):
		mon.paused = !mon.paused
		if !mon.paused {
			mon.held = 0
			m.refreshMonitor()
		}
		return nil
	case key.Matches(msg, k.ResetApp):
		r := m.rowByKey(mon.row)
		if r == nil || r.ser == nil {
			return nil
		}
		src, ctx, d := m.be.Monitor, m.ctx, *r.ser
		return func() tea.Msg { return resetDoneMsg{err: src.ResetIntoApp(ctx, d)} }
	case key.Matches(msg, k.Filter):
		m.prompt = newInputPrompt("Filter the monitor", []string{"Show only lines containing this text (tag or message); empty shows all."}, "text", false,
			func(m *Model, v string) tea.Cmd {
				if m.mon != nil {
					m.mon.filter = strings.TrimSpace(v)
					m.refreshMonitor()
				}
				return nil
			})
		m.prompt.input.SetValue(mon.filter)
		m.prompt.input.CursorEnd()
		return m.prompt.input.Focus()
	case key.Matches(msg, k.Save):
		return saveLines(m.cfg.SaveDir, mon.name, m.cfg.Now(), mon.lines)
	case key.Matches(msg, k.Bottom):
		mon.follow = true
		mon.vp.GotoBottom()
		return nil
	case key.Matches(msg, k.Top):
		mon.follow = false
		mon.vp.GotoTop()
		return nil
	case key.Matches(msg, k.Up):
		mon.vp.ScrollUp(1)
	case key.Matches(msg, k.Down):
		mon.vp.ScrollDown(1)
	case key.Matches(msg, k.PageUp):
		mon.vp.PageUp()
	case key.Matches(msg, k.PageDown):
		mon.vp.PageDown()
	}
	mon.follow = mon.vp.AtBottom()
	return nil
}

// renderLogLine colours the level and bolds the tag; a backtrace gets its
// decoded frames below it.
func (m Model) renderLogLine(l LogLine) []string {
	st := m.st
	var lvl string
	switch l.Level {
	case 'E':
		lvl = st.Error.Render("E")
	case 'W':
		lvl = st.Warning.Render("W")
	case 'I':
		lvl = st.Success.Render("I")
	case 'D', 'V':
		lvl = st.Faint.Render(string(rune(l.Level)))
	}
	var line string
	if l.Level == 0 {
		line = l.Text
	} else {
		ts := ""
		if !l.Time.IsZero() {
			ts = st.Faint.Render(l.Time.Format("15:04:05.000")) + " "
		}
		tag := ""
		if l.Tag != "" { // crash lines carry a level but no tag
			tag = st.Bold.Render(l.Tag) + ": "
		}
		text := l.Text
		if l.Level == 'D' || l.Level == 'V' {
			text = st.Faint.Render(text)
		}
		line = ts + lvl + " " + tag + text
	}
	out := []string{line}
	if len(l.Backtrace) > 0 {
		out = append(out, st.Border.Render("  ┌ decoded backtrace"))
		for _, f := range l.Backtrace {
			fn := f.Function
			if fn == "" {
				fn = "??"
			}
			loc := ""
			if f.File != "" {
				loc = fmt.Sprintf(" at %s:%d", f.File, f.Line)
			}
			out = append(out, st.Border.Render("  │ ")+fmt.Sprintf("0x%08x %s%s", f.PC, st.Bold.Render(fn), loc))
		}
		out = append(out, st.Border.Render("  └"))
	}
	return out
}

func (m Model) monitorLines(h int) []string {
	mon := m.mon
	if mon == nil {
		return []string{"", " " + m.st.Faint.Render("The monitor is closed. esc goes back.")}
	}
	state := "following"
	switch {
	case mon.yielded != 0:
		state = m.st.Warning.Render("port lent to a flash; reattaches after it")
	case mon.waiting:
		state = m.st.Warning.Render("waiting for the chip and partition reads to release the port")
	case mon.closed && mon.err != "":
		state = m.st.Error.Render("closed: " + mon.err)
	case mon.closed:
		state = m.st.Warning.Render("port closed")
	case mon.paused:
		state = m.st.Warning.Render(fmt.Sprintf("paused, %d new line%s held", mon.held, plural(mon.held)))
	case !mon.follow:
		state = m.st.Warning.Render("scrolled back · G follows the tail")
	}
	if mon.filter != "" {
		state += m.st.Faint.Render(fmt.Sprintf("  %s  filter %q", m.glyphs.dot, mon.filter))
	}
	r := m.rowByKey(mon.row)
	port := ""
	if r != nil && r.ser != nil {
		port = r.ser.Port
	}
	title := fmt.Sprintf(" %s  %s  monitor %s  %s  %d lines  %s  %s", m.st.Title.Render(mon.name), m.glyphs.dot, port, m.glyphs.dot, len(mon.lines), m.glyphs.dot, state)
	body := strings.Split(mon.vp.View(), "\n")
	if len(mon.lines) == 0 {
		body = []string{m.st.Faint.Render(" waiting for output… (ctrl+r resets the board into its app)")}
	}
	head := wrapStyled(title, m.width, 2)
	if over := len(head) + len(body) - h; over > 0 && over < len(body) {
		body = body[over:] // a wrapped title costs the oldest lines, never the tail
	}
	return append(head, body...)
}

// plainLogLine is a line as saved to a file: no colour.
func plainLogLine(l LogLine) string {
	var b strings.Builder
	if !l.Time.IsZero() {
		b.WriteString(l.Time.Format("15:04:05.000 "))
	}
	if l.Level != 0 {
		fmt.Fprintf(&b, "%c ", rune(l.Level))
		if l.Tag != "" {
			fmt.Fprintf(&b, "%s: ", l.Tag)
		}
	}
	b.WriteString(l.Text)
	for _, f := range l.Backtrace {
		fmt.Fprintf(&b, "\n    0x%08x %s at %s:%d", f.PC, f.Function, f.File, f.Line)
	}
	return b.String()
}

// saveLines writes the monitor's lines to a file named after the board and time.
func saveLines(dir, name string, now time.Time, lines []LogLine) tea.Cmd {
	lines = append([]LogLine(nil), lines...)
	return func() tea.Msg {
		if dir == "" {
			dir = "."
		}
		safe := strings.Map(func(r rune) rune {
			if r == '/' || r == '\\' || r == ' ' || r == ':' {
				return '_'
			}
			return r
		}, name)
		path := filepath.Join(dir, fmt.Sprintf("espdeck-monitor-%s-%s.log", safe, now.Format("20060102-150405")))
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(plainLogLine(l))
			b.WriteByte('\n')
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return noticeMsg{err: fmt.Errorf("save the monitor output: %w; check that %s is writable", err, dir)}
		}
		return noticeMsg{text: fmt.Sprintf("saved %d lines to %s", len(lines), path)}
	}
}

// monitorScreen is a serial board's output.
type monitorScreen struct{}

func (monitorScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.monitorKey(msg) }
func (monitorScreen) view(m Model, h int) []string                 { return m.monitorLines(h) }
func (monitorScreen) resize(m *Model)                              { m.resizeMonitor() }
func (monitorScreen) layout() screenLayout                         { return screenLayout{} }

func (monitorScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	paused := m.mon != nil && m.mon.paused
	p := k.Pause
	if paused {
		p = describedAs(p, "resume")
	}
	nav = []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Bottom, k.Back}
	act = []key.Binding{p, k.ResetApp, k.Save}
	view = []key.Binding{k.Filter, k.Log, k.Help}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}
