package serialflash_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// begins returns the offsets of every FLASH_BEGIN / FLASH_DEFL_BEGIN the
// ROM received (a write starts a new run with each).
func begins(rom *romsim.ROM) []uint32 {
	var out []uint32
	for _, c := range rom.Commands() {
		if (c.Op == 0x02 || c.Op == 0x10) && len(c.Data) >= 16 && binary.LittleEndian.Uint32(c.Data) > 0 {
			out = append(out, binary.LittleEndian.Uint32(c.Data[12:]))
		}
	}
	return out
}

// A block that fails in the middle of a long write does not end it: the
// write re-syncs, finds by MD5 where the flash stops holding the right
// bytes and goes on from there, saying so — compressed or not.
func TestResumeAfterFailedBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   func(serialflash.Options) serialflash.Options
		faults romsim.Faults
	}{
		{"uncompressed, flash write error", func(o serialflash.Options) serialflash.Options { o.Compress = serialflash.CompressNever; return o },
			romsim.Faults{FailFlashDataNth: 150}},
		{"uncompressed, ROM error 0x0105", func(o serialflash.Options) serialflash.Options { o.Compress = serialflash.CompressNever; return o },
			romsim.Faults{ErrorDataNth: 150, ErrorCode: 0x05}},
		{"compressed, lost reply", func(o serialflash.Options) serialflash.Options { return o },
			romsim.Faults{DropReplyOp: 0x11, DropReplyNth: 60}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := noisyFlash(4<<20, 3)
			env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, FlashImage: before})
			opts := tc.opts(fastOpts())
			if tc.faults.DropReplyOp != 0 {
				opts.CommandTimeout = 1500 * time.Millisecond
			}
			var notices []string
			opts.OnNotice = func(s string) { notices = append(notices, s) }
			f := openPTY(t, env, opts)
			env.rom.SetFaults(tc.faults)
			data := firmwareLike(256<<10, 21)
			res, err := f.Write(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: data}})
			require.NoError(t, err)
			require.Equal(t, 1, res.Regions[0].Resumes)
			after := env.rom.Flash()
			require.Equal(t, data, after[0x10000:0x10000+len(data)])
			require.Equal(t, before[:0x10000], after[:0x10000])
			require.Equal(t, before[0x50000:], after[0x50000:], "nothing after the region changed")
			b := begins(env.rom)
			require.Len(t, b, 2, "one write and one resumed write")
			require.Equal(t, uint32(0x10000), b[0])
			require.Greater(t, b[1], uint32(0x10000), "the resumed write starts after what was already written")
			require.Zero(t, b[1]%0x1000)
			joined := strings.Join(notices, "\n")
			require.Contains(t, joined, "resuming at")
			if tc.faults.DropReplyOp == 0x11 {
				// The rest of a compressed span was still erased: the
				// resumed write erases only its first sector again.
				for _, c := range env.rom.Commands() {
					if c.Op == 0x10 && binary.LittleEndian.Uint32(c.Data[12:]) == b[1] {
						require.Equal(t, uint32(0x400), binary.LittleEndian.Uint32(c.Data))
					}
				}
			}
		})
	}
}

// A chip that keeps failing ends the write after a bounded number of
// resumes, with the region's state in the message.
func TestResumesAreBounded(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	opts := fastOpts()
	opts.Compress = serialflash.CompressNever
	opts.MaxResumes = 2
	f := openPTY(t, env, opts)
	env.rom.SetFaults(romsim.Faults{FailFlashDataFromNth: 20})
	res, err := f.Write(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: firmwareLike(64<<10, 22)}})
	require.Error(t, err)
	require.Equal(t, 2, res.Regions[0].Resumes)
	require.Contains(t, err.Error(), "0x10000..0x13FFF written and verified; 0x14000..0x1FFFF not written, after 2 resumes")
	require.NotEmpty(t, serialflash.Hint(err))
}
