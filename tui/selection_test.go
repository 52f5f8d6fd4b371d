package tui

import (
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
	m = press(t, m, "enter")
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
	requireScreenContains(t, m, `filter "greenhouse": 1 of 6`, "2 marked (2 hidden)")
	m = press(t, m, "f")
	require.Len(t, m.flow.targets, 2, "marks decide, and the dialog says so")
	requireScreenContains(t, m, "Flash 2 devices", "bench-3 (hidden by the filter)", "porch-light (hidden by the filter)",
		"2 of these are hidden by the filter")
}

func TestGroupFlashCanSendToTheBoardsThatPassedOnly(t *testing.T) {
	m, fake := newTestModel(t, 120, 40, Config{})
	for _, n := range []string{"garage-door", "pump-house", "porch-light"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	// An ESP32 image: pump-house is an ESP32-C3 and fails its pre-flight.
	m = chooseFile(t, m, "blink-esp32.bin")
	require.False(t, m.flow.allOK())
	requireScreenContains(t, m, "built for ESP32, this board is ESP32-C3", "p flashes only the 2 that passed", "F forces")
	m = press(t, m, "enter")
	require.Empty(t, m.jobs, "enter stays off while a check failed")
	m, cmd := sendCmd(t, m, keyMsg("p"))
	require.NotNil(t, m.prompt, "porch-light asks for its password")
	m = typeText(t, m, "demo")
	m, cmd = sendCmd(t, m, keyMsg("enter"))
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
