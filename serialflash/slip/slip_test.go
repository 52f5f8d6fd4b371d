package slip

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// Vector 4 of protocol-serial-rom.md §11: MEM_DATA with bytes needing escapes.
func TestEncodeSpecVector(t *testing.T) {
	packet := unhex(t, "00 07 18 00 ec 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 c0 db 00 ff 12 34 c0 01")
	wire := unhex(t, "c0 00 07 18 00 ec 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 db dc db dd 00 ff 12 34 db dc 01 c0")
	require.Equal(t, wire, Encode(nil, packet))

	var got [][]byte
	var d Decoder
	d.Feed(wire, func(f []byte, err error) {
		require.NoError(t, err)
		got = append(got, append([]byte(nil), f...))
	})
	require.Equal(t, [][]byte{packet}, got)
}

func TestSyncVectorNeedsNoEscape(t *testing.T) {
	pkt := append(unhex(t, "00 08 24 00 00 00 00 00 07 07 12 20"), bytes.Repeat([]byte{0x55}, 32)...)
	wire := Encode(nil, pkt)
	require.Len(t, wire, 46)
}

func decodeAll(d *Decoder, chunks [][]byte) (frames [][]byte, errs int) {
	for _, c := range chunks {
		d.Feed(c, func(f []byte, err error) {
			if err != nil {
				errs++
				return
			}
			frames = append(frames, append([]byte(nil), f...))
		})
	}
	return frames, errs
}

func TestBackToBackNoiseAndEmptyFrames(t *testing.T) {
	a, b := []byte{1, 2, 0xC0}, []byte{0xDB, 4}
	stream := []byte("ets Jul 29 2019\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
	stream = Encode(stream, a)
	stream = append(stream, 0xC0, 0xC0) // an empty frame
	stream = Encode(stream, b)
	stream = append(stream, "tail"...)
	var d Decoder
	frames, errs := decodeAll(&d, [][]byte{stream})
	require.Zero(t, errs)
	require.Equal(t, [][]byte{a, b}, frames)
	require.Contains(t, string(d.Noise()), "boot:0x13")
	require.Empty(t, d.Noise(), "Noise forgets what it returned")
}

func TestBadEscapeDropsOnlyThatFrame(t *testing.T) {
	stream := []byte{0xC0, 1, 0xDB, 0x00, 2, 0xC0}
	stream = Encode(stream, []byte{9, 9})
	var d Decoder
	frames, errs := decodeAll(&d, [][]byte{stream})
	require.Equal(t, 1, errs)
	require.Equal(t, [][]byte{{9, 9}}, frames)
}

// chunk splits p at the cut points derived from seed so that any chunking
// can be exercised deterministically.
func chunk(p []byte, seed []byte) [][]byte {
	var out [][]byte
	i := 0
	for _, s := range seed {
		if i >= len(p) {
			break
		}
		n := int(s%17) + 1
		n = min(n, len(p)-i)
		out = append(out, p[i:i+n])
		i += n
	}
	if i < len(p) {
		out = append(out, p[i:])
	}
	return out
}

func FuzzDecodeChunking(f *testing.F) {
	f.Add([]byte{0xC0, 1, 2, 0xDB, 0xDC, 0xC0, 0xC0, 3, 0xC0}, []byte{1, 2, 3})
	f.Add([]byte("garbage\xc0\x01\x08\x04\x00\x07\x07\x12\x20\x00\x00\x00\x00\xc0"), []byte{0})
	f.Add([]byte{0xDB, 0xC0, 0xDB, 0xDB, 0xC0}, []byte{5, 5})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		var whole, parts Decoder
		f1, e1 := decodeAll(&whole, [][]byte{stream})
		f2, e2 := decodeAll(&parts, chunk(stream, cuts))
		if e1 != e2 || len(f1) != len(f2) {
			t.Fatalf("chunking changed the result: %d/%d frames, %d/%d errors", len(f1), len(f2), e1, e2)
		}
		for i := range f1 {
			if !bytes.Equal(f1[i], f2[i]) {
				t.Fatalf("frame %d differs", i)
			}
		}
		if !bytes.Equal(whole.Noise(), parts.Noise()) {
			t.Fatal("noise differs")
		}
	})
}

func FuzzEncodeDecodeIdentity(f *testing.F) {
	f.Add([]byte{0xC0, 0xDB, 0xDC, 0xDD})
	f.Add([]byte("hello"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 || len(payload) > maxFrame {
			return
		}
		wire := Encode([]byte("noise"), payload)
		wire = Encode(wire, payload)
		var d Decoder
		frames, errs := decodeAll(&d, [][]byte{wire})
		if errs != 0 || len(frames) != 2 || !bytes.Equal(frames[0], payload) || !bytes.Equal(frames[1], payload) {
			t.Fatalf("decode(encode(x)) != x: %d frames, %d errors", len(frames), errs)
		}
		if bytes.IndexByte(wire[1:len(wire)-1], End) >= 0 && bytes.Count(wire, []byte{End}) != 4 {
			t.Fatal("payload C0 leaked unescaped")
		}
	})
}
