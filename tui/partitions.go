package tui

import (
	"fmt"
	"log/slog"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// partsState is a serial board's partition state as last read.
type partsState struct {
	state  PartitionState
	err    error
	loaded bool
	busy   bool   // a read or a change is in flight
	doing  string // the change in flight, in words ("switching the boot slot to ota_0")
}

func (m *Model) openPartitions(r *row) tea.Cmd {
	m.screen, m.partsFromCampaign = screenPartitions, false
	m.current = r.key
	ps := m.parts[r.key]
	if ps == nil || (!ps.busy && ps.err != nil) {
		m.parts[r.key] = &partsState{busy: true}
		return readPartitions(m.ctx, m.be.Partitions, r.key, *r.ser)
	}
	// Start on the slot that boots next: the one people come to change.
	m.partCursor = 0
	for i, p := range ps.state.Partitions {
		if p.Name == ps.state.BootsNext {
			m.partCursor = i
		}
	}
	return nil
}

func (m *Model) applyPartitions(msg partitionsMsg) {
	msg.row = m.resolveKey(msg.row)
	ps := m.parts[msg.row]
	if ps == nil {
		ps = &partsState{}
		m.parts[msg.row] = ps
	}
	ps.busy, ps.doing = false, ""
	name := m.rowName(msg.row)
	if msg.err != nil {
		ps.err = msg.err
		if msg.action != "" {
			m.fail(fmt.Sprintf("%s on %s failed: %v", msg.action, name, msg.err))
		} else {
			m.logf(slog.LevelWarn, "read partitions of %s: %v", name, msg.err)
		}
		return
	}
	first := !ps.loaded
	if msg.action != "" && msg.state.Running == "" && ps.loaded {
		// An otadata write changes what boots next, not what runs now:
		// the app that ran before the write still runs until a reset.
		msg.state.Running = ps.state.Running
	}
	ps.state, ps.err, ps.loaded = msg.state, nil, true
	if msg.action != "" {
		m.notice = fmt.Sprintf("%s: %s. Read back: %s boots next (%s).", name, msg.action, orUnknown(msg.state.BootsNext), msg.state.BootsNextWhy)
		m.logf(slog.LevelInfo, "%s", m.notice)
	} else {
		m.logf(slog.LevelInfo, "partitions of %s: %s runs, %s boots next (%s)", name, orUnknown(msg.state.Running), orUnknown(msg.state.BootsNext), msg.state.BootsNextWhy)
	}
	if first && m.screen == screenPartitions && m.current == msg.row {
		for i, p := range msg.state.Partitions {
			if p.Name == msg.state.BootsNext {
				m.partCursor = i
			}
		}
	}
	m.partCursor = min(m.partCursor, max(len(ps.state.Partitions)-1, 0))
}

func isOTASlot(p Partition) bool {
	return p.Type == "app" && strings.HasPrefix(p.SubType, "ota_")
}

func slotLabel(p Partition) string {
	img := strings.TrimSpace(p.AppProject + " " + p.AppVersion)
	if img == "" {
		return p.Name + " (empty)"
	}
	return p.Name + " (" + img + ")"
}

// bootable says whether the bootloader would start this slot.
func bootable(p Partition) bool {
	if p.Type != "app" || p.AppVersion == "" && p.AppProject == "" {
		return false
	}
	switch p.State {
	case "invalid", "aborted", "empty":
		return false
	}
	return true
}

// fallback is what boots when otadata does not choose: factory, else the
// first OTA slot.
func fallback(s PartitionState) string {
	for _, p := range s.Partitions {
		if p.Type == "app" && p.SubType == "factory" {
			return slotLabel(p)
		}
	}
	for _, p := range s.Partitions {
		if isOTASlot(p) {
			return slotLabel(p)
		}
	}
	return "no app partition"
}

// afterInvalid predicts what boots once slot is marked invalid: the other
// bootable OTA slot, else the fallback.
func afterInvalid(s PartitionState, slot string) string {
	for _, p := range s.Partitions {
		if isOTASlot(p) && p.Name != slot && bootable(p) {
			return slotLabel(p)
		}
	}
	return fallback(s) + " (no other valid OTA slot)"
}

func (m *Model) partitionsKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	r := m.rowByKey(m.current)
	ps := m.parts[m.current]
	switch {
	case key.Matches(msg, k.Back):
		m.screen = screenDetail
		if m.partsFromCampaign {
			m.screen, m.partsFromCampaign = screenCampaign, false
		}
		return nil
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case r == nil || r.ser == nil || ps == nil:
		return nil
	case key.Matches(msg, k.Up):
		m.partCursor = max(m.partCursor-1, 0)
		return nil
	case key.Matches(msg, k.Down):
		m.partCursor = min(m.partCursor+1, max(len(ps.state.Partitions)-1, 0))
		return nil
	case key.Matches(msg, k.Refresh):
		if !ps.busy {
			ps.busy = true
			return readPartitions(m.ctx, m.be.Partitions, r.key, *r.ser)
		}
		return nil
	}
	if ps.busy || !ps.loaded || ps.err != nil {
		return nil
	}
	st := ps.state
	var sel Partition
	if m.partCursor < len(st.Partitions) {
		sel = st.Partitions[m.partCursor]
	}
	dev := *r.ser
	ctl := m.be.Partitions
	ctx := m.ctx
	rk := r.key
	untouched := "The app slots are not touched."
	if j := m.jobFor(r); j != nil && j.running() {
		m.fail(r.name + " is being flashed; change the boot slot after the job ends")
		return nil
	}
	switch {
	case key.Matches(msg, k.Switch) && (sel.SwitchQuestion != "" || sel.SwitchRefused != ""):
		// The backend's plan: the same sentence and refusal as the command line's.
		if sel.SwitchQuestion == "" {
			m.fail(sel.SwitchRefused)
			return nil
		}
		m.prompt = newConfirm("Switch boot slot on "+r.name, strings.Split(sel.SwitchQuestion, "\n"), func(m *Model) tea.Cmd {
			if ps := m.parts[m.resolveKey(rk)]; ps != nil {
				ps.busy = true
			}
			return func() tea.Msg {
				s, err := ctl.SwitchBoot(ctx, dev, sel.Name)
				return partitionsMsg{row: rk, action: "boot slot switched to " + sel.Name, state: s, err: err}
			}
		})
	case key.Matches(msg, k.Switch):
		if !isOTASlot(sel) {
			m.fail("pick an OTA app slot (ota_0, ota_1, …) with ↑/↓ first, then press s")
			return nil
		}
		if !bootable(sel) {
			m.fail(fmt.Sprintf("%s holds no valid image; flash one there before booting it", sel.Name))
			return nil
		}
		if sel.Name == st.BootsNext {
			m.notice = sel.Name + " boots next already"
			return nil
		}
		m.prompt = newConfirm("Switch boot slot on "+r.name, []string{
			fmt.Sprintf("Boot %s next time? %s", slotLabel(sel), untouched),
		}, func(m *Model) tea.Cmd {
			if ps := m.parts[m.resolveKey(rk)]; ps != nil {
				ps.busy, ps.doing = true, "switching the boot slot to "+sel.Name
			}
			return func() tea.Msg {
				s, err := ctl.SwitchBoot(ctx, dev, sel.Name)
				return partitionsMsg{row: rk, action: "boot slot switched to " + sel.Name, state: s, err: err}
			}
		})
	case key.Matches(msg, k.EraseOTA) && (st.EraseQuestion != "" || st.EraseRefused != ""):
		if st.EraseQuestion == "" {
			m.fail(st.EraseRefused)
			return nil
		}
		m.prompt = newConfirm("Erase otadata on "+r.name, strings.Split(st.EraseQuestion, "\n"), func(m *Model) tea.Cmd {
			if ps := m.parts[m.resolveKey(rk)]; ps != nil {
				ps.busy = true
			}
			return func() tea.Msg {
				s, err := ctl.EraseOTAData(ctx, dev)
				return partitionsMsg{row: rk, action: "otadata erased", state: s, err: err}
			}
		})
	case key.Matches(msg, k.EraseOTA):
		m.prompt = newConfirm("Erase otadata on "+r.name, []string{
			fmt.Sprintf("Erase otadata? Then %s boots next time. %s", fallback(st), untouched),
		}, func(m *Model) tea.Cmd {
			if ps := m.parts[m.resolveKey(rk)]; ps != nil {
				ps.busy, ps.doing = true, "erasing otadata"
			}
			return func() tea.Msg {
				s, err := ctl.EraseOTAData(ctx, dev)
				return partitionsMsg{row: rk, action: "otadata erased", state: s, err: err}
			}
		})
	case key.Matches(msg, k.MarkInvalid):
		slot := st.Running
		if isOTASlot(sel) {
			slot = sel.Name
		}
		if slot == "" {
			m.fail("the running slot is not known; pick an OTA slot with ↑/↓, then press i")
			return nil
		}
		p, _ := st.Slot(slot)
		if p.MarkInvalidQuestion != "" || p.MarkInvalidRefused != "" {
			// The backend's plan: the same sentence as the command line's.
			if p.MarkInvalidQuestion == "" {
				m.fail(p.MarkInvalidRefused)
				return nil
			}
			m.prompt = newConfirm("Mark "+slot+" invalid on "+r.name, strings.Split(p.MarkInvalidQuestion, "\n"), func(m *Model) tea.Cmd {
				if ps := m.parts[m.resolveKey(rk)]; ps != nil {
					ps.busy = true
				}
				return func() tea.Msg {
					s, err := ctl.MarkInvalid(ctx, dev, slot)
					return partitionsMsg{row: rk, action: slot + " marked invalid", state: s, err: err}
				}
			})
			return nil
		}
		m.prompt = newConfirm("Mark "+slot+" invalid on "+r.name, []string{
			fmt.Sprintf("Mark %s invalid so it is not booted again? Then %s boots next time. %s", slotLabel(p), afterInvalid(st, slot), untouched),
		}, func(m *Model) tea.Cmd {
			if ps := m.parts[m.resolveKey(rk)]; ps != nil {
				ps.busy, ps.doing = true, "marking "+slot+" invalid"
			}
			return func() tea.Msg {
				s, err := ctl.MarkInvalid(ctx, dev, slot)
				return partitionsMsg{row: rk, action: slot + " marked invalid", state: s, err: err}
			}
		})
	}
	return nil
}

// ---------------------------------------------------------------- view

func (m Model) partitionsLines(h int) []string {
	r := m.rowByKey(m.current)
	if r == nil {
		return []string{"", " " + m.st.Faint.Render("This device is gone. esc goes back.")}
	}
	ps := m.parts[m.current]
	lines := m.partitionTable(r, ps, m.partCursor, h)
	return lines
}

// partitionTable renders the table; cursor -1 shows no cursor (detail view).
func (m Model) partitionTable(r *row, ps *partsState, cursor, h int) []string {
	st := m.st
	g := m.glyphs
	if ps == nil || (!ps.loaded && ps.busy) {
		return []string{" " + st.Faint.Render("reading the partition table and otadata…")}
	}
	if ps.err != nil && !ps.loaded {
		return []string{" " + st.Error.Render(g.fail+" "+ps.err.Error()), " " + st.Faint.Render("ctrl+l reads again")}
	}
	s := ps.state
	head := fmt.Sprintf(" %s  %s  partition table at 0x%x  %s  otadata: %s", st.Title.Render(r.name), g.dot, s.TableOffset, g.dot, s.OTAData)
	if ps.busy {
		// A slot change writes otadata and then reads everything back,
		// which takes seconds over a serial line: say what is going on.
		doing := "reading the partition table and otadata again"
		if ps.doing != "" {
			doing = ps.doing + ", then reading it back"
		}
		head += st.Faint.Render("  (" + doing + ")")
	}
	lines := []string{head}
	wide := m.width >= 100
	imgCols := max(m.width-74, 30)
	if !wide {
		imgCols = max(m.width-59, 20)
	}
	hdr := fmt.Sprintf("   %-9s %-4s %-8s %-9s %-6s %-*s %-8s", "NAME", "TYPE", "SUBTYPE", "OFFSET", "SIZE", imgCols, "IMAGE", "STATE")
	if !wide {
		hdr = fmt.Sprintf("   %-8s %-7s %-8s %-5s %-*s %-8s", "NAME", "SUBTYPE", "OFFSET", "SIZE", imgCols, "IMAGE", "STATE")
	}
	lines = append(lines, st.Faint.Render(hdr))
	// The IMAGE column takes the room the terminal has, so the build date
	// shows instead of 40 empty columns beside a cut name.
	imgW := max(m.width-74, 30)
	if !wide {
		imgW = max(m.width-59, 20)
	}
	for i, p := range s.Partitions {
		img := strings.TrimSpace(p.AppProject + " " + p.AppVersion)
		if p.AppDate != "" && len([]rune(img))+2+len([]rune(p.AppDate)) <= imgW {
			img += "  " + p.AppDate
		}
		state := p.State
		if p.Type == "app" && state == "" && img != "" {
			state = "-"
		}
		var notes []string
		if p.Name == s.Running {
			notes = append(notes, "runs")
		}
		if p.Name == s.BootsNext {
			// The reason is on the summary line below the table.
			if wide {
				notes = append(notes, "boots next")
			} else {
				notes = append(notes, "next")
			}
		}
		note := ""
		if len(notes) > 0 {
			note = g.arrow + " " + strings.Join(notes, ", ")
		}
		cur := "  "
		if i == cursor {
			cur = g.cursor + " "
		}
		var line string
		if wide {
			line = fmt.Sprintf(" %s%-9s %-4s %-8s 0x%-7x %-6s %-*s %-8s", cur, p.Name, p.Type, p.SubType, p.Offset, ksize(p.Size), imgW, clipText(img, imgW), state)
		} else {
			line = fmt.Sprintf(" %s%-8s %-7s 0x%-6x %-5s %-*s %-8s", cur, clipText(p.Name, 8), clipText(p.SubType, 7), p.Offset, ksize(p.Size), imgW, clipText(img, imgW), clipText(state, 8))
		}
		switch state {
		case "valid":
			line = strings.Replace(line, "valid", st.Success.Render("valid"), 1)
		case "invalid", "aborted":
			line = strings.Replace(line, state, st.Error.Render(state), 1)
		}
		if note != "" {
			line += " " + st.Bold.Render(note)
		}
		if i == cursor {
			line = st.Cursor.Render(pad(line, m.width-1))
		}
		lines = append(lines, line)
	}
	if s.Running != "" || s.BootsNext != "" {
		lines = append(lines, fmt.Sprintf(" running %s %s boots next %s (%s)", orUnknown(s.Running), g.dot, orUnknown(s.BootsNext), s.BootsNextWhy))
	}
	if cursor >= 0 {
		lines = append(lines, "", " "+st.Faint.Render("s boot the selected slot   e erase otadata   i mark invalid   ctrl+l read again"))
	}
	return lines
}

func ksize(n uint32) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dK", n>>10)
}

func clipText(s string, w int) string {
	r := []rune(s)
	if len(r) <= w {
		return s
	}
	return string(r[:w-1]) + "…"
}

// partitionsScreen is a serial board's partitions and boot decision.
type partitionsScreen struct{}

func (partitionsScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.partitionsKey(msg) }
func (partitionsScreen) view(m Model, h int) []string                 { return m.partitionsLines(h) }
func (partitionsScreen) resize(m *Model)                              {}
func (partitionsScreen) layout() screenLayout                         { return screenLayout{wrap: true, jobsBelow: true} }

func (partitionsScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	ps := m.parts[m.current]
	ok := ps != nil && ps.err == nil && ps.loaded && !ps.busy
	nav = []key.Binding{k.Up, k.Down, k.Back}
	act = []key.Binding{enabledIf(k.Switch, ok), enabledIf(k.EraseOTA, ok), enabledIf(k.MarkInvalid, ok), enabledIf(k.Refresh, ps != nil && !ps.busy)}
	view = []key.Binding{k.Log, k.Help}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}
