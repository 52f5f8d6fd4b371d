package tui

import (
	"fmt"
	"log/slog"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// The log screen (w) is every logged event and explanation, wrapped in
// full, newest at the bottom: where a sentence too long for its place on
// another screen can always be read whole.

// logScreenKey scrolls the log screen; esc goes back where w was pressed.
func (m *Model) logScreenKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back), key.Matches(msg, k.Why):
		m.screen = m.logBack
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Up):
		m.logScroll++
	case key.Matches(msg, k.Down):
		m.logScroll = max(m.logScroll-1, 0)
	case key.Matches(msg, k.PageUp):
		m.logScroll += 10
	case key.Matches(msg, k.PageDown):
		m.logScroll = max(m.logScroll-10, 0)
	case key.Matches(msg, k.Bottom):
		m.logScroll = 0
	}
	return nil
}

// logScreenLines is every log entry wrapped in full, newest at the bottom.
func (m Model) logScreenLines(h int) []string {
	head := " " + m.st.Title.Render("Log") + m.st.Faint.Render(fmt.Sprintf("  %s  every event and explanation in full  %s  esc back", m.glyphs.dot, m.glyphs.dot))
	var lines []string
	for _, e := range m.logs {
		lvl := m.st.Faint.Render(levelWord(e.level))
		switch {
		case e.level >= slog.LevelError:
			lvl = m.st.Error.Render(levelWord(e.level))
		case e.level >= slog.LevelWarn:
			lvl = m.st.Warning.Render(levelWord(e.level))
		}
		lines = append(lines, wrapStyled(" "+m.st.Faint.Render(e.at.Format("15:04:05"))+" "+lvl+" "+e.text, m.width, 16)...)
	}
	if len(lines) == 0 {
		lines = []string{" " + m.st.Faint.Render("nothing yet")}
	}
	n := max(h-1, 1)
	end := max(len(lines)-min(m.logScroll, max(len(lines)-n, 0)), 0)
	start := max(end-n, 0)
	return append([]string{head}, lines[start:end]...)
}

// logScreen is the whole log, wrapped.
type logScreen struct{}

func (logScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.logScreenKey(msg) }
func (logScreen) view(m Model, h int) []string                 { return m.logScreenLines(h) }
func (logScreen) resize(m *Model)                              {}
func (logScreen) layout() screenLayout                         { return screenLayout{} }

func (logScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	nav = []key.Binding{describedAs(k.Up, "older"), describedAs(k.Down, "newer"), k.Back}
	view = []key.Binding{k.Help}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}
