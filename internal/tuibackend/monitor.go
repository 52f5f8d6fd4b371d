package tuibackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/symbolize"
	"github.com/espdeck/espdeck/tui"
)

type monitors struct{ b *Backend }

// Monitor starts a monitor on dev's port. While it runs, a flash or a
// partition read on the same port borrows the port (Release) and hands it
// back afterwards.
func (s monitors) Monitor(ctx context.Context, dev tui.Device) (<-chan tui.LogLine, error) {
	b := s.b
	if dev.Port == "" {
		return nil, fmt.Errorf("%s has no serial port to monitor", dev.Name)
	}
	var sym *symbolize.Symbolizer
	if b.cfg.ELF != "" {
		var err error
		if sym, err = symbolize.Open(b.cfg.ELF); err != nil {
			b.log.Warn("backtraces will not be decoded", "elf", b.cfg.ELF, "err", err)
		}
	}
	out := make(chan tui.LogLine, 256)
	mon := monitor.New(dev.Port, monitor.Options{
		Baud:       b.cfg.MonitorBaud,
		Symbolizer: sym,
		Logger:     b.log,
		Open:       b.cfg.OpenMonitorPort,
		OnLine: func(l monitor.Line) {
			if l.Partial {
				return // the complete line follows
			}
			select {
			case out <- convertLine(l):
			default: // the TUI is behind; the monitor never blocks the board
			}
		},
	})
	go func() {
		err := mon.Run(ctx)
		b.setMonitor(dev.Port, nil)
		var oe *monitor.OpenError
		if errors.As(err, &oe) {
			// Say why on the screen itself, then end the stream.
			out <- tui.LogLine{Level: 'E', Tag: "espdeck", Text: err.Error()}
		}
		close(out)
	}()
	b.setMonitor(dev.Port, mon)
	return out, nil
}

func (s monitors) ResetIntoApp(ctx context.Context, dev tui.Device) error {
	if m := s.b.monitorOn(dev.Port); m != nil {
		return m.ResetIntoApp(ctx)
	}
	return fmt.Errorf("no monitor is running on %s", dev.Port)
}

func convertLine(l monitor.Line) tui.LogLine {
	out := tui.LogLine{Time: l.Time, Level: tui.Level(l.Level), Tag: l.Tag, Text: l.Message}
	if out.Text == "" || l.Level == monitor.LevelNone {
		out.Text = l.Text
	}
	if l.Warning != "" {
		out.Text += "  [" + l.Warning + "]"
	}
	for _, d := range l.Decoded {
		if len(d.Frames) == 0 {
			continue
		}
		f := d.Frames[len(d.Frames)-1]
		out.Backtrace = append(out.Backtrace, tui.Frame{PC: uint32(d.Ref.Addr), Function: f.Function, File: f.File, Line: f.Line})
	}
	return out
}

func (b *Backend) setMonitor(port string, m *monitor.Monitor) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mons == nil {
		b.mons = map[string]*monitor.Monitor{}
	}
	if m == nil {
		delete(b.mons, port)
	} else {
		b.mons[port] = m
	}
}

func (b *Backend) monitorOn(port string) *monitor.Monitor {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mons[port]
}
