package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"
)

// ErrJobsCancelled is Run's answer when quitting cut flash jobs short, so
// that the exit status says the work did not finish.
var ErrJobsCancelled = errors.New("flash jobs were cancelled by quitting")

// Run runs the TUI until the user quits or ctx ends, then cancels whatever
// is still running and writes to cfg.ExitReport one line per job it cut
// short (board, stage reached, what that leaves on the board). opts are passed to Bubble Tea: tests use tea.WithInput,
// tea.WithOutput and tea.WithWindowSize to run it without a terminal.
func Run(ctx context.Context, cfg Config, backend Backend, opts ...tea.ProgramOption) error {
	m := New(cfg, backend)
	defer m.cancel()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)...)
	final, err := p.Run()
	if fm, ok := final.(Model); ok {
		fm.cancel()
		if cfg.ExitReport != nil {
			// After the alt screen is gone: the lines stay in the terminal.
			for _, l := range exitReport(fm.jobs) {
				fmt.Fprintln(cfg.ExitReport, l)
			}
		}
	}
	if err != nil && !(errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil) {
		return fmt.Errorf("run the TUI: %w", err)
	}
	if fm, ok := final.(Model); ok && len(exitReport(fm.jobs)) > 0 {
		return ErrJobsCancelled
	}
	return nil
}
