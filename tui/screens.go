package tui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// screenUI is the one contract every full-window screen meets (after
// soft-serve's component: a model, its help.KeyMap and its size). The root
// model routes a key to the active screen's update, draws its view into
// the height left between header, the boxes below and the footer, builds
// help from its keys, and frames it as its layout says. State shared by
// several screens (rows, jobs, partition reads) lives in the root; a
// screen's own position lives beside it there. Adding a screen is a type
// with these five methods and a line in (screen).ui.
type screenUI interface {
	// keys are the screen's bindings, enabled for what applies right now.
	keys(m Model) screenKeys
	// update handles a key the dialogs and global keys left to the screen.
	update(m *Model, msg tea.KeyPressMsg) tea.Cmd
	// view draws the screen in at most h lines.
	view(m Model, h int) []string
	// resize follows a change of the terminal's size or of the room the
	// screen has (the log pane opened or closed).
	resize(m *Model)
	layout() screenLayout
}

// screenLayout says how the root frames a screen.
type screenLayout struct {
	wrap      bool // lines wider than the terminal wrap (explanations), else are cut
	jobsBelow bool // the Jobs box is shown below the screen
}

// screenKeys are a screen's bindings by group. nav, act and view make the
// help bar; extraNav and extraAct are only listed by ? (every key of the
// screen, even those that do nothing for the board under the cursor).
// A nil view keeps the common view keys (/, l, ?).
type screenKeys struct {
	nav, act, extraNav, extraAct, view []key.Binding
}

// ui is the registry of screens.
func (s screen) ui() screenUI {
	switch s {
	case screenDetail:
		return detailScreen{}
	case screenPartitions:
		return partitionsScreen{}
	case screenMonitor:
		return monitorScreen{}
	case screenJobs:
		return jobsScreen{}
	case screenJobDetail:
		return jobDetailScreen{}
	case screenLog:
		return logScreen{}
	case screenCampaign:
		return campaignScreen{}
	case screenServer:
		return serverScreen{}
	}
	return listScreen{}
}

// enabledIf returns b enabled when cond holds, for help that shows only
// the keys that apply.
func enabledIf(b key.Binding, cond bool) key.Binding { b.SetEnabled(cond); return b }

// describedAs returns b with another help text.
func describedAs(b key.Binding, desc string) key.Binding { b.SetHelp(b.Help().Key, desc); return b }
