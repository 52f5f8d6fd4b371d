package tui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Config is how cmd/espdeck (or a test) sets the TUI up. The zero value works.
type Config struct {
	// Demo puts "DEMO · password: <DemoPassword>" in the header so nobody
	// mistakes the simulated fleet for real boards.
	Demo         bool
	DemoPassword string // default "demo"

	// Concurrency is how many jobs of a group flash run at once (default 3).
	Concurrency int
	// RecentFiles are offered in the file chooser, newest first.
	RecentFiles []string

	// Logger receives what the log pane shows (nil: discard). It must not
	// write to the terminal the TUI draws on.
	Logger *slog.Logger
	// Now is the clock for ages and rates (default time.Now). Tests fix it.
	Now func() time.Time
	// ProgressInterval is the least time between two progress reports of a
	// job (default 100 ms, about 10 repaints a second).
	ProgressInterval time.Duration
	// ASCII uses "pw", "*", ">" and "x" instead of glyphs some fonts lack.
	ASCII bool
	// Theme overrides the colours.
	Theme *Theme
	// SaveDir is where the monitor saves its output (default: the current directory).
	SaveDir string
	// ExitReport receives, after the program has left the terminal, one
	// line per flash job that quitting cancelled (nil: not written).
	// cmd/espdeck passes stderr.
	ExitReport io.Writer
	// Warnings are shown in the log when the program starts: what the
	// composition root could not set up (an audit log without a folder).
	Warnings []string
}

type screen int

const (
	screenList screen = iota
	screenDetail
	screenPartitions
	screenMonitor
	screenJobs
	screenJobDetail
	screenLog // the whole log, wrapped: every explanation in full
	screenCampaign
	screenServer
)

// logEntry is one line of the log pane.
type logEntry struct {
	at    time.Time
	level slog.Level
	text  string
}

// Model is the root model. Build it with New; it implements tea.Model.
type Model struct {
	cfg    Config
	be     Backend
	keys   KeyMap
	st     Styles
	glyphs glyphs
	help   help.Model
	width  int
	height int

	ctx    context.Context
	cancel context.CancelFunc
	devCh  <-chan DeviceEvent
	progCh chan progressUpdate
	// camp is this run's campaign (nil before one starts); campCh carries
	// its views from the backend, the latest winning.
	camp        *campaignState
	campCh      chan CampaignView
	campWaiting bool // a command reads campCh
	// srv is the pull server's state as last read (server pane);
	// srvBack is the screen S came from.
	srv       *ServerState
	srvBack   screen
	srvScroll int

	sightings  map[string]Device
	rows       []*row // all rows, sorted
	visible    []*row // rows passing the filter
	cursor     int
	marked     map[string]bool
	filter     textinput.Model
	filtering  bool
	filterText string
	devsClosed bool

	screen  screen
	current string // row key shown by detail, partitions and monitor
	// partsFromCampaign: esc on the partitions screen goes back to the
	// campaign that opened it (a rolled-back board's explanation).
	partsFromCampaign bool

	jobs      []*job
	jobCursor int // the jobs screen's cursor, into jobsOrdered
	jobShown  int // the job the job detail shows
	nextJob   int
	groups    map[int]*group
	nextGroup int
	passwords map[string]Secret // by row key; this run only
	// sourceStatus is what discovery says it cannot see ("" when all is well).
	sourceStatus string

	flow   *flashFlow
	prompt *prompt

	chips      map[string]chipState
	parts      map[string]*partsState
	partCursor int
	renamed    map[string]string // old row key -> new, once a MAC ties sightings

	mon        *monitorState
	monSession int

	spin     spinner.Model // turns while jobs run; stops when none do
	spinning bool

	logs      []logEntry
	showLog   bool
	logBack   screen // where esc on the log screen goes
	logScroll int    // lines scrolled back from the end on the log screen
	errMsg    string
	notice    string
	showHelp  bool
	quitting  bool
}

// glyphs are the symbols that have an ASCII fallback.
type glyphs struct {
	cursor, mark, lock, ok, fail, dot, arrow string
	// Box drawing: corners, horizontal and vertical lines.
	tl, tr, bl, br, hline, vline string
}

func newGlyphs(ascii bool) glyphs {
	if ascii {
		return glyphs{cursor: ">", mark: "*", lock: "pw", ok: "ok", fail: "x", dot: "-", arrow: "<-",
			tl: "+", tr: "+", bl: "+", br: "+", hline: "-", vline: "|"}
	}
	return glyphs{cursor: "▸", mark: "✓", lock: "🔒", ok: "✓", fail: "✗", dot: "·", arrow: "←",
		tl: "┌", tr: "┐", bl: "└", br: "┘", hline: "─", vline: "│"}
}

// New builds the root model. Nothing starts until the program calls Init.
func New(cfg Config, backend Backend) Model {
	if cfg.DemoPassword == "" {
		cfg.DemoPassword = "demo"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	theme := DefaultTheme()
	if cfg.Theme != nil {
		theme = *cfg.Theme
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := NewStyles(theme)
	h := help.New()
	h.Styles = st.Help
	f := textinput.New()
	f.Prompt = "/"
	f.Placeholder = "type to filter"
	sp := spinner.MiniDot
	if cfg.ASCII {
		sp = spinner.Line
	}
	m := Model{
		spin:      spinner.New(spinner.WithSpinner(sp), spinner.WithStyle(st.Key)),
		cfg:       cfg,
		be:        backend,
		keys:      DefaultKeyMap(),
		st:        st,
		glyphs:    newGlyphs(cfg.ASCII),
		help:      h,
		width:     80,
		height:    24,
		ctx:       ctx,
		cancel:    cancel,
		progCh:    make(chan progressUpdate, 256),
		campCh:    make(chan CampaignView, 1),
		sightings: map[string]Device{},
		marked:    map[string]bool{},
		filter:    f,
		groups:    map[int]*group{},
		passwords: map[string]Secret{},
		chips:     map[string]chipState{},
		parts:     map[string]*partsState{},
		renamed:   map[string]string{},
	}
	for _, w := range cfg.Warnings {
		m.logf(slog.LevelWarn, "%s", w)
	}
	return m
}

// Init starts discovery, the progress drain and the clock.
func (m Model) Init() tea.Cmd {
	return tea.Batch(
		func() tea.Msg { return startedMsg{ch: watchDevices(m.ctx, m.be.Devices)} },
		waitProgress(m.ctx, m.progCh),
		tick(),
	)
}

// startedMsg hands the discovery channel to the model.
type startedMsg struct{ ch <-chan DeviceEvent }

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 20), max(msg.Height, 8)
		m.help.SetWidth(m.width)
		m.screen.ui().resize(m)
		return nil
	case startedMsg:
		m.devCh = msg.ch
		return waitDevices(m.ctx, m.devCh)
	case deviceEventsMsg:
		m.applyDeviceEvents(msg.events)
		if msg.closed {
			m.devsClosed = true
			if m.ctx.Err() == nil {
				m.logf(slog.LevelWarn, "discovery stopped: the device list no longer updates")
			}
			return nil
		}
		return waitDevices(m.ctx, m.devCh)
	case jobProgressMsg:
		m.applyProgress(msg.updates)
		return waitProgress(m.ctx, m.progCh)
	case jobFinishedMsg:
		return m.finishJob(msg)
	case campaignViewMsg, campaignStartedMsg:
		return m.applyCampaign(msg)
	case inspectedMsg:
		m.applyInspected(msg)
		return nil
	case completionsMsg:
		m.applyCompletions(msg)
		return nil
	case chipInfoMsg:
		msg.row = m.resolveKey(msg.row)
		m.chips[msg.row] = chipState{info: msg.info, err: msg.err, loaded: true}
		if msg.err != nil {
			m.logf(slog.LevelWarn, "chip info for %s: %v", m.rowName(msg.row), msg.err)
		}
		return m.startWaitingMonitor()
	case partitionsMsg:
		m.applyPartitions(msg)
		return m.startWaitingMonitor()
	case hostAddedMsg:
		if msg.err != nil {
			m.fail(fmt.Sprintf("add host %s: %v", msg.addr, msg.err))
		} else {
			m.logf(slog.LevelInfo, "added host %s", msg.addr)
		}
		return nil
	case monitorOpenedMsg, monitorLinesMsg, resetDoneMsg:
		return m.updateMonitorMsg(msg)
	case noticeMsg:
		if msg.err != nil {
			m.fail(msg.err.Error())
		} else {
			m.notice = msg.text
			m.logf(slog.LevelInfo, "%s", msg.text)
		}
		return nil
	case tickMsg:
		if m.screen == screenServer && m.be.Server != nil {
			return tea.Batch(tick(), readServer(m.be.Server))
		}
		return tick()
	case serverMsg:
		st := msg.st
		m.srv = &st
		return nil
	case spinner.TickMsg:
		if m.activeJobs() == 0 {
			m.spinning = false
			return nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return cmd
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case tea.PasteMsg:
		return m.handlePaste(msg)
	}
	return m.forwardToInputs(msg)
}

// forwardToInputs gives cursor blinks and the like to the focused input.
func (m *Model) forwardToInputs(msg tea.Msg) tea.Cmd {
	d := m.topDialog()
	if d == nil {
		return nil
	}
	in := d.input(m)
	if in == nil {
		return nil
	}
	var cmd tea.Cmd
	*in, cmd = in.Update(msg)
	return cmd
}

func (m *Model) handlePaste(msg tea.PasteMsg) tea.Cmd {
	d := m.topDialog()
	if d == nil {
		return nil
	}
	cmd := m.forwardToInputs(msg)
	return tea.Batch(cmd, d.pasted(m))
}

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	if key.Matches(msg, k.ForceQuit) {
		return m.requestQuit()
	}
	if d := m.topDialog(); d != nil {
		return d.update(m, msg)
	}
	if m.showHelp {
		if key.Matches(msg, k.Help, k.Back, k.Quit) {
			m.showHelp = false
			return nil
		}
	}
	switch {
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return nil
	case key.Matches(msg, k.Log):
		m.showLog = !m.showLog
		m.screen.ui().resize(m)
		return nil
	case key.Matches(msg, k.Dismiss) && m.errMsg != "":
		m.errMsg = ""
		return nil
	case key.Matches(msg, k.Jobs) && m.screen != screenJobs:
		m.openJobs()
		return nil
	case key.Matches(msg, k.Campaign) && m.camp != nil && m.screen != screenCampaign:
		m.screen = screenCampaign
		return nil
	case key.Matches(msg, k.Server) && m.be.Server != nil && m.screen != screenServer:
		return m.openServer()
	case key.Matches(msg, k.Why) && m.screen != screenLog:
		m.logBack, m.logScroll = m.screen, 0
		m.screen = screenLog
		return nil
	}
	return m.screen.ui().update(m, msg)
}

// requestQuit quits, asking first when a flash is running. Quitting cancels
// every job through the root context and waits for them to end.
func (m *Model) requestQuit() tea.Cmd {
	n := m.activeJobs()
	if n == 0 && m.camp != nil && m.camp.view.Running && !m.quitting {
		// A campaign's uploads are not jobs; quitting interrupts them.
		why := "A campaign is running. Quitting interrupts it: uploads in flight are cancelled (a board keeps its running firmware) and the boards not done are left untouched."
		if f := m.camp.view.File; f != "" && !m.cfg.Demo {
			why += " Its file keeps it resumable: espdeck campaign resume " + f
		}
		m.prompt = newConfirm("Quit espdeck?", []string{why},
			func(m *Model) tea.Cmd {
				m.quitting = true
				m.logf(slog.LevelWarn, "quit: interrupting the campaign")
				return m.quitNow()
			})
		return nil
	}
	if n == 0 {
		return m.quitNow()
	}
	if m.quitting { // asked already: a second ctrl+c leaves at once
		m.cancel()
		return tea.Quit
	}
	m.prompt = newConfirm("Quit espdeck?",
		[]string{fmt.Sprintf("%d flash job%s still running. Quitting cancels %s; a board may be left without a bootable image in that slot.", n, plural(n), them(n))},
		func(m *Model) tea.Cmd {
			m.quitting = true
			m.notice = "cancelling jobs…"
			m.logf(slog.LevelWarn, "quit: cancelling %d running job%s", n, plural(n))
			m.cancel()
			for _, j := range m.jobs {
				if j.state == jobQueued {
					j.state, j.cutByQuit = jobCanceled, true
					j.result = FlashResult{Canceled: true}
				}
			}
			if m.activeJobs() == 0 {
				return tea.Quit
			}
			return nil
		})
	return nil
}

func (m *Model) quitNow() tea.Cmd {
	m.quitting = true
	m.cancel()
	return tea.Quit
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func them(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// logf records an event in the log pane and the logger.
func (m *Model) logf(level slog.Level, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	m.logs = append(m.logs, logEntry{at: m.cfg.Now(), level: level, text: text})
	if len(m.logs) > 500 {
		m.logs = append(m.logs[:0:0], m.logs[len(m.logs)-400:]...)
	}
	m.cfg.Logger.Log(context.Background(), level, text)
}

// fail shows an error until dismissed and logs it.
func (m *Model) fail(text string) {
	m.errMsg = text
	m.logf(slog.LevelError, "%s", text)
}

// ---------------------------------------------------------------- view

// View renders the whole screen.
func (m Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "espdeck"
	return v
}

// render builds the screen as a string of exactly height lines.
func (m Model) render() string {
	header := m.headerView()
	footer := m.footerLines()
	bodyH := m.height - 1 - len(footer)
	if bodyH < 3 {
		bodyH = 3
	}
	var body []string
	if m.showHelp {
		body = m.fullHelpLines(bodyH)
		for i, l := range body {
			body[i] = clip(l, m.width)
		}
	} else {
		body = m.bodyLines(bodyH)
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, clip(header, m.width))
	lines = append(lines, fit(body, bodyH)...)
	for _, l := range footer {
		lines = append(lines, clip(l, m.width))
	}
	return strings.Join(lines, "\n")
}

// bodyLines stacks the screen, the jobs box, the active panel and the log pane.
func (m Model) bodyLines(h int) []string {
	// The screen keeps at least 5 lines. Of the rest, the dialog in front
	// of the user comes first, then the jobs, then the log pane.
	avail := max(h-5, 0)
	var panel, jobs, logPane []string
	if d := m.topDialog(); d != nil {
		panel = d.view(m, avail)
	}
	avail -= len(panel)
	if avail >= 3 && (m.screen.ui().layout().jobsBelow || m.prompt != nil && m.screen == screenMonitor) {
		jobs = m.jobsBox(avail)
		avail -= len(jobs)
	}
	if m.showLog && avail >= 3 {
		logPane = m.logBox(min(8, avail))
	}
	bottom := append(append(jobs, panel...), logPane...)
	if len(bottom) > h {
		// A terminal too small for the dialog: show what fits of it.
		bottom = bottom[:h]
	}
	top := h - len(bottom)
	ui := m.screen.ui()
	main := ui.view(m, top)
	if len(main) > top {
		main = main[:top]
	}
	if ui.layout().wrap {
		// Explanations wrap instead of being cut; field values keep
		// their column (a field name takes 12 cells).
		wrapped := make([]string, 0, len(main))
		for _, l := range main {
			wrapped = append(wrapped, wrapStyled(l, m.width, 12)...)
		}
		main = wrapped
	}
	if len(main) > top {
		main = main[:top]
	}
	if m.screen != screenList { // the list is boxed, and boxes fit already
		for i, l := range main {
			main[i] = clip(l, m.width)
		}
	}
	// Screens shorter than the space keep the bottom boxes right below them.
	return append(main, bottom...)
}

func (m Model) headerView() string {
	g := m.glyphs
	left := " " + m.st.Header.Render("espdeck")
	n := len(m.rows)
	left += fmt.Sprintf("  %s  %d device%s", g.dot, n, plural(n))
	if m.filterText != "" {
		left += fmt.Sprintf(" (%d shown)", len(m.visible))
	}
	if a := m.activeJobs(); a > 0 {
		left += fmt.Sprintf("  %s  %d job%s", g.dot, a, plural(a))
	}
	if m.cfg.Demo {
		left += "  " + m.st.Demo.Render(fmt.Sprintf("DEMO %s password: %s", g.dot, m.cfg.DemoPassword))
	}
	right := m.st.Key.Render("?") + m.st.Faint.Render(" help  ") + m.st.Key.Render("q") + m.st.Faint.Render(" quit ")
	gap := m.width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		return left
	}
	return left + strings.Repeat(" ", gap) + right
}

// footerLines are the status line (errors stay until dismissed) and the help bar.
func (m Model) footerLines() []string {
	var out []string
	switch {
	case m.screen == screenLog:
		// The log screen shows every error and notice in full already.
	case m.errMsg != "":
		out = append(out, m.statusLines(m.st.Error.Render(m.glyphs.fail+" "+m.errMsg)+m.st.Faint.Render("  (x dismiss)"))...)
	case m.notice != "":
		out = append(out, m.statusLines(m.st.Faint.Render(m.notice))...)
	case m.filterText != "" && !m.filtering:
		out = append(out, " "+m.st.Faint.Render(fmt.Sprintf("filter %q: %d of %d  (/ to change)", m.filterText, len(m.visible), len(m.rows))))
	case m.sourceStatus != "" && m.screen == screenList:
		out = append(out, " "+m.st.Warning.Render("discovery: "+m.sourceStatus))
	}
	if m.filtering {
		out = append(out, " "+m.filter.View())
	}
	out = append(out, " "+m.help.ShortHelpView(m.activeKeys().short))
	return out
}

// maxStatusLines is how many lines the status line may wrap to; the rest
// is in the log screen (w).
const maxStatusLines = 3

// statusLines wraps the status text to the terminal; when it needs more
// than maxStatusLines, the last line says which key reads the whole of it.
func (m Model) statusLines(text string) []string {
	lines := wrapStyled(text, m.width-2, 2)
	if len(lines) > maxStatusLines {
		more := m.st.Key.Render("  w reads all")
		lines = lines[:maxStatusLines]
		last := lines[maxStatusLines-1]
		lines[maxStatusLines-1] = clip(last, m.width-2-lipgloss.Width(more)) + more
	}
	for i, l := range lines {
		lines[i] = " " + l
	}
	return lines
}

// fullHelpLines lists every key of the screen in front of the user, by
// group, in as many columns as the width takes; nothing is cut: what does
// not fit beside goes below.
func (m Model) fullHelpLines(h int) []string {
	hk := m.activeKeys()
	names := []string{"move", "act", "view", "quit"}
	var items []string // one rendered line per group title or key
	keyW, descW := 0, 0
	for _, g := range hk.full {
		for _, b := range g {
			keyW = max(keyW, cellWidth(b.Help().Key))
			descW = max(descW, cellWidth(b.Help().Desc))
		}
	}
	for gi, g := range hk.full {
		if len(g) == 0 {
			continue
		}
		if len(items) > 0 {
			items = append(items, "")
		}
		items = append(items, m.st.Bold.Render(names[min(gi, len(names)-1)]))
		for _, b := range g {
			items = append(items, m.st.Key.Render(pad(b.Help().Key, keyW))+" "+m.st.Faint.Render(b.Help().Desc))
		}
	}
	colW := keyW + 1 + descW + 2
	cols := max(min((m.width-2)/max(colW, 1), 4), 1)
	rows := (len(items) + cols - 1) / cols
	// Prefer columns no taller than the screen has room for.
	room := max(h-1, 4)
	for rows > room && cols < (m.width-2)/max(colW, 1) {
		cols++
		rows = (len(items) + cols - 1) / cols
	}
	lines := []string{" " + m.st.Title.Render("Keys") + m.st.Faint.Render(" of this screen  "+m.glyphs.dot+"  ? or esc closes")}
	for r := range rows {
		var b strings.Builder
		b.WriteString(" ")
		for c := range cols {
			i := c*rows + r
			if i >= len(items) {
				break
			}
			if c < cols-1 {
				b.WriteString(pad(items[i], colW))
			} else {
				b.WriteString(items[i])
			}
		}
		lines = append(lines, b.String())
	}
	words := wrap("Status words: online, stale, offline, not checked (added by hand, never answered), flashing, queued, failed, done, download (in the ROM bootloader), app (running its app), idle.", m.width-2)
	if len(lines)+1+len(words) <= h { // the keys come first
		lines = append(lines, "")
		for _, l := range words {
			lines = append(lines, " "+m.st.Faint.Render(l))
		}
	}
	return lines
}

// activeKeys is the help for the screen and state in front of the user.
func (m Model) activeKeys() helpKeys {
	k := m.keys
	view := []key.Binding{k.Filter, k.Log, k.Help}
	quit := []key.Binding{k.Quit, k.ForceQuit}
	if d := m.topDialog(); d != nil {
		return helpKeys{short: d.keys(m)}
	}
	sk := m.screen.ui().keys(m)
	nav, act, view := sk.nav, sk.act, view
	if sk.view != nil {
		view = sk.view
	}
	var short []key.Binding
	if m.screen == screenList {
		short = append(short, nav[2:]...) // arrows go without saying
	} else if len(nav) > 0 {
		short = append(short, nav[len(nav)-1]) // esc back
	}
	short = append(short, act...)
	short = append(short, view...)
	if m.screen != screenLog {
		view = append(view, k.Jobs, k.Why)
	}
	full := [][]key.Binding{append(nav, sk.extraNav...), append(act, sk.extraAct...), view, quit}
	for _, g := range full {
		for i := range g {
			g[i].SetEnabled(true)
		}
	}
	return helpKeys{short: short, full: full}
}

func (m Model) logBox(h int) []string {
	n := h - 2
	start := max(len(m.logs)-n, 0)
	var lines []string
	for _, e := range m.logs[start:] {
		lvl := m.st.Faint.Render(levelWord(e.level))
		switch {
		case e.level >= slog.LevelError:
			lvl = m.st.Error.Render(levelWord(e.level))
		case e.level >= slog.LevelWarn:
			lvl = m.st.Warning.Render(levelWord(e.level))
		}
		lines = append(lines, m.st.Faint.Render(e.at.Format("15:04:05"))+" "+lvl+" "+e.text)
	}
	if len(lines) == 0 {
		lines = []string{m.st.Faint.Render("nothing yet")}
	}
	return m.box("Log", lines, m.width, h)
}

func levelWord(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn "
	case l >= slog.LevelInfo:
		return "info "
	}
	return "debug"
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](mp map[string]V) []string {
	out := make([]string, 0, len(mp))
	for k := range mp {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
