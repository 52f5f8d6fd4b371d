package serialflash_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// boundedOpts are the defaults a user gets, shortened only in the number
// of rounds, so every wait of a connect is one of the documented bounds.
func boundedOpts() serialflash.Options {
	return serialflash.Options{Before: serialflash.ResetNone, ConnectAttempts: 2, SyncTries: 2,
		SyncTimeout: 100 * time.Millisecond, CommandTimeout: 2 * time.Second, BootLogWait: 100 * time.Millisecond}
}

// A sender that never stops — an app logging every 2–150 ms, line noise,
// a frame that never ends — cannot keep espdeck waiting: the connect ends
// within its bound with what was seen.
func TestEndlessSendersEndWithinTheBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   romsim.Config
		check func(t *testing.T, err error)
	}{
		{"chatty app", romsim.Config{StartInApp: true, ChattyApp: true}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, serialflash.ErrWrongBootMode)
			require.Contains(t, err.Error(), "running an app and printing")
			require.Contains(t, err.Error(), "sensor reading", "what was seen is shown")
			require.Contains(t, serialflash.Hint(err), "hold BOOT")
		}},
		{"line noise", romsim.Config{Faults: romsim.Faults{LineNoise: true, NeverSync: true}}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, serialflash.ErrNoSync)
			require.Contains(t, err.Error(), "noise")
			require.Contains(t, serialflash.Hint(err), "baud")
		}},
		{"unterminated frame", romsim.Config{Faults: romsim.Faults{UnterminatedFrame: true}}, func(t *testing.T, err error) {
			require.ErrorIs(t, err, serialflash.ErrNoSync)
			require.NotEmpty(t, serialflash.Hint(err))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Chip = firmware.ChipESP32
			env := startPTY(t, tc.cfg)
			// A wait that the sender's bytes extend never ends, so the
			// test's hang guard would end it: a live context shows the
			// connect ended by its own bound.
			ctx := testCtx(t)
			_, err := serialflash.Open(ctx, env.path, boundedOpts())
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "ended by its own bound, not the test's")
			tc.check(t, err)
		})
	}
}

// A chip that starts answering a command with a frame that never ends,
// or with noise instead of a reply, fails that command within its
// timeout.
func TestEndlessReplyEndsTheCommand(t *testing.T) {
	t.Parallel()
	for _, faults := range []romsim.Faults{{UnterminatedFrame: true}, {LineNoise: true, DropReplyOp: 0x13, DropReplyNth: 1}} {
		env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
		opts := boundedOpts()
		f := openPTY(t, env, opts)
		env.rom.SetFaults(faults)
		if faults.UnterminatedFrame {
			// The fault fires on SYNC; a resync is what sends one.
			env.rom.SetFaults(romsim.Faults{UnterminatedFrame: true, DropReplyOp: 0x13, DropReplyNth: 1})
		}
		ctx := testCtx(t)
		_, err := f.FlashMD5(ctx, 0, 0x1000)
		require.ErrorIs(t, err, serialflash.ErrTimeout)
		require.NoError(t, ctx.Err(), "ended by CommandTimeout, not by the test's hang guard")
	}
}
