package ops

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
)

// A caller that has just written and verified the target slot (the serial
// flash path) skips the full re-read of the image; everyone else pays it.
func TestSwitchTrustsAJustVerifiedTarget(t *testing.T) {
	for _, verified := range []bool{false, true} {
		m := demo(t, DemoApp{Slot: "ota_0", Project: "p", Version: "v1", Size: 200 << 10},
			DemoApp{Slot: "ota_1", Project: "p", Version: "v2", Size: 200 << 10})
		c := &countingFlash{FlashIO: m}
		st, _, err := SwitchBootSlot(ctxT(t), c, 0x8000, "ota_1", ChangeOptions{Chip: firmware.ChipESP32, TargetVerified: verified})
		require.NoError(t, err)
		require.Equal(t, "ota_1", st.BootsNext)
		if verified {
			require.Less(t, c.bytes, int64(64<<10), "a verified target is not read whole again")
		} else {
			require.Greater(t, c.bytes, int64(200<<10), "an unverified target is read whole and checked")
		}
	}
}

// After a switch the new entry is NEW: it has not booted, and the reason
// for "what ran last" says so instead of calling it invalid.
func TestRunningReasonAfterSwitchSaysNewNotInvalid(t *testing.T) {
	m := demo(t)
	st, _, err := SwitchBootSlot(ctxT(t), m, 0x8000, "ota_1", ChangeOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	require.Equal(t, "ota_0", st.Running)
	require.Contains(t, st.RunningWhy, "copy 1 is new and first boots at the next reset")
	require.NotContains(t, st.RunningWhy, "invalid")
}
