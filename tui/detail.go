package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// chipState is the ROM facts of a serial board, once read.
type chipState struct {
	info   ChipInfo
	err    error
	loaded bool
}

// openDetail shows a row and starts reading what only the board can tell.
func (m *Model) openDetail(r *row) tea.Cmd {
	m.screen = screenDetail
	m.current = r.key
	var cmds []tea.Cmd
	if r.ser != nil && m.be.Serial != nil {
		if _, ok := m.chips[r.key]; !ok {
			m.chips[r.key] = chipState{}
			cmds = append(cmds, readChipInfo(m.ctx, m.be.Serial, r.key, *r.ser))
		}
	}
	if r.ser != nil && m.be.Partitions != nil {
		if _, ok := m.parts[r.key]; !ok {
			m.parts[r.key] = &partsState{busy: true}
			cmds = append(cmds, readPartitions(m.ctx, m.be.Partitions, r.key, *r.ser))
		}
	}
	return tea.Batch(cmds...)
}

func (m *Model) detailKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	r := m.rowByKey(m.current)
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenList
		return nil
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case r == nil:
		return nil
	case key.Matches(msg, k.Flash):
		return m.startFlow([]string{r.key})
	case key.Matches(msg, k.Partitions) && r.ser != nil && m.be.Partitions != nil:
		return m.openPartitions(r)
	case key.Matches(msg, k.Monitor) && r.ser != nil && m.be.Monitor != nil:
		return m.openMonitor(r)
	case key.Matches(msg, k.Retry):
		return m.retry(r)
	case key.Matches(msg, k.SerialFlash) && r.ser != nil && r.net != nil:
		return m.startSerialRecovery(r)
	case key.Matches(msg, k.Cancel):
		m.cancelJob(m.jobFor(r))
	}
	return nil
}

func (m Model) detailLines(h int) []string {
	r := m.rowByKey(m.current)
	if r == nil {
		return []string{"", " " + m.st.Faint.Render("This device is gone from discovery. esc goes back.")}
	}
	g := m.glyphs
	st := m.st
	now := m.cfg.Now()
	title := " " + st.Title.Render(r.name) + st.Faint.Render(fmt.Sprintf("  %s  %s  %s  %s", g.dot, rowKind(r), g.dot, rowAddress(r)))
	lines := []string{title}
	field := func(name, value string) string { return " " + st.Faint.Render(pad(name, 11)) + value }
	if d := r.net; d != nil {
		pw, pwLabel := "no", "password"
		switch {
		case d.Kind == KindESPHome:
			// ESPHome does not advertise whether it asks for a password
			// or encrypts; the first upload learns both.
			pwLabel = "auth"
			pw = "not advertised (learned on first upload)"
			if d.AuthScheme != "" {
				pw = d.AuthScheme
			}
			if _, ok := m.passwords[r.key]; ok {
				pw += " · remembered for this run"
			}
		case d.AuthRequired:
			pw = "yes"
			if d.AuthScheme != "" {
				pw += " (" + d.AuthScheme + ")"
			} else {
				pw += " (scheme learned on first upload)"
			}
			if _, ok := m.passwords[r.key]; ok {
				pw += " · remembered for this run"
			}
		}
		lines = append(lines, field("board", orUnknown(d.Board)+"   "+pwLabel+" "+pw))
		seen := "seen"
		if d.Interface != "" {
			seen += " on " + d.Interface
		}
		if !d.FirstSeen.IsZero() {
			seen += " since " + d.FirstSeen.Format("15:04")
		}
		switch d.Presence {
		case PresenceUnchecked:
			seen = "added by hand; nothing has answered from this address yet (a flash sends it an invitation, and it shows online once it answers)"
		case PresenceOnline:
			seen += ", answering"
		default:
			if !d.LastSeen.IsZero() {
				seen += ", last answer " + age(now.Sub(d.LastSeen)) + " ago"
			}
		}
		lines = append(lines, field("network", d.Address+"  "+seen))
		if len(d.TXT) > 0 {
			var kv []string
			for _, k := range sortedKeys(d.TXT) {
				kv = append(kv, k+"="+d.TXT[k])
			}
			lines = append(lines, field("TXT", strings.Join(kv, "  ")))
		}
	}
	if mac := firstNonEmpty(macOf(r.net), macOf(r.ser)); mac != "" {
		lines = append(lines, field("MAC", mac))
	}
	if d := r.ser; d != nil {
		mode := map[SerialMode]string{SerialDownload: "in download mode (ROM bootloader)", SerialApp: "running its app"}[d.SerialMode]
		if mode == "" {
			mode = "not talked to yet (its mode shows once espdeck reads the chip)"
			if c, ok := m.chips[r.key]; ok && c.loaded && c.err == nil {
				mode = "the ROM bootloader answered (download mode)"
			}
		}
		lines = append(lines, field("serial", d.Port+"  "+mode))
		if usb := usbFacts(d.TXT); usb != "" {
			lines = append(lines, field("USB", usb))
		}
		if c, ok := m.chips[r.key]; ok {
			switch {
			case !c.loaded:
				lines = append(lines, field("chip", st.Faint.Render("asking the ROM bootloader…")))
			case c.err != nil:
				lines = append(lines, field("chip", st.Error.Render(c.err.Error())))
			default:
				lines = append(lines, chipLines(c.info, field, st.Warning.Render, g)...)
			}
		}
	}
	if j := m.jobFor(r); j != nil {
		lines = append(lines, m.jobDetail(j, field)...)
	}
	actions := []string{"f flash"}
	if r.ser != nil && m.be.Partitions != nil {
		actions = append(actions, "p partitions")
	}
	if r.ser != nil && m.be.Monitor != nil {
		actions = append(actions, "m monitor")
	}
	actions = append(actions, "esc back")
	lines = append(lines, " "+st.Border.Render(strings.Repeat(m.glyphs.hline, max(m.width-2, 1))))
	lines = append(lines, " "+st.Faint.Render(strings.Join(actions, "   ")))
	if ps := m.parts[r.key]; ps != nil && len(lines) < h-3 {
		lines = append(lines, "")
		lines = append(lines, m.partitionTable(r, ps, -1, h-len(lines))...)
	}
	return lines
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func macOf(d *Device) string {
	if d == nil {
		return ""
	}
	return d.MAC
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func usbFacts(txt map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(txt) {
		parts = append(parts, k+" "+txt[k])
	}
	return strings.Join(parts, "  ")
}

func chipLines(c ChipInfo, field func(string, string) string, warn func(...string) string, g glyphs) []string {
	chip := c.Chip
	if c.Revision != "" {
		chip += " " + c.Revision
	}
	var extra []string
	if c.FlashID != "" {
		extra = append(extra, "flash id "+c.FlashID)
	}
	if c.FlashSize > 0 {
		extra = append(extra, fmt.Sprintf("%d MB flash", c.FlashSize>>20))
	}
	if c.Crystal != "" {
		extra = append(extra, "crystal "+c.Crystal)
	}
	out := []string{field("chip", chip+"  "+strings.Join(extra, " "+g.dot+" "))}
	if len(c.Features) > 0 {
		out = append(out, field("features", strings.Join(c.Features, ", ")))
	}
	onOff := func(name string, on bool) string {
		if on {
			return warn(name + " ON")
		}
		return name + " off"
	}
	out = append(out, field("security", onOff("secure boot", c.SecureBoot)+"  "+onOff("flash encryption", c.FlashEncryption)+"  "+onOff("secure download", c.SecureDownload)))
	return out
}

// stagesOf lists a route's stages in order.
func stagesOf(r Route) []string {
	if r == RouteSerial {
		return []string{"sync", "erase", "write", "verify", "reset"}
	}
	return []string{"invite", "auth", "connect", "transfer", "finalize"}
}

// jobDetail is the stage list of a running job, or the last result.
func (m Model) jobDetail(j *job, field func(string, string) string) []string {
	g := m.glyphs
	st := m.st
	switch j.state {
	case jobRunning, jobQueued:
		stages := stagesOf(j.req.Route)
		var parts []string
		reached := false
		for _, s := range stages {
			switch {
			case s == j.stage:
				reached = true
				cur := s
				if j.total > 0 {
					cur += fmt.Sprintf(" %.0f%%", j.percent()*100)
				}
				if j.note != "" {
					cur += " (" + j.note + ")"
				}
				parts = append(parts, st.Bold.Render(g.cursor+" "+cur))
			case !reached && contains(j.stages, s):
				parts = append(parts, s+" "+g.ok)
			case !reached && j.stage != "":
				// skipped (no password asked, say): not worth a mark
			default:
				parts = append(parts, st.Faint.Render(s))
			}
		}
		return []string{field("flashing", j.req.File), field("", strings.Join(parts, " "+g.dot+" "))}
	case jobDone:
		return []string{field("last flash", fmt.Sprintf("%s  %s  %s  %s", j.started.Format("15:04"), j.req.File, doneSummary(j.result), st.Success.Render(g.ok+" done")))}
	case jobFailed:
		room := max(m.width-13, 20)
		out := []string{field("last flash", fmt.Sprintf("%s  %s  %s", j.started.Format("15:04"), j.req.File, st.Error.Render(g.fail+" failed")))}
		for _, l := range wrap(j.result.Error, room) {
			out = append(out, field("", st.Error.Render(l)))
		}
		for i, l := range wrap(j.result.Hint, room-6) {
			if j.result.Hint == "" {
				break
			}
			if i == 0 {
				out = append(out, field("", st.Warning.Render("hint: ")+l))
			} else {
				out = append(out, field("", "      "+l))
			}
		}
		next := "r retries"
		if r := m.rowByKey(j.row); r != nil && r.ser != nil && j.req.Route == RouteNetwork {
			next += " · s flashes it over " + r.ser.Port + " instead (serial recovery works without the network)"
		}
		for _, l := range wrap(next, room) {
			out = append(out, field("", st.Faint.Render(l)))
		}
		return out
	case jobCanceled:
		return []string{field("last flash", j.req.File+"  "+st.Warning.Render("cancelled")+st.Faint.Render("  r retries"))}
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// detailScreen is one board in full.
type detailScreen struct{}

func (detailScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.detailKey(msg) }
func (detailScreen) view(m Model, h int) []string                 { return m.detailLines(h) }
func (detailScreen) resize(m *Model)                              {}
func (detailScreen) layout() screenLayout                         { return screenLayout{wrap: true, jobsBelow: true} }

func (detailScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	r := m.rowByKey(m.current)
	ser := r != nil && r.ser != nil
	j := m.jobFor(r)
	nav = []key.Binding{k.Back}
	act = []key.Binding{enabledIf(k.Flash, r != nil), enabledIf(k.Partitions, ser && m.be.Partitions != nil), enabledIf(k.Monitor, ser && m.be.Monitor != nil),
		enabledIf(k.Retry, j != nil && j.state == jobFailed), enabledIf(k.SerialFlash, ser && r.net != nil && j != nil && j.state == jobFailed), enabledIf(k.Cancel, j != nil && j.running())}
	view = []key.Binding{k.Log, k.Help}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}
