// Package firmware parses and validates what goes into an ESP's flash: app and
// bootloader images, partition tables, otadata and Secure Boot V2 signatures.
//
// It is pure: bytes in, values and typed errors out. It does no I/O, so every
// flash path (network OTA, serial recovery) and the TUI can share its verdicts.
package firmware

import "fmt"

// Chip identifies an Espressif SoC family. Its numeric value is the chip ID
// that ESP-IDF writes at byte 12 of an image and that GET_SECURITY_INFO
// reports; ESP8266 has no chip ID and uses a value outside the 16-bit range.
type Chip int

// Chips known to espdeck. The values are the image/ROM chip IDs
// (flash-formats.md §3.8).
const (
	ChipESP32    Chip = 0x0000
	ChipESP32S2  Chip = 0x0002
	ChipESP32C3  Chip = 0x0005
	ChipESP32S3  Chip = 0x0009
	ChipESP32C2  Chip = 0x000C
	ChipESP32C6  Chip = 0x000D
	ChipESP32H2  Chip = 0x0010
	ChipESP32P4  Chip = 0x0012
	ChipESP32C61 Chip = 0x0014
	ChipESP32C5  Chip = 0x0017
	ChipESP32H21 Chip = 0x0019
	ChipESP32H4  Chip = 0x001C
	ChipESP32S31 Chip = 0x0020
	ChipESP8266  Chip = 0x10000 // no chip ID on the wire or in images
	ChipUnknown  Chip = -1
)

// ChipInfo is what espdeck knows about a chip family that does not depend on
// the individual part.
type ChipInfo struct {
	Chip Chip
	// Name is the marketing name, e.g. "ESP32-S3".
	Name string
	// Key is the lower-case spelling used on the command line, e.g. "esp32s3".
	Key string
	// BootloaderOffset is where the second-stage bootloader lives in flash.
	BootloaderOffset uint32
	// Magic lists the values READ_REG(0x40001000) returns on this family;
	// empty where no usable value is known.
	Magic []uint32
}

// chipTable is constant data (never modified), indexed by lookups below.
var chipTable = [...]ChipInfo{
	{ChipESP8266, "ESP8266", "esp8266", 0x0, []uint32{0xFFF0C101}},
	{ChipESP32, "ESP32", "esp32", 0x1000, []uint32{0x00F01D83}},
	{ChipESP32S2, "ESP32-S2", "esp32s2", 0x1000, []uint32{0x000007C6}},
	{ChipESP32C3, "ESP32-C3", "esp32c3", 0x0, []uint32{0x6921506F, 0x1B31506F, 0x4881606F, 0x4361606F}},
	{ChipESP32S3, "ESP32-S3", "esp32s3", 0x0, []uint32{0x00000009}},
	{ChipESP32C2, "ESP32-C2", "esp32c2", 0x0, []uint32{0x6F51306F, 0x7C41A06F, 0x0C21E06F}},
	{ChipESP32C6, "ESP32-C6", "esp32c6", 0x0, []uint32{0x2CE0806F}},
	{ChipESP32H2, "ESP32-H2", "esp32h2", 0x0, []uint32{0xD7B73E80}},
	{ChipESP32P4, "ESP32-P4", "esp32p4", 0x2000, nil},
	{ChipESP32C61, "ESP32-C61", "esp32c61", 0x0, []uint32{0x7211606F}},
	{ChipESP32C5, "ESP32-C5", "esp32c5", 0x2000, []uint32{0x1101406F, 0x63E1406F, 0x5FD1406F}},
	// Newer parts: known from their image chip IDs; no usable ROM magic.
	{ChipESP32H21, "ESP32-H21", "esp32h21", 0x0, nil},
	{ChipESP32H4, "ESP32-H4", "esp32h4", 0x2000, nil},
	{ChipESP32S31, "ESP32-S31", "esp32s31", 0x2000, nil},
}

// Chips returns the known chip families.
func Chips() []ChipInfo {
	out := make([]ChipInfo, len(chipTable))
	copy(out, chipTable[:])
	return out
}

// Info returns the table entry for c and whether c is known.
func (c Chip) Info() (ChipInfo, bool) {
	for _, ci := range chipTable {
		if ci.Chip == c {
			return ci, true
		}
	}
	return ChipInfo{Chip: c}, false
}

// String returns the chip's marketing name, or a description of an unknown ID.
func (c Chip) String() string {
	if ci, ok := c.Info(); ok {
		return ci.Name
	}
	if c == ChipUnknown {
		return "unknown chip"
	}
	return fmt.Sprintf("unknown chip (ID 0x%04X)", int(c))
}

// ChipByID maps an image or GET_SECURITY_INFO chip ID to a Chip.
func ChipByID(id uint16) (Chip, bool) {
	c := Chip(id)
	_, ok := c.Info()
	return c, ok && c != ChipESP8266
}

// ChipByMagic maps the value of READ_REG(0x40001000) to a Chip.
func ChipByMagic(magic uint32) (Chip, bool) {
	for _, ci := range chipTable {
		for _, m := range ci.Magic {
			if m == magic {
				return ci.Chip, true
			}
		}
	}
	return ChipUnknown, false
}

// ParseChip accepts the command-line spelling ("esp32s3", "ESP32-S3",
// "esp32-s3") and returns the chip.
func ParseChip(s string) (Chip, error) {
	norm := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '-' || b == '_':
			continue
		case b >= 'A' && b <= 'Z':
			b += 'a' - 'A'
		}
		norm = append(norm, b)
	}
	for _, ci := range chipTable {
		if ci.Key == string(norm) {
			return ci.Chip, nil
		}
	}
	return ChipUnknown, fmt.Errorf("unknown chip %q (known: esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c6, esp32h2, esp8266)", s)
}
