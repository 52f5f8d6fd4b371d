package ops

import (
	"crypto"

	"github.com/espdeck/espdeck/firmware"
)

// Route says how an image is going to reach the board.
type Route int

const (
	// RouteOTAApp is a network OTA upload of an application image.
	RouteOTAApp Route = iota
	// RouteOTAFilesystem is a network OTA upload of a filesystem image (not checked).
	RouteOTAFilesystem
	// RouteSerial is a write through the ROM bootloader at Target.Address.
	RouteSerial
)

// Target is what is known about where an image is going. Zero values mean
// "unknown"; a check that needs an unknown value is skipped, not failed.
type Target struct {
	Route        Route
	Chip         firmware.Chip // firmware.ChipUnknown when not known
	ChipRevision int           // major*100+minor; negative when not known
	FlashSize    uint32        // bytes; 0 when not known
	Address      uint32        // serial: the write address
	SlotSize     uint32        // bytes available for the image; 0 when not known
}

// Policy is what the user configured for pre-flight checks.
type Policy struct {
	// Force turns failed checks into warnings — except a failed signature
	// check under a signing-key policy, which is never overridable.
	Force bool
	// SigningKeys, when non-empty, require images to carry a Secure Boot V2
	// signature by one of these public keys.
	SigningKeys []crypto.PublicKey
}

// Verdict is the outcome of the pre-flight checks.
type Verdict struct {
	// Warnings are failed checks that Force overrode, and notes worth showing.
	Warnings []string
}

// Preflight checks image against target before any byte is sent. It returns
// a non-nil error (wrapping firmware's typed errors) when the image must
// not be sent.
//
// TODO(firmware): implemented together with the firmware parsers.
func Preflight(image []byte, t Target, p Policy) (Verdict, error) {
	return Verdict{}, nil
}
