package tui

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// ? lists every key the screen acts on, even those that do nothing for the
// board under the cursor right now (r and c were in footers but not in ?).
func TestHelpListsEveryKeyOfTheScreen(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, Config{})
	m = cursorTo(t, m, "porch-light") // no job: r and c do nothing here
	m = press(t, m, "?")
	requireScreenContains(t, m, "r      retry", "c      cancel job", "space  mark ↓", "p      partitions (serial)",
		"m      monitor (serial)", "X      dismiss finished", "J      jobs", "w      full log (why)", "ctrl+l refresh", "/      filter")
	m = press(t, m, "?")

	for _, tc := range []struct {
		open []string
		want []string
	}{
		{[]string{"J"}, []string{"enter  job detail", "x      dismiss job", "X      dismiss finished"}},
		{[]string{"w"}, []string{"older", "newer", "esc"}},
	} {
		mm := press(t, m, tc.open...)
		mm = press(t, mm, "?")
		requireScreenContains(t, mm, tc.want...)
	}
}

// p and m work from the list for a serial board, as the README says.
func TestPartitionsAndMonitorFromTheList(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "bench-3")
	m = press(t, m, "p")
	require.Equal(t, screenPartitions, m.screen)
	m = press(t, m, "esc")
	require.Equal(t, screenDetail, m.screen)
	m = press(t, m, "esc")
	m = press(t, m, "m")
	require.Equal(t, screenMonitor, m.screen)
	m.closeMonitor()

	// A network-only board has neither.
	m, _ = newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "porch-light")
	m = press(t, m, "p", "m")
	require.Equal(t, screenList, m.screen)
}
