package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"
)

// Run runs the TUI until the user quits or ctx ends, then cancels whatever
// is still running. opts are passed to Bubble Tea: tests use tea.WithInput,
// tea.WithOutput and tea.WithWindowSize to run it without a terminal.
func Run(ctx context.Context, cfg Config, backend Backend, opts ...tea.ProgramOption) error {
	m := New(cfg, backend)
	defer m.cancel()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx)}, opts...)...)
	final, err := p.Run()
	if fm, ok := final.(Model); ok {
		fm.cancel()
	}
	if err != nil && !(errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil) {
		return fmt.Errorf("run the TUI: %w", err)
	}
	return nil
}
