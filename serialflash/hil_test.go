//go:build hil

package serialflash_test

import (
	"crypto/md5"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/serialflash"
)

// TestRealBoard runs against a board on ESPDECK_PORT (opt-in:
// go test -tags hil ./serialflash/). It only reads: info, 4 KB of flash and
// the ROM's MD5 of the same range.
func TestRealBoard(t *testing.T) {
	port := os.Getenv("ESPDECK_PORT")
	if port == "" {
		t.Skip("set ESPDECK_PORT to a board's serial port")
	}
	f, err := serialflash.Open(testCtx(t), port, serialflash.Options{Baud: 460800})
	require.NoError(t, err, serialflash.Hint(err))
	defer f.Close()
	info, err := f.Info(testCtx(t))
	require.NoError(t, err)
	t.Logf("%+v", info)
	data, err := f.ReadFlash(testCtx(t), 0, 4096)
	if err == nil {
		sum, err := f.FlashMD5(testCtx(t), 0, 4096)
		require.NoError(t, err)
		require.Equal(t, md5.Sum(data), sum)
	}
	require.NoError(t, f.HardReset(testCtx(t)))
}
