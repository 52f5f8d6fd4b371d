package espota

import (
	"errors"
	"strings"
)

// Sentinels callers branch on. Upload wraps each in an *Error that carries
// what happened and the next step; use errors.Is to test and errors.As to
// get the message and hint separately.
var (
	// ErrNoAnswer: the device did not answer the invitation (unreachable,
	// not running ArduinoOTA, wrong port, UDP blocked, or busy).
	ErrNoAnswer = errors.New("no answer from the device")
	// ErrAuthFailed: the device rejected the password, or asked for one
	// and none was given.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrNoConnectBack: the device accepted the invitation but never opened
	// the TCP connection back to us.
	ErrNoConnectBack = errors.New("the device never connected back")
	// ErrTransfer: the data connection was lost or stalled.
	ErrTransfer = errors.New("transfer failed")
	// ErrDeviceError: the device reported an error of its own (MD5 check
	// failed, not enough space, wrong magic byte, ERR: …).
	ErrDeviceError = errors.New("the device reported an error")
	// ErrNotAnApp: the image does not start with 0xE9, so the device would
	// reject it only after the whole upload.
	ErrNotAnApp = errors.New("not an application image")
	// ErrListen: we could not listen for the connection back (bad
	// HostIP, HostPort in use). A local problem, not the device's.
	ErrListen = errors.New("cannot listen for the device's connection")
)

// Error is the error Upload returns for a failed phase. It unwraps to one
// of the sentinels above and, where there is one, to the underlying cause
// (a network error). Cancellation is not an *Error: Upload returns an
// error wrapping ctx.Err() instead.
type Error struct {
	Kind   error  // one of the sentinels
	Stage  Stage  // where it happened
	Msg    string // what happened, one sentence, no trailing period
	Next   string // the next step, may be empty (returned by Hint)
	Device string // the device's own text, verbatim, when it sent one
	Cause  error  // underlying error, may be nil
}

// codes are the stable machine words of the sentinels, as the CLI prints
// them in --json output. They never change meaning.
var codes = []struct {
	kind error
	code string
}{
	{ErrNoAnswer, "no_answer"},
	{ErrAuthFailed, "auth_failed"},
	{ErrNoConnectBack, "no_connect_back"},
	{ErrTransfer, "transfer_failed"},
	{ErrDeviceError, "device_error"},
	{ErrNotAnApp, "not_an_app"},
	{ErrListen, "listen_failed"},
}

// Code is the stable machine word for the kind of failure: no_answer,
// auth_failed, no_connect_back, transfer_failed, device_error, not_an_app
// or listen_failed ("internal" for an Error built without a known Kind).
func (e *Error) Code() string {
	for _, c := range codes {
		if e.Kind == c.kind {
			return c.code
		}
	}
	return "internal"
}

// Hint is the next step for the user, or "" when there is none to give.
func (e *Error) Hint() string { return e.Next }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	if e.Next != "" {
		b.WriteString(". ")
		b.WriteString(e.Next)
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}
