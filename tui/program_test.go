package tui

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"
)

// logRecorder is a slog handler that keeps messages, so a test can wait
// for what the TUI reports while the real program runs.
type logRecorder struct {
	mu   *sync.Mutex
	msgs *[]string
}

func newLogRecorder() logRecorder {
	return logRecorder{mu: &sync.Mutex{}, msgs: &[]string{}}
}

func (l logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.msgs = append(*l.msgs, r.Message)
	return nil
}
func (l logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logRecorder) WithGroup(string) slog.Handler      { return l }

// waitFor waits until a logged message contains s.
func (l logRecorder) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		for _, m := range *l.msgs {
			if strings.Contains(m, s) {
				l.mu.Unlock()
				return
			}
		}
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("no log message with %q; got:\n%s", s, strings.Join(*l.msgs, "\n"))
}

// TestProgramEndToEndOnFakeFleet runs the real Bubble Tea program with
// keystrokes on its input: flash a board, see the firewall hint for the one
// that never connects back, and quit. This is the shape of the flow tests
// against the simulators.
func TestProgramEndToEndOnFakeFleet(t *testing.T) {
	fake := NewFakeBackend(FakeOptions{Step: time.Millisecond})
	rec := newLogRecorder()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Demo: true, Logger: slog.New(rec)}, fake.Backend(),
			tea.WithInput(pr), tea.WithOutput(io.Discard), tea.WithWindowSize(100, 30), tea.WithoutSignalHandler())
	}()
	typeKeys := func(s string) {
		_, err := pw.Write([]byte(s))
		require.NoError(t, err)
	}
	rec.waitFor(t, "found sensor-attic")
	typeKeys("/attic\r") // filter down to one board, keep the filter
	typeKeys("f")
	typeKeys("sensor-attic.bin\r")
	rec.waitFor(t, "image sensor-attic.bin")
	typeKeys("\r")
	rec.waitFor(t, "flash sensor-attic done")

	typeKeys("/")
	typeKeys(strings.Repeat("\x7f", 5) + "garage\r")
	typeKeys("f")
	typeKeys("blink-esp32.bin\r")
	rec.waitFor(t, "image blink-esp32.bin")
	typeKeys("\r")
	rec.waitFor(t, "hint for garage-door: allow inbound TCP on port 41234")

	typeKeys("q")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not quit")
	}
	flashes := fake.Flashes()
	require.Len(t, flashes, 2)
	require.Equal(t, "sensor-attic.bin", flashes[0].File)
}
