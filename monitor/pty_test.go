package monitor

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/symbolize"
)

// board is the master side of a pseudo-terminal: the test writes what a
// board would print. The monitor opens the slave through go.bug.st/serial.
type board struct {
	master *os.File
	slave  *os.File // kept open so the master never sees EIO between opens
	path   string
}

func newBoard(t *testing.T) *board {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	b := &board{master: master, slave: slave, path: slave.Name()}
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	return b
}

func (b *board) print(t *testing.T, s string) {
	t.Helper()
	_, err := b.master.Write([]byte(s))
	require.NoError(t, err)
}

// lineSink collects the monitor's lines for assertions.
type lineSink struct {
	ch chan Line
}

func newSink() *lineSink { return &lineSink{ch: make(chan Line, 4096)} }

func (s *lineSink) onLine(l Line) { s.ch <- l }

// waitFor returns the lines up to and including the first that matches.
func (s *lineSink) waitFor(t *testing.T, what string, match func(Line) bool) []Line {
	t.Helper()
	var seen []Line
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case l := <-s.ch:
			seen = append(seen, l)
			if match(l) {
				return seen
			}
		case <-timeout.C:
			var texts []string
			for _, l := range seen {
				texts = append(texts, l.Text)
			}
			t.Fatalf("no line %s within 30 s; saw %q", what, texts)
		}
	}
}

func textIs(s string) func(Line) bool { return func(l Line) bool { return l.Text == s && !l.Partial } }

// startMonitor runs m until the test ends and checks that Run returned
// because of the cancellation.
func startMonitor(t *testing.T, m *Monitor) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return ctx
}

func TestMonitorOverPTY(t *testing.T) {
	b := newBoard(t)
	var sym *symbolize.Symbolizer
	if _, err := os.Stat(fixtureELF); err == nil {
		sym, err = symbolize.Open(fixtureELF)
		require.NoError(t, err)
	} else {
		t.Logf("fixture ELF absent (%v): checking the stream without decoding", err)
	}
	sink := newSink()
	m := New(b.path, Options{Symbolizer: sym, OnLine: sink.onLine, IdleFlush: 50 * time.Millisecond})
	ctx := startMonitor(t, m)
	sink.waitFor(t, "announcing the port", func(l Line) bool { return l.Kind == KindNotice })

	// CR LF split across writes, ANSI colour from the firmware, a prompt.
	b.print(t, "\x1b[0;32mI (312) cpu_start: Pro cpu start user code\x1b[0m\r")
	b.print(t, "\n\x1b[0;31mE (1012) app: sensor failed\x1b[0m\r\nesp> ")
	got := sink.waitFor(t, "the partial prompt", func(l Line) bool { return l.Partial })
	require.Len(t, got, 3)
	require.Equal(t, LevelInfo, got[0].Level)
	require.Equal(t, "cpu_start", got[0].Tag)
	require.Equal(t, LevelError, got[1].Level)
	require.Equal(t, "esp> ", got[2].Text)

	b.print(t, "help\r\n")
	got = sink.waitFor(t, "the completed prompt", textIs("esp> help"))
	require.Len(t, got, 1)

	b.print(t, strings.Join([]string{
		"Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.",
		"PC      : 0x400d0a2b  PS      : 0x00060f30  A0      : 0x800d4adc  A1      : 0x3ffb5f40  ",
		"Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60 0x40088c85:0x3ffb5f80",
		"Rebooting...",
	}, "\r\n")+"\r\n")
	got = sink.waitFor(t, "the end of the crash", textIs("Rebooting..."))
	require.Len(t, got, 4)
	require.Equal(t, CrashStart, got[0].Crash)
	require.Equal(t, CrashBody, got[2].Crash)
	if sym != nil {
		var fns []string
		for _, d := range got[2].Decoded {
			fns = append(fns, d.Frames[len(d.Frames)-1].Function)
		}
		require.Equal(t, []string{"app_main", "main_task", "vPortTaskWrapper"}, fns)
		require.Equal(t, "0x400d0a2b: app_main at /home/gus/esp/32/idf-template/main/main.c:18", got[2].Decoded[0].Lines()[0])
	}

	// A pty has no modem lines: resetting says so and what to do instead.
	err := m.ResetIntoApp(ctx)
	require.ErrorIs(t, err, ErrNoModemControl)

	// Lend the port to a "flash job": it must be able to open the port
	// exclusively and read what the board sends, then give it back.
	reattach, err := m.Release(ctx)
	require.NoError(t, err)
	sink.waitFor(t, "the release notice", textIs("port released for flashing"))
	flash, err := OpenSerial(ctx, b.path, 115200)
	require.NoError(t, err, "the monitor must have closed the port")
	b.print(t, "SYNC")
	buf := make([]byte, 16)
	var rd strings.Builder
	for deadline := time.Now().Add(30 * time.Second); rd.Len() < 4 && time.Now().Before(deadline); {
		n, err := flash.Read(buf)
		require.NoError(t, err)
		rd.Write(buf[:n])
	}
	require.Equal(t, "SYNC", rd.String(), "the flash job gets the bytes, not the monitor")
	require.NoError(t, flash.Close())
	reattach()
	reattach() // harmless twice
	sink.waitFor(t, "the reattach notice", textIs("port reattached"))
	b.print(t, "I (29) boot: after flashing\r\n")
	got = sink.waitFor(t, "a line after reattaching", textIs("I (29) boot: after flashing"))
	require.Len(t, got, 1)
	require.NoError(t, m.Write(ctx, []byte("x")))
}

// recordingPort forwards to a real port and records the modem-line calls,
// standing in for a USB-UART's DTR/RTS (a pty has none).
type recordingPort struct {
	Port
	mu    sync.Mutex
	calls []string
}

func (p *recordingPort) SetDTR(v bool) error { p.record("DTR", v); return nil }
func (p *recordingPort) SetRTS(v bool) error { p.record("RTS", v); return nil }
func (p *recordingPort) record(line string, v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := "0"
	if v {
		s = "1"
	}
	p.calls = append(p.calls, line+"="+s)
}

func TestResetIntoAppPulsesEN(t *testing.T) {
	b := newBoard(t)
	sink := newSink()
	var rec *recordingPort
	var mu sync.Mutex
	open := func(ctx context.Context, name string, baud int) (Port, error) {
		p, err := OpenSerial(ctx, name, baud)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		rec = &recordingPort{Port: p}
		return rec, nil
	}
	m := New(b.path, Options{OnLine: sink.onLine, Open: open, ResetPulse: time.Millisecond})
	ctx := startMonitor(t, m)
	sink.waitFor(t, "announcing the port", func(l Line) bool { return l.Kind == KindNotice })
	require.NoError(t, m.ResetIntoApp(ctx))
	mu.Lock()
	defer mu.Unlock()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// GPIO0 high (DTR off), EN low (RTS on), then EN high: a normal boot.
	require.Equal(t, []string{"DTR=0", "RTS=1", "RTS=0"}, rec.calls)
}

func TestRunOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := New("/dev/espdeck-no-such-port", Options{}).Run(ctx)
	require.ErrorIs(t, err, ErrPortNotFound)
	var oe *OpenError
	require.True(t, errors.As(err, &oe))
	require.Contains(t, oe.Hint(), "cable")

	if os.Geteuid() == 0 {
		t.Skip("running as root: TIOCEXCL does not stop root from opening a port twice, so 'busy' cannot be provoked")
	}
	b := newBoard(t)
	holder, err := OpenSerial(ctx, b.path, 115200)
	require.NoError(t, err)
	defer holder.Close()
	err = New(b.path, Options{}).Run(ctx)
	require.ErrorIs(t, err, ErrPortBusy, "go.bug.st/serial opens ports exclusively")
}

func TestMonitorNoticesALostPort(t *testing.T) {
	b := newBoard(t)
	sink := newSink()
	m := New(b.path, Options{OnLine: sink.onLine, ReconnectInterval: 10 * time.Millisecond, IdleFlush: 10 * time.Millisecond})
	startMonitor(t, m)
	sink.waitFor(t, "announcing the port", func(l Line) bool { return l.Kind == KindNotice })
	b.print(t, "last words")
	sink.waitFor(t, "the unfinished line", func(l Line) bool { return l.Partial })
	// Unplugging: the master goes away, reads on the slave fail.
	require.NoError(t, b.master.Close())
	require.NoError(t, b.slave.Close())
	got := sink.waitFor(t, "the lost-port warning", func(l Line) bool {
		return l.Kind == KindNotice && strings.HasPrefix(l.Text, "lost ")
	})
	var texts []string
	for _, l := range got {
		texts = append(texts, l.Text)
	}
	require.Contains(t, texts, "last words", "the unfinished line is completed, not lost")
	require.Equal(t, LevelWarn, got[len(got)-1].Level)
}

func TestReleaseNeedsRun(t *testing.T) {
	_, err := New("x", Options{}).Release(context.Background())
	require.Error(t, err)
}

// Two jobs borrow the port at once: the monitor reopens it only when both
// have handed it back.
func TestReleaseWithTwoHolders(t *testing.T) {
	b := newBoard(t)
	sink := newSink()
	var m *Monitor
	var openedWhileLent sync.Once
	lentOpen := false
	open := func(ctx context.Context, name string, baud int) (Port, error) {
		if m != nil {
			m.mu.Lock()
			if m.holders > 0 {
				openedWhileLent.Do(func() { lentOpen = true })
			}
			m.mu.Unlock()
		}
		return OpenSerial(ctx, name, baud)
	}
	m = New(b.path, Options{OnLine: sink.onLine, Open: open})
	ctx := startMonitor(t, m)
	sink.waitFor(t, "announcing the port", func(l Line) bool { return l.Kind == KindNotice })

	r1, err := m.Release(ctx)
	require.NoError(t, err)
	r2, err := m.Release(ctx)
	require.NoError(t, err, "a second borrower gets the already released port")
	r1()
	require.ErrorIs(t, m.Write(ctx, []byte("x")), ErrReleased)
	r2()
	sink.waitFor(t, "the reattach notice", textIs("port reattached"))
	require.False(t, lentOpen, "the port was reopened while a job still held it")
	b.print(t, "I (2) app: back\r\n")
	sink.waitFor(t, "a line after reattaching", textIs("I (2) app: back"))
}

// A port the monitor holds is refused to a second open (also as root,
// where TIOCEXCL does not stop one), naming the monitor; closed, or lent
// to a flash, it is free again.
func TestOpenSerialClaimsThePort(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	ctx := context.Background()
	p, err := OpenSerial(ctx, slave.Name(), 115200)
	require.NoError(t, err)
	_, err = OpenSerial(ctx, slave.Name(), 115200)
	require.ErrorIs(t, err, ErrPortBusy)
	require.Contains(t, err.Error(), "held by espdeck monitor, PID")
	require.NoError(t, p.Close())
	p, err = OpenSerial(ctx, slave.Name(), 115200)
	require.NoError(t, err, "closing released the claim")
	require.NoError(t, p.Close())
}
