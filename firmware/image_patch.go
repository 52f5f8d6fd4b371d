package firmware

import (
	"crypto/sha256"
	"errors"
	"fmt"
)

// ErrSignedImage: the image carries a Secure Boot signature, so its header
// must not be changed.
var ErrSignedImage = errors.New("the image is signed; its flash parameters cannot be changed")

// FlashParams are the header fields esptool rewrites when writing a
// bootloader (--flash-mode/--flash-freq/--flash-size). A nil field is
// "keep".
type FlashParams struct {
	Mode     *FlashMode
	SizeCode *uint8 // high nibble of byte 3 (see FlashSizeCode)
	FreqCode *uint8 // low nibble of byte 3
}

// PatchFlashParams returns a copy of data (an image, possibly followed by
// more bytes, as in a merged file) with bytes 2–3 rewritten as esptool's
// _update_image_flash_params does (flash-formats.md §3.9): the checksum
// stays (it covers segment data only), the appended SHA-256 is recomputed,
// bytes after the image are kept. Signed images are refused with
// ErrSignedImage: patching would break the signature. Whether to patch at
// all (only at the bootloader offset, not under secure boot) is the
// caller's decision.
func PatchFlashParams(data []byte, p FlashParams) ([]byte, error) {
	im, err := ParseImage(data)
	if err != nil {
		return nil, err
	}
	if im.Format != FormatESP32 && im.Format != FormatESP8266 {
		return nil, fmt.Errorf("patch flash parameters: %s images are not patched", formatLabel(im.Format))
	}
	if im.Signature != nil {
		return nil, ErrSignedImage
	}
	out := append([]byte(nil), data...)
	if p.Mode != nil {
		out[2] = byte(*p.Mode)
	}
	if p.SizeCode != nil {
		out[3] = out[3]&0x0F | *p.SizeCode<<4
	}
	if p.FreqCode != nil {
		out[3] = out[3]&0xF0 | *p.FreqCode&0x0F
	}
	if im.HashAppended {
		sum := sha256.Sum256(out[:im.ChecksumOffset+1])
		copy(out[im.ChecksumOffset+1:], sum[:])
	}
	return out, nil
}

// FlashSizeCode is the header code for a flash size in bytes on chip c, as
// esptool encodes --flash-size. ok is false for sizes the chip's header
// cannot express.
func FlashSizeCode(c Chip, size uint32) (code uint8, ok bool) {
	if c == ChipESP8266 {
		for i, s := range []uint32{512 << 10, 256 << 10, 1 << 20, 2 << 20, 4 << 20} {
			if s == size {
				return uint8(i), true
			}
		}
		switch size {
		case 8 << 20:
			return 8, true
		case 16 << 20:
			return 9, true
		}
		return 0, false
	}
	for i := uint8(0); i <= 7; i++ {
		if (1<<20)<<i == size {
			return i, true
		}
	}
	return 0, false
}

func formatLabel(f ImageFormat) string {
	if f == FormatESP8266V2 {
		return "ESP8266 v2"
	}
	return "these"
}
