package firmware

import (
	"errors"
	"fmt"

	"github.com/espdeck/espdeck/internal/humanize"
)

// Sentinels that callers branch on with errors.Is. Every typed error below
// matches one of them, so a caller can test the class of failure without
// caring about the details, and print the typed error for a person.
var (
	// ErrNotAnImage: the data is not an ESP image at all (wrong magic,
	// empty file).
	ErrNotAnImage = errors.New("not an ESP firmware image")
	// ErrMalformed: the data starts like an image but its structure is
	// broken (truncated, too many segments, bad header fields).
	ErrMalformed = errors.New("malformed firmware image")
	// ErrNotAnApp: a valid image or table, but not an application image.
	ErrNotAnApp = errors.New("not an application image")
	// ErrChipMismatch: the image was built for another chip.
	ErrChipMismatch = errors.New("image built for another chip")
	// ErrTooLarge: the image does not fit where it is going.
	ErrTooLarge = errors.New("image too large")
	// ErrRevision: the chip revision is outside the image's supported range.
	ErrRevision = errors.New("chip revision not supported by the image")
	// ErrChecksum: the image checksum byte does not match its segments.
	ErrChecksum = errors.New("image checksum mismatch")
	// ErrHash: the appended SHA-256 does not match the image.
	ErrHash = errors.New("image SHA-256 mismatch")
	// ErrUnsigned: no Secure Boot V2 signature block is present.
	ErrUnsigned = errors.New("image is not signed")
	// ErrSignature: a signature is present but does not verify with the
	// given keys, or its signed digest does not match the image.
	ErrSignature = errors.New("signature verification failed")
	// ErrKey: a public key could not be parsed or is of an unsupported kind.
	ErrKey = errors.New("unusable public key")
)

// FormatError reports a structural problem in an image: what was found at
// which file offset and what was expected there.
type FormatError struct {
	Offset int    // file offset where the problem is
	Reason string // what is wrong, for a person
	Err    error  // ErrNotAnImage or ErrMalformed
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v at offset 0x%x: %s", e.Err, e.Offset, e.Reason)
}

func (e *FormatError) Unwrap() error { return e.Err }

// ChipMismatchError: the image's chip ID names another chip than the target.
type ChipMismatchError struct {
	Image  Chip // chip the image was built for
	Target Chip // chip it is going to
}

func (e *ChipMismatchError) Error() string {
	how := fmt.Sprintf("idf.py set-target %s, or the matching board in Arduino/PlatformIO", chipKey(e.Target))
	if e.Target == ChipESP8266 {
		// ESP-IDF does not build for the ESP8266: Arduino, PlatformIO or the RTOS SDK do.
		how = "choose an ESP8266 board in Arduino/PlatformIO, or use the ESP8266 RTOS SDK"
	}
	return fmt.Sprintf("the image is built for %s but the target is %s: build it for %s (%s)", e.Image, e.Target, e.Target, how)
}

func (e *ChipMismatchError) Is(target error) bool { return target == ErrChipMismatch }

// TooLargeError: the image is larger than the space it is going to.
type TooLargeError struct {
	Image    int64  // bytes the image needs
	Slot     int64  // bytes available
	SlotName string // e.g. "ota_0", "the flash from 0x3ff000 to its end"; may be empty
	// EndOfFlash is set when the limit is the end of the flash chip rather
	// than a partition.
	EndOfFlash bool
}

func (e *TooLargeError) Error() string {
	where := "the target slot"
	if e.SlotName != "" {
		where = e.SlotName
	}
	hint := "shrink the app or use a partition table with larger app slots"
	if e.EndOfFlash {
		hint = "check the write address, and the flash size if it was detected wrongly (--flash-size)"
	}
	return fmt.Sprintf("the image needs %d bytes (%s) but %s has %d bytes (%s), %d bytes too many: %s",
		e.Image, humanize.Bytes(e.Image), where, e.Slot, humanize.Bytes(e.Slot), e.Image-e.Slot, hint)
}

func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// NotAnAppError: the data is valid but something else than an app image,
// e.g. a merged factory image, a bootloader or a partition table.
type NotAnAppError struct {
	Found string // what it is instead, e.g. "a merged image starting with the ESP32 bootloader"
	Hint  string // the next step; may be empty
}

func (e *NotAnAppError) Error() string {
	msg := "expected an application image but found " + e.Found
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	return msg
}

func (e *NotAnAppError) Is(target error) bool { return target == ErrNotAnApp }

// RevisionError: the chip's revision is outside what the image accepts.
type RevisionError struct {
	Chip     Chip
	Revision int // the chip's revision, major*100+minor
	Min      int // minimum the image requires, major*100+minor
	Max      int // maximum the image accepts; -1 when unbounded
	Legacy   bool
}

func (e *RevisionError) Error() string {
	want := "v" + revString(e.Min) + " or later"
	if e.Max >= 0 {
		want = "v" + revString(e.Min) + " to v" + revString(e.Max)
	}
	return fmt.Sprintf("the image requires %s revision %s but the chip is v%s: rebuild with a matching minimum/maximum revision (menuconfig: CONFIG_%s_REV_MIN_FULL)",
		e.Chip, want, revString(e.Revision), chipConfigName(e.Chip))
}

func (e *RevisionError) Is(target error) bool { return target == ErrRevision }

// ChecksumError: the stored checksum byte is not the XOR of the segments.
type ChecksumError struct {
	Offset   int // file offset of the checksum byte
	Stored   byte
	Computed byte
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("image checksum at offset 0x%x is 0x%02x but the segments give 0x%02x: the file is corrupt or truncated, download or build it again",
		e.Offset, e.Stored, e.Computed)
}

func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// HashError: the appended SHA-256 does not match the image bytes.
type HashError struct {
	Stored   [32]byte
	Computed [32]byte
}

func (e *HashError) Error() string {
	return fmt.Sprintf("appended SHA-256 is %x but the image hashes to %x: the file is corrupt, download or build it again",
		e.Stored[:], e.Computed[:])
}

func (e *HashError) Is(target error) bool { return target == ErrHash }

// SignatureError: a Secure Boot V2 signature check failed.
type SignatureError struct {
	Reason string // what failed, e.g. "no block verifies with the given key"
	// Blocks is the number of valid signature blocks found.
	Blocks int
	// KeyDigests are the SHA-256 key digests of the blocks present, so a
	// person can compare them with the eFuse digests or their key.
	KeyDigests [][32]byte
	Err        error // ErrUnsigned or ErrSignature
}

func (e *SignatureError) Error() string {
	msg := fmt.Sprintf("%v: %s", e.Err, e.Reason)
	for i, d := range e.KeyDigests {
		msg += fmt.Sprintf("; block %d key digest %x", i, d[:])
	}
	if e.Err == ErrUnsigned {
		return msg + " (sign it with espsecure.py sign_data --version 2, or drop the signing-key policy)"
	}
	return msg + " (sign the image with the private key matching the configured public key)"
}

func (e *SignatureError) Unwrap() error { return e.Err }

func chipKey(c Chip) string {
	if ci, ok := c.Info(); ok {
		return ci.Key
	}
	return "<chip>"
}

func chipConfigName(c Chip) string {
	if ci, ok := c.Info(); ok {
		out := make([]byte, 0, len(ci.Key))
		for i := 0; i < len(ci.Key); i++ {
			b := ci.Key[i]
			if b >= 'a' && b <= 'z' {
				b -= 'a' - 'A'
			}
			out = append(out, b)
		}
		return string(out)
	}
	return "CHIP"
}

func revString(full int) string {
	return fmt.Sprintf("%d.%d", full/100, full%100)
}
