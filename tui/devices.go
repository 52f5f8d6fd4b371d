package tui

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// row is one line of the device list: the sightings of one board. A board
// seen on the network and on a serial port is one row once its MAC ties
// the two together.
type row struct {
	key  string
	ids  []string // the sightings in this row
	name string
	net  *Device // the freshest network sighting, if any
	ser  *Device // the serial sighting, if any
}

// primary is the sighting the row is named after: network first.
func (r *row) primary() Device {
	if r.net != nil {
		return *r.net
	}
	return *r.ser
}

func (r *row) lastSeen() time.Time {
	var t time.Time
	if r.net != nil {
		t = r.net.LastSeen
	}
	if r.ser != nil && r.ser.LastSeen.After(t) {
		t = r.ser.LastSeen
	}
	return t
}

func rowKey(d Device) string {
	if d.MAC != "" {
		return "mac:" + strings.ToLower(d.MAC)
	}
	return d.ID
}

// applyDeviceEvents updates the sightings and rebuilds the rows, keeping
// the cursor on the same board.
func (m *Model) applyDeviceEvents(evs []DeviceEvent) {
	for _, ev := range evs {
		switch ev.Kind {
		case DeviceSourceStatus:
			if ev.Status != m.sourceStatus {
				if ev.Status != "" {
					m.logf(slog.LevelWarn, "discovery: %s", ev.Status)
				} else if m.sourceStatus != "" {
					m.logf(slog.LevelInfo, "discovery: working again")
				}
				m.sourceStatus = ev.Status
			}
			continue
		case DeviceRemoved:
			if d, ok := m.sightings[ev.Device.ID]; ok {
				m.logf(slog.LevelInfo, "%s gone (%s)", d.Name, where(d))
			}
			delete(m.sightings, ev.Device.ID)
		default:
			if _, ok := m.sightings[ev.Device.ID]; !ok {
				m.logf(slog.LevelInfo, "found %s (%s, %s)", ev.Device.Name, ev.Device.Kind, where(ev.Device))
			}
			m.sightings[ev.Device.ID] = ev.Device
		}
	}
	m.rebuildRows()
}

func where(d Device) string {
	if d.Kind == KindSerial {
		return d.Port
	}
	return d.Address
}

func (m *Model) rebuildRows() {
	keep := ""
	if r := m.cursorRow(); r != nil {
		keep = r.key
	}
	byKey := map[string]*row{}
	for _, id := range sortedKeys(m.sightings) {
		d := m.sightings[id]
		k := rowKey(d)
		r := byKey[k]
		if r == nil {
			r = &row{key: k}
			byKey[k] = r
		}
		r.ids = append(r.ids, id)
		if d.Kind == KindSerial {
			if r.ser == nil || d.LastSeen.After(r.ser.LastSeen) {
				r.ser = &d
			}
		} else if r.net == nil || d.LastSeen.After(r.net.LastSeen) {
			r.net = &d
		}
	}
	// A row's key changes when its MAC becomes known (a serial board's MAC
	// is learned from the ROM): carry what is known under the old key over.
	prev := map[string]string{}
	for _, r := range m.rows {
		for _, id := range r.ids {
			prev[id] = r.key
		}
	}
	for _, r := range byKey {
		for _, id := range r.ids {
			if old := prev[id]; old != "" && old != r.key && byKey[old] == nil {
				m.migrateKey(old, r.key)
				if keep == old {
					keep = r.key
				}
			}
		}
	}
	m.rows = m.rows[:0]
	for _, r := range byKey {
		r.name = r.primary().Name
		if r.name == "" {
			r.name = where(r.primary())
		}
		m.rows = append(m.rows, r)
	}
	sort.Slice(m.rows, func(i, j int) bool {
		a, b := m.rows[i], m.rows[j]
		if a.name != b.name {
			return a.name < b.name
		}
		return a.key < b.key
	})
	for k := range m.marked {
		if byKey[k] == nil {
			delete(m.marked, k)
		}
	}
	m.applyFilterKeeping(keep)
}

// migrateKey moves everything held under a row's old key to its new one.
func (m *Model) migrateKey(old, nu string) {
	m.renamed[old] = nu
	if v, ok := m.parts[old]; ok {
		if _, dup := m.parts[nu]; !dup {
			m.parts[nu] = v
		}
		delete(m.parts, old)
	}
	if v, ok := m.chips[old]; ok {
		if _, dup := m.chips[nu]; !dup {
			m.chips[nu] = v
		}
		delete(m.chips, old)
	}
	if v, ok := m.passwords[old]; ok {
		if _, dup := m.passwords[nu]; !dup {
			m.passwords[nu] = v
		}
		delete(m.passwords, old)
	}
	if m.marked[old] {
		delete(m.marked, old)
		m.marked[nu] = true
	}
	for _, j := range m.jobs {
		if j.row == old {
			j.row = nu
		}
	}
	if m.current == old {
		m.current = nu
	}
	if m.mon != nil && m.mon.row == old {
		m.mon.row = nu
	}
	if m.flow != nil {
		for i, t := range m.flow.targets {
			if t == old {
				m.flow.targets[i] = nu
			}
		}
		if v, ok := m.flow.verdicts[old]; ok {
			m.flow.verdicts[nu] = v
			delete(m.flow.verdicts, old)
		}
	}
}

// resolveKey follows row key changes, for answers to requests made under
// an older key.
func (m Model) resolveKey(k string) string {
	for range 8 {
		nu, ok := m.renamed[k]
		if !ok {
			break
		}
		k = nu
	}
	return k
}

// applyFilter recomputes the visible rows for the filter text.
func (m *Model) applyFilter() {
	keep := ""
	if r := m.cursorRow(); r != nil {
		keep = r.key
	}
	m.filterText = strings.TrimSpace(m.filter.Value())
	m.applyFilterKeeping(keep)
}

func (m *Model) applyFilterKeeping(keep string) {
	m.visible = m.visible[:0]
	q := strings.ToLower(m.filterText)
	for _, r := range m.rows {
		if q == "" || strings.Contains(r.haystack(), q) {
			m.visible = append(m.visible, r)
		}
	}
	m.cursor = 0
	for i, r := range m.visible {
		if r.key == keep {
			m.cursor = i
		}
	}
}

func (r *row) haystack() string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.name))
	for _, d := range []*Device{r.net, r.ser} {
		if d != nil {
			fmt.Fprintf(&b, " %s %s %s %s %s %s", strings.ToLower(d.Address), strings.ToLower(d.Port),
				strings.ToLower(d.Board), strings.ToLower(d.Chip), strings.ToLower(d.Kind.String()), d.MAC)
		}
	}
	return b.String()
}

// hiddenMarked lists the marked rows the filter hides, by key.
func (m Model) hiddenMarked() []string {
	if len(m.marked) == 0 || len(m.visible) == len(m.rows) {
		return nil
	}
	shown := make(map[string]bool, len(m.visible))
	for _, r := range m.visible {
		shown[r.key] = true
	}
	var out []string
	for _, r := range m.rows {
		if m.marked[r.key] && !shown[r.key] {
			out = append(out, r.key)
		}
	}
	return out
}

// isHidden says whether the filter hides the row with key k.
func (m Model) isHidden(k string) bool {
	for _, r := range m.visible {
		if r.key == k {
			return false
		}
	}
	return true
}

func (m Model) cursorRow() *row {
	if m.cursor >= 0 && m.cursor < len(m.visible) {
		return m.visible[m.cursor]
	}
	return nil
}

func (m Model) rowByKey(k string) *row {
	for _, r := range m.rows {
		if r.key == k {
			return r
		}
	}
	return nil
}

func (m Model) rowName(k string) string {
	if r := m.rowByKey(k); r != nil {
		return r.name
	}
	return k
}

// ---------------------------------------------------------------- keys

func (m *Model) listKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Up):
		m.moveCursor(-1)
	case key.Matches(msg, k.Down):
		m.moveCursor(1)
	case key.Matches(msg, k.PageDown):
		m.moveCursor(10)
	case key.Matches(msg, k.PageUp):
		m.moveCursor(-10)
	case key.Matches(msg, k.Top):
		m.cursor = 0
	case key.Matches(msg, k.Bottom):
		m.cursor = max(len(m.visible)-1, 0)
	case key.Matches(msg, k.Enter):
		if r := m.cursorRow(); r != nil {
			return m.openDetail(r)
		}
	case key.Matches(msg, k.Partitions):
		// Straight to a serial board's partitions, through its detail
		// (esc goes back there), which starts the reads it needs.
		if r := m.cursorRow(); r != nil && r.ser != nil && m.be.Partitions != nil {
			return tea.Batch(m.openDetail(r), m.openPartitions(r))
		}
	case key.Matches(msg, k.Monitor):
		if r := m.cursorRow(); r != nil && r.ser != nil && m.be.Monitor != nil {
			return tea.Batch(m.openDetail(r), m.openMonitor(r))
		}
	case key.Matches(msg, k.Mark):
		if r := m.cursorRow(); r != nil {
			if m.marked[r.key] {
				delete(m.marked, r.key)
			} else {
				m.marked[r.key] = true
			}
			m.moveCursor(1)
		}
	case key.Matches(msg, k.MarkAll):
		if len(m.marked) > 0 {
			clear(m.marked)
		} else {
			for _, r := range m.visible {
				m.marked[r.key] = true
			}
		}
	case key.Matches(msg, k.Flash):
		return m.startFlowForList()
	case key.Matches(msg, k.AddHost) && m.be.Devices != nil:
		m.prompt = newInputPrompt("Add a network device", []string{"Host name or address, with :port when it is not 3232."}, "host[:port]", false,
			func(m *Model, v string) tea.Cmd {
				addr, err := checkHostInput(v)
				if err != nil { // checked on enter already
					return nil
				}
				return addHost(m.ctx, m.be.Devices, addr)
			})
		m.prompt.check = func(v string) error { _, err := checkHostInput(v); return err }
		m.prompt.lines = append(m.prompt.lines, "It shows as not checked until it answers: typing an address does not prove a board is there.")
		return m.prompt.input.Focus()
	case key.Matches(msg, k.Filter):
		m.filtering = true
		m.filter.SetValue(m.filterText)
		m.filter.CursorEnd()
		return m.filter.Focus()
	case key.Matches(msg, k.Back):
		if m.filterText != "" {
			m.filter.SetValue("")
			m.applyFilter()
		} else if len(m.marked) > 0 {
			clear(m.marked)
		}
	case key.Matches(msg, k.DismissJob):
		if j := m.jobFor(m.cursorRow()); j != nil {
			m.dismissJob(j)
		}
	case key.Matches(msg, k.DismissAll):
		m.dismissFinished()
	case key.Matches(msg, k.Retry):
		return m.retry(m.cursorRow())
	case key.Matches(msg, k.Cancel):
		m.cancelJob(m.jobFor(m.cursorRow()))
	case key.Matches(msg, k.Refresh):
		if m.be.Devices != nil {
			src := m.be.Devices
			ctx := m.ctx
			m.logf(slog.LevelInfo, "discovery: query asked")
			return func() tea.Msg {
				if err := src.Refresh(ctx); err != nil {
					return hostAddedMsg{addr: "(refresh)", err: err}
				}
				return nil
			}
		}
	}
	return nil
}

func (m *Model) moveCursor(d int) {
	m.cursor = max(0, min(len(m.visible)-1, m.cursor+d))
}

func (m *Model) filterKey(msg tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Enter):
		m.filtering = false
		m.filter.Blur()
		return nil
	case key.Matches(msg, m.keys.Back):
		m.filtering = false
		m.filter.Blur()
		m.filter.SetValue("")
		m.applyFilter()
		return nil
	case msg.String() == "up": // not k: it is a letter of the filter
		m.moveCursor(-1)
		return nil
	case msg.String() == "down":
		m.moveCursor(1)
		return nil
	}
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(msg)
	m.applyFilter()
	return cmd
}

// ---------------------------------------------------------------- view

// column is one column of the device table. Columns with a drop rank leave
// (lowest rank first) when the terminal is too narrow, before names are cut.
type column struct {
	title string
	width int
	drop  int // 0: never dropped
	cell  func(r *row) string
}

func (m Model) devicesBox(h int) []string {
	title := "Devices"
	if m.filterText != "" {
		title += fmt.Sprintf(" · filter %q: %d of %d", m.filterText, len(m.visible), len(m.rows))
	}
	if n := len(m.marked); n > 0 {
		title += fmt.Sprintf(" · %d marked", n)
		if h := len(m.hiddenMarked()); h > 0 {
			title += fmt.Sprintf(" (%d hidden)", h)
		}
	}
	inner := m.width - 4
	if len(m.rows) == 0 {
		lines := []string{"", m.st.Faint.Render("No devices yet."), ""}
		lines = append(lines, m.st.Faint.Render("Looking for boards on the network (mDNS) and on USB serial ports."))
		lines = append(lines, m.st.Faint.Render("A board without mDNS: press a to add it by address."))
		lines = append(lines, m.st.Faint.Render("A board on USB that does not show: check the cable carries data."))
		return m.box(title, lines, m.width, h)
	}
	cols := m.deviceColumns(inner)
	var hdr strings.Builder
	hdr.WriteString("   ")
	for i, c := range cols {
		if i > 0 {
			hdr.WriteString(" ")
		}
		hdr.WriteString(pad(c.title, c.width))
	}
	lines := []string{m.st.Faint.Render(hdr.String())}
	n := h - 3 // borders and header
	if n < 1 {
		n = 1
	}
	off := scrollOffset(m.cursor, len(m.visible), n)
	for i := off; i < len(m.visible) && i < off+n; i++ {
		lines = append(lines, m.deviceLine(m.visible[i], cols, i == m.cursor, inner))
	}
	if len(m.visible) == 0 {
		lines = append(lines, m.st.Faint.Render(fmt.Sprintf("No device matches %q. esc clears the filter.", m.filterText)))
	}
	if len(m.visible) > n {
		title += fmt.Sprintf(" · %d–%d of %d", off+1, min(off+n, len(m.visible)), len(m.visible))
	}
	// The box is as tall as its rows, so the jobs sit right below them.
	return m.box(title, lines, m.width, min(h, len(lines)+2))
}

func (m Model) deviceLine(r *row, cols []column, isCursor bool, inner int) string {
	var b strings.Builder
	g := m.glyphs
	c0, c1 := " ", " "
	if isCursor {
		c0 = g.cursor
	}
	if m.marked[r.key] {
		c1 = g.mark
	}
	b.WriteString(c0 + c1 + " ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(" ")
		}
		cell := c.cell(r)
		if c.title == "STATUS" {
			cell = m.statusStyled(pad(cell, c.width), cell)
		} else {
			cell = pad(cell, c.width)
		}
		b.WriteString(cell)
	}
	line := b.String()
	if isCursor {
		return m.st.Cursor.Render(pad(line, inner))
	}
	return line
}

// statusStyled colours a padded status cell by its word.
func (m Model) statusStyled(padded, word string) string {
	w, _, _ := strings.Cut(word, " ")
	switch w {
	case "online", "done", "app":
		return m.st.Success.Render(padded)
	case "flashing", "queued", "stale", "download":
		return m.st.Warning.Render(padded)
	case "failed":
		return m.st.Error.Render(padded)
	case "offline", "idle", "not":
		return m.st.Faint.Render(padded)
	}
	return padded
}

// deviceColumns chooses the columns and widths for an inner width. When
// the terminal is narrow, columns leave in order (seen, board, kind, auth),
// then the address shrinks and leaves, and only then are names cut.
func (m Model) deviceColumns(inner int) []column {
	now := m.cfg.Now()
	maxName, maxAddr, maxStatus := 4, 7, 8
	for _, r := range m.visible {
		maxName = max(maxName, len([]rune(r.name)))
		maxAddr = max(maxAddr, len([]rune(rowAddress(r))))
		if st := m.rowStatus(r); strings.HasPrefix(st, "flashing") {
			maxStatus = max(maxStatus, len("flashing 100%")) // no jitter as the percentage grows
		} else {
			maxStatus = max(maxStatus, len(st))
		}
	}
	cols := []column{
		{title: "NAME", width: min(maxName, 24), cell: func(r *row) string { return r.name }},
		{title: "ADDRESS", width: min(maxAddr, 30), drop: 5, cell: rowAddress},
		{title: "KIND", width: 10, drop: 3, cell: rowKind},
		{title: "BOARD", width: 10, drop: 2, cell: rowBoard},
		{title: "AUTH", width: 4, drop: 4, cell: func(r *row) string {
			if r.net != nil && r.net.AuthRequired {
				return m.glyphs.lock
			}
			return ""
		}},
		{title: "STATUS", width: maxStatus, cell: m.rowStatus},
		{title: "SEEN", width: 8, drop: 1, cell: func(r *row) string {
			// Discovery keeps a board only while it answers, and does not
			// re-announce it at every answer: an online board's LastSeen is
			// when it last changed, not when it last answered.
			if r.net != nil {
				switch r.net.Presence {
				case PresenceOnline:
					return "now"
				case PresenceUnchecked:
					return "never"
				}
			} else if r.ser != nil && r.ser.Presence == PresenceOnline {
				return "now" // the port is listed: the board is plugged in
			}
			t := r.lastSeen()
			if t.IsZero() {
				return ""
			}
			return age(now.Sub(t)) + " ago"
		}},
	}
	total := func(cs []column) int {
		w := 3 + len(cs) - 1
		for _, c := range cs {
			w += c.width
		}
		return w
	}
	without := func(cs []column, rank int) []column {
		kept := cs[:0:0]
		for _, c := range cs {
			if c.drop != rank {
				kept = append(kept, c)
			}
		}
		return kept
	}
	for rank := 1; rank <= 4 && total(cols) > inner; rank++ {
		cols = without(cols, rank)
	}
	if over := total(cols) - inner; over > 0 {
		// An address cut below 14 cells says nothing: drop it instead.
		for i := range cols {
			if cols[i].title == "ADDRESS" {
				if cols[i].width-over >= 14 {
					cols[i].width -= over
				} else {
					cols = without(cols, 5)
				}
				break
			}
		}
	}
	if over := total(cols) - inner; over > 0 {
		cols[0].width = max(cols[0].width-over, 6)
	}
	return cols
}

func rowAddress(r *row) string {
	switch {
	case r.net != nil && r.ser != nil:
		return r.net.Address + " + " + filepath.Base(r.ser.Port)
	case r.net != nil:
		return r.net.Address
	default:
		return r.ser.Port
	}
}

func rowKind(r *row) string {
	switch {
	case r.net != nil && r.ser != nil:
		return "OTA+serial"
	case r.net != nil:
		return r.net.Kind.String()
	default:
		return "serial"
	}
}

func rowBoard(r *row) string {
	for _, d := range []*Device{r.net, r.ser} {
		if d != nil && d.Board != "" {
			return d.Board
		}
	}
	for _, d := range []*Device{r.ser, r.net} {
		if d != nil && d.Chip != "" {
			return d.Chip
		}
	}
	return "(unknown)"
}

// rowStatus is the status word: a job's state wins over presence.
func (m Model) rowStatus(r *row) string {
	if j := m.jobFor(r); j != nil {
		switch j.state {
		case jobRunning:
			if j.total > 0 {
				return fmt.Sprintf("flashing %.0f%%", j.percent()*100)
			}
			return "flashing"
		case jobQueued:
			return "queued"
		case jobFailed:
			return "failed"
		case jobDone:
			return "done"
		}
	}
	if r.net != nil {
		switch r.net.Presence {
		case PresenceUnchecked:
			if r.ser == nil {
				return "not checked"
			}
		case PresenceStale:
			return "stale"
		case PresenceOffline:
			if r.ser == nil {
				return "offline"
			}
		default:
			return "online"
		}
	}
	switch r.ser.SerialMode {
	case SerialDownload:
		return "download"
	case SerialApp:
		return "app"
	}
	return "idle"
}

// age is a short duration: 2s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// listScreen is the device list.
type listScreen struct{}

func (listScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.listKey(msg) }
func (listScreen) view(m Model, h int) []string                 { return m.devicesBox(h) }
func (listScreen) resize(m *Model)                              {}
func (listScreen) layout() screenLayout                         { return screenLayout{jobsBelow: true} }

func (listScreen) keys(m Model) screenKeys {
	k := m.keys
	var nav, act, extraNav, extraAct, view []key.Binding
	cur := m.cursorRow()
	hasRow := cur != nil
	nav = []key.Binding{k.Up, k.Down, enabledIf(k.Enter, hasRow)}
	j := m.jobFor(cur)
	ser := hasRow && cur.ser != nil
	act = []key.Binding{enabledIf(k.Flash, hasRow), enabledIf(k.Mark, hasRow), k.AddHost,
		enabledIf(k.Retry, j != nil && j.state == jobFailed), enabledIf(k.Cancel, j != nil && j.running()), enabledIf(k.Dismiss, m.errMsg != "")}
	extraNav = []key.Binding{k.PageUp, k.PageDown, k.Top, describedAs(k.Bottom, "bottom")}
	extraAct = []key.Binding{k.MarkAll, k.Refresh, k.DismissJob, k.DismissAll}
	if m.be.Campaigns != nil {
		extraAct = append(extraAct, enabledIf(k.Campaign, m.camp != nil))
	}
	if m.be.Server != nil {
		extraAct = append(extraAct, k.Server)
	}
	if m.be.Partitions != nil {
		extraAct = append(extraAct, enabledIf(describedAs(k.Partitions, "partitions (serial)"), ser))
	}
	if m.be.Monitor != nil {
		extraAct = append(extraAct, enabledIf(describedAs(k.Monitor, "monitor (serial)"), ser))
	}
	return screenKeys{nav: nav, act: act, extraNav: extraNav, extraAct: extraAct, view: view}
}
