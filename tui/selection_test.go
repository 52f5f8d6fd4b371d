package tui

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// filterTo types a filter and keeps it.
func filterTo(t *testing.T, m Model, text string) Model {
	t.Helper()
	m = press(t, m, "/")
	m = typeText(t, m, text)
	return press(t, m, "enter")
}

// The bench story of the issue: after a group flash of two boards, a filter
// to a third and f must offer that one board only, not the two again.
func TestMarksClearAfterGroupFlashSoFFlashesTheHighlightedBoard(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Concurrency: 2})
	for _, n := range []string{"bench-3", "sensor-attic"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	m = chooseFile(t, m, "testdata/demo-app.bin")
	m = press(t, m, "J")
	require.Len(t, m.jobs, 2)
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Bytes: 1}})
	require.Len(t, m.marked, 2, "marks stay while the group runs")
	m = send(t, m, jobFinishedMsg{job: m.jobs[1].id, result: FlashResult{Bytes: 1}})
	require.Empty(t, m.marked, "the finished group flash clears its marks")

	m = filterTo(t, m, "greenhouse")
	m = press(t, m, "f")
	require.NotNil(t, m.flow)
	require.Equal(t, []string{"mac:" + fakeGreenMAC}, m.flow.targets, "f acts on the highlighted board")
}

func TestFlashDialogNamesMarkedBoardsTheFilterHides(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	for _, n := range []string{"bench-3", "porch-light"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	m = filterTo(t, m, "greenhouse")
	requireScreenContains(t, m, "6 devices (1 shown)", `filter "greenhouse": 1 of 6`, "2 marked (2 hidden)")
	m = press(t, m, "f")
	require.Len(t, m.flow.targets, 2, "marks decide, and the dialog says so")
	requireScreenContains(t, m, "Flash 2 devices", "bench-3 (hidden by the filter)", "porch-light (hidden by the filter)",
		"2 of these are hidden by the filter")
}

// J sends the boards that passed as plain jobs, all at once (p would run
// them as a campaign).
func TestGroupFlashCanSendToTheBoardsThatPassedOnly(t *testing.T) {
	m, fake := newTestModel(t, 120, 40, Config{})
	for _, n := range []string{"garage-door", "pump-house", "porch-light"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	// An ESP32 image: pump-house is an ESP32-C3 and fails its pre-flight.
	m = chooseFile(t, m, "blink-esp32.bin")
	require.False(t, m.flow.allOK())
	requireScreenContains(t, m, "built for ESP32, this board is ESP32-C3", "p runs only the 2 that passed as a campaign", "F forces",
		"J sends the 2")
	m = press(t, m, "enter")
	require.Empty(t, m.jobs, "enter stays off while a check failed")
	require.Nil(t, m.camp)
	m = press(t, m, "J")
	require.NotNil(t, m.prompt, "porch-light asks for its password")
	m = typeText(t, m, "demo")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	require.Nil(t, m.flow)
	require.Len(t, m.jobs, 2)
	for _, j := range m.jobs {
		require.NotEqual(t, "pump-house", j.name, "the board that failed its pre-flight is not flashed")
		require.False(t, j.req.Force)
	}
	for _, msg := range collectMsgs[jobFinishedMsg](t, cmd, 2) {
		m = send(t, m, msg)
	}
	require.Len(t, fake.Flashes(), 2)
	for _, f := range fake.Flashes() {
		require.NotEqual(t, FakePump, f.Device.ID)
	}
}

// The STATUS column once ran backwards (erase 41% → write 5%): overall
// progress only grows, whatever order the stages report in.
func TestProgressIsMonotonicAcrossStages(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "bench-3")
	m = chooseFile(t, m, "testdata/demo-app.bin")
	m = press(t, m, "enter")
	id := m.jobs[0].id
	last := -1.0
	for _, p := range []Progress{
		{Stage: "sync"}, {Stage: "erase", Done: 41, Total: 100}, {Stage: "write", Done: 5, Total: 100},
		{Stage: "write", Done: 100, Total: 100}, {Stage: "verify", Done: 0, Total: 100}, {Stage: "mystery", Done: 1, Total: 100},
		{Stage: "verify", Done: 100, Total: 100}, {Stage: "reset"},
	} {
		m = send(t, m, jobProgressMsg{updates: []progressUpdate{{job: id, p: p, at: testNow}}})
		got := m.jobs[0].percent()
		require.GreaterOrEqual(t, got, last, "progress went back at %s %d/%d", p.Stage, p.Done, p.Total)
		last = got
		requireScreenContains(t, m, p.Stage)
	}
	require.Greater(t, last, 0.9)
}

func TestFinishedJobsAreOneLineAndDismissable(t *testing.T) {
	m := severalJobs(t, 80, 24, 2)
	// Running jobs come first and keep their progress bars in view.
	s := screenText(m)
	require.Contains(t, s, "write")
	require.Contains(t, s, "transfer")
	fail := strings.Index(s, "failed  the device never")
	require.Greater(t, fail, strings.Index(s, "transfer"), "the finished job is listed after the running ones")
	require.NotContains(t, s, "hint:", "the hint waits in the job detail")

	m = press(t, m, "X")
	for _, j := range m.jobs {
		require.True(t, j.running(), "X dismisses finished jobs only")
	}
	require.NotContains(t, screenText(m), "failed  the device never")

	// x on the jobs screen dismisses the finished job under the cursor.
	m = severalJobs(t, 80, 24, 2)
	m = press(t, m, "J")
	for m.jobAtCursor() != nil && m.jobAtCursor().running() {
		m = press(t, m, "down")
	}
	require.Equal(t, "garage-door", m.jobAtCursor().name)
	m = press(t, m, "enter")
	requireScreenContains(t, m, "allow inbound TCP on port 41234")
	m = press(t, m, "x")
	require.Equal(t, screenJobs, m.screen)
	for _, j := range m.jobs {
		require.NotEqual(t, "garage-door", j.name)
	}
}
