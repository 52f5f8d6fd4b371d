package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

// ArduinoOTA updates ArduinoOTA boards through espota, after the same
// pre-flight checks as 'ota upload' (the board's chip when known, the
// signing-key policy).
type ArduinoOTA struct {
	// Password for every board of the campaign; empty means none. A Secret
	// never reaches a log, an error, an event or the audit log.
	Password espota.Secret
	// Options are the espota options every upload starts from (timeouts,
	// HostIP, HostPort…); Password and OnProgress are set per upload.
	Options espota.Options
	Policy  ops.Policy
	Logger  *slog.Logger
}

// Flash implements Flasher.
func (a ArduinoOTA) Flash(ctx context.Context, b Board, img Image, data []byte, progress func(done, total int64)) (FlashResult, error) {
	res := FlashResult{Protocol: "arduino-ota"}
	target := ops.NewTarget(ops.RouteOTAApp)
	if b.Chip != "" {
		c, err := firmware.ParseChip(b.Chip)
		if err == nil {
			target.Chip = c
		}
	}
	if _, err := ops.Preflight(data, target, a.Policy); err != nil {
		return res, &FlashError{code: "refused", msg: "nothing was sent: " + err.Error(), hint: hintOf(err), err: err}
	}
	host, portStr, err := net.SplitHostPort(b.Address)
	if err != nil {
		return res, &FlashError{code: "usage", msg: fmt.Sprintf("bad board address %q", b.Address), hint: "give HOST[:PORT]", err: err}
	}
	port, _ := strconv.Atoi(portStr)
	opts := a.Options
	opts.Password = a.Password
	if opts.Logger == nil {
		opts.Logger = a.Logger
	}
	opts.OnProgress = func(p espota.Progress) {
		if progress != nil && (p.Stage == espota.StageTransfer || p.Stage == espota.StageFinalize) {
			progress(p.Done, p.Total)
		}
	}
	r, err := espota.Upload(ctx, espota.Target{Host: host, Port: port}, data, opts)
	res.Auth, res.Bytes, res.Duration = r.AuthScheme, r.Bytes, r.Duration
	if err != nil {
		return res, classifyESPOTA(err)
	}
	return res, nil
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// FlashError is an upload error with its machine word and next step.
type FlashError struct {
	code, msg, hint string
	err             error
}

func (e *FlashError) Error() string { return e.msg }
func (e *FlashError) Unwrap() error { return e.err }

// Code is the stable machine word (the same words as 'ota upload --json').
func (e *FlashError) Code() string { return e.code }

// Hint is the next step.
func (e *FlashError) Hint() string { return e.hint }

// classifyESPOTA gives an espota error the machine word 'ota upload' uses
// for it. An error that already answers Code() keeps its own.
func classifyESPOTA(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return err
	}
	f := &FlashError{code: "upload_failed", msg: err.Error(), err: err}
	var e *espota.Error
	if errors.As(err, &e) {
		f.msg = e.Msg
		if e.Cause != nil {
			f.msg += ": " + e.Cause.Error()
		}
		f.hint = strings.TrimSpace(e.Next)
	}
	for _, m := range []struct {
		err  error
		name string
	}{
		{espota.ErrNotAnApp, "not_an_app"},
		{espota.ErrListen, "listen_failed"},
		{espota.ErrNoAnswer, "no_answer"},
		{espota.ErrAuthFailed, "auth_failed"},
		{espota.ErrNoConnectBack, "no_connect_back"},
		{espota.ErrTransfer, "transfer_failed"},
		{espota.ErrDeviceError, "device_error"},
	} {
		if errors.Is(err, m.err) {
			f.code = m.name
			break
		}
	}
	if f.code == "upload_failed" && errors.Is(err, context.DeadlineExceeded) {
		f.code = "timeout"
	}
	return f
}
