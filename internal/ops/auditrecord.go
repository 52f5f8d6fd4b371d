package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
)

// Attempt is one update of one board outside a campaign ('ota upload',
// 'serial write' of an app), as the audit log records it. Nothing in it is
// a secret: passwords and keys never reach an Attempt, and the errors of
// the upload functions never contain them.
type Attempt struct {
	Board    string // the name the user gave or discovery knows
	Address  string // host:port, or the serial port
	MAC      string
	Chip     string
	Protocol string // arduino-ota, esphome, serial
	Auth     string // scheme used: none, md5, pbkdf2-sha256, sha256, noise …
	Image    string // the image's path; the record keeps its base name
	// Data is the image sent: the record holds its SHA-256 and the app
	// description's version (the version the board should now run).
	Data     []byte
	Bytes    int64
	Duration time.Duration
	// Err is why the attempt failed; nil means the board accepted the
	// image (nothing confirms it runs: Confirmation says "not-checked"
	// unless set).
	Err          error
	Confirmation string
}

// IsUpdate reports whether writing data to a board updates the firmware
// it runs, and so gets an audit record: an app image does; a bootloader, a
// partition table or a data region does not.
func IsUpdate(data []byte) bool { return firmware.Classify(data) == firmware.ContentApp }

// Record is a's audit record: Kind update, result "ok" or the error's
// code ("interrupted" for a cancelled attempt).
func (a Attempt) Record() audit.Record {
	rec := audit.Record{
		Kind: audit.KindUpdate, Board: a.Board, Address: a.Address, MAC: a.MAC, Chip: a.Chip,
		Attempt: 1, Protocol: a.Protocol, Auth: a.Auth, Bytes: a.Bytes, DurationMS: a.Duration.Milliseconds(),
		Result: "ok", Confirmation: a.Confirmation,
	}
	if a.Image != "" {
		rec.Image = filepath.Base(a.Image)
	}
	if a.Data != nil {
		sum := sha256.Sum256(a.Data)
		rec.ImageSHA256 = hex.EncodeToString(sum[:])
		if im, err := firmware.ParseImage(a.Data); err == nil && im.AppDesc != nil {
			rec.ToVersion = im.AppDesc.Version
		}
	}
	if rec.Confirmation == "" {
		rec.Confirmation = "not-checked"
	}
	if a.Err != nil {
		rec.Message = a.Err.Error()
		rec.Result = CodeOf(a.Err)
		if errors.Is(a.Err, context.Canceled) {
			rec.Result = "interrupted"
		}
	}
	return rec
}

// ChipKey is how the audit log and campaign files spell a chip (esp32,
// esp32s3, esp8266 …), "" when the chip is unknown.
func ChipKey(c firmware.Chip) string {
	if ci, ok := c.Info(); ok {
		return ci.Key
	}
	return ""
}

// RecordAttempt appends a's record to the audit log at path (created 0600
// when missing). A log that cannot be written is an error for the caller
// to warn about; the update itself already happened or failed.
func RecordAttempt(ctx context.Context, path string, a Attempt) error {
	l, err := audit.Open(path)
	if err != nil {
		return err
	}
	err = l.Append(context.WithoutCancel(ctx), a.Record())
	return errors.Join(err, l.Close())
}
