package tui

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/espdeck/espdeck/internal/humanize"
)

type jobState int

const (
	jobQueued jobState = iota
	jobRunning
	jobDone
	jobFailed
	jobCanceled
)

// job is one flash of one image to one board.
type job struct {
	id     int
	group  int
	row    string
	name   string
	req    FlashRequest
	state  jobState
	cancel context.CancelFunc

	stage, note string
	// session is what an ESPHome upload said of its session once known
	// ("ESPHome v2 · SHA-256 · encrypted"): the protocol, the auth
	// scheme and whether it is encrypted stay in the row after the note
	// gives way to the progress bar.
	session     string
	stages      []string // stages seen, in order
	done, total int64
	rate        float64 // bytes/s, smoothed
	lastAt      time.Time
	lastDone    int64
	started     time.Time
	ended       time.Time
	result      FlashResult
	// cutByQuit: quitting cancelled this job (it goes in the exit report).
	cutByQuit bool
	// overall is the job's progress across all its stages, 0..1. It only
	// grows: a new stage starting at 0% does not pull the bar back.
	overall float64
}

// stageWeights are each route's stages with the share of the job's time
// they usually take; overall progress adds the finished stages' shares to
// the current stage's fraction of its own.
var stageWeights = map[Route][]struct {
	name   string
	weight float64
}{
	RouteNetwork: {{"invite", 0.02}, {"auth", 0.02}, {"connect", 0.02}, {"transfer", 0.90}, {"finalize", 0.04}},
	RouteSerial:  {{"sync", 0.03}, {"erase", 0.25}, {"write", 0.60}, {"verify", 0.10}, {"reset", 0.02}},
}

// overallAt is the overall fraction for a stage at frac of its own work.
// An unknown stage adds nothing, so the bar holds still instead of jumping.
func overallAt(rt Route, stage string, frac float64) (float64, bool) {
	base := 0.0
	for _, s := range stageWeights[rt] {
		if s.name == stage {
			return base + s.weight*min(max(frac, 0), 1), true
		}
		base += s.weight
	}
	return 0, false
}

// stagePercent is the current stage's own progress, 0..1.
func (j *job) stagePercent() float64 {
	if j.total <= 0 {
		return 0
	}
	return min(float64(j.done)/float64(j.total), 1)
}

func (j *job) finished() bool { return !j.running() }

func (j *job) running() bool { return j.state == jobRunning || j.state == jobQueued }

// percent is the overall progress shown in bars and the STATUS column.
func (j *job) percent() float64 { return j.overall }

// group is several jobs started together with the same image.
type group struct {
	id                    int
	file                  string
	total                 int
	done, failed, stopped int
}

func (m Model) activeJobs() int {
	n := 0
	for _, j := range m.jobs {
		if j.running() {
			n++
		}
	}
	return n
}

// jobFor is the newest job of a row (nil when none).
func (m Model) jobFor(r *row) *job {
	if r == nil {
		return nil
	}
	for i := len(m.jobs) - 1; i >= 0; i-- {
		if m.jobs[i].row == r.key {
			return m.jobs[i]
		}
	}
	return nil
}

func (m Model) jobByID(id int) *job {
	for _, j := range m.jobs {
		if j.id == id {
			return j
		}
	}
	return nil
}

// enqueue adds jobs for the requests as one group and starts what the
// concurrency limit allows. A row keeps one job line: its newest.
func (m *Model) enqueue(file string, reqs map[string]FlashRequest) tea.Cmd {
	m.nextGroup++
	g := &group{id: m.nextGroup, file: file, total: len(reqs)}
	m.groups[g.id] = g
	for _, rk := range sortedKeys(reqs) {
		m.removeJobsOf(rk)
		m.nextJob++
		m.jobs = append(m.jobs, &job{id: m.nextJob, group: g.id, row: rk, name: m.rowName(rk), req: reqs[rk], state: jobQueued})
	}
	if len(reqs) > 1 {
		m.logf(slog.LevelInfo, "group flash of %s to %d devices, %d at a time", file, len(reqs), m.cfg.Concurrency)
	}
	return m.schedule()
}

func (m *Model) removeJobsOf(rowKey string) {
	kept := m.jobs[:0]
	for _, j := range m.jobs {
		if j.row != rowKey || j.running() {
			kept = append(kept, j)
		}
	}
	m.jobs = kept
}

// schedule starts queued jobs while fewer than Concurrency run.
func (m *Model) schedule() tea.Cmd {
	if m.quitting {
		return nil
	}
	running := 0
	for _, j := range m.jobs {
		if j.state == jobRunning {
			running++
		}
	}
	var cmds []tea.Cmd
	for _, j := range m.jobs {
		if running >= m.cfg.Concurrency {
			break
		}
		if j.state != jobQueued {
			continue
		}
		running++
		cmds = append(cmds, m.startJob(j))
	}
	return tea.Batch(cmds...)
}

func (m *Model) startJob(j *job) tea.Cmd {
	ctx, cancel := context.WithCancel(m.ctx)
	j.cancel = cancel
	j.state = jobRunning
	j.started = m.cfg.Now()
	j.stage, j.note, j.session, j.stages = "", "", "", nil
	j.done, j.total, j.rate, j.overall = 0, 0, 0, 0
	j.result = FlashResult{}
	j.ended = time.Time{}
	route := "network"
	if j.req.Route == RouteSerial {
		route = "serial " + j.req.Device.Port
	}
	m.logf(slog.LevelInfo, "flash %s: %s over %s", j.name, j.req.File, route)
	m.yieldMonitor(j)
	sink := progressSink(j.id, m.progCh, m.cfg.ProgressInterval, m.cfg.Now)
	run := runFlash(ctx, m.be.Flasher, j.id, j.req, sink)
	if !m.spinning {
		m.spinning = true
		return tea.Batch(run, m.spin.Tick)
	}
	return run
}

// applyProgress folds progress reports into their jobs.
func (m *Model) applyProgress(us []progressUpdate) {
	for _, u := range us {
		j := m.jobByID(u.job)
		if j == nil || j.state != jobRunning {
			continue
		}
		p := u.p
		if p.Stage != j.stage {
			j.stage = p.Stage
			j.stages = append(j.stages, p.Stage)
			j.lastAt, j.lastDone, j.rate = u.at, 0, 0
		}
		j.note = p.Note
		if j.req.Device.Kind == KindESPHome && strings.HasPrefix(p.Note, "ESPHome v") {
			j.session = p.Note
		}
		switch {
		case p.Rate > 0:
			j.rate = p.Rate
		case !j.lastAt.IsZero() && u.at.After(j.lastAt) && p.Done > j.lastDone:
			r := float64(p.Done-j.lastDone) / u.at.Sub(j.lastAt).Seconds()
			if j.rate == 0 {
				j.rate = r
			} else {
				j.rate = 0.7*j.rate + 0.3*r
			}
		}
		if p.Done != j.lastDone || j.lastAt.IsZero() {
			j.lastAt, j.lastDone = u.at, p.Done
		}
		j.done, j.total = p.Done, p.Total
		if o, ok := overallAt(j.req.Route, p.Stage, j.stagePercent()); ok && o > j.overall {
			j.overall = o
		}
	}
}

// finishJob records a job's end, asks for the password again after an
// auth failure, starts the next queued job and closes a finished group.
func (m *Model) finishJob(msg jobFinishedMsg) tea.Cmd {
	j := m.jobByID(msg.job)
	if j == nil {
		return nil
	}
	if j.cancel != nil {
		j.cancel()
	}
	res := msg.result
	j.result = res
	j.ended = m.cfg.Now()
	g := m.groups[j.group]
	for _, w := range res.Warnings {
		m.logf(slog.LevelWarn, "flash %s: %s", j.name, w)
	}
	switch {
	case res.Canceled:
		j.state = jobCanceled
		j.cutByQuit = m.quitting
		m.logf(slog.LevelWarn, "flash %s cancelled", j.name)
		if g != nil {
			g.stopped++
		}
	case res.OK():
		j.state = jobDone
		m.logf(slog.LevelInfo, "flash %s done: %s", j.name, doneSummary(res))
		if g != nil {
			g.done++
		}
	default:
		j.state = jobFailed
		m.logf(slog.LevelError, "flash %s failed: %s", j.name, res.Error)
		if res.Hint != "" {
			m.logf(slog.LevelInfo, "hint for %s: %s", j.name, res.Hint)
		}
		if g != nil {
			g.failed++
		}
	}
	var cmds []tea.Cmd
	if m.quitting {
		if m.activeJobs() == 0 {
			return tea.Quit
		}
		return nil
	}
	if j.state == jobFailed && res.AuthFailed {
		delete(m.passwords, j.row)
		if m.prompt == nil {
			cmds = append(cmds, m.askPassword(j.row, "The password was not accepted. Try again:", func(m *Model, s Secret) tea.Cmd {
				return m.retry(m.rowByKey(j.row))
			}))
		}
	}
	// A serial write changed the board's flash (and may have selected a new
	// boot slot): what the partitions view knew is stale, so read it again.
	if r := m.rowByKey(m.resolveKey(j.row)); r != nil && r.ser != nil && j.req.Route == RouteSerial && m.be.Partitions != nil {
		if ps, ok := m.parts[r.key]; ok && !ps.busy {
			ps.busy = true
			cmds = append(cmds, readPartitions(m.ctx, m.be.Partitions, r.key, *r.ser))
		}
	}
	if g != nil && g.total > 1 && g.done+g.failed+g.stopped == g.total {
		m.notice = fmt.Sprintf("group flash of %s: %d done, %d failed, %d cancelled", g.file, g.done, g.failed, g.stopped)
		m.logf(slog.LevelInfo, "%s", m.notice)
		// The marks chose this group; left standing they would choose the
		// next flash too, even of boards a later filter hides.
		for _, gj := range m.jobs {
			if gj.group == g.id {
				delete(m.marked, gj.row)
			}
		}
	}
	cmds = append(cmds, m.reattachMonitor(j.id), m.schedule())
	return tea.Batch(cmds...)
}

// retry runs the row's last failed or cancelled job again.
func (m *Model) retry(r *row) tea.Cmd {
	if r == nil {
		return nil
	}
	j := m.jobFor(r)
	if j == nil || j.running() || j.state == jobDone {
		return nil
	}
	req := j.req
	if r.net != nil && req.Route == RouteNetwork {
		req.Device = *r.net
	}
	if pw, ok := m.passwords[r.key]; ok {
		req.Password = pw
	}
	if req.Route == RouteNetwork && req.Device.AuthRequired && req.Password == "" {
		key := r.key
		return m.askPassword(key, "", func(m *Model, s Secret) tea.Cmd { return m.retry(m.rowByKey(m.resolveKey(key))) })
	}
	m.errMsg = ""
	return m.enqueue(req.File, map[string]FlashRequest{r.key: req})
}

func (m *Model) cancelJob(j *job) {
	if j == nil || !j.running() {
		return
	}
	if j.state == jobQueued {
		j.state = jobCanceled
		j.result = FlashResult{Canceled: true}
		j.ended = m.cfg.Now()
		if g := m.groups[j.group]; g != nil {
			g.stopped++
		}
		return
	}
	m.logf(slog.LevelWarn, "cancelling flash of %s", j.name)
	j.cancel()
}

func doneSummary(r FlashResult) string {
	var parts []string
	if r.Version != "" {
		parts = append(parts, r.Version)
	}
	if r.Bytes > 0 {
		parts = append(parts, humanize.Bytes(r.Bytes))
	}
	s := fmt.Sprintf("in %.1f s", r.Duration.Seconds())
	if r.Bytes > 0 && r.Duration > 0 {
		s += fmt.Sprintf(" (%s)", humanize.Rate(float64(r.Bytes)/r.Duration.Seconds()))
	}
	return strings.Join(append(parts, s), " ")
}

// ---------------------------------------------------------------- view

// jobsOrdered is the jobs with the running and queued ones first, each
// part in the order it started.
func (m Model) jobsOrdered() []*job {
	out := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		if j.state == jobRunning {
			out = append(out, j)
		}
	}
	for _, j := range m.jobs {
		if j.state == jobQueued {
			out = append(out, j)
		}
	}
	for _, j := range m.jobs {
		if j.finished() {
			out = append(out, j)
		}
	}
	return out
}

// finishedLine is a finished job in one line: its result and how long it
// took. The error and the hint are in the job detail (J, then enter).
func (m Model) finishedLine(j *job, nameW, w int) string {
	g := m.glyphs
	name := pad(j.name, nameW)
	took := ""
	if j.result.Duration > 0 {
		took = fmt.Sprintf(" after %.1f s", j.result.Duration.Seconds())
	}
	switch j.state {
	case jobDone:
		line := m.st.Success.Render(g.ok) + " " + name + "  " + m.st.Success.Render("done") + "  " + doneSummary(j.result)
		if j.session != "" && lipgloss.Width(line)+2+lipgloss.Width(j.session) <= w {
			line += "  " + m.st.Faint.Render(j.session)
		}
		return line
	case jobCanceled:
		return m.st.Warning.Render("-") + " " + name + "  " + m.st.Warning.Render("cancelled") + took
	}
	head := m.st.Error.Render(g.fail) + " " + name + "  " + m.st.Error.Render("failed") + took + "  "
	room := w - lipgloss.Width(head)
	return head + m.st.Faint.Render(clipText(j.result.Error, max(room, 4)))
}

// jobsBox lists one line per job: the running ones first with their
// progress, then each finished one in a line. When room is short the
// finished lines go first; the running ones always stay.
func (m Model) jobsBox(maxH int) []string {
	if len(m.jobs) == 0 {
		return nil
	}
	inner := m.width - 4
	nameW := 4
	for _, j := range m.jobs {
		nameW = max(nameW, len([]rune(j.name)))
	}
	nameW = min(nameW, 18)
	var active, finished []string
	for _, j := range m.jobsOrdered() {
		name := pad(j.name, nameW)
		switch j.state {
		case jobQueued:
			active = append(active, "  "+name+"  "+m.st.Faint.Render("queued"))
		case jobRunning:
			active = append(active, "  "+name+"  "+m.progressLine(j, inner-nameW-4))
		default:
			finished = append(finished, m.finishedLine(j, nameW, inner))
		}
	}
	title := "Jobs"
	running, queued := 0, 0
	for _, j := range m.jobs {
		switch j.state {
		case jobRunning:
			running++
		case jobQueued:
			queued++
		}
	}
	if running > 0 {
		title = fmt.Sprintf("Jobs · %d running", running)
	}
	if queued > 0 {
		title += fmt.Sprintf(", %d queued", queued)
	}
	room := min(maxH, max(len(active)+2, 10)) - 2
	if room < 1 {
		return nil
	}
	if len(active) > room {
		title += fmt.Sprintf(" · %d more (J lists all)", len(active)-room)
		active = active[:room]
	}
	lines := active
	if left := room - len(active); len(finished) > left {
		title += fmt.Sprintf(" · %d finished not shown (J lists all)", len(finished)-left)
		finished = finished[:left]
	}
	lines = append(lines, finished...)
	if len(finished) > 0 && !strings.Contains(title, "J lists") {
		title += " · J why, x/X dismiss"
	}
	return m.box(title, lines, m.width, 0)
}

// progressLine is "transfer ████░░░  61%  412 KiB/s  eta 3s" in w cells.
func (m Model) progressLine(j *job, w int) string {
	stage := j.stage
	if stage == "" {
		stage = "starting"
	}
	stage = pad(stage, 9)
	var tail string
	if j.rate > 0 {
		tail = "  " + humanize.Rate(j.rate)
		if j.total > j.done {
			eta := time.Duration(float64(j.total-j.done) / j.rate * float64(time.Second))
			tail += "  eta " + age(eta.Round(time.Second))
		}
	}
	if j.session != "" && w-9-1-lipgloss.Width(tail)-2-lipgloss.Width(j.session) >= 10 {
		tail += "  " + m.st.Faint.Render(j.session)
	}
	barW := w - 9 - 1 - lipgloss.Width(tail)
	barW = max(min(barW, 40), 10)
	bar := progress.New(progress.WithColors(m.st.BarFull), progress.WithFillCharacters('█', '░'))
	bar.EmptyColor = m.st.BarEmpty
	bar.SetWidth(barW)
	if j.total <= 0 && j.overall == 0 { // nothing counted yet: show that it is alive
		return stage + " " + m.spin.View() + " " + m.st.Faint.Render(pad(j.note, barW-2)) + tail
	}
	return stage + " " + bar.ViewAs(j.percent()) + tail
}
