package ops

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/serialflash"
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
