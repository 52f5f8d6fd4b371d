package tui

import (
	"fmt"
	"log/slog"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/espdeck/espdeck/internal/humanize"
)

type flowStep int

const (
	flowFile   flowStep = iota // choosing the file
	flowReview                 // facts and verdicts shown, waiting for enter or F
)

// flashFlow is the flash dialog: file, facts, verdict, force, password.
type flashFlow struct {
	targets     []string // row keys
	step        flowStep
	input       textinput.Model
	recentIdx   int // -1: none chosen from the recent list
	completions []string
	seq         int
	inspecting  bool
	path        string
	facts       *ImageFacts
	verdicts    map[string]Verdict
	err         string
	forced      bool
	viaSerial   bool // serial recovery: use the board's serial port even if the network answers
	// asCampaign: the reviewed boards go to the campaign engine (canary
	// first, threshold, confirmation) instead of becoming plain jobs.
	asCampaign bool
}

// sendTargets are the boards enter (or p) sends to: all of them when they
// all passed or were forced, else none.
func (f *flashFlow) sendTargets() []string {
	if f.facts != nil && (f.allOK() || f.forced) {
		return f.targets
	}
	return nil
}

// asCampaign says whether sending to targets runs a campaign: a group
// flash does whenever a campaign engine is there; one board is a job.
func (m Model) asCampaign(targets []string) bool {
	return len(targets) >= 2 && m.be.Campaigns != nil
}

// jobTargets are the boards J sends to as plain jobs: what enter would
// send, else the ones that passed; nil when J does not apply (one board,
// or no campaign to choose instead of).
func (m Model) jobTargets() []string {
	f := m.flow
	if f == nil || f.facts == nil || len(f.targets) < 2 || m.be.Campaigns == nil {
		return nil
	}
	if t := f.sendTargets(); t != nil {
		return t
	}
	if p := f.passed(); len(p) > 0 {
		return p
	}
	return nil
}

func (f *flashFlow) allOK() bool {
	for _, v := range f.verdicts {
		if v.Kind != VerdictOK {
			return false
		}
	}
	return len(f.verdicts) > 0
}

// passed lists the targets whose pre-flight passed.
func (f *flashFlow) passed() []string {
	var out []string
	for _, rk := range f.targets {
		if v, ok := f.verdicts[rk]; ok && v.Kind == VerdictOK {
			out = append(out, rk)
		}
	}
	return out
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// forceable: something failed, and nothing failed that may not be forced.
func (f *flashFlow) forceable() bool {
	if f.facts == nil || f.allOK() || f.forced {
		return false
	}
	for _, v := range f.verdicts {
		if v.Kind == VerdictRefused {
			return false
		}
	}
	return true
}

// route picks how to reach a row: the network while it answers, else serial.
func route(r *row) (Device, Route) {
	if r.net != nil && (r.net.Presence != PresenceOffline || r.ser == nil) {
		return *r.net, RouteNetwork
	}
	return *r.ser, RouteSerial
}

func (m *Model) startFlowForList() tea.Cmd {
	var targets []string
	for _, r := range m.rows {
		if m.marked[r.key] {
			targets = append(targets, r.key)
		}
	}
	if len(targets) == 0 {
		r := m.cursorRow()
		if r == nil {
			return nil
		}
		targets = []string{r.key}
	}
	return m.startFlow(targets)
}

// startSerialRecovery flashes a row over its serial port after a network
// failure: the same board, reached without the network.
func (m *Model) startSerialRecovery(r *row) tea.Cmd {
	if r == nil || r.ser == nil {
		return nil
	}
	cmd := m.startFlow([]string{r.key})
	if m.flow != nil {
		m.flow.viaSerial = true
		if j := m.jobFor(r); j != nil {
			m.flow.input.SetValue(j.req.File)
			m.flow.input.CursorEnd()
		}
	}
	return cmd
}

func (m *Model) startFlow(targets []string) tea.Cmd {
	if m.be.Flasher == nil || m.be.Images == nil {
		m.fail("flashing is not available in this build of the workbench; use espdeck ota or espdeck serial write")
		return nil
	}
	for _, t := range targets {
		if j := m.jobFor(m.rowByKey(t)); j != nil && j.running() {
			m.fail(fmt.Sprintf("%s is being flashed already; wait for it or press c to cancel it", j.name))
			return nil
		}
	}
	in := textinput.New()
	in.Prompt = "file: "
	in.Placeholder = "path to a .bin image (tab completes)"
	in.SetWidth(max(m.width-14, 20))
	if rec := m.recent(); len(rec) > 0 {
		// Not prefilled: typing starts a new path; enter alone takes this one.
		in.Placeholder = rec[0] + "  (enter takes it; tab completes)"
	}
	m.flow = &flashFlow{targets: targets, input: in, recentIdx: -1}
	return m.flow.input.Focus()
}

// recent is the recent files, newest first.
func (m Model) recent() []string { return m.cfg.RecentFiles }

func (m *Model) rememberFile(p string) {
	out := []string{p}
	for _, r := range m.cfg.RecentFiles {
		if r != p && len(out) < 8 {
			out = append(out, r)
		}
	}
	m.cfg.RecentFiles = out
}

// targetDevice is the device an inspection and a job are for, with the
// chip learned from the ROM when the discovery sighting lacks it.
func (m Model) targetDevice(rk string) (Device, Route) {
	r := m.rowByKey(rk)
	if r == nil { // gone from discovery while the dialog was open
		return Device{Name: rk}, RouteNetwork
	}
	d, rt := route(r)
	if m.flow != nil && m.flow.viaSerial && r.ser != nil {
		d, rt = *r.ser, RouteSerial
	}
	if d.Chip == "" {
		if c, ok := m.chips[rk]; ok && c.err == nil && c.info.Chip != "" {
			d.Chip = c.info.Chip
		} else if r.ser != nil && r.ser.Chip != "" {
			d.Chip = r.ser.Chip
		} else if r.net != nil && r.net.Chip != "" {
			d.Chip = r.net.Chip
		}
	}
	return d, rt
}

// send sends the reviewed image to targets: as a campaign when several
// boards get it (unless asJobs), else as jobs. Boards left out are named
// in the log with their reason. While another campaign runs, a group
// waits: enter does nothing and the review says J sends plain jobs.
func (m *Model) send(targets []string, asJobs bool) tea.Cmd {
	f := m.flow
	campaign := !asJobs && m.asCampaign(targets)
	if campaign && !m.campaignAllowed() {
		return nil
	}
	in := map[string]bool{}
	for _, rk := range targets {
		in[rk] = true
	}
	what := "flashing"
	if campaign {
		what = "in the campaign"
	}
	for _, rk := range f.targets {
		if v := f.verdicts[rk]; !in[rk] && v.Kind != VerdictOK {
			m.logf(slog.LevelWarn, "not %s %s: %s", what, m.rowName(rk), v.Reason)
		}
	}
	f.targets, f.asCampaign = targets, campaign
	return m.proceedFlow()
}

func (m *Model) flowKey(msg tea.KeyPressMsg) tea.Cmd {
	f := m.flow
	k := m.keys
	if f.step == flowReview {
		switch {
		case key.Matches(msg, k.Back):
			f.step, f.facts, f.verdicts, f.forced = flowFile, nil, nil, false
			return f.input.Focus()
		case key.Matches(msg, k.Enter):
			if t := f.sendTargets(); t != nil {
				return m.send(t, false)
			}
		case key.Matches(msg, k.PassedOnly):
			if ok := f.passed(); len(ok) > 0 && !f.allOK() && !f.forced {
				return m.send(ok, false)
			}
		case key.Matches(msg, k.AsJobs):
			if t := m.jobTargets(); t != nil {
				return m.send(t, true)
			}
		case key.Matches(msg, k.Force):
			if f.forceable() {
				reason := ""
				for _, rk := range f.targets {
					if v := f.verdicts[rk]; v.Kind != VerdictOK {
						if reason != "" {
							reason += "; "
						}
						if len(f.targets) > 1 {
							reason += m.rowName(rk) + ": "
						}
						reason += v.Reason
					}
				}
				m.prompt = newConfirm("Force the flash?", []string{
					"The pre-flight check failed: " + reason + ".",
					"Sending anyway can leave the board unable to boot this image; it keeps its other slot (OTA) or needs a serial re-flash.",
					"Send it anyway?",
				}, func(m *Model) tea.Cmd {
					m.flow.forced = true
					m.logf(slog.LevelWarn, "forced past pre-flight: %s", reason)
					return m.send(m.flow.targets, false)
				})
			}
		case key.Matches(msg, k.Quit):
			m.flow = nil
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Back):
		m.flow = nil
		return nil
	case key.Matches(msg, k.Enter):
		p := strings.TrimSpace(f.input.Value())
		if p == "" && len(m.recent()) > 0 {
			p = m.recent()[0]
			f.input.SetValue(p)
		}
		if p == "" {
			f.err = "type a path, or pick a recent file with ↑/↓"
			return nil
		}
		f.path, f.err, f.inspecting, f.completions = p, "", true, nil
		f.seq++
		targets := map[string]Device{}
		for _, rk := range f.targets {
			if m.rowByKey(rk) == nil {
				f.inspecting = false
				f.err = "a board of this flash is gone from discovery; esc and pick again"
				return nil
			}
			targets[rk], _ = m.targetDevice(rk)
		}
		return inspect(m.ctx, m.be.Images, f.seq, p, targets)
	case key.Matches(msg, k.Complete):
		return complete(f.input.Value())
	case msg.String() == "up" || msg.String() == "down":
		rec := m.recent()
		if len(rec) == 0 {
			return nil
		}
		if msg.String() == "up" {
			if f.recentIdx <= 0 {
				f.recentIdx = len(rec) - 1
			} else {
				f.recentIdx--
			}
		} else {
			f.recentIdx = (f.recentIdx + 1) % len(rec)
		}
		f.input.SetValue(rec[f.recentIdx])
		f.input.CursorEnd()
		return nil
	}
	var cmd tea.Cmd
	f.input, cmd = f.input.Update(msg)
	f.completions = nil
	return cmd
}

func (m *Model) applyCompletions(msg completionsMsg) {
	f := m.flow
	if f == nil || f.step != flowFile || f.input.Value() != msg.input {
		return
	}
	f.completions = msg.paths
	if len(msg.paths) == 0 {
		f.err = "nothing matches " + msg.input
		return
	}
	f.err = ""
	lcp := msg.paths[0]
	for _, p := range msg.paths[1:] {
		for !strings.HasPrefix(p, lcp) {
			lcp = lcp[:len(lcp)-1]
		}
	}
	if len(lcp) > len(msg.input) {
		f.input.SetValue(lcp)
		f.input.CursorEnd()
	}
	if len(msg.paths) == 1 {
		f.completions = nil
	}
}

func (m *Model) applyInspected(msg inspectedMsg) {
	f := m.flow
	if f == nil || msg.seq != f.seq {
		return
	}
	f.inspecting = false
	if msg.err != nil {
		f.err = msg.err.Error()
		m.logf(slog.LevelWarn, "image %s: %v", msg.path, msg.err)
		return
	}
	facts := msg.facts
	f.facts, f.verdicts, f.step = &facts, msg.verdicts, flowReview
	f.input.Blur()
	m.logf(slog.LevelInfo, "image %s", factsLine(facts, m.glyphs))
	for _, rk := range f.targets {
		v := f.verdicts[rk]
		if v.Kind != VerdictOK {
			m.logf(slog.LevelWarn, "pre-flight %s for %s: %s", msg.path, m.rowName(rk), v.Reason)
		}
		for _, w := range v.Warnings {
			m.logf(slog.LevelWarn, "pre-flight %s for %s: %s", msg.path, m.rowName(rk), w)
		}
	}
}

// proceedFlow asks for the passwords still missing, then starts the jobs.
func (m *Model) proceedFlow() tea.Cmd {
	f := m.flow
	if f == nil {
		return nil
	}
	reqs := map[string]FlashRequest{}
	for _, rk := range f.targets {
		if m.rowByKey(rk) == nil {
			m.flow = nil
			m.fail(fmt.Sprintf("%s is gone from discovery; nothing was sent. Check it is powered and reachable, then flash again", rk))
			return nil
		}
		d, rt := m.targetDevice(rk)
		if rt == RouteNetwork && d.AuthRequired && !d.PasswordStored {
			pw, ok := m.passwords[rk]
			if !ok {
				return m.askPassword(rk, "", func(m *Model, s Secret) tea.Cmd { return m.proceedFlow() })
			}
			reqs[rk] = FlashRequest{Device: d, Route: rt, File: f.path, Password: pw, Force: f.forced}
			continue
		}
		reqs[rk] = FlashRequest{Device: d, Route: rt, File: f.path, Force: f.forced}
	}
	m.rememberFile(f.path)
	m.flow = nil
	m.errMsg = ""
	m.notice = ""
	if f.asCampaign {
		return m.startCampaign(f.targets, reqs)
	}
	return m.enqueue(f.path, reqs)
}

// ---------------------------------------------------------------- view

func (m Model) flowBox(maxH int) []string {
	f := m.flow
	g := m.glyphs
	title := "Flash " + m.rowName(f.targets[0])
	if f.viaSerial {
		title += " over serial (recovery)"
	}
	if len(f.targets) > 1 {
		title = fmt.Sprintf("Flash %d devices (%d at a time)", len(f.targets), m.cfg.Concurrency)
		if m.asCampaign(f.targets) {
			title = fmt.Sprintf("Flash %d devices (canary, then %d at a time)", len(f.targets), m.cfg.Concurrency)
		}
	}
	var lines []string
	if len(f.targets) > 1 || m.isHidden(f.targets[0]) {
		// Every board this flash would touch, by name: marks made before
		// a filter stay in force, so the ones it hides are named as such.
		names := make([]string, 0, len(f.targets))
		hidden := 0
		for _, rk := range f.targets {
			n := m.rowName(rk)
			if m.isHidden(rk) {
				n += " (hidden by the filter)"
				hidden++
			}
			names = append(names, n)
		}
		lines = append(lines, wrap("to: "+strings.Join(names, ", "), m.width-4)...)
		if hidden > 0 {
			lines = append(lines, wrapStyled(m.st.Warning.Render(fmt.Sprintf("%d of these %s hidden by the filter; esc and space unmarks a board, esc on the list clears all marks", hidden, isAre(hidden))), m.width-4, 0)...)
		}
	}
	if f.step == flowFile {
		lines = append(lines, f.input.View())
		if len(f.completions) > 0 {
			lines = append(lines, m.st.Faint.Render(strings.Join(shorten(f.completions, 6), "  ")))
		}
		if rec := m.recent(); len(rec) > 0 {
			lines = append(lines, m.st.Faint.Render("recent (↑/↓):"))
			for i, r := range rec {
				if i >= 4 {
					break
				}
				mark := "  "
				if i == f.recentIdx {
					mark = g.cursor + " "
				}
				lines = append(lines, m.st.Faint.Render(mark+r))
			}
		}
	} else {
		lines = append(lines, "file: "+f.path)
	}
	if f.inspecting {
		lines = append(lines, m.st.Faint.Render("checking the image…"))
	}
	if f.err != "" {
		lines = append(lines, wrapStyled(m.st.Error.Render(g.fail+" "+f.err), m.width-4, 2)...)
	}
	if f.facts != nil {
		lines = append(lines, wrapStyled(m.st.Bold.Render(factsLine(*f.facts, g)), m.width-4, 2)...)
		for _, rk := range f.targets {
			// Verdicts and warnings wrap: they are the reason to read this box.
			lines = append(lines, wrapStyled(m.verdictLine(rk, f.verdicts[rk], len(f.targets) > 1), m.width-4, 2)...)
		}
		var next []string
		n := len(f.targets)
		switch {
		case (f.allOK() || f.forced) && m.asCampaign(f.targets) && !m.campaignAllowed():
			next = append(next, "enter waits: a campaign is running (one at a time)")
		case (f.allOK() || f.forced) && m.asCampaign(f.targets):
			next = append(next, fmt.Sprintf("enter runs the %d as a campaign: canary first, stops at the first failure", n))
		case f.allOK() || f.forced:
			next = append(next, "enter sends it")
		case f.forceable():
			next = append(next, "enter is off: the check failed", "F forces (asks again)")
		default:
			next = append(next, "this cannot be forced")
		}
		if p := f.passed(); len(p) > 0 && !f.allOK() && !f.forced {
			if m.asCampaign(p) && m.campaignAllowed() {
				next = append(next, fmt.Sprintf("p runs only the %d that passed as a campaign", len(p)))
			} else if !m.asCampaign(p) {
				next = append(next, fmt.Sprintf("p flashes only the %d that passed", len(p)))
			}
		}
		if t := m.jobTargets(); t != nil {
			next = append(next, fmt.Sprintf("J sends the %d as plain jobs, all at once", len(t)))
		}
		next = append(next, "esc: other file")
		for _, l := range wrap(strings.Join(next, " · "), m.width-4) {
			lines = append(lines, m.st.Faint.Render(l))
		}
	}
	return m.box(title, lines, m.width, min(len(lines)+2, maxH))
}

func shorten(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), fmt.Sprintf("(+%d more)", len(s)-n))
}

func factsLine(f ImageFacts, g glyphs) string {
	if f.Summary != "" {
		return f.Summary
	}
	parts := []string{f.Path}
	if f.Chip != "" {
		parts = append(parts, f.Chip+" "+f.Kind)
	} else if f.Kind != "" {
		parts = append(parts, f.Kind)
	}
	if f.Version != "" {
		parts = append(parts, f.Version)
	}
	parts = append(parts, humanize.Bytes(f.Size))
	if f.SHAKnown {
		if f.SHAOK {
			parts = append(parts, "SHA-256 ok")
		} else {
			parts = append(parts, "SHA-256 MISMATCH")
		}
	}
	return strings.Join(parts, " "+g.dot+" ")
}

func (m Model) verdictLine(rk string, v Verdict, named bool) string {
	g := m.glyphs
	prefix := ""
	if named {
		prefix = m.rowName(rk) + ": "
	}
	d, rt := m.targetDevice(rk)
	via := d.Address
	if rt == RouteSerial {
		via = "serial " + d.Port
	}
	var s string
	switch v.Kind {
	case VerdictOK:
		s = m.st.Success.Render(g.ok+" "+prefix+"pre-flight ok") + m.st.Faint.Render(" · via "+via)
	case VerdictForceable:
		s = m.st.Error.Render(g.fail + " " + prefix + v.Reason)
	default:
		s = m.st.Error.Render(g.fail + " " + prefix + v.Reason + " (refused)")
	}
	for _, w := range v.Warnings {
		s += m.st.Warning.Render(" · " + w)
	}
	return s
}
