package firmware

import "testing"

func TestChipLookups(t *testing.T) {
	for _, ci := range Chips() {
		got, err := ParseChip(ci.Name)
		if err != nil || got != ci.Chip {
			t.Errorf("ParseChip(%q) = %v, %v; want %v", ci.Name, got, err, ci.Chip)
		}
		for _, m := range ci.Magic {
			if c, ok := ChipByMagic(m); !ok || c != ci.Chip {
				t.Errorf("ChipByMagic(%#x) = %v, %v; want %v", m, c, ok, ci.Chip)
			}
		}
	}
	if c, ok := ChipByID(9); !ok || c != ChipESP32S3 {
		t.Errorf("ChipByID(9) = %v, %v", c, ok)
	}
	if _, ok := ChipByID(4); ok {
		t.Error("beta chip ID 4 must not be accepted")
	}
	if _, err := ParseChip("esp31"); err == nil {
		t.Error("ParseChip accepted an unknown chip")
	}
	if ChipESP32C3.String() != "ESP32-C3" || Chip(0x77).String() != "unknown chip (ID 0x0077)" {
		t.Errorf("String: %q %q", ChipESP32C3, Chip(0x77))
	}
}
