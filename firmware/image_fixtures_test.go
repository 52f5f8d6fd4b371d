package firmware

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fx "github.com/espdeck/espdeck/internal/fixture"
)

const fixtureRoot = "../../shared/fixtures"

func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureRoot, rel))
	if err != nil {
		if os.IsNotExist(err) {
			fx.Missing(t, "fixture %s not present (%v); the shared fixtures folder is optional", rel, err)
		}
		t.Fatal(err)
	}
	return b
}

// normaliseEsptool drops the version banner, the NUL padding esptool prints
// raw from the app description, and trailing blanks.
func normaliseEsptool(s string) []string {
	s = strings.ReplaceAll(s, "\x00", "")
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "esptool.py v") {
			continue
		}
		out = append(out, strings.TrimRight(line, " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// TestFixturesMatchEsptool parses every real image and compares our report
// line by line with esptool v4.7.0's image_info --version 2 output: chip,
// entry, segments with offsets and memory types, flash parameters,
// revisions, checksum and hash validity, and the app description.
func TestFixturesMatchEsptool(t *testing.T) {
	expected, err := filepath.Glob(filepath.Join(fixtureRoot, "expected", "*.image_info.txt"))
	if err != nil || len(expected) == 0 {
		fx.Missing(t, "no esptool reports under %s/expected: shared fixtures absent", fixtureRoot)
	}
	for _, exp := range expected {
		name := strings.TrimSuffix(filepath.Base(exp), ".image_info.txt") + ".bin"
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("images", name)
			if _, err := os.Stat(filepath.Join(fixtureRoot, path)); err != nil {
				path = filepath.Join("secure", name)
			}
			data := fixture(t, path)
			want, err := os.ReadFile(exp)
			if err != nil {
				t.Fatal(err)
			}
			im, err := ParseImage(data)
			if err != nil {
				t.Fatalf("ParseImage: %v", err)
			}
			got := normaliseEsptool(im.EsptoolReport())
			wantLines := normaliseEsptool(string(want))
			if len(got) != len(wantLines) {
				t.Errorf("report has %d lines, esptool %d\n--- ours\n%s\n--- esptool\n%s", len(got), len(wantLines), strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
				return
			}
			for i := range got {
				if got[i] != wantLines[i] {
					t.Errorf("line %d:\n ours    %q\n esptool %q", i+1, got[i], wantLines[i])
				}
			}
			if err := im.Verify(); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// TestSpecVectors checks the facts flash-formats.md §7 lists for the real
// images, independently of the report rendering.
func TestSpecVectors(t *testing.T) {
	t.Run("bootloader_esp32c3", func(t *testing.T) {
		im := mustParse(t, fixture(t, "images/bootloader_esp32c3.bin"))
		if len(im.Segments) != 4 || im.FlashMode != FlashDIO || im.Chip != ChipESP32C3 || !im.HashAppended {
			t.Errorf("header: %+v", im)
		}
		if im.Checksum != 0x77 || im.ChecksumOffset != 0x452F || im.Length != im.FileSize || im.Length != 17744 {
			t.Errorf("checksum 0x%x at 0x%x, len %d", im.Checksum, im.ChecksumOffset, im.Length)
		}
		// This bootloader carries no description (ESP-IDF before v5.x): its
		// offset is what makes it one.
		if im.IsApp() || Classify(fixture(t, "images/bootloader_esp32c3.bin")) != ContentRAMImage {
			t.Error("a bootloader must not be taken for an app")
		}
	})
	t.Run("esp_idf_blink_esp32s2", func(t *testing.T) {
		data := fixture(t, "images/esp_idf_blink_esp32s2.bin")
		im := mustParse(t, data)
		d := im.AppDesc
		if d == nil {
			t.Fatal("no app description")
		}
		if d.Version != "qa-test-v5.0-20220830-4-g4532e6" || d.ProjectName != "blink" || d.Time != "19:46:07" ||
			d.Date != "Sep 13 2022" || d.IDFVersion != "v5.0-beta1-427-g4532e6e0b2-dirt" {
			t.Errorf("app desc %+v", d)
		}
		elf, ok := im.ELFSHA256()
		if !ok || hex.EncodeToString(elf[:]) != "3059e6b55a965865febd28fa9f6028ad5cd0dab311febb0a3ea79eaa223ac2b0" {
			t.Errorf("ELF SHA-256 %x", elf)
		}
		if im.Segments[0].LoadAddr != 0x3F000020 || im.Segments[3].LoadAddr != 0x40080020 || im.Segments[3].HeaderOffset != 0x10018 {
			t.Errorf("segments %+v", im.Segments)
		}
		if im.Checksum != 0x18 || !im.IsApp() || Classify(data) != ContentApp {
			t.Errorf("checksum 0x%x app=%v", im.Checksum, im.IsApp())
		}
		sum := im.Summary("blink.bin")
		if sum != "blink.bin · ESP32-S2 app · qa-test-v5.0-20220830-4-g4532e6 · 178.1 KiB · SHA-256 ok" {
			t.Errorf("summary %q", sum)
		}
	})
	t.Run("bootloader_esp32", func(t *testing.T) {
		im := mustParse(t, fixture(t, "images/bootloader_esp32.bin"))
		if im.HashAppended || im.WPPin != 0 || im.Segments[0].Length != 0 || im.Checksum != 0x83 || im.ChecksumOffset != 0x1ECF {
			t.Errorf("%+v", im)
		}
	})
	t.Run("unsigned_v2", func(t *testing.T) {
		im := mustParse(t, fixture(t, "secure/bootloader_unsigned_v2.bin"))
		if im.Length != 30480 || im.FileSize != 32768 || im.Signature != nil || im.SignedLength() != 32768 {
			t.Errorf("len %d file %d sig %v", im.Length, im.FileSize, im.Signature)
		}
	})
	t.Run("partition table is not an image", func(t *testing.T) {
		data := fixture(t, "images/partitions_singleapp.bin")
		_, err := ParseImage(data)
		if err == nil || !strings.Contains(err.Error(), "partition table") {
			t.Errorf("err = %v", err)
		}
		if Classify(data) != ContentPartitionTable {
			t.Error("not classified as a partition table")
		}
	})
}

func mustParse(t testing.TB, data []byte) *Image {
	t.Helper()
	im, err := ParseImage(data)
	if err != nil {
		t.Fatalf("ParseImage: %v", err)
	}
	return im
}

// esptool's RAM-only test images (DRAM+IRAM segments, valid checksum and
// SHA-256) are named as RAM-only, not guessed to be bootloaders (where
// they are written decides: internal/ops's placement check).
func TestRAMOnlyImagesAreNotGuessedBootloaders(t *testing.T) {
	for _, n := range []string{"helloworld-esp32.bin", "helloworld-esp32c3.bin", "helloworld-esp32s3.bin"} {
		data := fixture(t, "images/"+n)
		im := mustParse(t, data)
		if im.IsApp() || im.Kind() != "RAM-only image" {
			t.Errorf("%s: IsApp %v, Kind %q", n, im.IsApp(), im.Kind())
		}
		if c := Classify(data); c != ContentRAMImage {
			t.Errorf("%s: %v", n, c)
		}
	}
}
