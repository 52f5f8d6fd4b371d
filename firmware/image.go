package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/internal/humanize"
)

// Image magic bytes and layout constants (flash-formats.md §3).
const (
	ImageMagic          = 0xE9 // byte 0 of every ESP32-family and ESP8266 v1 image
	ImageMagicESP8266V2 = 0xEA // ESP8266 "v2" (OTA SDK) image
	checksumSeed        = 0xEF
	maxSegments         = 16
	maxSegmentLen       = 16 << 20
	// SectorSize is the flash erase unit and the Secure Boot V2 alignment.
	SectorSize = 4096
)

// ImageFormat says which header layout an image uses.
type ImageFormat int

const (
	// FormatESP32 is the ESP32-family layout: 8-byte header, 16-byte
	// extended header, segments, checksum, optional SHA-256.
	FormatESP32 ImageFormat = iota
	// FormatESP8266 is the ESP8266 v1 layout (no extended header, no hash).
	FormatESP8266
	// FormatESP8266V2 is the ESP8266 "v2" (magic EA) layout; only its
	// header is read, its integrity is not checked.
	FormatESP8266V2
)

// FlashMode is the SPI flash mode byte of the image header.
type FlashMode uint8

// Flash modes as ESP-IDF numbers them.
const (
	FlashQIO FlashMode = iota
	FlashQOUT
	FlashDIO
	FlashDOUT
	FlashFastRead
	FlashSlowRead
)

func (m FlashMode) String() string {
	switch m {
	case FlashQIO:
		return "QIO"
	case FlashQOUT:
		return "QOUT"
	case FlashDIO:
		return "DIO"
	case FlashDOUT:
		return "DOUT"
	case FlashFastRead:
		return "FAST_READ"
	case FlashSlowRead:
		return "SLOW_READ"
	}
	return fmt.Sprintf("invalid (%d)", uint8(m))
}

// Segment is one load segment of an image.
type Segment struct {
	LoadAddr uint32
	Length   uint32
	// HeaderOffset is the file offset of the segment's 8-byte header (what
	// esptool prints as "File offs"); the data follows at HeaderOffset+8.
	HeaderOffset int
	// MemoryTypes names the regions LoadAddr falls in (esptool's column).
	MemoryTypes []string
}

// DataOffset is the file offset of the segment's data.
func (s Segment) DataOffset() int { return s.HeaderOffset + 8 }

// Image is a parsed app or bootloader image. Parsing never fails for a bad
// checksum or hash: those are reported by Verify, so a corrupt image can
// still be shown.
type Image struct {
	Format ImageFormat
	// Chip is the chip the image is built for (from the chip ID; ESP8266
	// for ESP8266 images).
	Chip   Chip
	ChipID uint16 // raw chip ID field; 0 for ESP8266

	FlashMode     FlashMode
	FlashSizeCode uint8 // high nibble of byte 3
	FlashFreqCode uint8 // low nibble of byte 3
	Entry         uint32

	// Extended header (FormatESP32 only).
	WPPin        uint8
	DriveCLK     uint8
	DriveQ       uint8
	DriveD       uint8
	DriveCS      uint8
	DriveHD      uint8
	DriveWP      uint8
	MinRevLegacy uint8  // byte 14: legacy minimum revision
	MinRevFull   uint16 // major*100+minor
	MaxRevFull   uint16 // major*100+minor; 0 or 0xFFFF = not set
	HashAppended bool

	Segments []Segment

	ChecksumOffset   int  // file offset of the checksum byte
	Checksum         byte // stored
	ComputedChecksum byte
	StoredSHA256     [32]byte // valid only when HashAppended
	ComputedSHA256   [32]byte // SHA-256 of bytes 0…checksum; always computed

	// Length is the image length: header, segments, padding, checksum and
	// the appended SHA-256. Bytes after it are not part of the image.
	Length int
	// FileSize is the length of the data that was parsed.
	FileSize int

	AppDesc        *AppDesc        // nil when the image has none
	BootloaderDesc *BootloaderDesc // nil when the image has none
	// Signature is the Secure Boot V2 signature sector after the image, or
	// nil when none is present.
	Signature *SignatureSector
}

// ParseImage parses an app or bootloader image from the start of data. It
// returns a *FormatError (matching ErrNotAnImage or ErrMalformed) when the
// data is not an image or its structure is broken; checksum and hash
// mismatches are left to Verify.
func ParseImage(data []byte) (*Image, error) {
	return parseImage(data, layoutAuto)
}

// Header layouts parseImage may be told to use.
const (
	layoutAuto = iota
	layoutESP8266
)

// ParseImageFor parses data as an image going to chip. Where the layout is
// ambiguous it prefers the target's: an ESP8266 image whose first segment
// happens to look like an ESP32 extended header is read as ESP8266 when that
// reading is intact. An image that only makes sense for another chip is
// still returned as that chip's, so the caller reports a chip mismatch.
func ParseImageFor(data []byte, chip Chip) (*Image, error) {
	auto, autoErr := parseImage(data, layoutAuto)
	if chip != ChipESP8266 || (autoErr == nil && auto.Format != FormatESP32) {
		return auto, autoErr
	}
	as8266, err := parseImage(data, layoutESP8266)
	if err == nil && (as8266.Verify() == nil || autoErr != nil || auto.Verify() != nil) {
		return as8266, nil
	}
	return auto, autoErr
}

func parseImage(data []byte, layout int) (*Image, error) {
	if len(data) == 0 {
		return nil, &FormatError{Offset: 0, Reason: "the file is empty", Err: ErrNotAnImage}
	}
	switch data[0] {
	case ImageMagic:
	case ImageMagicESP8266V2:
		return parseESP8266V2(data)
	default:
		return nil, &FormatError{Offset: 0, Reason: fmt.Sprintf("first byte is 0x%02x, an image starts with 0x%02x (%s)",
			data[0], ImageMagic, describeContent(data)), Err: ErrNotAnImage}
	}
	if len(data) < 8 {
		return nil, truncated(8, len(data), "the image header")
	}
	im := &Image{FileSize: len(data)}
	nseg := int(data[1])
	im.FlashMode = FlashMode(data[2])
	im.FlashSizeCode = data[3] >> 4
	im.FlashFreqCode = data[3] & 0x0F
	im.Entry = binary.LittleEndian.Uint32(data[4:8])

	pos := 8
	if layout == layoutAuto && isESP32Layout(data) {
		im.Format = FormatESP32
		x := data[8:24]
		im.WPPin = x[0]
		im.DriveCLK, im.DriveQ = x[1]&0x0F, x[1]>>4
		im.DriveD, im.DriveCS = x[2]&0x0F, x[2]>>4
		im.DriveHD, im.DriveWP = x[3]&0x0F, x[3]>>4
		im.ChipID = binary.LittleEndian.Uint16(x[4:6])
		im.Chip = Chip(im.ChipID)
		im.MinRevLegacy = x[6]
		im.MinRevFull = binary.LittleEndian.Uint16(x[7:9])
		im.MaxRevFull = binary.LittleEndian.Uint16(x[9:11])
		im.HashAppended = x[15] == 1
		pos = 24
	} else {
		im.Format = FormatESP8266
		im.Chip = ChipESP8266
	}
	if nseg > maxSegments {
		return nil, &FormatError{Offset: 1, Reason: fmt.Sprintf("%d segments, at most %d are allowed", nseg, maxSegments), Err: ErrMalformed}
	}

	checksum := byte(checksumSeed)
	for i := 0; i < nseg; i++ {
		if len(data)-pos < 8 {
			return nil, truncated(pos+8, len(data), fmt.Sprintf("segment %d's header", i))
		}
		addr := binary.LittleEndian.Uint32(data[pos:])
		n := binary.LittleEndian.Uint32(data[pos+4:])
		if n >= maxSegmentLen {
			return nil, &FormatError{Offset: pos + 4, Reason: fmt.Sprintf("segment %d claims %d bytes, more than the 16 MB a segment may hold", i, n), Err: ErrMalformed}
		}
		if uint64(len(data)-pos-8) < uint64(n) {
			return nil, truncated(pos+8+int(n), len(data), fmt.Sprintf("segment %d's data", i))
		}
		im.Segments = append(im.Segments, Segment{LoadAddr: addr, Length: n, HeaderOffset: pos, MemoryTypes: MemoryTypes(im.Chip, addr)})
		checksum ^= xorBytes(data[pos+8 : pos+8+int(n)])
		pos += 8 + int(n)
	}
	// The checksum is the last byte of a 16-byte block.
	pos += 15 - pos%16
	if pos >= len(data) {
		return nil, truncated(pos+1, len(data), "the checksum byte")
	}
	im.ChecksumOffset = pos
	im.Checksum = data[pos]
	im.ComputedChecksum = checksum
	pos++
	im.ComputedSHA256 = sha256.Sum256(data[:pos])
	if im.HashAppended {
		if len(data)-pos < 32 {
			return nil, truncated(pos+32, len(data), "the appended SHA-256")
		}
		copy(im.StoredSHA256[:], data[pos:pos+32])
		pos += 32
	}
	im.Length = pos

	if im.Format == FormatESP32 && len(im.Segments) > 0 {
		seg := data[im.Segments[0].DataOffset() : im.Segments[0].DataOffset()+int(im.Segments[0].Length)]
		im.AppDesc = parseAppDescIn(seg)
		if im.AppDesc == nil {
			im.BootloaderDesc = parseBootloaderDescIn(seg)
		}
	}
	if sig, err := findSignatureSector(data, im.Length); err == nil {
		im.Signature = sig
	}
	return im, nil
}

// isESP32Layout decides whether an E9 image has the ESP32-family extended
// header: byte 23 (hash_appended) must be 0 or 1 and the chip ID known, as
// esptool's auto-detection decides. Anything else is read as ESP8266.
func isESP32Layout(data []byte) bool {
	if len(data) < 24 || data[23] > 1 {
		return false
	}
	_, ok := ChipByID(binary.LittleEndian.Uint16(data[12:14]))
	return ok
}

func parseESP8266V2(data []byte) (*Image, error) {
	if len(data) < 8 {
		return nil, truncated(8, len(data), "the image header")
	}
	return &Image{
		Format:        FormatESP8266V2,
		Chip:          ChipESP8266,
		FlashMode:     FlashMode(data[2]),
		FlashSizeCode: data[3] >> 4,
		FlashFreqCode: data[3] & 0x0F,
		Entry:         binary.LittleEndian.Uint32(data[4:8]),
		Length:        len(data),
		FileSize:      len(data),
	}, nil
}

func truncated(need, have int, what string) error {
	return &FormatError{Offset: have, Reason: fmt.Sprintf("the file ends inside %s (needs at least %d bytes, has %d): it is truncated, download or build it again", what, need, have), Err: ErrMalformed}
}

func xorBytes(b []byte) byte {
	// Fold eight bytes at a time: the same value as a byte loop, faster on
	// multi-megabyte apps.
	var w uint64
	for len(b) >= 8 {
		w ^= binary.LittleEndian.Uint64(b)
		b = b[8:]
	}
	w ^= w >> 32
	w ^= w >> 16
	w ^= w >> 8
	x := byte(w)
	for _, c := range b {
		x ^= c
	}
	return x
}

// ChecksumValid reports whether the stored checksum matches the segments.
func (im *Image) ChecksumValid() bool {
	return im.Format == FormatESP8266V2 || im.Checksum == im.ComputedChecksum
}

// SHA256Valid reports whether the appended SHA-256 matches; false when no
// hash is appended.
func (im *Image) SHA256Valid() bool {
	return im.HashAppended && im.StoredSHA256 == im.ComputedSHA256
}

// Verify checks the image's integrity: the checksum and, when appended, the
// SHA-256. It returns a *ChecksumError or *HashError (both when both fail).
func (im *Image) Verify() error {
	var errs []error
	if !im.ChecksumValid() {
		errs = append(errs, &ChecksumError{Offset: im.ChecksumOffset, Stored: im.Checksum, Computed: im.ComputedChecksum})
	}
	if im.HashAppended && !im.SHA256Valid() {
		errs = append(errs, &HashError{Stored: im.StoredSHA256, Computed: im.ComputedSHA256})
	}
	return errors.Join(errs...)
}

// CheckChip returns a *ChipMismatchError when the image is not for target.
// ChipUnknown as target means "not known" and passes.
func (im *Image) CheckChip(target Chip) error {
	if target == ChipUnknown || im.Chip == target {
		return nil
	}
	return &ChipMismatchError{Image: im.Chip, Target: target}
}

// CheckRevision applies esptool's revision rule (flash-formats.md §3.10) for
// a chip of revision rev (major*100+minor). It returns a *RevisionError when
// the chip is outside the image's range. ESP8266 images always pass.
func (im *Image) CheckRevision(rev int) error {
	if im.Format != FormatESP32 || rev < 0 {
		return nil
	}
	legacy := im.MaxRevFull == 0 || (im.MaxRevFull == 0xFFFF && im.MinRevFull == 0 && im.MinRevLegacy != 0)
	if legacy {
		have := rev / 100 // major for most chips
		if im.Chip == ChipESP32C3 {
			have = rev % 100 // the legacy field holds the minor revision on C3
		}
		if int(im.MinRevLegacy) > have {
			min := int(im.MinRevLegacy) * 100
			if im.Chip == ChipESP32C3 {
				min = int(im.MinRevLegacy)
			}
			return &RevisionError{Chip: im.Chip, Revision: rev, Min: min, Max: -1, Legacy: true}
		}
		return nil
	}
	max := int(im.MaxRevFull)
	if im.MaxRevFull == 0xFFFF {
		max = -1
	}
	if rev < int(im.MinRevFull) || (max >= 0 && rev > max) {
		return &RevisionError{Chip: im.Chip, Revision: rev, Min: int(im.MinRevFull), Max: max}
	}
	return nil
}

// FlashSizeName is the flash size encoded in the header as esptool names it
// ("4MB", "512KB", "2MB-c1"), or "" for an invalid code.
func (im *Image) FlashSizeName() string {
	if im.Chip == ChipESP8266 {
		names := [...]string{"512KB", "256KB", "1MB", "2MB", "4MB", "2MB-c1", "4MB-c1", "", "8MB", "16MB"}
		if int(im.FlashSizeCode) < len(names) {
			return names[im.FlashSizeCode]
		}
		return ""
	}
	names := [...]string{"1MB", "2MB", "4MB", "8MB", "16MB", "32MB", "64MB", "128MB"}
	if int(im.FlashSizeCode) < len(names) {
		return names[im.FlashSizeCode]
	}
	return ""
}

// FlashSize is the flash size encoded in the header in bytes, or 0 when the
// code is invalid.
func (im *Image) FlashSize() uint32 {
	if im.Chip == ChipESP8266 {
		sizes := [...]uint32{512 << 10, 256 << 10, 1 << 20, 2 << 20, 4 << 20, 2 << 20, 4 << 20, 0, 8 << 20, 16 << 20}
		if int(im.FlashSizeCode) < len(sizes) {
			return sizes[im.FlashSizeCode]
		}
		return 0
	}
	if im.FlashSizeCode <= 7 {
		return (1 << 20) << im.FlashSizeCode
	}
	return 0
}

// FlashFreqName is the flash frequency encoded in the header as esptool
// names it ("40m", "80m"), or "" for a code the chip does not define.
func (im *Image) FlashFreqName() string {
	var names map[uint8]string
	switch im.Chip {
	case ChipESP32C2:
		names = map[uint8]string{0x0: "30m", 0x1: "20m", 0x2: "15m", 0xF: "60m"}
	case ChipESP32H2:
		names = map[uint8]string{0x0: "24m", 0x1: "16m", 0x2: "12m", 0xF: "48m"}
	case ChipESP32C6:
		names = map[uint8]string{0x0: "80m", 0x2: "20m"}
	case ChipESP32C5, ChipESP32C61, ChipESP32P4:
		names = map[uint8]string{0x0: "40m", 0x2: "20m", 0xF: "80m"}
	default:
		names = map[uint8]string{0x0: "40m", 0x1: "26m", 0x2: "20m", 0xF: "80m"}
	}
	return names[im.FlashFreqCode]
}

// WPPinDisabled is the extended-header WP pin value meaning "not used".
const WPPinDisabled = 0xEE

// SignedLength is the length of the data a Secure Boot V2 signature covers:
// the image rounded up to a whole sector.
func (im *Image) SignedLength() int {
	return (im.Length + SectorSize - 1) / SectorSize * SectorSize
}

// ELFSHA256 returns the SHA-256 of the ELF file the app was built from, as
// recorded in its app description, for comparing with an ELF on disk.
func (im *Image) ELFSHA256() ([32]byte, bool) {
	if im.AppDesc == nil {
		return [32]byte{}, false
	}
	return im.AppDesc.ELFSHA256, true
}

// IsApp reports whether the image looks like an application: it has an app
// description, or (when the chip's flash windows are known) a segment that
// runs from flash. Bootloaders and RAM-only images run entirely from RAM.
// ESP8266 images are taken as apps: Arduino's ESP8266 sketches carry their
// bootloader inside the same file and are sent over OTA as they are.
func (im *Image) IsApp() bool {
	if im.Format != FormatESP32 {
		return true
	}
	if im.AppDesc != nil {
		return true
	}
	if im.BootloaderDesc != nil {
		return false
	}
	for _, s := range im.Segments {
		if s.Length > 0 && isFlashMapped(im.Chip, s.LoadAddr) {
			return true
		}
	}
	return false
}

// Kind is "app", "bootloader" (it carries a bootloader description) or
// "RAM-only image" (a bootloader by its offset, else a RAM-only app) for
// display.
func (im *Image) Kind() string {
	switch {
	case im.IsApp():
		return "app"
	case im.BootloaderDesc != nil:
		return "bootloader"
	}
	for _, s := range im.Segments {
		if s.Length > 0 {
			return "RAM-only image"
		}
	}
	return "image"
}

// Summary is a one-line description for lists and status bars, e.g.
// "greenhouse.bin · ESP32-S3 app · v2.7.1 · 1.21 MB · SHA-256 ok".
// name may be empty.
func (im *Image) Summary(name string) string {
	var parts []string
	if name != "" {
		parts = append(parts, name)
	}
	parts = append(parts, im.Chip.String()+" "+im.Kind())
	if im.AppDesc != nil && im.AppDesc.Version != "" {
		v := im.AppDesc.Version
		if v[0] >= '0' && v[0] <= '9' {
			v = "v" + v
		}
		parts = append(parts, v)
	}
	parts = append(parts, humanize.Bytes(int64(im.FileSize))) // what is written, signature included
	switch {
	case im.Format == FormatESP8266V2:
		parts = append(parts, "not checked")
	case !im.ChecksumValid():
		parts = append(parts, "checksum BAD")
	case im.HashAppended && !im.SHA256Valid():
		parts = append(parts, "SHA-256 BAD")
	case im.HashAppended:
		parts = append(parts, "SHA-256 ok")
	default:
		parts = append(parts, "checksum ok")
	}
	if im.Signature != nil {
		parts = append(parts, "signed")
	}
	return strings.Join(parts, " · ")
}

// Content is what a blob of flash data appears to be.
type Content int

const (
	ContentUnknown        Content = iota
	ContentApp                    // an application image
	ContentBootloader             // a second-stage bootloader (by its description or offset)
	ContentRAMImage               // runs from RAM only: a bootloader at the bootloader offset, else a RAM-only app
	ContentMerged                 // a merged/factory image: bootloader, table, app in one file
	ContentPartitionTable         // a binary partition table
	ContentESP8266V2              // an ESP8266 v2 (EA) image
)

func (c Content) String() string {
	switch c {
	case ContentApp:
		return "app image"
	case ContentBootloader:
		return "bootloader image"
	case ContentRAMImage:
		return "RAM-only image (a bootloader at the bootloader offset, elsewhere a RAM-only app)"
	case ContentMerged:
		return "merged image"
	case ContentPartitionTable:
		return "partition table"
	case ContentESP8266V2:
		return "ESP8266 v2 image"
	}
	return "unknown data"
}

// Classify says what data appears to be. A merged image is recognised by a
// bootloader followed by a partition table at 0x8000 (relative to the
// bootloader's flash offset), or by erased padding before a bootloader at
// the chip's bootloader offset.
func Classify(data []byte) Content {
	if len(data) >= 2 && data[0] == 0xAA && data[1] == 0x50 {
		return ContentPartitionTable
	}
	if len(data) >= 1 && data[0] == ImageMagicESP8266V2 {
		return ContentESP8266V2
	}
	if _, ok := paddedBootloader(data); ok {
		return ContentMerged
	}
	im, err := ParseImage(data)
	if err != nil {
		return ContentUnknown
	}
	if im.Format == FormatESP32 {
		if ci, ok := im.Chip.Info(); ok {
			tab := 0x8000 - int(ci.BootloaderOffset)
			if len(data) >= tab+2 && data[tab] == 0xAA && data[tab+1] == 0x50 {
				return ContentMerged
			}
		}
	}
	switch {
	case im.IsApp():
		return ContentApp
	case im.BootloaderDesc != nil:
		return ContentBootloader
	}
	// Nothing but the address tells a bootloader without a description
	// (ESP-IDF before v5.x) from a RAM-only app; internal/ops places it
	// by its offset.
	return ContentRAMImage
}

// paddedBootloader detects a merged image that starts at flash offset 0 on a
// chip whose bootloader lives at 0x1000 or 0x2000: erased (FF) or zero bytes
// up to there, then an image.
func paddedBootloader(data []byte) (int, bool) {
	for _, off := range []int{0x1000, 0x2000} {
		if len(data) <= off+24 || data[off] != ImageMagic {
			continue
		}
		pad := data[:off]
		if isFilled(pad, 0xFF) || isFilled(pad, 0x00) {
			return off, true
		}
	}
	return 0, false
}

func isFilled(b []byte, v byte) bool {
	return len(b) > 0 && b[0] == v && bytes.Equal(b[1:], b[:len(b)-1])
}

// describeContent names non-image data for error messages.
func describeContent(data []byte) string {
	switch {
	case len(data) >= 2 && data[0] == 0xAA && data[1] == 0x50:
		return "this is a partition table"
	case len(data) >= 4 && string(data[:4]) == "\x7fELF":
		return "this is an ELF file: flash the .bin that the build produced next to it"
	}
	if _, ok := paddedBootloader(data); ok {
		return "this is a merged image with the bootloader at 0x1000 or 0x2000"
	}
	if isFilled(data[:min(len(data), 4096)], 0xFF) {
		return "the data is erased flash (all FF)"
	}
	return "not an ESP image"
}

// CheckFits returns a *TooLargeError when the image file (everything that
// will be written, including any signature sector) is larger than avail
// bytes. slotName names the destination for the message ("ota_0"). avail
// <= 0 means unknown and passes.
func (im *Image) CheckFits(avail int64, slotName string) error {
	if avail <= 0 || int64(im.FileSize) <= avail {
		return nil
	}
	return &TooLargeError{Image: int64(im.FileSize), Slot: avail, SlotName: slotName}
}

// MergedImageStart returns the file offset of the first image in a merged
// (factory) file: 0 when the file starts with an image, 0x1000 or 0x2000
// when it starts at flash 0 with padding before the bootloader; -1 when
// data is not a merged image.
func MergedImageStart(data []byte) int {
	if Classify(data) != ContentMerged {
		return -1
	}
	if off, ok := paddedBootloader(data); ok {
		return off
	}
	return 0
}
