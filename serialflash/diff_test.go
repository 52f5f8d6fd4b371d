package serialflash_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// Re-flashing an image that differs in a few sectors writes only those
// sectors (found by SPI_FLASH_MD5, no old image needed), reports the bytes
// skipped, and still verifies the whole region; --no-diff writes it all.
func TestOnlyChangedSectorsAreWritten(t *testing.T) {
	t.Parallel()
	old := firmwareLike(200<<10, 31)
	img := append([]byte(nil), old...)
	img[0x3010] ^= 0xFF // sector 3
	img[0x4FFF] ^= 0x01 // sector 4: a run of two with sector 3
	img[0x20000] ^= 0x55
	img = append(img, firmwareLike(1000, 32)...) // a new tail in a new sector
	for _, noDiff := range []bool{false, true} {
		env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
		require.NoError(t, env.rom.LoadFlash(0x10000, old))
		opts := fastOpts()
		opts.NoDiff = noDiff
		f := openPTY(t, env, opts)
		res, err := f.Write(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: img}})
		require.NoError(t, err)
		require.Equal(t, img, env.rom.Flash()[0x10000:0x10000+len(img)])
		rr := res.Regions[0]
		require.Equal(t, "md5", rr.Verify)
		if noDiff {
			require.Zero(t, rr.Skipped)
			require.Equal(t, []uint32{0x10000}, begins(env.rom))
			continue
		}
		require.Equal(t, []uint32{0x13000, 0x30000, 0x42000}, begins(env.rom), "only the changed sectors are written")
		written := uint32(2*0x1000 + 0x1000 + (len(img) - 0x32000))
		require.Equal(t, written, rr.Written)
		require.Equal(t, uint32(len(img))-written, rr.Skipped)
		require.Equal(t, uint64(rr.Skipped), res.Skipped())

		// The same image again: one MD5, nothing written.
		res, err = f.Write(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: img}})
		require.NoError(t, err)
		require.Equal(t, uint32(len(img)), res.Regions[0].Skipped)
		require.Len(t, begins(env.rom), 3, "no new erase")
	}
}
