package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/pki"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serve"
)

// Error codes: the stable machine words every error the CLI or the TUI
// shows answers through Code(). cmd/espdeck maps each to an exit status in
// one table; scripts read them from --json output.
const (
	CodeInternal        = "internal"
	CodeUsage           = "usage"
	CodeBadInput        = "bad_input"
	CodeRefused         = "refused"
	CodeWrongChip       = "wrong_chip"
	CodeTooBig          = "too_big"
	CodeNotConfirmed    = "not_confirmed"
	CodeInvalidSlot     = "invalid_slot_image"
	CodeNoFreeSlot      = "no_free_slot"
	CodeBadTable        = "bad_table"
	CodeNoTable         = "no_partition_table"
	CodeUnknownPart     = "unknown_partition"
	CodeNoOTAData       = "no_otadata_entry"
	CodeSlotWriteRefuse = "slot_write_refused"
	CodeUnreachable     = "unreachable"
	CodeNoSync          = "no_sync"
	CodeWrongBootMode   = "wrong_boot_mode"
	CodeBaudChange      = "baud_change_failed"
	CodePortNotFound    = "port_not_found"
	CodePortBusy        = "port_busy"
	CodePermission      = "permission_denied"
	CodeAuthFailed      = "auth_failed"
	CodeNoConnectBack   = "no_connect_back"
	CodeListen          = "listen_failed"
	CodeNoAnswer        = "no_answer"
	CodeNotAnApp        = "not_an_app"
	CodeTransfer        = "transfer_failed"
	CodeTimeout         = "timeout"
	CodeDevice          = "device_error"
	CodeVerify          = "verify_failed"
	CodeNotVerified     = "not_verified"
	CodeInterrupted     = "interrupted"
	CodeWriteFile       = "write_failed"
)

// Codes lists every code, for tables that must cover them all.
func Codes() []string {
	return []string{CodeInternal, CodeUsage, CodeBadInput, CodeRefused, CodeWrongChip, CodeTooBig, CodeNotConfirmed, CodeInvalidSlot, CodeNoFreeSlot, CodeBadTable, CodeNoTable, CodeUnknownPart, CodeNoOTAData, CodeSlotWriteRefuse, CodeUnreachable, CodeNoSync, CodeWrongBootMode, CodeBaudChange, CodePortNotFound, CodePortBusy, CodePermission, CodeAuthFailed, CodeNoConnectBack, CodeListen, CodeNoAnswer, CodeNotAnApp, CodeTransfer, CodeTimeout, CodeDevice, CodeVerify, CodeNotVerified, CodeInterrupted, CodeWriteFile}
}

// Coded is what every error shown to a person answers.
type Coded interface {
	error
	Code() string
	Hint() string
}

// Error is an error classified once: a stable code, the sentence, the next
// step, and the cause it wraps (errors.Is/As reach it).
type Error struct {
	code string
	msg  string // "" uses the cause's text
	hint string
	err  error
}

func (e *Error) Error() string {
	switch {
	case e.msg == "":
		return e.err.Error()
	case e.err == nil:
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

// Code is the stable machine word for the failure.
func (e *Error) Code() string { return e.code }

// Hint is the next step for a person ("" when there is none to give).
func (e *Error) Hint() string { return e.hint }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.err }

// newError returns a classified error without a cause.
func newError(code, msg, hint string) *Error { return &Error{code: code, msg: msg, hint: hint} }

// Errorf returns a classified error; %w in format wraps a cause.
func Errorf(code, hint, format string, args ...any) error {
	return &Error{code: code, hint: hint, err: fmt.Errorf(format, args...)}
}

// CodeOf returns the code of the first classified error in err's chain,
// classifying err first when nothing in it is.
func CodeOf(err error) string {
	if err == nil {
		return ""
	}
	return Classify(err).(Coded).Code()
}

// Class is the ops code err belongs to, the key of exit tables: err's own
// code when it is one of Codes(), else the class its protocol's sentinel
// names (ESPHome's "wrong_api_key" is auth_failed, its "noise_failed" a
// transfer failure), else CodeInternal. The specific code stays what
// CodeOf says; Class only groups it.
func Class(err error) string {
	code := CodeOf(err)
	if code == "" || slices.Contains(Codes(), code) {
		return code
	}
	// A package above ops (the campaign engine) names its class itself.
	var grouped interface{ Class() string }
	if errors.As(err, &grouped) && slices.Contains(Codes(), grouped.Class()) {
		return grouped.Class()
	}
	var (
		pkiErr   *pki.Error
		serveErr *serve.Error
	)
	if errors.As(err, &pkiErr) || errors.As(err, &serveErr) {
		// The bench CA or the folder/address to serve: the user's to fix.
		return CodeUsage
	}
	for _, m := range []struct {
		kind error
		code string
	}{
		{esphomeota.ErrInput, CodeBadInput},
		{esphomeota.ErrRefused, CodeRefused},
		{esphomeota.ErrUnreachable, CodeUnreachable},
		{esphomeota.ErrAuth, CodeAuthFailed},
		{esphomeota.ErrTransfer, CodeTransfer},
		{esphomeota.ErrVerify, CodeVerify},
		{esphomeota.ErrDevice, CodeDevice},
	} {
		if errors.Is(err, m.kind) {
			return m.code
		}
	}
	return CodeInternal
}

// HintOf returns the next step for err ("" when there is none).
func HintOf(err error) string {
	if err == nil {
		return ""
	}
	return Classify(err).(Coded).Hint()
}

// Classify returns err unchanged when something in its chain already
// answers Code() (its text then stays as is), else err wrapped in an
// *Error whose code and hint follow from the sentinels of the protocol
// and firmware packages. Cancellation is CodeInterrupted.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var c Coded
	if errors.As(err, &c) {
		if _, ok := err.(Coded); ok {
			return err
		}
		// Keep the outer context in the text, the inner classification.
		return &Error{code: c.Code(), hint: c.Hint(), err: err}
	}
	code, hint := classify(err)
	return &Error{code: code, hint: hint, err: err}
}

func classify(err error) (code, hint string) {
	var (
		refused *RefusedError
		table   *firmware.TableError
		cmd     *serialflash.CommandError
		ota     *espota.Error
	)
	hint = serialflash.Hint(err)
	if errors.As(err, &ota) {
		hint = ota.Next
	}
	if hint == "" {
		var h interface{ Hint() string }
		if errors.As(err, &h) {
			hint = h.Hint()
		}
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, serialflash.ErrTimeout):
		return CodeInterrupted, ""
	case errors.As(err, &refused):
		switch {
		case errors.Is(err, firmware.ErrChipMismatch):
			return CodeWrongChip, refused.Hint()
		case errors.Is(err, firmware.ErrTooLarge):
			return CodeTooBig, refused.Hint()
		}
		return CodeRefused, refused.Hint()
	case errors.Is(err, firmware.ErrNotPartitionTable):
		return CodeNoTable, "the board has no valid table there; if it uses another offset pass --table-offset (ESP-IDF's CONFIG_PARTITION_TABLE_OFFSET)"
	case errors.As(err, &table):
		return CodeBadTable, table.Hint()
	case errors.Is(err, serialflash.ErrPortBusy), errors.Is(err, monitor.ErrPortBusy):
		return CodePortBusy, hint
	case errors.Is(err, serialflash.ErrPermission), errors.Is(err, monitor.ErrPermission):
		return CodePermission, hint
	case errors.Is(err, serialflash.ErrPortNotFound), errors.Is(err, monitor.ErrPortNotFound):
		return CodePortNotFound, hint
	case errors.Is(err, serialflash.ErrBaudChange):
		// Before no_sync: the chip answered at 115200 and stopped after
		// the switch, so the cable and the port are not to blame.
		return CodeBaudChange, hint
	case errors.Is(err, serialflash.ErrNoSync), errors.Is(err, serialflash.ErrNoModemLines):
		return CodeNoSync, hint
	case errors.Is(err, serialflash.ErrWrongBootMode):
		return CodeWrongBootMode, hint
	case errors.Is(err, serialflash.ErrWrongChip):
		return CodeWrongChip, hint
	case errors.Is(err, serialflash.ErrVerify):
		return CodeVerify, hint
	case errors.Is(err, serialflash.ErrTimeout):
		return CodeTimeout, hint
	case errors.Is(err, serialflash.ErrTooBig):
		return CodeTooBig, hint
	case errors.Is(err, serialflash.ErrBadArgument):
		return CodeUsage, hint
	case errors.As(err, &cmd), errors.Is(err, serialflash.ErrUnsupported):
		return CodeDevice, hint
	case errors.Is(err, espota.ErrAuthFailed):
		return CodeAuthFailed, hint
	case errors.Is(err, espota.ErrNoAnswer):
		return CodeNoAnswer, hint
	case errors.Is(err, espota.ErrNoConnectBack):
		return CodeNoConnectBack, hint
	case errors.Is(err, espota.ErrListen):
		return CodeListen, hint
	case errors.Is(err, espota.ErrTransfer):
		return CodeTransfer, hint
	case errors.Is(err, espota.ErrDeviceError):
		return CodeDevice, hint
	case errors.Is(err, espota.ErrNotAnApp):
		return CodeNotAnApp, hint
	case errors.Is(err, firmware.ErrNotAnImage), errors.Is(err, firmware.ErrMalformed):
		return CodeBadInput, hint
	case errors.Is(err, firmware.ErrChipMismatch):
		return CodeWrongChip, hint
	}
	return CodeInternal, hint
}
