package firmware

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// AppDescMagic is esp_app_desc_t.magic_word.
const AppDescMagic = 0xABCD5432

// AppDescSize is the size of esp_app_desc_t.
const AppDescSize = 256

// AppDesc is ESP-IDF's esp_app_desc_t (flash-formats.md §3.6): what the
// build recorded about the application. Strings are sanitised for display.
type AppDesc struct {
	SecureVersion uint32 // anti-rollback version
	Version       string
	ProjectName   string
	Time          string // compile time (__TIME__), may be empty
	Date          string // compile date (__DATE__), may be empty
	IDFVersion    string
	ELFSHA256     [32]byte // SHA-256 of the ELF the image was made from
	MinEfuseBlk   uint16   // min_efuse_blk_rev_full, major*100+minor
	MaxEfuseBlk   uint16   // max_efuse_blk_rev_full
	// MMUPageSize is the flash MMU page size in bytes (0 = not recorded).
	MMUPageSize uint32
}

// ParseAppDesc decodes an esp_app_desc_t from the start of b. It reports
// false when b is too short or the magic word is missing.
func ParseAppDesc(b []byte) (*AppDesc, bool) {
	d := parseAppDescIn(b)
	return d, d != nil
}

func parseAppDescIn(b []byte) *AppDesc {
	if len(b) < AppDescSize || binary.LittleEndian.Uint32(b) != AppDescMagic {
		return nil
	}
	d := &AppDesc{
		SecureVersion: binary.LittleEndian.Uint32(b[4:]),
		Version:       cString(b[16:48]),
		ProjectName:   cString(b[48:80]),
		Time:          cString(b[80:96]),
		Date:          cString(b[96:112]),
		IDFVersion:    cString(b[112:144]),
		MinEfuseBlk:   binary.LittleEndian.Uint16(b[176:]),
		MaxEfuseBlk:   binary.LittleEndian.Uint16(b[178:]),
	}
	copy(d.ELFSHA256[:], b[144:176])
	if p := b[180]; p > 0 && p < 32 {
		d.MMUPageSize = 1 << p
	}
	return d
}

// BootloaderDescMagic is esp_bootloader_desc_t.magic_byte.
const BootloaderDescMagic = 0x50

// BootloaderDesc is ESP-IDF's esp_bootloader_desc_t (§3.7), present in
// bootloaders built by ESP-IDF 5.1 and later.
type BootloaderDesc struct {
	SecureVersion uint8
	Version       uint32
	IDFVersion    string
	DateTime      string
}

func parseBootloaderDescIn(b []byte) *BootloaderDesc {
	if len(b) < 80 || b[0] != BootloaderDescMagic {
		return nil
	}
	d := &BootloaderDesc{
		SecureVersion: b[3],
		Version:       binary.LittleEndian.Uint32(b[4:]),
		IDFVersion:    cString(b[8:40]),
		DateTime:      cString(b[40:64]),
	}
	// The magic is a single byte, so a RAM segment may start with 0x50 by
	// chance; a real descriptor names an IDF version ("v5.1…").
	if !strings.HasPrefix(d.IDFVersion, "v") {
		return nil
	}
	return d
}

// cString returns the bytes of a fixed-size field up to the first NUL,
// with anything that is not printable UTF-8 replaced, so a hostile image
// cannot put terminal escapes on the screen.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError || r < 0x20 || r == 0x7F || (r >= 0x80 && r < 0xA0) {
			sb.WriteRune('\uFFFD')
		} else {
			sb.WriteRune(r)
		}
		b = b[n:]
	}
	return sb.String()
}
