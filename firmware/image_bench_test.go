package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// benchApp is a 1.5 MB app, the size of a typical Wi-Fi + TLS firmware.
func benchApp() []byte {
	seg := bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF1, 0x3}, (1536<<10)/9)
	return BuildImage(ImageSpec{Chip: ChipESP32S3, AppDesc: &AppDesc{Version: "1"}, Segments: []SegmentSpec{{LoadAddr: 0x42000020, Data: seg}}})
}

// baselineVerify is the direct transcription of the format: walk the
// segments, XOR byte by byte, hash through the checksum. It is what ours is
// measured against.
func baselineVerify(data []byte) bool {
	pos := 24
	sum := byte(0xEF)
	for i := 0; i < int(data[1]); i++ {
		n := int(binary.LittleEndian.Uint32(data[pos+4:]))
		for _, b := range data[pos+8 : pos+8+n] {
			sum ^= b
		}
		pos += 8 + n
	}
	for (pos+1)%16 != 0 {
		pos++
	}
	h := sha256.Sum256(data[:pos+1])
	return sum == data[pos] && bytes.Equal(h[:], data[pos+1:pos+33])
}

// BenchmarkImageVerify: "baseline" and "ours" side by side; MB/s shows.
func BenchmarkImageVerify(b *testing.B) {
	data := benchApp()
	b.Run("baseline", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if !baselineVerify(data) {
				b.Fatal("baseline rejected a good image")
			}
		}
	})
	b.Run("ours", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			im, err := ParseImage(data)
			if err != nil || im.Verify() != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkChecksum isolates the XOR: byte loop versus eight bytes a step.
func BenchmarkChecksum(b *testing.B) {
	data := benchApp()
	b.Run("baseline-bytewise", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			x := byte(0)
			for _, c := range data {
				x ^= c
			}
			_ = x
		}
	})
	b.Run("ours-wordwise", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_ = xorBytes(data)
		}
	})
}
