package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// The jobs screen (J) lists every job, running ones first; enter shows one
// job in full: its stages, the whole error sentence and the hint that the
// one-line summary in the Jobs box leaves out.

func (m *Model) openJobs() {
	m.screen = screenJobs
	m.jobCursor = min(m.jobCursor, max(len(m.jobs)-1, 0))
}

// jobAtCursor is the job under the jobs screen's cursor.
func (m Model) jobAtCursor() *job {
	js := m.jobsOrdered()
	if m.jobCursor >= 0 && m.jobCursor < len(js) {
		return js[m.jobCursor]
	}
	return nil
}

// dismissJob forgets a finished job; a running one stays.
func (m *Model) dismissJob(j *job) {
	if j == nil || j.running() {
		return
	}
	kept := m.jobs[:0]
	for _, x := range m.jobs {
		if x != j {
			kept = append(kept, x)
		}
	}
	m.jobs = kept
	m.jobCursor = min(m.jobCursor, max(len(m.jobs)-1, 0))
}

// dismissFinished forgets every finished job.
func (m *Model) dismissFinished() {
	kept := m.jobs[:0]
	for _, x := range m.jobs {
		if x.running() {
			kept = append(kept, x)
		}
	}
	m.jobs = kept
	m.jobCursor = min(m.jobCursor, max(len(m.jobs)-1, 0))
}

func (m *Model) jobsKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	j := m.jobAtCursor()
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenList
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Up):
		m.jobCursor = max(m.jobCursor-1, 0)
	case key.Matches(msg, k.Down):
		m.jobCursor = min(m.jobCursor+1, max(len(m.jobs)-1, 0))
	case key.Matches(msg, k.Enter) && j != nil:
		m.jobShown = j.id
		m.screen = screenJobDetail
	case key.Matches(msg, k.DismissJob):
		m.dismissJob(j)
	case key.Matches(msg, k.DismissAll):
		m.dismissFinished()
	case key.Matches(msg, k.Retry) && j != nil:
		return m.retry(m.rowByKey(m.resolveKey(j.row)))
	case key.Matches(msg, k.Cancel) && j != nil:
		m.cancelJob(j)
	}
	return nil
}

func (m *Model) jobDetailKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	j := m.jobByID(m.jobShown)
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenJobs
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case j == nil:
	case key.Matches(msg, k.DismissJob) && j.finished():
		m.dismissJob(j)
		m.screen = screenJobs
	case key.Matches(msg, k.Retry):
		return m.retry(m.rowByKey(m.resolveKey(j.row)))
	case key.Matches(msg, k.SerialFlash):
		return m.startSerialRecovery(m.rowByKey(m.resolveKey(j.row)))
	case key.Matches(msg, k.Cancel):
		m.cancelJob(j)
	}
	return nil
}

func (m Model) jobsLines(h int) []string {
	st := m.st
	lines := []string{" " + st.Title.Render("Jobs") + st.Faint.Render(fmt.Sprintf("  %s  %d running, %d finished", m.glyphs.dot, m.activeJobs(), len(m.jobs)-m.activeJobs()))}
	if len(m.jobs) == 0 {
		return append(lines, "", " "+st.Faint.Render("No jobs. f on the device list flashes a board."))
	}
	nameW := 4
	for _, j := range m.jobs {
		nameW = max(nameW, len([]rune(j.name)))
	}
	nameW = min(nameW, 18)
	inner := m.width - 3
	js := m.jobsOrdered()
	n := max(h-1, 1)
	off := scrollOffset(m.jobCursor, len(js), n)
	for i := off; i < len(js) && i < off+n; i++ {
		j := js[i]
		var l string
		switch j.state {
		case jobQueued:
			l = "  " + pad(j.name, nameW) + "  " + st.Faint.Render("queued")
		case jobRunning:
			l = "  " + pad(j.name, nameW) + "  " + m.progressLine(j, inner-nameW-4)
		default:
			l = m.finishedLine(j, nameW, inner)
		}
		cur := "  "
		if i == m.jobCursor {
			cur = m.glyphs.cursor + " "
		}
		lines = append(lines, cur+l)
	}
	return lines
}

func (m Model) jobDetailLines(h int) []string {
	st := m.st
	j := m.jobByID(m.jobShown)
	if j == nil {
		return []string{"", " " + st.Faint.Render("This job was dismissed. esc goes back.")}
	}
	field := func(name, value string) string { return " " + st.Faint.Render(pad(name, 11)) + value }
	via := "network " + j.req.Device.Address
	if j.req.Route == RouteSerial {
		via = "serial " + j.req.Device.Port
	}
	lines := []string{" " + st.Title.Render(j.name) + st.Faint.Render(fmt.Sprintf("  %s  job %d  %s  %s", m.glyphs.dot, j.id, m.glyphs.dot, via))}
	lines = append(lines, field("file", j.req.File))
	if !j.started.IsZero() {
		when := j.started.Format("15:04:05")
		if !j.ended.IsZero() {
			when += " to " + j.ended.Format("15:04:05")
		}
		lines = append(lines, field("time", when))
	}
	if j.session != "" {
		lines = append(lines, field("session", j.session))
	}
	if j.req.Force {
		lines = append(lines, field("forced", st.Warning.Render("sent past a failed pre-flight check")))
	}
	if len(j.stages) > 0 {
		lines = append(lines, field("stages", strings.Join(j.stages, " "+m.glyphs.dot+" ")))
	}
	lines = append(lines, m.jobDetail(j, field)...)
	return lines
}

// jobsScreen is every flash job.
type jobsScreen struct{}

func (jobsScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.jobsKey(msg) }
func (jobsScreen) view(m Model, h int) []string                 { return m.jobsLines(h) }
func (jobsScreen) resize(m *Model)                              {}
func (jobsScreen) layout() screenLayout                         { return screenLayout{} }

func (jobsScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	j := m.jobAtCursor()
	nav = []key.Binding{k.Up, k.Down, enabledIf(describedAs(k.Enter, "job detail"), j != nil), k.Back}
	act = []key.Binding{enabledIf(k.DismissJob, j != nil && j.finished()), enabledIf(k.DismissAll, len(m.jobs) > m.activeJobs()),
		enabledIf(k.Retry, j != nil && (j.state == jobFailed || j.state == jobCanceled)), enabledIf(k.Cancel, j != nil && j.running())}
	view = []key.Binding{k.Log, k.Help}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}

// jobDetailScreen is one job in full.
type jobDetailScreen struct{}

func (jobDetailScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.jobDetailKey(msg) }
func (jobDetailScreen) view(m Model, h int) []string                 { return m.jobDetailLines(h) }
func (jobDetailScreen) resize(m *Model)                              {}
func (jobDetailScreen) layout() screenLayout                         { return screenLayout{wrap: true} }

func (jobDetailScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	j := m.jobByID(m.jobShown)
	r := (*row)(nil)
	if j != nil {
		r = m.rowByKey(m.resolveKey(j.row))
	}
	nav = []key.Binding{k.Back}
	act = []key.Binding{enabledIf(k.DismissJob, j != nil && j.finished()), enabledIf(k.Retry, j != nil && (j.state == jobFailed || j.state == jobCanceled)),
		enabledIf(k.SerialFlash, j != nil && j.state == jobFailed && r != nil && r.ser != nil && r.net != nil), enabledIf(k.Cancel, j != nil && j.running())}
	view = []key.Binding{k.Log, k.Help}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}
