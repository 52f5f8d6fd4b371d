package tuibackend_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

// After a partition read has used the serial board's port, the monitor's
// lines are the board's output byte for byte: every line of the app's boot
// log arrives whole, in order, not split and not mixed with another
// reader's share of the bytes.
func TestMonitorAfterPartitionReadIsByteExact(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()
	backend := tuibackend.New(tuibackend.Config{
		Watcher:         discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		Serial:          serialflash.Options{Baud: 921600},
		OpenSerialPort:  fleet.OpenSerialPort,
		OpenMonitorPort: fleet.OpenMonitorPort,
		Logger:          slog.New(slog.DiscardHandler),
	})
	be := backend.TUI()
	var bench tui.Device
	for ev := range be.Devices.Watch(ctx) {
		if ev.Device.Kind == tui.KindSerial {
			bench = ev.Device
			break
		}
	}
	require.NotEmpty(t, bench.Port)

	st, err := be.Partitions.ReadPartitions(ctx, bench)
	require.NoError(t, err)
	require.NotEmpty(t, st.Partitions)

	lines, err := be.Monitor.Monitor(ctx, bench)
	require.NoError(t, err)
	// Reset into the app once the monitor holds the port, for a whole boot log.
	for try := 0; ; try++ {
		err := be.Monitor.ResetIntoApp(ctx, bench)
		if err == nil {
			break
		}
		require.Less(t, try, 300, "the monitor never opened the port: %v", err)
		time.Sleep(100 * time.Millisecond)
	}

	var want []string
	for _, l := range strings.Split(strings.TrimSuffix(demo.BootLog, "\r\n"), "\r\n") {
		if c := monitor.Clean(l); strings.TrimSpace(c) != "" {
			want = append(want, c)
		}
	}
	// A line matches the board's when it is that line's message with its
	// tag: the monitor splits level, time and tag off.
	matches := func(l tui.LogLine, raw string) bool {
		return strings.HasSuffix(raw, l.Text) && strings.Contains(raw, l.Tag) && len(l.Text) > 0
	}
	var got []tui.LogLine
	deadline := time.After(90 * time.Second)
	for len(got) < len(want) {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the monitor ended early; got %v", got)
			if strings.TrimSpace(l.Text) == "" {
				continue
			}
			if len(got) == 0 && !(l.Level == 'I' && l.Tag == "boot" && matches(l, want[0])) {
				continue // the ROM banner and what came before the app's first line
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("only %d of %d boot log lines: %v", len(got), len(want), got)
		}
	}
	for i, l := range got {
		require.True(t, matches(l, want[i]), "line %d: the board printed %q, the monitor shows %q (tag %q)", i, want[i], l.Text, l.Tag)
	}
}

// A line the board prints in two bursts with a pause longer than the
// monitor's idle window between them (a slow UART, a busy board) reaches
// the TUI as one line: the early part is shown by the monitor as a partial
// line and replaced when the rest arrives, never kept as a line of its own.
func TestMonitorJoinsALineSplitByAPause(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	backend := tuibackend.New(tuibackend.Config{Logger: slog.New(slog.DiscardHandler)})
	dev := tui.Device{ID: "usb:" + slave.Name(), Name: "board", Kind: tui.KindSerial, Port: slave.Name()}
	lines, err := backend.TUI().Monitor.Monitor(ctx, dev)
	require.NoError(t, err)
	next := func() tui.LogLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the monitor ended")
			return l
		case <-ctx.Done():
			t.Fatal("no line from the monitor")
		}
		return tui.LogLine{}
	}
	// The monitor is reading once a line comes through.
	for try := 0; ; try++ {
		_, err := master.Write([]byte("ready\r\n"))
		require.NoError(t, err)
		if l := next(); strings.Contains(l.Text, "ready") {
			break
		}
		require.Less(t, try, 100)
	}
	_, err = master.Write([]byte("I (29) boot: ESP-IDF v5."))
	require.NoError(t, err)
	// A pause makes the condition under test (four times the monitor's
	// 250 ms idle window, so it shows the start as partial); it is not a
	// wait for an event, and a shorter pause under load only makes the
	// test easier to pass, never a false failure.
	time.Sleep(time.Second)
	_, err = master.Write([]byte("5.1 2nd stage bootloader\r\nend\r\n"))
	require.NoError(t, err)
	var got []tui.LogLine
	for {
		l := next()
		if l.Text == "end" {
			break
		}
		if l.Text == "ready" {
			// A probe written before the monitor read the first one
			// arrives late: not part of what is tested.
			continue
		}
		got = append(got, l)
	}
	require.Len(t, got, 1, "one line, not two: %+v", got)
	require.Equal(t, tui.Level('I'), got[0].Level)
	require.Equal(t, "boot", got[0].Tag)
	require.Equal(t, "ESP-IDF v5.5.1 2nd stage bootloader", got[0].Text)
}
