package symbolize

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// allocated returns the bytes f allocated (on any goroutine of the test
// binary; the tests here run alone, so it is what Open costs).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// `decode --elf /dev/zero` used to read the endless device into memory
// until the runtime crashed; now it is refused before anything is read.
func TestOpenRefusesDevice(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero here")
	}
	var err error
	cost := allocated(func() { _, err = Open("/dev/zero") })
	require.ErrorIs(t, err, ErrNotRegular)
	var e *ELFError
	require.ErrorAs(t, err, &e)
	require.Equal(t, "elf_not_a_file", e.Code())
	require.Contains(t, e.Hint(), ".elf")
	require.Contains(t, err.Error(), "character device")
	require.Less(t, cost, uint64(1<<20), "refused without reading")

	_, err = Open(t.TempDir())
	require.ErrorIs(t, err, ErrNotRegular)
	require.Contains(t, err.Error(), "directory")
}

// A 1 GiB non-ELF file cost 2.1 GB of memory before it was rejected. A big
// sparse file (no disk space used) now costs a stat; one under the size
// bound costs a read of its first four bytes.
func TestOpenBigNonELFIsCheap(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "disk.img")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(1<<30))
	require.NoError(t, f.Close())
	cost := allocated(func() { _, err = Open(huge) })
	require.ErrorIs(t, err, ErrTooLarge)
	var e *ELFError
	require.ErrorAs(t, err, &e)
	require.Equal(t, "elf_too_large", e.Code())
	require.Less(t, cost, uint64(1<<20))

	big := filepath.Join(dir, "zeros.bin")
	f, err = os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxELFSize-1))
	require.NoError(t, f.Close())
	cost = allocated(func() { _, err = Open(big) })
	require.ErrorIs(t, err, ErrNotELF)
	require.ErrorAs(t, err, &e)
	require.Equal(t, "not_elf", e.Code())
	require.Contains(t, err.Error(), "magic")
	require.Less(t, cost, uint64(1<<20))
}

func TestOpenMissingAndEmpty(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing.elf"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorIs(t, err, ErrUnreadable)
	var e *ELFError
	require.ErrorAs(t, err, &e)
	require.Equal(t, "elf_unreadable", e.Code())
	require.NotEmpty(t, e.Hint())

	empty := filepath.Join(t.TempDir(), "empty.elf")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = Open(empty)
	require.ErrorIs(t, err, ErrNotELF)
}

// A truncated ELF (an interrupted copy) is refused with ErrNotELF at every
// cut, never a panic or a half-built symbolizer; reading it never costs
// much more than the file.
func TestOpenTruncatedELF(t *testing.T) {
	data := fixtureBytes(t)
	dir := t.TempDir()
	for _, n := range []int{4, 16, 52, 64, 1000, len(data) / 3, len(data) / 2, len(data) - 4096, len(data) - 1} {
		p := filepath.Join(dir, "cut.elf")
		require.NoError(t, os.WriteFile(p, data[:n], 0o644))
		var err error
		cost := allocated(func() { _, err = Open(p) })
		require.ErrorIs(t, err, ErrNotELF, "cut at %d of %d bytes", n, len(data))
		require.Less(t, cost, uint64(2*len(data)+1<<20), "cut at %d", n)
	}
	// The whole file is accepted and its SHA-256 is known.
	s, err := Open(fixtureELF)
	require.NoError(t, err)
	require.Len(t, s.ELFSHA256(), 32)
}
