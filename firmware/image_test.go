package firmware

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// specVector1 is flash-formats.md §7 vector 1: a minimal ESP32-S3 app.
const specVector1 = "e901022f00503740ee0000000900000000630000000000012000003c080000003254cdab0100000000000000000000ee" +
	"e88d73ebfe9546b423671d341452b155524b9b768991c1f1371d081b780da7b4"

func TestSpecVector1(t *testing.T) {
	want, _ := hex.DecodeString(specVector1)
	got := BuildImage(ImageSpec{Chip: ChipESP32S3, FlashMode: FlashDIO, FlashSizeCode: 2, FlashFreqCode: 0xF, Entry: 0x40375000,
		MaxRevFull: 99, Segments: []SegmentSpec{{LoadAddr: 0x3C000020, Data: []byte{0x32, 0x54, 0xCD, 0xAB, 1, 0, 0, 0}}}})
	if !bytes.Equal(got, want) {
		t.Fatalf("BuildImage:\n got %x\nwant %x", got, want)
	}
	im := mustParse(t, want)
	if im.Checksum != 0xEE || im.ChecksumOffset != 47 || !im.SHA256Valid() || im.Length != 80 || im.MaxRevFull != 99 {
		t.Errorf("%+v", im)
	}
	if im.FlashSizeName() != "4MB" || im.FlashFreqName() != "80m" || im.FlashSize() != 4<<20 {
		t.Errorf("flash %s %s", im.FlashSizeName(), im.FlashFreqName())
	}
	// Vector 2: patched to QIO / 16 MB, the checksum stays, the hash changes.
	patched := append([]byte(nil), want...)
	patched[2], patched[3] = 0x00, 0x4F
	im2 := mustParse(t, patched)
	if im2.Checksum != 0xEE || !im2.ChecksumValid() || im2.SHA256Valid() {
		t.Error("patching the header must break only the hash")
	}
	if hex.EncodeToString(im2.ComputedSHA256[:]) != "d7d564c471e5368185c13c8187a1334fe840bf24a17cd69cff654803d9ec12e2" {
		t.Errorf("patched SHA-256 %x", im2.ComputedSHA256)
	}
	var he *HashError
	if err := im2.Verify(); !errors.As(err, &he) || !errors.Is(err, ErrHash) || errors.Is(err, ErrChecksum) {
		t.Errorf("Verify = %v", err)
	}
}

func sampleApp(chip Chip) []byte {
	return BuildImage(ImageSpec{Chip: chip, Entry: 0x40080000, AppDesc: &AppDesc{Version: "2.7.1", ProjectName: "greenhouse", IDFVersion: "v5.3"},
		Segments: []SegmentSpec{{LoadAddr: 0x40080000, Data: bytes.Repeat([]byte{0x5A, 0x13, 0x77}, 400)}}})
}

func TestCorruptImages(t *testing.T) {
	good := sampleApp(ChipESP32)
	im := mustParse(t, good)
	if err := im.Verify(); err != nil {
		t.Fatalf("good image: %v", err)
	}

	t.Run("bad checksum", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[im.ChecksumOffset] ^= 0xFF
		err := mustParse(t, b).Verify()
		var ce *ChecksumError
		if !errors.As(err, &ce) || ce.Stored != im.Checksum^0xFF || ce.Computed != im.Checksum {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad segment byte breaks both", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[im.Segments[1].DataOffset()+5] ^= 0x01
		err := mustParse(t, b).Verify()
		if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrHash) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad hash", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[len(b)-1] ^= 0x80
		if err := mustParse(t, b).Verify(); !errors.Is(err, ErrHash) || errors.Is(err, ErrChecksum) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("truncated everywhere", func(t *testing.T) {
		for n := 1; n < len(good); n++ {
			_, err := ParseImage(good[:n])
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("length %d: err = %v", n, err)
			}
			if !strings.Contains(err.Error(), "truncated") {
				t.Fatalf("length %d: %v does not say truncated", n, err)
			}
		}
	})
	t.Run("wrong magic", func(t *testing.T) {
		for _, first := range []byte{0x00, 0xFF, 0xE8, 0x7F} {
			b := append([]byte{first}, good[1:]...)
			if _, err := ParseImage(b); !errors.Is(err, ErrNotAnImage) {
				t.Errorf("0x%02x: err = %v", first, err)
			}
		}
		if _, err := ParseImage(nil); !errors.Is(err, ErrNotAnImage) {
			t.Errorf("empty: %v", err)
		}
		_, err := ParseImage([]byte("\x7fELF\x01\x01\x01"))
		if err == nil || !strings.Contains(err.Error(), "ELF") {
			t.Errorf("ELF: %v", err)
		}
	})
	t.Run("too many segments", func(t *testing.T) {
		b := append([]byte(nil), good...)
		b[1] = 17
		if _, err := ParseImage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("huge segment length", func(t *testing.T) {
		b := append([]byte(nil), good...)
		copy(b[28:32], []byte{0, 0, 0, 0x01}) // 16 MB
		if _, err := ParseImage(b); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "16 MB") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestEveryChipID(t *testing.T) {
	for _, ci := range Chips() {
		t.Run(ci.Name, func(t *testing.T) {
			data := sampleApp(ci.Chip)
			im := mustParse(t, data)
			if im.Chip != ci.Chip {
				t.Fatalf("chip %v, want %v", im.Chip, ci.Chip)
			}
			if err := im.Verify(); err != nil {
				t.Error(err)
			}
			if ci.Chip == ChipESP8266 {
				if im.Format != FormatESP8266 || im.HashAppended || im.AppDesc != nil {
					t.Errorf("ESP8266 image read as %+v", im)
				}
				return
			}
			if !im.IsApp() || im.AppDesc == nil || im.AppDesc.Version != "2.7.1" {
				t.Errorf("app desc %+v", im.AppDesc)
			}
			if err := im.CheckChip(ci.Chip); err != nil {
				t.Error(err)
			}
			other := ChipESP32C3
			if ci.Chip == ChipESP32C3 {
				other = ChipESP32
			}
			err := im.CheckChip(other)
			var cm *ChipMismatchError
			if !errors.As(err, &cm) || cm.Image != ci.Chip || cm.Target != other || !errors.Is(err, ErrChipMismatch) {
				t.Errorf("CheckChip(%v) = %v", other, err)
			}
			if !strings.Contains(err.Error(), ci.Name) || !strings.Contains(err.Error(), other.String()) {
				t.Errorf("message must name both chips: %v", err)
			}
		})
	}
}

func TestCheckRevision(t *testing.T) {
	mk := func(chip Chip, legacy uint8, min, max uint16) *Image {
		return mustParse(t, BuildImage(ImageSpec{Chip: chip, MinRevLegacy: legacy, MinRevFull: min, MaxRevFull: max}))
	}
	cases := []struct {
		name string
		im   *Image
		rev  int
		ok   bool
	}{
		{"legacy major ok", mk(ChipESP32, 3, 0, 0), 300, true},
		{"legacy major low", mk(ChipESP32, 3, 0, 0), 101, false},
		{"legacy C3 minor", mk(ChipESP32C3, 3, 0, 0), 3, true},
		{"legacy C3 minor low", mk(ChipESP32C3, 3, 0, 0), 2, false},
		{"legacy with FFFF max", mk(ChipESP32, 1, 0, 0xFFFF), 0, false},
		{"full range ok", mk(ChipESP32S3, 0, 1, 99), 2, true},
		{"full below min", mk(ChipESP32S3, 0, 101, 199), 100, false},
		{"full above max", mk(ChipESP32S3, 0, 0, 99), 100, false},
		{"no maximum", mk(ChipESP32C3, 0, 3, 0xFFFF), 400, true},
		{"unknown revision", mk(ChipESP32C3, 0, 3, 0xFFFF), -1, true},
	}
	for _, tc := range cases {
		err := tc.im.CheckRevision(tc.rev)
		if (err == nil) != tc.ok {
			t.Errorf("%s: CheckRevision(%d) = %v", tc.name, tc.rev, err)
		}
		if err != nil && !errors.Is(err, ErrRevision) {
			t.Errorf("%s: not ErrRevision: %v", tc.name, err)
		}
	}
	err := mk(ChipESP32S3, 0, 101, 199).CheckRevision(100)
	if err == nil || !strings.Contains(err.Error(), "v1.1 to v1.99") || !strings.Contains(err.Error(), "v1.0") {
		t.Errorf("message: %v", err)
	}
}

func TestCheckFits(t *testing.T) {
	im := mustParse(t, sampleApp(ChipESP32S3))
	if err := im.CheckFits(int64(im.FileSize), "ota_0"); err != nil {
		t.Error(err)
	}
	err := im.CheckFits(int64(im.FileSize-1), "ota_0")
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Image != int64(im.FileSize) || tl.Slot != int64(im.FileSize-1) || !strings.Contains(err.Error(), "ota_0") {
		t.Errorf("err = %v", err)
	}
	if im.CheckFits(0, "") != nil {
		t.Error("unknown size must pass")
	}
}

func TestClassify(t *testing.T) {
	app := sampleApp(ChipESP32)
	boot := BuildImage(ImageSpec{Chip: ChipESP32, Segments: []SegmentSpec{{LoadAddr: 0x40080400, Data: make([]byte, 64)}}})
	table := append([]byte{0xAA, 0x50}, make([]byte, 30)...)

	merged := bytes.Repeat([]byte{0xFF}, 0x10000+len(app))
	copy(merged, boot) // bootloader at file offset 0 (flash 0x1000)
	copy(merged[0x7000:], table)
	copy(merged[0x10000-0x1000:], app)

	padded := bytes.Repeat([]byte{0xFF}, 0x1000)
	padded = append(padded, merged...)

	s3boot := BuildImage(ImageSpec{Chip: ChipESP32S3, Segments: []SegmentSpec{{LoadAddr: 0x403C8000, Data: make([]byte, 64)}}})
	s3merged := bytes.Repeat([]byte{0xFF}, 0x9000)
	copy(s3merged, s3boot)
	copy(s3merged[0x8000:], table)

	for name, tc := range map[string]struct {
		data []byte
		want Content
	}{
		"app": {app, ContentApp},
		"RAM-only (bootloader without description)": {boot, ContentRAMImage},
		"table":              {table, ContentPartitionTable},
		"merged from 0x1000": {merged, ContentMerged},
		"merged from 0x0":    {padded, ContentMerged},
		"merged S3":          {s3merged, ContentMerged},
		"esp8266 v2":         {[]byte{0xEA, 4, 0, 0, 0, 0, 0, 0}, ContentESP8266V2},
		"garbage":            {[]byte("hello world"), ContentUnknown},
	} {
		if got := Classify(tc.data); got != tc.want {
			t.Errorf("%s: Classify = %v, want %v", name, got, tc.want)
		}
	}
}

func TestAppDescSanitised(t *testing.T) {
	d := &AppDesc{Version: "1.0\x1b[31mred", ProjectName: "ok"}
	got, ok := ParseAppDesc(d.MarshalBinary())
	if !ok || strings.ContainsRune(got.Version, 0x1b) || got.ProjectName != "ok" {
		t.Errorf("%q", got.Version)
	}
	if _, ok := ParseAppDesc(make([]byte, 256)); ok {
		t.Error("no magic must not parse")
	}
}

func TestSummary(t *testing.T) {
	im := mustParse(t, sampleApp(ChipESP32S3))
	want := "greenhouse.bin · ESP32-S3 app · v2.7.1 · 1.5 KiB · SHA-256 ok"
	if got := im.Summary("greenhouse.bin"); got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

func TestParseImageForESP8266Ambiguity(t *testing.T) {
	// An ESP8266 image whose first segment is 12 bytes long: bytes 12-13
	// read as chip ID 0x000C (ESP32-C2) and byte 23 (segment data) is 0, so
	// automatic detection, like esptool's, takes it for an ESP32-C2 image.
	img := BuildImage(ImageSpec{Chip: ChipESP8266, Entry: 0x40100000, Segments: []SegmentSpec{
		{LoadAddr: 0x40100000, Data: []byte{1, 2, 3, 4, 5, 6, 7, 0, 8, 9, 10, 11}},
		{LoadAddr: 0x3FFE8000, Data: []byte{9, 9, 9, 9}},
	}})
	if auto, err := ParseImage(img); err == nil && auto.Format == FormatESP8266 {
		t.Fatal("the sample must be ambiguous for this test to mean anything")
	}
	im, err := ParseImageFor(img, ChipESP8266)
	if err != nil || im.Format != FormatESP8266 || im.Verify() != nil || len(im.Segments) != 2 {
		t.Fatalf("ParseImageFor(ESP8266) = %+v, %v", im, err)
	}
	// A real ESP32 image going to an ESP8266 stays an ESP32 image (a chip
	// mismatch), not garbage.
	im, err = ParseImageFor(sampleApp(ChipESP32), ChipESP8266)
	if err != nil || im.Chip != ChipESP32 {
		t.Errorf("ESP32 image for an ESP8266: %v %v", im, err)
	}
}

func TestPatchFlashParams(t *testing.T) {
	v1, _ := hex.DecodeString(specVector1)
	tail := []byte("rest of a merged file")
	mode := FlashQIO
	size, ok := FlashSizeCode(ChipESP32S3, 16<<20)
	if !ok || size != 4 {
		t.Fatalf("FlashSizeCode(16 MB) = %d, %v", size, ok)
	}
	out, err := PatchFlashParams(append(append([]byte(nil), v1...), tail...), FlashParams{Mode: &mode, SizeCode: &size})
	if err != nil {
		t.Fatal(err)
	}
	// §7 vector 2: bytes 2–3 = 00 4F, checksum unchanged, new SHA-256, the rest kept.
	if out[2] != 0x00 || out[3] != 0x4F || out[47] != 0xEE {
		t.Errorf("header %x checksum %x", out[2:4], out[47])
	}
	if hex.EncodeToString(out[48:80]) != "d7d564c471e5368185c13c8187a1334fe840bf24a17cd69cff654803d9ec12e2" {
		t.Errorf("SHA-256 %x", out[48:80])
	}
	if !bytes.Equal(out[80:], tail) || bytes.Equal(out[:80], v1) {
		t.Error("bytes after the image must be kept and the image changed")
	}
	if err := mustParse(t, out).Verify(); err != nil {
		t.Errorf("patched image: %v", err)
	}
	if _, ok := FlashSizeCode(ChipESP32, 3<<20); ok {
		t.Error("3 MB has no code")
	}
	if c, ok := FlashSizeCode(ChipESP8266, 1<<20); !ok || c != 2 {
		t.Errorf("ESP8266 1 MB = %d", c)
	}
}

func TestESP8266V2Header(t *testing.T) {
	im := mustParse(t, []byte{0xEA, 4, byte(FlashDIO), 0x20, 0x04, 0x10, 0x10, 0x40, 1, 2, 3})
	if im.Format != FormatESP8266V2 || im.Chip != ChipESP8266 || im.Entry != 0x40101004 || im.FlashSizeName() != "1MB" {
		t.Errorf("%+v", im)
	}
	rep := im.EsptoolReport()
	if !strings.Contains(rep, "Image version: 2") || !strings.Contains(rep, "Checksum: not checked") {
		t.Errorf("report:\n%s", rep)
	}
	if im.Verify() != nil || !strings.Contains(im.Summary(""), "not checked") {
		t.Error("v2 images are not integrity-checked and must say so")
	}
}
