package esphomeota

import "fmt"

// Wire constants (docs/protocol-esphome-ota.md §2).
var magic = [5]byte{0x6C, 0x26, 0xF7, 0x5C, 0x45}

const (
	respOK                  = 0x00
	respRequestAuthMD5      = 0x01
	respRequestAuthSHA256   = 0x02
	respHeaderOK            = 0x40
	respAuthOK              = 0x41
	respPrepareOK           = 0x42
	respMD5OK               = 0x43
	respReceiveOK           = 0x44
	respEndOK               = 0x45
	respSupportsCompression = 0x46
	respChunkOK             = 0x47
	respFeatureFlags        = 0x48

	featGzip     = 0x01
	featSHA256   = 0x02
	featExtended = 0x04
	featNoise    = 0x08

	serverGzip            = 0x01
	serverPartitionAccess = 0x02
	serverNoise           = 0x04

	// blockSize is the unit the device acknowledges with CHUNK_OK (v2).
	blockSize = 8192
	// noiseDataPlain is the largest plaintext of one encrypted data frame:
	// the device reads a data frame into its 1024-byte buffer, so the
	// ciphertext (plaintext + 16-byte tag) must fit in 1024 bytes.
	noiseDataPlain = 1024 - noiseTag
	noiseTag       = 16
)

// OTAType is what an upload replaces on the device (extended protocol only).
type OTAType byte

// OTA types.
const (
	TypeApp            OTAType = 0x00
	TypePartitionTable OTAType = 0x01
	TypeBootloader     OTAType = 0x02
)

func (t OTAType) String() string {
	switch t {
	case TypeApp:
		return "app"
	case TypePartitionTable:
		return "partition table"
	case TypeBootloader:
		return "bootloader"
	}
	return fmt.Sprintf("OTA type 0x%02X", byte(t))
}

// deviceError is one row of the device's error table: a stable machine
// word, what happened and the next step.
type deviceError struct {
	code string
	msg  string
	hint string
	kind error
}

// deviceErrors maps every error byte the device sends to a sentence and a
// next step. Bytes ≥ 0x80 that are not listed are reported with their value.
var deviceErrors = map[byte]deviceError{
	0x80: {"bad_magic", "the device did not recognise the OTA greeting (bad magic)",
		"check the port: this is not an ESPHome OTA port, or the firmware speaks another protocol", ErrDevice},
	0x81: {"prepare_failed", "the device could not prepare its flash for the update (often: the image is too big)",
		"check the image size against the OTA partition, and restart the device before retrying", ErrDevice},
	0x82: {"auth_invalid", "the device rejected the authentication",
		"check the OTA password (ota: password: in the device's YAML)", ErrAuth},
	0x83: {"flash_write_failed", "the device failed to write its flash",
		"look at the device's serial log; retry once, then flash over USB", ErrDevice},
	0x84: {"update_end_failed", "the device could not finish the update",
		"look at the device's serial or MQTT log for the reason, then retry", ErrDevice},
	0x85: {"invalid_bootstrapping", "the device needs one manual reset after being flashed over USB (ESP8266)",
		"press the reset button (or power-cycle the board) once, then upload again", ErrDevice},
	0x86: {"wrong_current_flash_config", "the running firmware was built for a different flash size than the board has",
		"choose the correct board: option (esp01_1m always works) and flash once over USB", ErrDevice},
	0x87: {"wrong_new_flash_config", "the new image was built for a flash size the board does not have (wrong board)",
		"choose the correct board: option (esp01_1m always works) and build again", ErrDevice},
	0x88: {"not_enough_space", "the device does not have enough free flash for the image (ESP8266)",
		"upload a minimal firmware first (remove everything but wifi and ota), then the full one", ErrDevice},
	0x89: {"partition_too_small", "the OTA partition on the device is too small for the image (ESP32)",
		"the partition table must grow: flash over USB once", ErrDevice},
	0x8A: {"no_update_partition", "the device has no OTA partition to write to",
		"flash over USB once with a partition table that has two app slots", ErrDevice},
	0x8B: {"md5_mismatch", "the device received an image whose MD5 does not match (corrupted on the way)",
		"upload again; if it repeats, check the Wi-Fi signal or flash over USB", ErrVerify},
	0x8C: {"not_enough_space", "the device does not have enough space for the image (RP2040)",
		"make the image smaller or flash over USB", ErrDevice},
	0x8D: {"signature_invalid", "the device refused the image: its signature does not verify",
		"sign the image with the key of the firmware running on the device", ErrDevice},
	0x8E: {"unsupported_ota_type", "the device does not support this OTA type",
		"update the device's ESPHome version, or upload an app image", ErrDevice},
	0x8F: {"partition_table_verify_failed", "the new partition table did not verify; nothing was changed",
		"check the device's log and retry", ErrDevice},
	0x90: {"partition_table_update_failed", "writing the partition table failed; the device may not boot",
		"do not reboot the device: retry the update now, or recover over USB", ErrDevice},
	0x91: {"bootloader_verify_failed", "the new bootloader did not verify; nothing was changed",
		"check the device's log and retry", ErrDevice},
	0x92: {"bootloader_update_failed", "writing the bootloader failed; the device may not boot",
		"do not reboot the device: retry the update now, or recover over USB", ErrDevice},
	0x93: {"downgrade_refused", "the device refused the image because it is older than the running firmware",
		"build a newer version, or allow downgrades in the device's configuration", ErrDevice},
	0x94: {"encryption_required", "the device requires an encrypted OTA session and no API key was given",
		"give the device's API key (api: encryption: key:) with --api-key-env, --api-key-file or --esphome-config", ErrAuth},
	0xFF: {"device_unknown_error", "the device reported an unknown error (also: it timed out waiting for data, or could not inflate the image)",
		"look at the device's log; retry on a steadier connection", ErrDevice},
}

// lookupDeviceError returns the table row for an error byte.
func lookupDeviceError(b byte) deviceError {
	if e, ok := deviceErrors[b]; ok {
		return e
	}
	return deviceError{"device_error", fmt.Sprintf("the device reported error 0x%02X", b),
		"look at the device's log", ErrDevice}
}
