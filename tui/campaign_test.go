package tui

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reviewGroup marks the named boards and reviews file for them.
func reviewGroup(t *testing.T, m Model, file string, names ...string) Model {
	t.Helper()
	for _, n := range names {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	return chooseFile(t, m, file)
}

// A group flash is a campaign: p in the review runs the boards that
// passed as one campaign, with the passwords asked for first, in the
// list's order; nothing is sent as a plain job.
func TestGroupFlashRunsAsACampaign(t *testing.T) {
	m, fake := newTestModel(t, 120, 40, Config{})
	m = reviewGroup(t, m, "porch-light.bin", "garage-door", "porch-light", "pump-house", "bench-3")
	requireScreenContains(t, m, "p runs only the 3 that passed as a campaign", "p flash the 3 that passed (campaign)", "J as plain jobs")
	m = press(t, m, "p")
	require.NotNil(t, m.prompt, "porch-light asks for its password before the campaign starts")
	m = typeText(t, m, "demo")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	require.Equal(t, screenCampaign, m.screen)
	require.Empty(t, m.jobs, "a campaign is not a set of plain jobs")
	require.NotNil(t, cmd)
	started := findMsg[campaignStartedMsg](t, cmd)
	require.NoError(t, started.err)
	require.Len(t, fake.campaigns, 1)
	req := fake.campaigns[0]
	var names []string
	for _, b := range req.Boards {
		names = append(names, b.Device.Name)
		require.Equal(t, "porch-light.bin", b.File)
	}
	require.Equal(t, []string{"bench-3", "garage-door", "porch-light"}, names, "pump-house (ESP32-C3) failed its pre-flight and is left out")
	require.Equal(t, Secret("demo"), req.Boards[2].Password)
	require.Equal(t, 1, req.Canary)
	require.Equal(t, m.cfg.Concurrency, req.Parallel, "after the canary, as many at once as a group flash")
	require.Positive(t, req.Parallel)
}

// A single board's flash offers no campaign.
func TestNoCampaignForOneBoard(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	require.NotContains(t, screenText(m), "as a campaign")
	m = press(t, m, "C")
	require.Nil(t, m.camp)
	require.NotNil(t, m.flow, "C did nothing")
}

func sampleCampaign(running bool) CampaignView {
	v := CampaignView{ID: "c-20261203-1", Image: "porch-light.bin · 2026.11.1", Threshold: "more than 0 failed", Canary: 1, Parallel: 4,
		Confirm: 60 * time.Second, Running: running, File: "/home/ada/.local/state/espdeck/campaigns/c-20261203-1.json"}
	v.Rows = []CampaignRow{
		{DeviceID: FakeGarage, Name: "garage-door", Canary: true, State: "confirmed", From: "2026.10.0", To: "2026.11.1", Running: "2026.11.1", Confirmation: "confirmed", Attempts: 1, Done: 100, Total: 100},
		{DeviceID: FakePorch, Name: "porch-light", State: "uploading", From: "2026.11.0", To: "2026.11.1", Attempts: 1, Done: 40, Total: 100},
		{DeviceID: FakeBench, Name: "bench-3", State: "rebooting", From: "", To: "2026.11.1", Attempts: 1},
		{DeviceID: "mdns:attic", Name: "sensor-attic", State: "skipped", From: "v1.3.0", Code: "no_image_for_chip", Message: "no image for its chip (esp8266)", Hint: "add an image built for esp8266"},
	}
	v.Summary = CampaignSummary{Total: 4, Confirmed: 1, Skipped: 1, InFlight: 2}
	if !running {
		v.Rows[1] = CampaignRow{DeviceID: FakePorch, Name: "porch-light", State: "failed", From: "2026.11.0", To: "2026.11.1", Attempts: 1, Done: 40, Total: 100,
			Code: "auth_failed", Message: "the device refused the password", Hint: "check the OTA password", NeedsPassword: true}
		v.Rows[2] = CampaignRow{DeviceID: FakeBench, Name: "bench-3", State: "rolled-back", From: "v2.6.3", To: "2026.11.1", Running: "v2.6.3", Confirmation: "rolled-back", Attempts: 1, Code: "rolled_back"}
		v.Summary = CampaignSummary{Total: 4, Confirmed: 1, Skipped: 1, Failed: 1, RolledBack: 1}
		v.StopReason = "stopped: 2 of 2 finished boards failed (threshold: more than 0 failed)"
	}
	return v
}

// startedCampaign is the model after C, with the backend's view v.
func startedCampaign(t *testing.T, w, h int, v CampaignView) (Model, *FakeBackend) {
	m, fake := newTestModel(t, w, h, Config{})
	m = reviewGroup(t, m, "blink-esp32.bin", "garage-door", "porch-light", "bench-3")
	requireScreenContains(t, m, "enter runs the 3 as a campaign: canary first", "enter run as a campaign")
	m = press(t, m, "enter")
	if m.prompt != nil { // porch-light's password
		m = typeText(t, m, "demo")
		m = press(t, m, "enter")
	}
	require.Equal(t, screenCampaign, m.screen)
	m = send(t, m, campaignStartedMsg{})
	return send(t, m, campaignViewMsg{view: v}), fake
}

// The campaign screen shows the canary, the threshold in the header, one
// row per board with state, progress, versions from → to and the
// confirmation, and the summary.
func TestCampaignScreenShowsRowsCanaryAndThreshold(t *testing.T) {
	m, _ := startedCampaign(t, 120, 40, sampleCampaign(true))
	requireScreenContains(t, m, "Campaign c-20261203-1", "stops when more than 0 failed", "canary 1", "4 at a time", "running",
		"◆ garage-door", "confirmed", "2026.10.0 → 2026.11.1", "40%", "waiting",
		"1 confirmed · 1 skipped · 2 in flight")
	require.NotContains(t, screenText(m), "R resume", "no resume while it runs")
	m = press(t, m, "R")
	require.False(t, m.camp.resuming)

	// ? lists the screen's keys, resume among them.
	m = press(t, m, "?")
	requireScreenContains(t, m, "resume")
	m = press(t, m, "?")

	// The row under the cursor says what happened and what to do.
	m = press(t, m, "down", "down", "down")
	requireScreenContains(t, m, "sensor-attic: no image for its chip (esp8266)", "add an image built for esp8266")
}

// When it ended with failures, R resumes the failed and untouched boards
// of the same campaign; the stop reason stays visible until then.
func TestCampaignResumeFailedBoardsWithOneKey(t *testing.T) {
	m, fake := startedCampaign(t, 120, 40, sampleCampaign(true))
	m = send(t, m, campaignViewMsg{view: sampleCampaign(false)})
	requireScreenContains(t, m, "stopped: 2 of 2 finished boards failed", "R resume the 2 failed or untouched", "1 failed", "1 rolled back",
		"file /home/ada/.local/state/espdeck/campaigns/c-20261203-1.json")
	requireLogContains(t, m, "'espdeck campaign resume /home/ada/.local/state/espdeck/campaigns/c-20261203-1.json' later retries the 2 left")
	// porch-light's password was refused: R asks for it first.
	m = press(t, m, "R")
	require.NotNil(t, m.prompt)
	requireScreenContains(t, m, "Password for porch-light")
	m = typeText(t, m, "better")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	require.True(t, m.camp.resuming)
	msg := runMsg(t, cmd)
	require.Equal(t, []string{"c-20261203-1"}, fake.resumed)
	require.Equal(t, map[string]Secret{FakePorch: "better"}, fake.resumePasswords)
	m = send(t, m, msg)
	require.False(t, m.camp.resuming)
}

// esc leaves the campaign screen; C opens it again from the list.
func TestCampaignScreenReopens(t *testing.T) {
	m, _ := startedCampaign(t, 120, 40, sampleCampaign(true))
	m = press(t, m, "esc")
	require.Equal(t, screenList, m.screen)
	m = press(t, m, "C")
	require.Equal(t, screenCampaign, m.screen)
}

// Quitting while a campaign runs asks first: its uploads are not jobs,
// and quitting interrupts them.
func TestQuitAsksWhileACampaignRuns(t *testing.T) {
	m, _ := startedCampaign(t, 120, 40, sampleCampaign(true))
	m = press(t, m, "q")
	require.NotNil(t, m.prompt, "asks before interrupting the campaign (q works on the campaign screen)")
	requireScreenContains(t, m, "A campaign is running", "Its file keeps it resumable")
	m = press(t, m, "n")
	require.False(t, m.quitting)

	m = send(t, m, campaignViewMsg{view: sampleCampaign(false)})
	m, cmd := sendCmd(t, m, keyMsg("q"))
	require.Nil(t, m.prompt, "an ended campaign does not hold quitting up")
	require.NotNil(t, cmd)
}

// One campaign at a time: while one runs, enter in a group's review
// waits and says why; J still sends plain jobs.
func TestNoSecondCampaignWhileOneRuns(t *testing.T) {
	m, fake := startedCampaign(t, 120, 40, sampleCampaign(true))
	m = press(t, m, "esc", "esc")
	m = reviewGroup(t, m, "blink-esp32.bin", "garage-door", "bench-3")
	requireScreenContains(t, m, "enter waits: a campaign is running", "J sends the 2 as plain jobs")
	require.NotContains(t, screenText(m), "enter runs")
	m = press(t, m, "enter")
	require.Len(t, fake.campaigns, 0, "the first campaign's command was not run in this test; no second one started")
	require.NotNil(t, m.flow)
	require.Equal(t, "c-20261203-1", m.camp.view.ID, "the running campaign stays on screen")

	m = send(t, m, campaignViewMsg{view: sampleCampaign(false)})
	requireScreenContains(t, m, "enter runs the 2 as a campaign")
	m = press(t, m, "J")
	require.Nil(t, m.flow)
	require.Len(t, m.jobs, 2, "J: plain jobs, all at once")
	require.Len(t, fake.campaigns, 0)
}

// The campaign and server screens fit any terminal: exactly its height,
// no line wider than it.
func TestCampaignAndServerScreensFitSmallTerminals(t *testing.T) {
	for _, size := range [][2]int{{20, 8}, {40, 10}, {60, 16}, {80, 24}, {200, 60}} {
		w, h := size[0], size[1]
		for _, running := range []bool{true, false} {
			m, fake := startedCampaign(t, 120, 40, sampleCampaign(running))
			fake.SetServer(sampleServer())
			m = sizeTo(t, m, w, h)
			check := func(what string) {
				lines := strings.Split(screenText(m), "\n")
				require.Len(t, lines, h, "%s at %dx%d", what, w, h)
				for _, l := range lines {
					require.LessOrEqual(t, lipglossWidth(l), w, "%s at %dx%d: %q", what, w, h, l)
				}
			}
			check("campaign")
			m = send(t, m, serverMsg{st: sampleServer()})
			m = press(t, m, "S")
			check("server")
		}
	}
}

// What went wrong beside the boards (an audit log that refused a record)
// is a warning in the log, once each, while the campaign goes on.
func TestCampaignWarningsReachTheLogOnce(t *testing.T) {
	m, _ := startedCampaign(t, 120, 40, sampleCampaign(true))
	v := sampleCampaign(true)
	v.Warnings = []string{"write the audit log /x/audit.jsonl: no space left on device"}
	m = send(t, m, campaignViewMsg{view: v})
	m = send(t, m, campaignViewMsg{view: v})
	v = sampleCampaign(false)
	v.Warnings = []string{"write the audit log /x/audit.jsonl: no space left on device", "save the campaign to /x/c.json: read-only file system"}
	m = send(t, m, campaignViewMsg{view: v})
	n := 0
	for _, e := range m.logs {
		if strings.Contains(e.text, "no space left") {
			n++
			require.Equal(t, slog.LevelWarn, e.level)
		}
	}
	require.Equal(t, 1, n, "each warning is logged once")
	requireLogContains(t, m, "read-only file system")
	require.Empty(t, m.marked, "the ended campaign cleared the marks that chose its boards")
}

// A job's warnings (its audit record could not be written) are logged as
// warnings; the job keeps its real outcome.
func TestJobWarningsAreLoggedAndTheJobKeepsItsOutcome(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "garage-door")
	m = chooseFile(t, m, "blink-esp32.bin")
	m = press(t, m, "enter")
	require.Len(t, m.jobs, 1)
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Bytes: 10,
		Warnings: []string{"no audit record of this update: open the audit log: permission denied"}}})
	require.Equal(t, jobDone, m.jobs[0].state)
	requireLogContains(t, m, "flash garage-door: no audit record of this update: open the audit log: permission denied")
	for _, e := range m.logs {
		if strings.Contains(e.text, "no audit record") {
			require.Equal(t, slog.LevelWarn, e.level)
		}
	}
}

// The demo's campaign file is removed with its folder at exit: the TUI
// does not offer it to 'espdeck campaign resume'.
func TestDemoCampaignFileIsNotOfferedForLater(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, Config{Demo: true})
	m = reviewGroup(t, m, "blink-esp32.bin", "garage-door", "porch-light", "bench-3")
	m = press(t, m, "enter")
	if m.prompt != nil {
		m = typeText(t, m, "demo")
		m = press(t, m, "enter")
	}
	m = send(t, m, campaignStartedMsg{})
	m = send(t, m, campaignViewMsg{view: sampleCampaign(true)})
	m = press(t, m, "q")
	require.NotNil(t, m.prompt)
	require.NotContains(t, screenText(m), "espdeck campaign resume")
	m = press(t, m, "n")
	m = send(t, m, campaignViewMsg{view: sampleCampaign(false)})
	requireLogContains(t, m, "1 failed")
	for _, e := range m.logs {
		require.NotContains(t, e.text, "espdeck campaign resume")
	}
}

// A board that came back on its old version and is also on USB: p reads
// its partitions (which slot booted, the otadata states that say why) and
// esc comes back to the campaign. A rolled-back board that is not on USB
// says so instead.
func TestRolledBackBoardOnUSBExplainsItself(t *testing.T) {
	m, _ := startedCampaign(t, 120, 40, sampleCampaign(true))
	v := sampleCampaign(false)
	v.Rows[0].State, v.Rows[0].Confirmation, v.Rows[0].Running = "rolled-back", "rolled-back", "2026.10.0"
	m = send(t, m, campaignViewMsg{view: v})
	// garage-door (network only) rolled back: p cannot read it.
	m = press(t, m, "p")
	require.Equal(t, screenCampaign, m.screen)
	requireScreenContains(t, m, "garage-door is not on USB here")

	m = press(t, m, "down", "down") // bench-3, on USB, rolled back
	requireScreenContains(t, m, "p reads its partitions over USB")
	m = press(t, m, "?")
	requireScreenContains(t, m, "why it rolled back")
	m = press(t, m, "?")
	m, cmd := sendCmd(t, m, keyMsg("p"))
	require.Equal(t, screenPartitions, m.screen)
	require.NotNil(t, cmd, "the partitions are read from the board")
	require.Equal(t, m.resolveKey(m.camp.rowOf[FakeBench]), m.current)
	m = press(t, m, "esc")
	require.Equal(t, screenCampaign, m.screen, "esc goes back to the campaign")
}
