package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

// ESPHome updates ESPHome boards through their native OTA protocol
// (ops.UploadESPHome: the same pre-flight as 'ota upload --protocol
// esphome', then the upload). Only app images: a campaign never replaces a
// bootloader or a partition table.
type ESPHome struct {
	// Password is the OTA password of every board of the campaign; APIKey
	// the API encryption key (with it the session is encrypted and a board
	// that does not offer encryption is refused). Empty means none. A
	// Secret never reaches a log, an error, an event or the audit log.
	Password esphomeota.Secret
	APIKey   esphomeota.Secret
	// Options are the esphomeota options every upload starts from
	// (timeouts, retries, NoCompression); secrets, type and progress are
	// set per upload.
	Options esphomeota.Options
	// AskPassword, when set and Password is empty, is asked for the
	// password once a board says it wants one; the upload is then tried
	// again. The CLI asks once on a terminal and gives every later board
	// the same answer.
	AskPassword func(context.Context) (esphomeota.Secret, error)
	Policy      ops.Policy
	Logger      *slog.Logger
}

// Flash implements Flasher. FlashResult.Auth is the scheme the board
// asked for (none, sha256, md5) with "+noise" when the session was
// encrypted, so the audit log says how each board was reached.
func (e ESPHome) Flash(ctx context.Context, b Board, img Image, data []byte, progress func(done, total int64)) (FlashResult, error) {
	res := FlashResult{Protocol: "esphome"}
	host, portStr, err := net.SplitHostPort(b.Address)
	if err != nil {
		return res, &FlashError{code: "usage", msg: fmt.Sprintf("bad board address %q", b.Address), hint: "give HOST[:PORT]", err: err}
	}
	port, _ := strconv.Atoi(portStr)
	chip := firmware.ChipUnknown
	if b.Chip != "" {
		if c, err := firmware.ParseChip(b.Chip); err == nil {
			chip = c
		}
	}
	up := ops.ESPHomeUpload{
		Target: esphomeota.Target{Host: host, Port: port}, Image: data, Type: esphomeota.TypeApp, Chip: chip,
		Policy: e.Policy, Password: e.Password, APIKey: e.APIKey, Options: e.Options, Logger: e.Logger,
		OnProgress: func(p esphomeota.Progress) {
			if progress != nil && (p.Stage == esphomeota.StageTransfer || p.Stage == esphomeota.StageFinalize) {
				progress(p.Done, p.Total)
			}
		},
	}
	r, err := ops.UploadESPHome(ctx, up)
	var ce *esphomeota.Error
	if err != nil && up.Password == "" && e.AskPassword != nil && errors.As(err, &ce) && ce.Code() == "password_required" {
		pw, aerr := e.AskPassword(ctx)
		if aerr != nil {
			return res, &FlashError{code: "password_required", msg: "the board wants a password and none was given: " + aerr.Error(),
				hint: ce.Hint(), err: err}
		}
		up.Password = pw
		r, err = ops.UploadESPHome(ctx, up)
	}
	if err != nil {
		if errors.Is(err, ops.ErrRefused) {
			return res, &FlashError{code: "refused", msg: "nothing was sent: " + err.Error(), hint: hintOf(err), err: err}
		}
		return res, classifyESPHome(err)
	}
	u := r.Upload
	res.Auth, res.Bytes, res.Duration = AuthLabel(u.AuthScheme, u.Encrypted), u.Bytes, u.Duration
	return res, nil
}

// AuthLabel is how the audit log and the campaign file name an ESPHome
// session's protection: the password scheme (none, sha256, md5), with
// "+noise" when the session was encrypted; an encrypted session without
// a password check (the key authenticates both sides) is just "noise".
func AuthLabel(scheme string, encrypted bool) string {
	switch {
	case encrypted && (scheme == "" || scheme == esphomeota.SchemeNone):
		return "noise"
	case encrypted:
		return scheme + "+noise"
	case scheme == "":
		return esphomeota.SchemeNone
	}
	return scheme
}

// classifyESPHome keeps the client's own machine word and hint (which
// says when the board may run the new image already).
func classifyESPHome(err error) error {
	var e *esphomeota.Error
	if errors.Is(err, context.Canceled) || errors.As(err, &e) {
		return err
	}
	return classifyESPOTA(err)
}
