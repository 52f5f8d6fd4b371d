package tuibackend_test

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/tui"
)

var updateCapture = flag.Bool("update", false, "rewrite the README's capture of the demo")

// runModel drives a tea.Model the way the Bubble Tea runtime does —
// commands on their own goroutines, their messages through Update one at
// a time — until done says the view is what the caller waits for.
func runModel(t *testing.T, m tea.Model, size tea.WindowSizeMsg, done func(view string) bool) tea.Model {
	t.Helper()
	msgs := make(chan tea.Msg, 256)
	var run func(tea.Cmd)
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
			if msg != nil {
				msgs <- msg
			}
		}()
	}
	run(m.Init())
	m, cmd := m.Update(size)
	run(cmd)
	deadline := time.After(60 * time.Second)
	for !done(ansi.Strip(m.View().Content)) {
		select {
		case msg := <-msgs:
			m, cmd = m.Update(msg)
			run(cmd)
		case <-deadline:
			t.Fatalf("the view never got there:\n%s", ansi.Strip(m.View().Content))
		}
	}
	return m
}

// TestREADMECaptureIsTheDemoAsItStarts starts the demo fleet behind the
// real backend and checks that the README's capture is the first screen
// the demo shows: the same boards, words and keys (loopback ports and the
// pty number differ from run to run and are compared as placeholders).
// go test ./internal/tuibackend -run READMECapture -update rewrites it.
func TestREADMECaptureIsTheDemoAsItStarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()
	backend := tuibackend.New(tuibackend.Config{
		Watcher:        discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		OpenSerialPort: fleet.OpenSerialPort,
		Logger:         slog.New(slog.DiscardHandler),
	})
	m := tui.New(tui.Config{Demo: true, DemoPassword: demo.Password, RecentFiles: fleet.Files}, backend.TUI())
	names := []string{"bench-3", "garage-door", "greenhouse-ctl", "porch-light", "sensor-attic", "weather-station"}
	final := runModel(t, m, tea.WindowSizeMsg{Width: 100, Height: 24}, func(v string) bool {
		for _, n := range names {
			if !strings.Contains(v, n) {
				return false
			}
		}
		return true
	})
	screen := ansi.Strip(final.View().Content)
	final.Update(tea.KeyPressMsg{Code: 'q', Text: "q"}) // stops the model's own work

	var kept []string
	for _, l := range strings.Split(screen, "\n") {
		if l = strings.TrimRight(l, " "); l != "" { // blank rows say nothing in a README
			kept = append(kept, l)
		}
	}
	capture := strings.Join(kept, "\n")

	const readme = "../../README.md"
	b, err := os.ReadFile(readme)
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "```\n")
	end := strings.Index(text[start+4:], "\n```")
	require.True(t, start >= 0 && end >= 0, "the README starts with a fenced capture")
	current := text[start+4 : start+4+end]
	if *updateCapture {
		text = text[:start+4] + capture + text[start+4+end:]
		require.NoError(t, os.WriteFile(readme, []byte(text), 0o644))
		return
	}
	require.Equal(t, normalise(current), normalise(capture),
		"the README's capture is not what the demo shows when it starts; go test ./internal/tuibackend -run READMECapture -update")
}

var (
	loopbackPort = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	ptyPath      = regexp.MustCompile(`/dev/pts/\d+ *`)
)

// normalise replaces what changes from run to run.
func normalise(s string) string {
	s = loopbackPort.ReplaceAllString(s, "127.0.0.1:PORT")
	return ptyPath.ReplaceAllString(s, "/dev/pts/N ")
}
