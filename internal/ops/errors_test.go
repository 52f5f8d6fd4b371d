package ops

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/pki"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serve"
)

// Item 10: the same failure was port_busy in serial and port_unavailable
// in slot and monitor. Classified once, it is one word everywhere.
func TestOneCodePerFailure(t *testing.T) {
	for _, c := range []struct {
		errs []error
		code string
	}{
		{[]error{serialflash.ErrPortBusy, monitor.ErrPortBusy}, CodePortBusy},
		{[]error{serialflash.ErrPermission, monitor.ErrPermission}, CodePermission},
		{[]error{serialflash.ErrPortNotFound, monitor.ErrPortNotFound}, CodePortNotFound},
		{[]error{espota.ErrAuthFailed}, CodeAuthFailed},
		{[]error{espota.ErrNoConnectBack}, CodeNoConnectBack},
		{[]error{firmware.ErrChipMismatch, serialflash.ErrWrongChip}, CodeWrongChip},
		{[]error{context.Canceled}, CodeInterrupted},
		{[]error{ErrDeclined}, CodeNotConfirmed},
		{[]error{ErrSlotWriteRefused}, CodeSlotWriteRefuse},
		{[]error{&SlotImageError{Slot: "ota_1", Problem: "erased"}}, CodeInvalidSlot},
	} {
		for _, e := range c.errs {
			wrapped := fmt.Errorf("doing something: %w", e)
			require.Equal(t, c.code, CodeOf(wrapped), "%v", e)
			var coded Coded
			require.ErrorAs(t, Classify(wrapped), &coded)
			require.ErrorIs(t, Classify(wrapped), e, "the cause stays reachable")
		}
	}
	// Every code has an exit status in the command line's table: checked there.
	require.Equal(t, "", CodeOf(nil))
}

// serialflash names its failures with ops's codes: one word per failure
// whichever layer reports it.
func TestSerialflashCodesAreOpsCodes(t *testing.T) {
	sentinels := []error{serialflash.ErrBaudChange, serialflash.ErrWrongBootMode, serialflash.ErrNoModemLines, serialflash.ErrNoSync,
		serialflash.ErrTimeout, serialflash.ErrVerify, serialflash.ErrPortNotFound, serialflash.ErrPermission, serialflash.ErrPortBusy,
		serialflash.ErrUnsupported, serialflash.ErrTooBig, serialflash.ErrBadArgument, serialflash.ErrWrongChip}
	for _, s := range sentinels {
		err := fmt.Errorf("doing something: %w", s)
		require.Equal(t, CodeOf(err), serialflash.Code(err), "%v", s)
	}
	rom := &serialflash.CommandError{}
	require.Equal(t, CodeOf(rom), rom.Code())
}

// An ESPHome failure keeps its own word and is grouped into ops's classes
// by its sentinel, so exit tables need one row per class, not per word.
func TestClassGroupsProtocolWords(t *testing.T) {
	wrongKey := &esphomeota.Error{Kind: esphomeota.ErrAuth, Word: "wrong_api_key", Msg: "the API key was refused"}
	require.Equal(t, "wrong_api_key", CodeOf(wrongKey))
	require.Equal(t, CodeAuthFailed, Class(fmt.Errorf("upload: %w", wrongKey)))
	broke := &esphomeota.Error{Kind: esphomeota.ErrTransfer, Word: "protocol_error", Msg: "connection reset", Committed: true}
	require.Equal(t, CodeTransfer, Class(broke))
	require.Contains(t, HintOf(broke), "may have installed the image", "a transfer that broke after the last byte says the board may run it")
	require.Equal(t, CodePortBusy, Class(fmt.Errorf("x: %w", serialflash.ErrPortBusy)))
	require.Equal(t, CodeInternal, Class(&Error{code: "something_new"}))
	require.Equal(t, CodeUsage, Class(fmt.Errorf("serve: %w", &pki.Error{Op: "load CA", Err: pki.ErrNoCA})), "the bench CA is the user's to fix")
	require.Equal(t, CodeUsage, Class(&serve.Error{Op: "scan", Err: errors.New("not a folder")}))
}
