package tui

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/stretchr/testify/require"
)

// testNow is the fixed clock of every model test.
var testNow = time.Date(2026, 11, 22, 14, 7, 30, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// newTestModel builds a model on the fake fleet at a size, with the fleet
// already discovered. It returns the model and the fake.
func newTestModel(t testing.TB, w, h int, cfg Config) (Model, *FakeBackend) {
	t.Helper()
	fake := NewFakeBackend(FakeOptions{Step: time.Millisecond, Now: fixedNow})
	cfg.Now = fixedNow
	m := New(cfg, fake.Backend())
	t.Cleanup(m.cancel)
	m = send(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	var evs []DeviceEvent
	for _, d := range DemoFleet(testNow) {
		evs = append(evs, DeviceEvent{Kind: DeviceAdded, Device: d})
	}
	m = send(t, m, deviceEventsMsg{events: evs})
	return m, fake
}

// send drives Update with one message and returns the new model (commands
// are not run; tests feed the messages those commands would produce).
func send(t testing.TB, m Model, msg tea.Msg) Model {
	t.Helper()
	next, _ := m.Update(msg)
	nm, ok := next.(Model)
	require.True(t, ok)
	return nm
}

// sendCmd is send that also returns the command.
func sendCmd(t testing.TB, m Model, msg tea.Msg) (Model, tea.Cmd) {
	t.Helper()
	next, cmd := m.Update(msg)
	return next.(Model), cmd
}

// keys types keys: "enter", "space", "f", or a word of several letters as
// separate presses when prefixed by "type:".
func press(t testing.TB, m Model, ks ...string) Model {
	t.Helper()
	for _, k := range ks {
		m = send(t, m, keyMsg(k))
	}
	return m
}

func typeText(t testing.TB, m Model, s string) Model {
	t.Helper()
	for _, r := range s {
		m = send(t, m, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return m
}

func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "ctrl+l":
		return tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// screen is the ANSI-stripped view.
func screenText(m Model) string {
	return ansi.Strip(m.View().Content)
}

func requireScreenContains(t testing.TB, m Model, parts ...string) {
	t.Helper()
	s := screenText(m)
	for _, p := range parts {
		require.True(t, strings.Contains(s, p), "screen lacks %q:\n%s", p, s)
	}
}

func lipglossWidth(s string) int { return ansi.StringWidth(s) }

func writeFile(path string) error { return os.WriteFile(path, make([]byte, 1024), 0o644) }

func windowSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }

func fmtInt(n int) string { return strconv.Itoa(n) }

func monCtx(mon *monitorState) context.Context { return mon.ctx }

// findMsg runs cmd (and the commands of a batch, each on its own goroutine)
// and returns the first message of type T.
func findMsg[T any](t *testing.T, cmd tea.Cmd) T {
	t.Helper()
	require.NotNil(t, cmd)
	out := make(chan tea.Msg, 64)
	var run func(c tea.Cmd)
	run = func(c tea.Cmd) {
		if c == nil {
			return
		}
		go func() {
			msg := c()
			if b, ok := msg.(tea.BatchMsg); ok {
				for _, sub := range b {
					run(sub)
				}
				return
			}
			out <- msg
		}()
	}
	run(cmd)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case msg := <-out:
			if v, ok := msg.(T); ok {
				return v
			}
		case <-deadline:
			var zero T
			t.Fatalf("no %T from the command", zero)
			return zero
		}
	}
}

// collectMsgs runs cmd (batches included, each command on its own
// goroutine) and returns the first n messages of type T.
func collectMsgs[T any](t *testing.T, cmd tea.Cmd, n int) []T {
	t.Helper()
	require.NotNil(t, cmd)
	out := make(chan tea.Msg, 64)
	var run func(c tea.Cmd)
	run = func(c tea.Cmd) {
		if c == nil {
			return
		}
		go func() {
			msg := c()
			if b, ok := msg.(tea.BatchMsg); ok {
				for _, sub := range b {
					run(sub)
				}
				return
			}
			out <- msg
		}()
	}
	run(cmd)
	deadline := time.After(20 * time.Second)
	var got []T
	for len(got) < n {
		select {
		case msg := <-out:
			if v, ok := msg.(T); ok {
				got = append(got, v)
			}
		case <-deadline:
			t.Fatalf("%d of %d messages from the command", len(got), n)
		}
	}
	return got
}

type keyBinding = key.Binding

func fmtType(v any) string { return fmt.Sprintf("%T", v) }

// requireLogContains fails unless some log entry contains each of parts.
func requireLogContains(t testing.TB, m Model, parts ...string) {
	t.Helper()
	var all []string
	for _, e := range m.logs {
		all = append(all, e.text)
	}
	text := strings.Join(all, "\n")
	for _, p := range parts {
		require.True(t, strings.Contains(text, p), "log lacks %q:\n%s", p, text)
	}
}
