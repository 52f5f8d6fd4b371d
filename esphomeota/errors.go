package esphomeota

import (
	"errors"
	"strings"
)

// Sentinels callers branch on with errors.Is. Upload wraps each in an
// *Error that carries a stable Code, what happened and the next step.
var (
	// ErrUnreachable: no TCP connection to the device's OTA port.
	ErrUnreachable = errors.New("device unreachable")
	// ErrAuth: the password or API key was wrong, missing, or the device
	// demands a scheme we were not allowed to use.
	ErrAuth = errors.New("authentication failed")
	// ErrRefused: we refused to go on before sending the image (a key was
	// given and the device does not offer encryption, a risky OTA type was
	// not confirmed, the device cannot take this OTA type).
	ErrRefused = errors.New("refused before sending")
	// ErrTransfer: the connection was lost or stalled.
	ErrTransfer = errors.New("transfer failed")
	// ErrDevice: the device reported an error of its own, or broke the
	// protocol.
	ErrDevice = errors.New("the device reported an error")
	// ErrVerify: the device found the received image corrupted (MD5).
	ErrVerify = errors.New("the device could not verify the image")
	// ErrInput: the options or the image are unusable (bad API key).
	ErrInput = errors.New("bad input")
)

// Error is the error Upload returns for a failed phase. It unwraps to one
// of the sentinels above and, where there is one, to the underlying cause.
// Cancellation is not an *Error: Upload returns an error wrapping ctx.Err().
type Error struct {
	Kind  error  // one of the sentinels
	Stage Stage  // where it happened
	Msg   string // what happened, one sentence, no trailing period
	// Next is the next step for a person, may be empty.
	Next string
	// Word is the stable machine word (Code()).
	Word string
	// DeviceCode is the error byte the device sent, 0 when none.
	DeviceCode byte
	// Committed is true when the connection broke after every block was
	// acknowledged: the device may already have accepted the image.
	Committed bool
	Cause     error // underlying error, may be nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Code is a stable machine word for scripts ("auth_invalid", "md5_mismatch", …).
func (e *Error) Code() string { return e.Word }

// Hint is the next step for a person. A transfer that broke after the
// device had every byte says that the board may already run the image.
func (e *Error) Hint() string {
	if e.Committed && e.Kind == ErrTransfer {
		const committed = "the device had every byte before the connection broke: it may have installed the image; check its version before uploading again"
		if e.Next == "" {
			return committed
		}
		return e.Next + "; " + committed
	}
	return e.Next
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}
