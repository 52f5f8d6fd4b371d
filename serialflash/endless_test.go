package serialflash_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// boundedOpts are the defaults a user gets, shortened only in the number
// of rounds, so the bound below is the product of documented waits.
func boundedOpts() serialflash.Options {
	return serialflash.Options{Before: serialflash.ResetNone, ConnectAttempts: 2, SyncTries: 2,
		SyncTimeout: 100 * time.Millisecond, CommandTimeout: 2 * time.Second, BootLogWait: 100 * time.Millisecond}
}

// connectBound is what a connect with boundedOpts may take at most: each
// round drains the boot log for at most max(4·BootLogWait, 1 s) and waits
// SyncTimeout plus 50 ms per SYNC. Twice that leaves room for a loaded
// machine; a wait that received bytes extend would never end.
const connectBound = 2 * 2 * (time.Second + 2*(100+50)*time.Millisecond)

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
			ctx, cancel := context.WithTimeout(context.Background(), 10*connectBound)
			defer cancel()
			start := time.Now()
			_, err := serialflash.Open(ctx, env.path, boundedOpts())
			took := time.Since(start)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "ended by its own bound, not the test's")
			require.Less(t, took, 3*connectBound, "took %v", took)
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
		start := time.Now()
		_, err := f.FlashMD5(testCtx(t), 0, 0x1000)
		require.ErrorIs(t, err, serialflash.ErrTimeout)
		require.Less(t, time.Since(start), 2*opts.CommandTimeout+time.Second)
	}
}
