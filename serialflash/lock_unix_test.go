//go:build unix

package serialflash

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The holder notes live in a directory every user shares. espdeck often
// runs as root for serial ports, so a directory another user planted
// there must never make it change modes or write files elsewhere.
func TestLockNotesIgnoreAPlantedDirectory(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.Mkdir(victim, 0o755))
	require.NoError(t, os.Symlink(victim, filepath.Join(tmp, "espdeck-port-owners")))
	dev := filepath.Join(t.TempDir(), "ttyUSB0")
	require.NoError(t, os.WriteFile(dev, nil, 0o644))

	l, err := LockPort(dev, "espdeck serial write")
	require.NoError(t, err, "a missing note never stops the claim itself")
	defer l.Unlock()
	fi, err := os.Stat(victim)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "the symlink's target keeps its mode")
	entries, err := os.ReadDir(victim)
	require.NoError(t, err)
	require.Empty(t, entries, "no note is written through the symlink")
}

// A directory espdeck makes itself is shared and sticky: every user can
// leave a note, none can remove another's.
func TestLockNotesDirectoryIsSticky(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dev := filepath.Join(t.TempDir(), "ttyUSB0")
	require.NoError(t, os.WriteFile(dev, nil, 0o644))

	l, err := LockPort(dev, "espdeck monitor")
	require.NoError(t, err)
	fi, err := os.Lstat(filepath.Join(tmp, "espdeck-port-owners"))
	require.NoError(t, err)
	require.True(t, fi.IsDir())
	require.Equal(t, os.ModeSticky|0o777, fi.Mode()&(os.ModeSticky|os.ModePerm))
	b, err := os.ReadFile(notePath(dev))
	require.NoError(t, err)
	require.Contains(t, string(b), "espdeck monitor, PID")
	l.Unlock()
	_, err = os.Stat(notePath(dev))
	require.True(t, os.IsNotExist(err), "the note goes with the claim")
}
