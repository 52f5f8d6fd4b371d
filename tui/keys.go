package tui

import "charm.land/bubbles/v2/key"

// KeyMap is every binding of the program, defined once with its help text.
// Screens enable the bindings that apply to them; help shows only enabled ones.
type KeyMap struct {
	Up, Down, Enter, Back key.Binding

	Flash, Mark, MarkAll, AddHost, Refresh, Retry, Cancel, Force, PassedOnly key.Binding
	Detail, Partitions, Monitor                                              key.Binding
	Switch, EraseOTA, MarkInvalid, SerialFlash                               key.Binding
	Pause, ResetApp, Save, PageUp, PageDown, Top, Bottom                     key.Binding
	Filter, Log, Dismiss, Help, Quit, ForceQuit                              key.Binding
	Yes, No, Complete                                                        key.Binding
	Jobs, DismissJob, DismissAll, Why                                        key.Binding
	// AsJobs sends a reviewed group flash as plain parallel jobs instead
	// of a campaign; Campaign opens the campaign screen; Resume sends
	// again to its failed boards.
	AsJobs, Campaign, Resume key.Binding
	// Server opens the pull server pane.
	Server key.Binding
}

// DefaultKeyMap is the key map espdeck ships with.
func DefaultKeyMap() KeyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return KeyMap{
		Up:          b("↑/k", "up", "up", "k"),
		Down:        b("↓/j", "down", "down", "j"),
		Enter:       b("enter", "detail", "enter"),
		Back:        b("esc", "back", "esc"),
		Flash:       b("f", "flash", "f"),
		Mark:        b("space", "mark ↓", "space"),
		MarkAll:     b("ctrl+a", "mark all", "ctrl+a"),
		AddHost:     b("a", "add host", "a"),
		Refresh:     b("ctrl+l", "refresh", "ctrl+l"),
		Retry:       b("r", "retry", "r"),
		Cancel:      b("c", "cancel job", "c"),
		Force:       b("F", "force", "F"),
		PassedOnly:  b("p", "flash the ones that passed", "p"),
		Detail:      b("enter", "detail", "enter"),
		Partitions:  b("p", "partitions", "p"),
		Monitor:     b("m", "monitor", "m"),
		Switch:      b("s", "boot this slot", "s"),
		EraseOTA:    b("e", "erase otadata", "e"),
		SerialFlash: b("s", "serial recovery", "s"),
		MarkInvalid: b("i", "mark invalid", "i"),
		Pause:       b("space", "pause", "space"),
		ResetApp:    b("ctrl+r", "reset into app", "ctrl+r"),
		Save:        b("s", "save", "s"),
		PageUp:      b("pgup", "page up", "pgup", "b"),
		PageDown:    b("pgdn", "page down", "pgdown", "pgdn"),
		Top:         b("g", "top", "g", "home"),
		Bottom:      b("G", "follow tail", "G", "end"),
		Filter:      b("/", "filter", "/"),
		Log:         b("l", "log", "l"),
		Dismiss:     b("x", "dismiss error", "x"),
		Help:        b("?", "help", "?"),
		Jobs:        b("J", "jobs", "J"),
		DismissJob:  b("x", "dismiss job", "x"),
		DismissAll:  b("X", "dismiss finished", "X"),
		Why:         b("w", "full log (why)", "w"),
		Quit:        b("q", "quit", "q"),
		ForceQuit:   b("ctrl+c", "quit", "ctrl+c"),
		Yes:         b("y", "yes", "y", "Y"),
		No:          b("n", "no", "n", "N", "esc"),
		Complete:    b("tab", "complete", "tab"),
		AsJobs:      b("J", "as plain jobs (all at once, no canary)", "J"),
		Campaign:    b("C", "campaign", "C"),
		Resume:      b("R", "resume failed", "R"),
		Server:      b("S", "server", "S"),
	}
}

// helpKeys adapts a screen's bindings to help.KeyMap.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }
