package tui

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// longWhy is an explanation longer than any status line.
const longWhy = "otadata copy 0 has sequence 9 but a bad CRC and copy 1 has sequence 8 in state PENDING_VERIFY, " +
	"so the bootloader takes copy 1 and starts ota_0 once more; if ota_0 does not confirm itself before the next reset it is rolled back to ota_1 for good"

// requireWhole checks that every word of text is on the screen and that no
// screen line ends in an ellipsis: the sentence was wrapped, not cut.
func requireWhole(t *testing.T, m Model, text string) {
	t.Helper()
	s := screenText(m)
	var words []string
	for _, w := range strings.Fields(s) {
		if w != "│" && w != "|" { // box sides between wrapped lines
			words = append(words, w)
		}
	}
	flat := strings.Join(words, " ")
	require.Contains(t, flat, strings.Join(strings.Fields(text), " "), "the whole sentence is on screen:\n%s", s)
}

func TestLongErrorWrapsAndWReadsTheRest(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	msg := "switch boot slot on bench-3 failed: the board stopped answering after the otadata write; " +
		"the write may or may not have landed, so read the partitions again (ctrl+l) before choosing"
	m.fail(msg)
	requireWhole(t, m, msg)
	require.NotContains(t, screenText(m), "w reads all", "it fits in three lines")

	// Longer than three lines: the status line says which key reads it.
	huge := strings.Repeat(longWhy+" ", 3) + "THEEND"
	m.fail(huge)
	requireScreenContains(t, m, "w reads all")
	require.NotContains(t, screenText(m), "THEEND")
	m = press(t, m, "w")
	require.Equal(t, screenLog, m.screen)
	requireScreenContains(t, m, "THEEND")
	m = press(t, m, "esc")
	require.Equal(t, screenList, m.screen)
}

func TestBootDecisionAndReadBackAreReadableInFull(t *testing.T) {
	for _, w := range []int{80, 120} {
		m, fake := newTestModel(t, w, 40, Config{})
		m = openBenchDetail(t, m, fake)
		m = press(t, m, "p")
		r := m.rowByKey(m.current)
		st := m.parts[r.key].state
		st.BootsNextWhy = longWhy
		st.Running = ""
		m = send(t, m, partitionsMsg{row: r.key, action: "boot slot switched to ota_0", state: st})
		requireWhole(t, m, longWhy)
		require.NotContains(t, screenText(m), "running (unknown)", "a slot switch does not change what runs now")
		requireScreenContains(t, m, "running ota_1")
	}
}

func TestSlotChangeSaysWhatItIsDoing(t *testing.T) {
	m, fake := newTestModel(t, 80, 24, Config{})
	m = openBenchDetail(t, m, fake)
	m = press(t, m, "p", "up", "s", "y")
	requireScreenContains(t, m, "switching the boot slot to ota_0, then reading it back")
}

func TestVerdictWarningsWrapInTheFlashDialog(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	warning := "the ELF given with --elf was built from another image (its SHA-256 differs), so backtraces of this build would be decoded wrongly"
	v := m.flow.verdicts[m.flow.targets[0]]
	v.Warnings = append(v.Warnings, warning)
	m.flow.verdicts[m.flow.targets[0]] = v
	requireWhole(t, m, warning)
}

func TestSerialModeIsNeverJustUnknown(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceAdded, Device: Device{ID: "usb:/dev/pts/1", Name: "pts", Kind: KindSerial, Port: "/dev/pts/1"}}}})
	m = cursorTo(t, m, "pts")
	m = press(t, m, "enter")
	require.NotContains(t, screenText(m), "mode unknown")
	requireScreenContains(t, m, "not talked to yet")
}

// A long monitor line (the ELF mismatch warning) wraps in the monitor
// instead of being cut at the terminal's edge without a mark.
func TestLongMonitorLineWraps(t *testing.T) {
	m, fake := newTestModel(t, 80, 24, Config{})
	m = openBenchDetail(t, m, fake)
	m, cmd := sendCmd(t, m, keyMsg("m"))
	opened := runMsg(t, cmd).(monitorOpenedMsg)
	m = send(t, m, opened)
	m.mon.cancel()
	warning := "warning: the ELF (SHA-256 138cb4392e3b7980) is not the one the running firmware was built from; decoded addresses would point to the wrong code, pass the ELF from the same build"
	m = send(t, m, monitorLinesMsg{session: opened.session, lines: []LogLine{{Level: 'W', Tag: "espdeck", Text: warning}}})
	requireWhole(t, m, warning)
}
