// Package tui is espdeck's terminal workbench: a Bubble Tea program that
// lists the boards discovery finds (network and serial, merged by MAC),
// shows what is known about one, flashes images to one or many with live
// progress, shows and changes a serial board's boot slot, and follows its
// serial output.
//
// The package never opens a socket or a port. Everything it needs is
// declared in backend.go as small interfaces with plain values; cmd/espdeck
// adapts the real packages to them; this package's tests use the fake
// fleet in fake_test.go. Build a model
// with New and run it with Run, which passes Bubble Tea options through
// (tea.WithInput, tea.WithOutput, tea.WithWindowSize for tests).
//
// The root model (model.go) routes keys and lays the window out: header,
// the active screen, the boxes below it (dialog, jobs, log pane) and the
// footer (status line, help bar). Every screen — device list, detail,
// partitions, monitor, jobs, job detail, log — meets one contract
// (screenUI in screens.go: keys, update, view, resize, layout) and is found
// through one registry; what opens in front of a screen — the flash flow,
// the filter line, prompts — meets another (dialog in dialogs.go), and
// keys go to the top one. Cutting, padding, boxing and wrapping lines is
// in layout.go.
//
// Long work runs in commands that end with one message named for what
// happened (jobFinishedMsg, partitionsMsg). Flash progress goes through one
// fan-in channel: each job's callback sends at most every
// Config.ProgressInterval (or on a stage change) and drops a report rather
// than block the flash; a command that re-arms itself drains the channel.
//
// Tests: model tests drive Update with keys and backend messages; golden
// screens (ANSI stripped, 80×24 and 120×40) live in testdata/golden and are
// rewritten with
//
//	go test ./tui -run Golden -update
//
// The README's capture is the demo as it starts, checked (and rewritten
// with -update) by internal/tuibackend's TestREADMECaptureIsTheDemoAsItStarts.
package tui
