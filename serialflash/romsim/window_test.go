package romsim

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash/slip"
)

// command sends one request and returns the status byte pair of its reply.
func (w *wireTest) command(op byte, chk uint32, data []byte) (byte, byte) {
	pkt := make([]byte, 8, 8+len(data))
	pkt[1] = op
	binary.LittleEndian.PutUint16(pkt[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(pkt[4:], chk)
	w.send(slip.Encode(nil, append(pkt, data...)))
	f := w.frame()
	require.Equal(w.t, op, f[1], "reply to 0x%02x", op)
	st := f[8+int(binary.LittleEndian.Uint16(f[2:]))-4:]
	return st[0], st[1]
}

// deflWrite sends a whole FLASH_DEFL_* sequence the way a sender following
// §3.3.7 does: declared size = real data rounded up to 0x400.
func (w *wireTest) deflWrite(addr uint32, stream []byte, declared uint32) {
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, zlib.BestCompression)
	zw.Write(stream)
	zw.Close()
	z := zb.Bytes()
	blocks := (uint32(len(z)) + 0x3FF) / 0x400
	begin := make([]byte, 16)
	binary.LittleEndian.PutUint32(begin, (declared+0x3FF)&^0x3FF)
	binary.LittleEndian.PutUint32(begin[4:], blocks)
	binary.LittleEndian.PutUint32(begin[8:], 0x400)
	binary.LittleEndian.PutUint32(begin[12:], addr)
	st, code := w.command(opFlashDeflBegin, 0, begin)
	require.Zero(w.t, st, "DEFL_BEGIN error 0x%02x", code)
	for seq := uint32(0); seq < blocks; seq++ {
		blk := z[seq*0x400 : min(seq*0x400+0x400, uint32(len(z)))]
		hdr := make([]byte, 16, 16+len(blk))
		binary.LittleEndian.PutUint32(hdr, uint32(len(blk)))
		binary.LittleEndian.PutUint32(hdr[4:], seq)
		st, code := w.command(opFlashDeflData, checksum(blk), append(hdr, blk...))
		require.Zero(w.t, st, "DEFL_DATA %d error 0x%02x", seq, code)
	}
}

func changedRanges(before, after []byte) (n int, first, last int) {
	first, last = -1, -1
	for i := range before {
		if before[i] != after[i] {
			if first < 0 {
				first = i
			}
			last = i
			n++
		}
	}
	return n, first, last
}

// The four observations of protocol-serial-rom.md §13.1, replayed against
// the simulator with the same inputs.
func TestDeflateWindowAsObserved(t *testing.T) {
	file := bytes.Repeat([]byte{0x5A}, 128)
	outside := func(t *testing.T, stream []byte, preload bool) (n, first, last int) {
		w := newWire(t, firmware.ChipESP32, Config{})
		if preload {
			require.NoError(t, w.rom.LoadFlash(0x111000, bytes.Repeat([]byte{0x11}, 16)))
			require.NoError(t, w.rom.LoadFlash(0x118000, bytes.Repeat([]byte{0x22}, 256)))
		}
		st, _ := w.command(opSPIAttach, 0, make([]byte, 8))
		require.Zero(t, st)
		before := w.rom.Flash()
		w.deflWrite(0x110000, stream, uint32(len(file)))
		after := w.rom.Flash()
		require.Equal(t, file, after[0x110000:0x110080], "the region holds the data")
		copy(before[0x110000:0x110080], file)
		return changedRanges(before, after)
	}
	t.Run("128 bytes compressed damage up to start+32KiB", func(t *testing.T) {
		n, first, last := outside(t, file, false)
		require.Equal(t, 32640, n)
		require.Equal(t, 0x110080, first)
		require.Equal(t, 0x117FFF, last)
	})
	t.Run("padded to exactly 32KiB the buffer is written again at the next window", func(t *testing.T) {
		stream := append(append([]byte(nil), file...), bytes.Repeat([]byte{0xFF}, 0x8000-128)...)
		n, first, _ := outside(t, stream, false)
		require.Equal(t, 128, n)
		require.Equal(t, 0x118000, first)
	})
	t.Run("padded to the window and one more window of FF changes nothing", func(t *testing.T) {
		stream := append(append([]byte(nil), file...), bytes.Repeat([]byte{0xFF}, 0x10000-128)...)
		n, _, _ := outside(t, stream, true)
		require.Zero(t, n)
	})
}
