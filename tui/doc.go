// Package tui is espdeck's terminal workbench: a Bubble Tea program that
// lists the boards discovery finds (network and serial, merged by MAC),
// shows what is known about one, flashes images to one or many with live
// progress, shows and changes a serial board's boot slot, and follows its
// serial output.
//
// The package never opens a socket or a port. Everything it needs is
// declared in backend.go as small interfaces with plain values; cmd/espdeck
// adapts the real packages to them and tests use FakeBackend. Build a model
// with New and run it with Run (or tea.NewProgram for custom options).
package tui
