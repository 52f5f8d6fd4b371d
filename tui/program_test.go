package tui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/creack/pty"
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

// TestProgramWithoutColour checks, on a real pseudo-terminal, that the
// program draws in colour and that NO_COLOR takes the colour away, so
// status words carry the meaning alone.
func TestProgramWithoutColour(t *testing.T) {
	for _, noColor := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO_COLOR=%v", noColor), func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skipf("no pseudo-terminal here: %v", err)
			}
			defer ptmx.Close()
			defer tty.Close()
			require.NoError(t, pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 100}))
			var out lockedBuffer
			copied := make(chan struct{})
			go func() { _, _ = io.Copy(&out, ptmx); close(copied) }()

			env := []string{"TERM=xterm-256color", "COLORTERM=truecolor"}
			if noColor {
				env = append(env, "NO_COLOR=1")
			}
			fake := NewFakeBackend(FakeOptions{Step: time.Millisecond})
			rec := newLogRecorder()
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, Config{Logger: slog.New(rec)}, fake.Backend(),
					tea.WithInput(pr), tea.WithOutput(tty), tea.WithWindowSize(100, 30), tea.WithoutSignalHandler(),
					tea.WithEnvironment(env))
			}()
			rec.waitFor(t, "found sensor-attic")
			// Wait for a frame that shows the devices.
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(out.String(), "sensor-attic") && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			_, err = pw.Write([]byte("q"))
			require.NoError(t, err)
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("the program did not quit")
			}
			tty.Close()
			<-copied
			s := out.String()
			require.Contains(t, s, "online")
			coloured := hasColourSGR(s)
			require.Equal(t, !noColor, coloured, "colour escapes present: %v", coloured)
		})
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hasColourSGR reports whether s sets a foreground or background colour.
func hasColourSGR(s string) bool {
	for _, m := range regexp.MustCompile(`\x1b\[([0-9;:]*)m`).FindAllStringSubmatch(s, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if (n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 107) {
				return true
			}
		}
	}
	return false
}
