package serialflash_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// noisyFlash is a flash image of size bytes with no erased byte anywhere, so any
// write, erase or stale window beyond a region shows.
func noisyFlash(size uint32, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(r.IntN(255)) // never FF
	}
	return b
}

// sectorSpan is the part of the flash a region may change: the sectors it
// touches (the ROM erases in 4 KiB sectors, as esptool's writes do).
func sectorSpan(r serialflash.Region) (lo, hi int) {
	lo = int(r.Addr) &^ 0xFFF
	hi = (int(r.Addr) + len(r.Data) + 0xFFF) &^ 0xFFF
	return lo, hi
}

// Every region shape a user or a slot command writes, through the
// simulated ROM that models the 32 KiB inflate window as observed
// (protocol-serial-rom.md §13.1): the whole flash outside the sectors the
// regions occupy must be what it was, byte for byte.
func TestNoByteOutsideTheRegions(t *testing.T) {
	t.Parallel()
	shapes := []struct {
		name    string
		regions []serialflash.Region
	}{
		{"tiny", []serialflash.Region{{Addr: 0x110000, Data: firmwareLike(128, 1)}}},
		{"sector-aligned", []serialflash.Region{{Addr: 0x20000, Data: firmwareLike(0x3000, 2)}}},
		{"32KiB-aligned", []serialflash.Region{{Addr: 0x10000, Data: firmwareLike(0x10000, 3)}}},
		{"unaligned tail (app)", []serialflash.Region{{Addr: 0x10000, Data: firmwareLike(0x92ED0, 4)}}},
		{"partition table", []serialflash.Region{{Addr: 0x8000, Data: firmwareLike(0xC00, 5)}}},
		{"unaligned start", []serialflash.Region{{Addr: 0x30010, Data: firmwareLike(0x2345, 6)}}},
		{"several regions", []serialflash.Region{
			{Addr: 0x1000, Data: firmwareLike(0x1ED0, 7)},
			{Addr: 0x8000, Data: firmwareLike(0xC00, 8)},
			{Addr: 0x10000, Data: firmwareLike(0x40000, 9)},
		}},
		{"slot command: one otadata sector", []serialflash.Region{{Addr: 0xE000, Data: firmwareLike(0x1000, 10)}}},
		{"slot command: first otadata sector", []serialflash.Region{{Addr: 0xD000, Data: firmwareLike(0x1000, 11)}}},
		{"near the end of the flash", []serialflash.Region{{Addr: 0x3F0000, Data: firmwareLike(0xF000, 12)}}},
	}
	for _, chip := range []firmware.Chip{firmware.ChipESP32, firmware.ChipESP32S3} {
		for i, sh := range shapes {
			t.Run(chip.String()+"/"+sh.name, func(t *testing.T) {
				t.Parallel()
				p, err := romsim.ProfileFor(chip)
				require.NoError(t, err)
				before := noisyFlash(p.FlashSize, uint64(i))
				env := startPTY(t, romsim.Config{Chip: chip, FlashImage: before})
				f := openPTY(t, env, fastOpts())
				res, err := f.Write(testCtx(t), sh.regions)
				require.NoError(t, err)
				after := env.rom.Flash()
				require.Len(t, res.Regions, len(sh.regions))
				for k, rr := range res.Regions {
					r := sh.regions[k]
					require.Equal(t, "md5", rr.Verify)
					require.LessOrEqual(t, rr.VerifiedStart, r.Addr, "verification covers the region")
					require.GreaterOrEqual(t, rr.VerifiedEnd, r.Addr+uint32(len(r.Data)), "verification covers the region")
					switch {
					case len(r.Data) < serialflash.MinCompressed:
						require.Zero(t, rr.Compressed, "a small structure never goes compressed")
					case int(r.Addr)+len(r.Data)+0x8000 <= 4<<20:
						require.NotZero(t, rr.Compressed, "a large region away from the end of the flash is compressed (safely)")
					}
				}
				inside := make([]bool, len(after))
				for _, r := range sh.regions {
					require.Equal(t, r.Data, after[r.Addr:int(r.Addr)+len(r.Data)], "region 0x%X", r.Addr)
					lo, hi := sectorSpan(r)
					for a := lo; a < hi; a++ {
						inside[a] = true
					}
				}
				changed, first := 0, -1
				for a := range after {
					if !inside[a] && after[a] != before[a] {
						if first < 0 {
							first = a
						}
						changed++
					}
				}
				require.Zero(t, changed, "%d bytes changed outside the regions, the first at 0x%X", changed, first)
			})
		}
	}
}

// The same check against the writer's old policy (compress everything,
// no padding) shows the damage the simulated window does — the test above
// would catch a return to it.
func TestUnpaddedCompressionDamagesNeighbours(t *testing.T) {
	t.Parallel()
	before := noisyFlash(4<<20, 99)
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, FlashImage: before})
	f := openPTY(t, env, serialflash.UnsafeAlwaysCompress(fastOpts()))
	// A partition table at 0x8000, as `serial write 0x8000 partitions.bin` did.
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x8000, Data: firmwareLike(0xC00, 5)}}))
	after := env.rom.Flash()
	changed := 0
	for a := 0x9000; a < 0x10000; a++ {
		if after[a] != before[a] {
			changed++
		}
	}
	require.NotZero(t, changed, "nvs/otadata/phy_init (0x9000-0xFFFF) were hit by the stale window")
}
