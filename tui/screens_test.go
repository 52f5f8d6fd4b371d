package tui

import (
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"
)

// allScreens is every registered screen.
var allScreens = []screen{screenList, screenDetail, screenPartitions, screenMonitor, screenJobs, screenJobDetail, screenLog}

// Every screen meets the contract on its own: its view fits the height it
// is given, it names at least one key, and every key it names can be
// pressed in its current state without harm (the view still fits).
func TestEveryScreenMeetsTheContract(t *testing.T) {
	for _, s := range allScreens {
		ui := s.ui()
		for _, size := range [][2]int{{80, 24}, {120, 40}, {40, 12}} {
			m := severalJobs(t, size[0], size[1], 2)
			m = cursorTo(t, m, "bench-3")
			m.current = m.cursorRow().key
			m.jobShown = m.jobs[0].id
			m.screen = s
			ui.resize(&m)
			lines := ui.view(m, size[1]-2)
			require.LessOrEqual(t, len(lines), size[1]-2, "%T draws past its height", ui)
			keys := ui.keys(m)
			require.NotEmpty(t, append(keys.nav, keys.act...), "%T names no key", ui)
			for _, group := range [][]keyBinding{keys.nav, keys.act, keys.extraNav, keys.extraAct} {
				for _, b := range group {
					if b.Keys()[0] == "q" { // quitting ends the model, not the screen
						continue
					}
					mm := m
					cmd := ui.update(&mm, keyMsg(b.Keys()[0]))
					_ = cmd
					require.NotPanics(t, func() { _ = screenText(mm) }, "%T after %s", ui, b.Keys()[0])
				}
			}
			if m.mon != nil {
				m.mon.cancel()
			}
		}
	}
}

// The registry knows every screen: none falls back to the list by mistake.
func TestScreenRegistryIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range allScreens {
		name := typeName(s.ui())
		require.False(t, seen[name], "two screens share %s", name)
		seen[name] = true
	}
}

func typeName(v any) string { return fmtType(v) }

var _ tea.Model = Model{}

// A prompt opened during the flash flow is on top of it: it takes the keys
// and the help bar, and closing it returns to the flow below.
func TestDialogStackPromptOverFlow(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Demo: true})
	m = cursorTo(t, m, "greenhouse-ctl")
	m = chooseFile(t, m, "greenhouse-v2.7.1.bin")
	require.Len(t, m.dialogs(), 1)
	m = press(t, m, "enter") // the password prompt opens over the flow
	require.Len(t, m.dialogs(), 2)
	require.IsType(t, promptDialog{}, m.topDialog())
	requireScreenContains(t, m, "Password for greenhouse-ctl", "enter ok", "esc cancel")
	m = typeText(t, m, "x")
	require.Equal(t, "x", m.prompt.input.Value(), "keys go to the top dialog")
	m = press(t, m, "esc")
	require.Nil(t, m.prompt)
	require.Empty(t, m.dialogs(), "no password: the flash is not started and its dialog closes")
}
