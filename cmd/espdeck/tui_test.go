package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The TUI writes where the command line reads: the audit log 'espdeck
// audit' lists and the campaign folder 'campaign resume' defaults to. The
// demo writes to a folder of its own run, never under the user's state
// folder, and removes it at exit.
func TestTUIStateIsTheCommandLinesOrTheDemosOwn(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"XDG_STATE_HOME": filepath.Join(home, "state")}
	c := &cli{ctx: context.Background(), getenv: func(k string) string { return env[k] }}

	dir, cleanup, warning, err := c.tuiState(false)
	require.NoError(t, err)
	defer cleanup()
	require.Empty(t, warning)
	want, err := c.stateDir()
	require.NoError(t, err)
	require.Equal(t, want, dir)
	require.Equal(t, filepath.Join(home, "state", "espdeck", "audit.jsonl"), dir.AuditLog())
	require.Equal(t, filepath.Join(home, "state", "espdeck", "campaigns"), dir.Campaigns())

	demoDir, demoCleanup, warning, err := c.tuiState(true)
	require.NoError(t, err)
	require.Empty(t, warning)
	require.False(t, strings.HasPrefix(string(demoDir), home), "the demo writes nothing under the user's state folder")
	require.DirExists(t, string(demoDir))
	require.NoError(t, os.MkdirAll(demoDir.Campaigns(), 0o700))
	demoCleanup()
	require.NoDirExists(t, string(demoDir), "removed at exit")

	// No state folder at all: the TUI still runs, unaudited, and says why.
	c.getenv = func(string) string { return "" }
	dir, cleanup, warning, err = c.tuiState(false)
	require.NoError(t, err)
	cleanup()
	require.Empty(t, dir)
	require.Contains(t, warning, "not audited")
	require.Contains(t, warning, "XDG_STATE_HOME")
}
