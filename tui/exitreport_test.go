package tui

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"
)

func TestQuittingReportsEachCancelledJobAndItsBoard(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{Concurrency: 1})
	for _, n := range []string{"bench-3", "sensor-attic"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	m = chooseFile(t, m, "testdata/demo-app.bin")
	m = press(t, m, "J") // as plain jobs
	require.Len(t, m.jobs, 2)
	bench := m.jobs[0]
	require.Equal(t, "bench-3", bench.name)
	m = send(t, m, jobProgressMsg{updates: []progressUpdate{{job: bench.id, p: Progress{Stage: "write", Note: "0x20000", Done: 40, Total: 100}, at: testNow}}})

	m = press(t, m, "q")
	require.NotNil(t, m.prompt, "quitting with a flash running asks first")
	m = press(t, m, "y")
	m, cmd := sendCmd(t, m, jobFinishedMsg{job: bench.id, result: FlashResult{Canceled: true}})
	require.NotNil(t, cmd, "the last job's end quits")

	lines := exitReport(m.jobs)
	require.Len(t, lines, 2)
	require.Contains(t, lines[0], "cancelled bench-3 at write 40%")
	require.Contains(t, lines[0], "flash at 0x20000 is partly erased or written")
	require.Contains(t, lines[1], "cancelled sensor-attic at not started: nothing was written")
}

// A job the user cancelled with c before quitting is not reported as cut
// short by quitting, and nothing makes the exit status say so.
func TestJobCancelledBeforeQuittingIsNotInTheReport(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m = press(t, m, "enter", "c")
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Canceled: true}})
	require.Equal(t, jobCanceled, m.jobs[0].state)
	m = press(t, m, "q")
	require.Empty(t, exitReport(m.jobs))
}

func TestBoardAfterCancelByStage(t *testing.T) {
	for stage, want := range map[string]string{
		"invite": "nothing was written", "transfer": "the app it ran before still boots", "finalize": "look at it before flashing again",
	} {
		require.Contains(t, boardAfterCancel(&job{stage: stage, req: FlashRequest{Route: RouteNetwork}}), want, stage)
	}
	for stage, want := range map[string]string{
		"sync": "reset it to run its app", "erase": "does not hold a bootable image", "verify": "not verified", "reset": "reset the board to run it",
	} {
		require.Contains(t, boardAfterCancel(&job{stage: stage, req: FlashRequest{Route: RouteSerial}}), want, stage)
	}
}

// The real program: quit while a flash runs, confirm, and the report is
// written after the program has left the terminal; Run says jobs were cut.
func TestRunWritesTheExitReport(t *testing.T) {
	fake := NewFakeBackend(FakeOptions{Step: 200 * time.Millisecond})
	rec := newLogRecorder()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var report bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Logger: slog.New(rec), ExitReport: &report}, fake.Backend(),
			tea.WithInput(pr), tea.WithOutput(io.Discard), tea.WithWindowSize(100, 30), tea.WithoutSignalHandler())
	}()
	rec.waitFor(t, "found sensor-attic")
	_, err := pw.Write([]byte("/attic\rf"))
	require.NoError(t, err)
	_, err = pw.Write([]byte("sensor-attic.bin\r"))
	require.NoError(t, err)
	rec.waitFor(t, "image sensor-attic.bin")
	_, err = pw.Write([]byte("\r"))
	require.NoError(t, err)
	rec.waitFor(t, "flash sensor-attic:")
	_, err = pw.Write([]byte("qy"))
	require.NoError(t, err)
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrJobsCancelled)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not quit")
	}
	require.True(t, strings.HasPrefix(report.String(), "espdeck: cancelled sensor-attic at "), report.String())
}
