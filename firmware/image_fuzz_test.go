package firmware

import (
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseImage: the parser must never panic or read out of bounds, and
// whatever it accepts must be self-consistent.
func FuzzParseImage(f *testing.F) {
	v1, _ := hex.DecodeString(specVector1)
	f.Add(v1)
	// Seeds stay small: the fuzzer minimises every new input it finds, and
	// that costs time quadratic in the input length.
	f.Add(BuildImage(ImageSpec{Chip: ChipESP32C3, AppDesc: &AppDesc{Version: "1"}}))
	f.Add(BuildImage(ImageSpec{Chip: ChipESP8266, Segments: []SegmentSpec{{LoadAddr: 0x40100000, Data: []byte{1, 2, 3, 4}}}}))
	f.Add([]byte{0xEA, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xAA, 0x50, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ParseImage(data)
		Classify(data)
		if _, err := LocateSignature(data); err == nil {
			VerifySignature(data, []crypto.PublicKey{nil})
		}
		if err != nil {
			return
		}
		if im.Length > len(data) || im.FileSize != len(data) {
			t.Fatalf("length %d beyond data %d", im.Length, len(data))
		}
		for _, s := range im.Segments {
			if s.DataOffset()+int(s.Length) > len(data) {
				t.Fatalf("segment beyond data: %+v", s)
			}
		}
		_ = im.Verify()
		_ = im.EsptoolReport()
		_ = im.Summary("x")
		_ = im.CheckRevision(100)
	})
}

// FuzzParseSignatureSector: arbitrary sectors must not panic the block
// decoder. The body stamps a valid magic and CRC on the
// first block so the fuzzer explores the key and signature fields rather
// than stopping at the CRC.
func FuzzParseSignatureSector(f *testing.F) {
	f.Add(make([]byte, SectorSize))
	if signed, err := os.ReadFile(filepath.Join(fixtureRoot, "secure", "bootloader_signed_v2_rsa.bin")); err == nil && len(signed) > SectorSize {
		f.Add(signed[len(signed)-SectorSize:])
	}
	if signed, err := os.ReadFile(filepath.Join(fixtureRoot, "secure", "bootloader_signed_v2_ecdsa256.bin")); err == nil && len(signed) > SectorSize {
		f.Add(signed[len(signed)-SectorSize:])
	}
	f.Fuzz(func(t *testing.T, sector []byte) {
		if len(sector) >= sigBlockSize {
			sector = append([]byte(nil), sector...)
			sector[0] = sigBlockMagic
			binary.LittleEndian.PutUint32(sector[sigCRCOffset:], crc32.ChecksumIEEE(sector[:sigCRCOffset]))
		}
		// Only the decoder runs here: RSA and ECDSA arithmetic under the
		// fuzzer's coverage instrumentation is slow enough to stall it, and
		// it is the standard library's (hostile keys are unit-tested).
		ss, err := ParseSignatureSector(sector)
		if err != nil {
			return
		}
		for _, b := range ss.Blocks {
			if b.PublicKey == nil || len(b.Digest) == 0 {
				t.Fatalf("block %d decoded without key or digest", b.Index)
			}
		}
	})
}
