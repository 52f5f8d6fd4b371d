package ops

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	fx "github.com/espdeck/espdeck/internal/fixture"
)

func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../shared/fixtures", rel))
	if err != nil {
		if os.IsNotExist(err) {
			fx.Missing(t, "shared fixture %s not present: %v", rel, err)
		}
		t.Fatal(err)
	}
	return b
}

func app(chip firmware.Chip, version string, extra int) []byte {
	return firmware.BuildImage(firmware.ImageSpec{Chip: chip, Entry: 0x40080000,
		AppDesc:  &firmware.AppDesc{Version: version, ProjectName: "greenhouse", IDFVersion: "v5.3"},
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x40080000, Data: bytes.Repeat([]byte{0xA5}, extra)}}})
}

func bootloader(chip firmware.Chip) []byte {
	return firmware.BuildImage(firmware.ImageSpec{Chip: chip, Entry: 0x40080400,
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x40080400, Data: bytes.Repeat([]byte{0x11}, 512)}}})
}

func statusOf(v Verdict, name string) CheckStatus {
	for _, c := range v.Checks {
		if c.Name == name {
			return c.Status
		}
	}
	return -1
}

func refused(t *testing.T, err error) *RefusedError {
	t.Helper()
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return re
}

func TestPreflightOTAApp(t *testing.T) {
	s3 := Target{Route: RouteOTAApp, Chip: firmware.ChipESP32S3, ChipRevision: -1, SlotSize: 0x100000}

	t.Run("good", func(t *testing.T) {
		v, err := Preflight(app(firmware.ChipESP32S3, "2.7.1", 1000), s3, Policy{})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"content", "chip", "integrity", "fit"} {
			if statusOf(v, name) != CheckPassed {
				t.Errorf("%s: %v", name, statusOf(v, name))
			}
		}
		if statusOf(v, "signature") != CheckSkipped || v.Image == nil || v.Image.AppDesc.Version != "2.7.1" {
			t.Errorf("verdict %+v", v)
		}
	})

	t.Run("wrong chip, then forced", func(t *testing.T) {
		img := app(firmware.ChipESP32C3, "1", 10)
		_, err := Preflight(img, s3, Policy{})
		re := refused(t, err)
		var cm *firmware.ChipMismatchError
		if !re.Forceable || !errors.As(err, &cm) || cm.Image != firmware.ChipESP32C3 || cm.Target != firmware.ChipESP32S3 {
			t.Errorf("err = %v", err)
		}
		if !strings.Contains(err.Error(), "ESP32-C3") || !strings.Contains(err.Error(), "ESP32-S3") {
			t.Errorf("message must name both chips: %v", err)
		}
		v, err := Preflight(img, s3, Policy{Force: true})
		if err != nil || statusOf(v, "chip") != CheckForced || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "ESP32-C3") {
			t.Errorf("forced: %v %+v", err, v)
		}
	})

	t.Run("unknown chip is skipped", func(t *testing.T) {
		v, err := Preflight(app(firmware.ChipESP32C3, "1", 10), NewTarget(RouteOTAApp), Policy{})
		if err != nil || statusOf(v, "chip") != CheckSkipped || statusOf(v, "fit") != CheckSkipped {
			t.Errorf("%v %+v", err, v.Checks)
		}
	})

	t.Run("too large", func(t *testing.T) {
		img := app(firmware.ChipESP32S3, "1", 0x2000)
		_, err := Preflight(img, Target{Route: RouteOTAApp, Chip: firmware.ChipESP32S3, SlotSize: 0x1000}, Policy{})
		var tl *firmware.TooLargeError
		if !errors.As(err, &tl) || tl.Image != int64(len(img)) || tl.Slot != 0x1000 {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		img := app(firmware.ChipESP32S3, "1", 100)
		img[len(img)-40] ^= 0xFF // segment data: checksum and hash both break
		_, err := Preflight(img, s3, Policy{})
		if !errors.Is(err, firmware.ErrChecksum) || !errors.Is(err, firmware.ErrHash) {
			t.Errorf("err = %v", err)
		}
		_, err = Preflight(img[:len(img)-50], s3, Policy{})
		if !errors.Is(err, firmware.ErrMalformed) {
			t.Errorf("truncated: %v", err)
		}
	})

	t.Run("merged image", func(t *testing.T) {
		merged := bytes.Repeat([]byte{0xFF}, 0x20000)
		copy(merged, bootloader(firmware.ChipESP32S3))
		copy(merged[0x8000:], fixtureOrTable(t))
		copy(merged[0x10000:], app(firmware.ChipESP32S3, "1", 10))
		_, err := Preflight(merged, s3, Policy{})
		var na *firmware.NotAnAppError
		if !errors.As(err, &na) || !strings.Contains(err.Error(), "merged image") || !strings.Contains(err.Error(), "ESP32-S3 bootloader") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("partition table", func(t *testing.T) {
		_, err := Preflight(fixture(t, "images/partitions_singleapp.bin"), s3, Policy{})
		if !errors.Is(err, firmware.ErrNotAnApp) || !strings.Contains(err.Error(), "partition table") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("RAM-only image", func(t *testing.T) {
		// Without a bootloader description only the address could say
		// "bootloader"; an OTA slot is no such address, so it is named a
		// RAM-only app and what that means is said (issue #11 point 4).
		v, err := Preflight(fixture(t, "images/helloworld-esp32c3.bin"), Target{Route: RouteOTAApp, Chip: firmware.ChipESP32C3}, Policy{})
		if err != nil || !strings.Contains(strings.Join(v.Warnings, " "), "RAM-only app") {
			t.Errorf("err = %v, warnings %q", err, v.Warnings)
		}
	})

	t.Run("real app fixture", func(t *testing.T) {
		v, err := Preflight(fixture(t, "images/esp_idf_blink_esp32s2.bin"), Target{Route: RouteOTAApp, Chip: firmware.ChipESP32S2, SlotSize: 0x100000}, Policy{})
		if err != nil || v.Image.AppDesc.ProjectName != "blink" {
			t.Errorf("%v", err)
		}
	})

	t.Run("filesystem is not checked", func(t *testing.T) {
		v, err := Preflight([]byte("littlefs data"), Target{Route: RouteOTAFilesystem}, Policy{})
		if err != nil || statusOf(v, "content") != CheckSkipped {
			t.Errorf("%v %+v", err, v)
		}
	})
}

func fixtureOrTable(t *testing.T) []byte {
	t.Helper()
	return append([]byte{0xAA, 0x50, 0, 2}, make([]byte, 28)...)
}

func TestPreflightSignaturePolicy(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	img := app(firmware.ChipESP32C6, "3.0", 100)
	signed, err := firmware.SignImage(img, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	byOther, _ := firmware.SignImage(img, other, nil)
	target := Target{Route: RouteOTAApp, Chip: firmware.ChipESP32C6, SlotSize: 0x100000}
	policy := Policy{SigningKeys: []crypto.PublicKey{key.Public()}}

	v, err := Preflight(signed, target, policy)
	if err != nil || v.Signature == nil || v.Signature.Scheme != firmware.SchemeECDSAP256 || statusOf(v, "signature") != CheckPassed {
		t.Fatalf("signed: %v %+v", err, v.Checks)
	}
	for name, data := range map[string][]byte{"unsigned": img, "other key": byOther} {
		for _, force := range []bool{false, true} {
			policy.Force = force
			_, err := Preflight(data, target, policy)
			re := refused(t, err)
			if re.Forceable || !errors.Is(err, firmware.ErrUnsigned) && !errors.Is(err, firmware.ErrSignature) {
				t.Errorf("%s force=%v: %v (forceable %v)", name, force, err, re.Forceable)
			}
		}
	}
	// A chip mismatch next to a signature failure: still not forceable.
	policy.Force = true
	_, err = Preflight(byOther, Target{Route: RouteOTAApp, Chip: firmware.ChipESP32H2}, policy)
	if re := refused(t, err); re.Forceable || !errors.Is(err, firmware.ErrSignature) {
		t.Errorf("err = %v", err)
	}
}

func TestPreflightSerial(t *testing.T) {
	esp32 := func(addr uint32, rev int) Target {
		return Target{Route: RouteSerial, Chip: firmware.ChipESP32, ChipRevision: rev, Address: addr, FlashSize: 4 << 20}
	}
	t.Run("bootloader at its offset", func(t *testing.T) {
		data := fixture(t, "secure/bootloader_unsigned_v2.bin")
		v, err := Preflight(data, esp32(0x1000, 300), Policy{})
		if err != nil || statusOf(v, "placement") != CheckPassed || statusOf(v, "revision") != CheckPassed || statusOf(v, "fit") != CheckPassed {
			t.Errorf("%v %+v", err, v.Checks)
		}
		// The image's legacy minimum revision is 3: a v1.0 chip is refused.
		_, err = Preflight(data, esp32(0x1000, 100), Policy{})
		var re *firmware.RevisionError
		if !errors.As(err, &re) || re.Revision != 100 || !strings.Contains(err.Error(), "v3.0") {
			t.Errorf("revision: %v", err)
		}
	})
	t.Run("C3 minimum revision", func(t *testing.T) {
		data := fixture(t, "images/esp32c3_header_min_rev.bin")
		_, err := Preflight(data, Target{Route: RouteSerial, Chip: firmware.ChipESP32C3, ChipRevision: 3, Address: 0}, Policy{})
		if !errors.Is(err, firmware.ErrRevision) || !strings.Contains(err.Error(), "v2.55") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("app placement", func(t *testing.T) {
		a := app(firmware.ChipESP32, "1", 100)
		if _, err := Preflight(a, esp32(0x10000, 300), Policy{}); err != nil {
			t.Errorf("app at 0x10000: %v", err)
		}
		if _, err := Preflight(a, esp32(0x1000, 300), Policy{}); !errors.Is(err, firmware.ErrNotAnApp) {
			t.Errorf("app at bootloader offset: %v", err)
		}
		if _, err := Preflight(a, esp32(0x10800, 300), Policy{}); err == nil || !strings.Contains(err.Error(), "64 KiB") {
			t.Errorf("unaligned app: %v", err)
		}
		if v, err := Preflight(bootloader(firmware.ChipESP32), esp32(0x10000, 300), Policy{}); err != nil ||
			!strings.Contains(strings.Join(v.Warnings, " "), "RAM-only app") || !strings.Contains(strings.Join(v.Warnings, " "), "0x1000") {
			t.Errorf("RAM-only image at 0x10000: %v %q", err, v.Warnings)
		}
		if _, err := Preflight(a, Target{Route: RouteSerial, Chip: firmware.ChipESP32S2, ChipRevision: 0, Address: 0x10000}, Policy{}); !errors.Is(err, firmware.ErrChipMismatch) {
			t.Errorf("wrong chip: %v", err)
		}
	})
	t.Run("partition table at 0x8000", func(t *testing.T) {
		if _, err := Preflight(fixture(t, "images/partitions_singleapp.bin"), esp32(0x8000, 300), Policy{}); err != nil {
			t.Errorf("table: %v", err)
		}
		if _, err := Preflight(app(firmware.ChipESP32, "1", 10), esp32(0x8000, 300), Policy{}); err == nil {
			t.Error("an image at 0x8000 must be refused")
		}
	})
	t.Run("end of flash", func(t *testing.T) {
		data := make([]byte, 0x2000)
		tg := esp32(0x3FF000, 300)
		_, err := Preflight(data, tg, Policy{})
		var tl *firmware.TooLargeError
		if !errors.As(err, &tl) || tl.Slot != 0x1000 || tl.Image != 0x2000 || !tl.EndOfFlash || !strings.Contains(err.Error(), "4 MiB chip") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("not a bootloader at the bootloader offset", func(t *testing.T) {
		_, err := Preflight(fixture(t, "images/partitions_singleapp.bin"), esp32(0x1000, 300), Policy{})
		if err == nil || !strings.Contains(err.Error(), "expected a bootloader image at 0x1000") || !strings.Contains(err.Error(), "partition table") {
			t.Errorf("err = %v", err)
		}
		// Erased bytes there are a deliberate erase, not a mistake.
		if _, err := Preflight(bytes.Repeat([]byte{0xFF}, 4096), esp32(0x1000, 300), Policy{}); err != nil {
			t.Errorf("FF at the bootloader offset: %v", err)
		}
	})
	t.Run("partition table at another offset", func(t *testing.T) {
		v, err := Preflight(fixture(t, "images/partitions_singleapp.bin"), esp32(0x9000, 300), Policy{})
		if err != nil || len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], "CONFIG_PARTITION_TABLE_OFFSET=0x9000") {
			t.Errorf("%v %v", err, v.Warnings)
		}
	})
	t.Run("raw data elsewhere", func(t *testing.T) {
		v, err := Preflight([]byte("nvs blob"), esp32(0x9000, 300), Policy{})
		if err != nil || statusOf(v, "content") != CheckSkipped {
			t.Errorf("%v %+v", err, v.Checks)
		}
	})
	t.Run("merged image", func(t *testing.T) {
		merged := bytes.Repeat([]byte{0xFF}, 0x20000)
		copy(merged, bootloader(firmware.ChipESP32))
		copy(merged[0x7000:], fixtureOrTable(t))
		copy(merged[0xF000:], app(firmware.ChipESP32, "1", 10))
		if _, err := Preflight(merged, esp32(0x1000, 300), Policy{}); err != nil {
			t.Errorf("merged at the bootloader offset: %v", err)
		}
		if _, err := Preflight(merged, esp32(0x10000, 300), Policy{}); err == nil {
			t.Error("merged image at 0x10000 must be refused")
		}
		padded := append(bytes.Repeat([]byte{0xFF}, 0x1000), merged...)
		if _, err := Preflight(padded, esp32(0, 300), Policy{}); err != nil {
			t.Errorf("merged from 0x0: %v", err)
		}
		if _, err := Preflight(padded, Target{Route: RouteSerial, Chip: firmware.ChipESP32S3, ChipRevision: -1}, Policy{}); !errors.Is(err, firmware.ErrChipMismatch) {
			t.Errorf("merged for another chip: %v", err)
		}
	})
}

// esptool's RAM-only test images (DRAM+IRAM only, checksum and SHA-256
// valid): written at the chip's bootloader offset they are a bootloader —
// the offset is what makes one — and elsewhere a RAM-only app, allowed
// with a warning that says what that means (issue #11 point 4).
func TestRAMOnlyImagesArePlacedByTheirOffset(t *testing.T) {
	for _, n := range []string{"helloworld-esp32.bin", "helloworld-esp32c3.bin", "helloworld-esp32s3.bin"} {
		data := fixture(t, "images/"+n)
		require.Equal(t, firmware.ContentRAMImage, firmware.Classify(data), n)
		im, err := firmware.ParseImage(data)
		require.NoError(t, err)
		ci, ok := im.Chip.Info()
		require.True(t, ok)
		tg := NewTarget(RouteSerial)
		tg.Chip, tg.Address = im.Chip, ci.BootloaderOffset
		v, err := Preflight(data, tg, Policy{})
		require.NoError(t, err, n)
		require.Contains(t, checkDetail(v, "placement"), "bootloader at the bootloader offset", n)
		require.NotContains(t, strings.Join(v.Warnings, " "), "RAM-only app", n)

		tg.Address = 0x110000
		v, err = Preflight(data, tg, Policy{})
		require.NoError(t, err, n)
		require.Contains(t, checkDetail(v, "placement"), "RAM-only app image at 0x110000", n)
		require.Contains(t, strings.Join(v.Warnings, " "), "RAM-only app", n)
	}
}

func checkDetail(v Verdict, name string) string {
	for _, c := range v.Checks {
		if c.Name == name {
			return c.Detail
		}
	}
	return ""
}
