package tui

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// A group flash is a campaign (enter or p in the review of several boards;
// J sends plain jobs instead): the canary first, alone, then the rest a
// few at a time, stopping past the failure threshold, each board counted
// as updated only when it comes back on the new version. The campaign
// screen shows one row per board and the campaign file's path; R sends
// again to the boards that failed or never started.

// campaignDefaults are the choices the TUI starts a campaign with: the
// command line's defaults (one canary, stop at the first failure after it).
var campaignDefaults = CampaignRequest{Canary: 1, MaxFailures: 0}

// campaignState is the campaign of this run and the screen's position in it.
type campaignState struct {
	view     CampaignView
	started  bool // the backend accepted it (the first view may not be here yet)
	err      string
	cursor   int
	resuming bool
	// rowOf maps a board's device ID to its row in the list, for the
	// password prompt of a resume.
	rowOf map[string]string
	// warned is how many of the view's warnings the log has shown.
	warned int
}

// campaignViewMsg is the campaign as it is now.
type campaignViewMsg struct{ view CampaignView }

// campaignStartedMsg says whether the backend could plan and start it.
type campaignStartedMsg struct {
	err    error
	resume bool
}

// campaignSink hands views to the model, the latest one winning: a slow
// screen skips intermediate views, never the final one.
func campaignSink(ch chan CampaignView) func(CampaignView) {
	return func(v CampaignView) {
		for {
			select {
			case ch <- v:
				return
			default:
			}
			select {
			case <-ch:
			default:
			}
		}
	}
}

func waitCampaign(ctx context.Context, ch <-chan CampaignView) tea.Cmd {
	return func() tea.Msg {
		select {
		case v := <-ch:
			return campaignViewMsg{view: v}
		case <-ctx.Done():
			return nil
		}
	}
}

// startCampaign runs reqs (in the order of targets) as a campaign.
func (m *Model) startCampaign(targets []string, reqs map[string]FlashRequest) tea.Cmd {
	req := campaignDefaults
	// After the canary, as many boards at once as a group flash runs.
	req.Parallel = m.cfg.Concurrency
	for _, rk := range targets {
		if r, ok := reqs[rk]; ok {
			req.Boards = append(req.Boards, r)
		}
	}
	m.camp = &campaignState{rowOf: map[string]string{}}
	for rk, r := range reqs {
		m.camp.rowOf[r.Device.ID] = rk
	}
	m.screen = screenCampaign
	m.logf(slog.LevelInfo, "campaign of %d board%s: canary first, then a few at a time", len(req.Boards), plural(len(req.Boards)))
	ctx, be, ch := m.ctx, m.be.Campaigns, m.campCh
	start := func() tea.Msg {
		return campaignStartedMsg{err: be.StartCampaign(ctx, req, campaignSink(ch))}
	}
	if m.campWaiting {
		return start
	}
	// One reader of the views for the whole run: two would hand them to
	// the model in either order.
	m.campWaiting = true
	return tea.Batch(start, waitCampaign(m.ctx, m.campCh))
}

// campaignAllowed says whether C may start a campaign now: one runs at a
// time, so that its views are not mistaken for another's.
func (m Model) campaignAllowed() bool {
	return m.be.Campaigns != nil && (m.camp == nil || (!m.camp.view.Running && !m.camp.resuming && (m.camp.started || m.camp.err != "")))
}

func (m *Model) applyCampaign(msg tea.Msg) tea.Cmd {
	c := m.camp
	if c == nil {
		return nil
	}
	switch msg := msg.(type) {
	case campaignStartedMsg:
		c.resuming = false
		if msg.err != nil {
			c.err = msg.err.Error()
			m.logf(slog.LevelError, "campaign: %v", msg.err)
			return nil
		}
		c.started, c.err = true, ""
	case campaignViewMsg:
		was := c.view.Running
		c.view = msg.view
		c.cursor = min(c.cursor, max(len(c.view.Rows)-1, 0))
		for ; c.warned < len(c.view.Warnings); c.warned++ {
			m.logf(slog.LevelWarn, "campaign %s: %s", c.view.ID, c.view.Warnings[c.warned])
		}
		if was && !c.view.Running {
			m.notice = fmt.Sprintf("campaign %s: %s", c.view.ID, campaignSummaryText(c.view.Summary))
			m.logf(slog.LevelInfo, "%s", m.notice)
			// As after a group of jobs: the marks chose this campaign's
			// boards and would choose the next flash too.
			for _, rk := range c.rowOf {
				delete(m.marked, rk)
			}
			// The demo's file goes with its folder at exit: only R resumes it.
			if c.view.File != "" && c.view.Retryable() > 0 && !m.cfg.Demo {
				m.logf(slog.LevelInfo, "campaign %s is saved in %s: R here or 'espdeck campaign resume %s' later retries the %d left",
					c.view.ID, c.view.File, c.view.File, c.view.Retryable())
			}
		}
		return waitCampaign(m.ctx, m.campCh)
	}
	return nil
}

func (m *Model) campaignKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	c := m.camp
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenList
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Up):
		c.cursor = max(c.cursor-1, 0)
	case key.Matches(msg, k.Down):
		c.cursor = min(c.cursor+1, max(len(c.view.Rows)-1, 0))
	case key.Matches(msg, k.Partitions):
		r := m.campaignUSBTwin()
		if r == nil {
			if row, ok := m.campaignRow(); ok && row.State == "rolled-back" {
				m.fail(fmt.Sprintf("%s is not on USB here: plug it in to read which slot booted and the otadata states that say why", row.Name))
			}
			return nil
		}
		cmd := m.openPartitions(r)
		m.partsFromCampaign = true
		return cmd
	case key.Matches(msg, k.Resume):
		if !m.canResume() {
			return nil
		}
		var ask []string
		for _, r := range c.view.Rows {
			if r.NeedsPassword {
				ask = append(ask, r.DeviceID)
			}
		}
		return m.resumeCampaign(ask, map[string]Secret{})
	}
	return nil
}

// campaignRow is the campaign row under the cursor.
func (m Model) campaignRow() (CampaignRow, bool) {
	c := m.camp
	if c == nil || c.cursor >= len(c.view.Rows) {
		return CampaignRow{}, false
	}
	return c.view.Rows[c.cursor], true
}

// campaignUSBTwin is the list row of the board under the cursor when that
// board rolled back and is also on USB (one row once its MAC is known):
// its partitions say which slot booted and why (otadata ABORTED, INVALID).
func (m Model) campaignUSBTwin() *row {
	cr, ok := m.campaignRow()
	if !ok || cr.State != "rolled-back" {
		return nil
	}
	rk, ok := m.camp.rowOf[cr.DeviceID]
	if !ok {
		return nil
	}
	r := m.rowByKey(m.resolveKey(rk))
	if r == nil || r.ser == nil {
		return nil
	}
	return r
}

// resumeCampaign asks for the passwords of the boards in ask, one after
// the other (a refused password is not sent again), then resumes.
func (m *Model) resumeCampaign(ask []string, passwords map[string]Secret) tea.Cmd {
	c := m.camp
	for len(ask) > 0 {
		id := ask[0]
		rk, ok := c.rowOf[id]
		if !ok || m.rowByKey(m.resolveKey(rk)) == nil {
			ask = ask[1:]
			continue
		}
		why := "The password was refused or missing in the campaign; the resume sends it."
		return m.askPassword(rk, why, func(m *Model, s Secret) tea.Cmd {
			passwords[id] = s
			return m.resumeCampaign(ask[1:], passwords)
		})
	}
	c.resuming, c.err = true, ""
	m.logf(slog.LevelInfo, "campaign %s: resuming %d board%s", c.view.ID, c.view.Retryable(), plural(c.view.Retryable()))
	ctx, be, ch, id := m.ctx, m.be.Campaigns, m.campCh, c.view.ID
	return func() tea.Msg {
		return campaignStartedMsg{err: be.ResumeCampaign(ctx, id, passwords, campaignSink(ch)), resume: true}
	}
}

func (m Model) canResume() bool {
	c := m.camp
	return c != nil && c.started && !c.resuming && !c.view.Running && c.view.ID != "" && c.view.Retryable() > 0
}

// campaignSummaryText is "3 confirmed · 1 failed · 2 untouched", zero counts left out.
func campaignSummaryText(s CampaignSummary) string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(s.Confirmed, "confirmed")
	add(s.Uploaded, "uploaded")
	add(s.Skipped, "skipped")
	add(s.Failed, "failed")
	add(s.TimedOut, "timed out")
	add(s.RolledBack, "rolled back")
	add(s.InFlight, "in flight")
	add(s.Untouched, "untouched")
	if len(parts) == 0 {
		return fmt.Sprintf("%d boards", s.Total)
	}
	return strings.Join(parts, " · ")
}

func (m Model) campaignLines(h int) []string {
	st, g := m.st, m.glyphs
	c := m.camp
	if c == nil {
		return []string{"", " " + st.Faint.Render("No campaign in this run. Mark boards and flash them: a group flash runs as one.")}
	}
	v := c.view
	title := "Campaign"
	if v.ID != "" {
		title += " " + v.ID
	}
	head := " " + st.Title.Render(title)
	if v.Image != "" {
		head += st.Faint.Render("  " + g.dot + "  " + v.Image)
	}
	lines := []string{head}
	settings := fmt.Sprintf("canary %d %s %d at a time %s stops when %s", v.Canary, g.dot, v.Parallel, g.dot, orUnknown(v.Threshold))
	if v.Confirm > 0 {
		settings += fmt.Sprintf(" %s confirm within %s", g.dot, age(v.Confirm))
	} else if v.ID != "" {
		settings += " " + g.dot + " reboots not confirmed"
	}
	lines = append(lines, " "+st.Faint.Render(settings))
	if v.File != "" {
		lines = append(lines, clip(" "+st.Faint.Render("file "+v.File), m.width))
	}
	switch {
	case c.err != "":
		lines = append(lines, wrapStyled(st.Error.Render(g.fail+" "+c.err), m.width-2, 2)...)
	case v.ID == "":
		lines = append(lines, " "+st.Faint.Render("planning…"))
	case v.StopReason != "":
		lines = append(lines, wrapStyled(st.Warning.Render(" "+v.StopReason), m.width-2, 1)...)
	case v.Interrupted:
		lines = append(lines, " "+st.Warning.Render("interrupted; R resumes it"))
	case v.Running:
		lines = append(lines, " "+st.Key.Render("running"))
	default:
		lines = append(lines, " "+st.Success.Render("finished"))
	}
	if len(v.Rows) == 0 {
		return lines
	}
	nameW := 4
	for _, r := range v.Rows {
		nameW = max(nameW, len([]rune(r.Name)))
	}
	nameW = min(nameW, 18)
	stateW, progW := 11, 11
	verW := 26
	if m.width < 100 {
		verW = 22
	}
	lines = append(lines, st.Faint.Render("    "+pad("BOARD", nameW)+" "+pad("STATE", stateW)+" "+pad("PROGRESS", progW)+" "+pad("VERSION", verW)+" CONFIRMATION"))
	room := max(h-len(lines)-3, 1)
	first := 0
	if c.cursor >= room {
		first = c.cursor - room + 1
	}
	for i := first; i < len(v.Rows) && i < first+room; i++ {
		r := v.Rows[i]
		cur := "  "
		if i == c.cursor {
			cur = st.Key.Render(g.cursor) + " "
		}
		canary := " "
		if r.Canary {
			canary = st.Warning.Render("◆")
			if m.cfg.ASCII {
				canary = st.Warning.Render("*")
			}
		}
		line := cur + canary + " " + pad(r.Name, nameW) + " " + m.campaignState(r, stateW) + " " + pad(campaignProgress(r, progW, m.cfg.ASCII), progW) + " " +
			pad(campaignVersions(r, m.cfg.ASCII), verW) + " " + st.Faint.Render(campaignConfirmation(r))
		lines = append(lines, clip(line, m.width))
	}
	lines = append(lines, " "+campaignSummaryText(v.Summary))
	if len(v.Rows) > 0 {
		r := v.Rows[c.cursor]
		why := r.Message
		if r.Hint != "" {
			why += " " + g.dot + " " + r.Hint
		}
		if r.State == "rolled-back" && m.campaignUSBTwin() != nil {
			why += " " + g.dot + " p reads its partitions over USB: which slot booted and why"
		}
		if r.Canary && why == "" {
			why = "the canary: it goes first, alone; the others wait for it to come back on the new version"
		}
		if why != "" {
			lines = append(lines, wrapStyled(st.Faint.Render(r.Name+": "+why), m.width-2, 1)...)
		}
	}
	return lines
}

func (m Model) campaignState(r CampaignRow, w int) string {
	s := pad(r.State, w)
	switch {
	case r.State == "confirmed" || r.State == "uploaded":
		return m.st.Success.Render(s)
	case r.Failed():
		return m.st.Error.Render(s)
	case r.State == "skipped" || r.State == "queued":
		return m.st.Faint.Render(s)
	}
	return m.st.Key.Render(s)
}

func campaignProgress(r CampaignRow, w int, ascii bool) string {
	fullC, emptyC := "█", "░"
	if ascii {
		fullC, emptyC = "#", "-"
	}
	switch {
	case r.State == "uploading" && r.Total > 0:
		pct := min(int(r.Done*100/r.Total), 100)
		barW := w - 5
		full := pct * barW / 100
		return strings.Repeat(fullC, full) + strings.Repeat(emptyC, barW-full) + fmt.Sprintf(" %3d%%", pct)
	case r.State == "uploading":
		return "starting"
	case r.Attempts > 1:
		return fmt.Sprintf("attempt %d", r.Attempts)
	}
	return ""
}

func campaignVersions(r CampaignRow, ascii bool) string {
	arrow := "→"
	if ascii {
		arrow = "->"
	}
	from, to := r.From, r.To
	if from == "" {
		from = "?"
	}
	if to == "" {
		to = "?"
	}
	s := from + " " + arrow + " " + to
	if r.Running != "" && r.Running != r.To {
		s += " (" + r.Running + ")"
	}
	return s
}

func campaignConfirmation(r CampaignRow) string {
	switch {
	case r.Confirmation != "":
		return strings.ReplaceAll(r.Confirmation, "-", " ")
	case r.State == "rebooting":
		return "waiting"
	case r.NeedsPassword:
		return "password: R asks"
	case r.Code != "":
		return r.Code
	}
	return ""
}

// campaignScreen is the campaign of this run.
type campaignScreen struct{}

func (campaignScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.campaignKey(msg) }
func (campaignScreen) view(m Model, h int) []string                 { return m.campaignLines(h) }
func (campaignScreen) resize(m *Model)                              {}
func (campaignScreen) layout() screenLayout                         { return screenLayout{} }

func (campaignScreen) keys(m Model) screenKeys {
	k := m.keys
	nav := []key.Binding{k.Up, k.Down, k.Back}
	n := 0
	if m.camp != nil {
		n = m.camp.view.Retryable()
	}
	desc := "resume the failed or untouched"
	if n > 0 {
		desc = fmt.Sprintf("resume the %d failed or untouched", n)
	}
	act := []key.Binding{enabledIf(describedAs(k.Resume, desc), m.canResume()),
		enabledIf(describedAs(k.Partitions, "why it rolled back (partitions over USB)"), m.campaignUSBTwin() != nil)}
	return screenKeys{nav: nav, act: act, view: []key.Binding{k.Log, k.Help}}
}
