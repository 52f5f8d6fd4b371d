package demo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/internal/ops"
)

// The demo's OTA boards take an image at a Wi-Fi board's pace (60–120
// KiB/s), the slow one slower, so a visitor sees an upload progress.
func TestOTABoardsHaveRealisticRates(t *testing.T) {
	sims := map[string]otasim.Config{}
	for _, c := range otasim.Demo() {
		sims[c.Name] = c
	}
	var slowest, fastest int
	for _, b := range otaBoards {
		rate := b.rate
		if rate == 0 {
			rate = sims[b.sim].Faults.ReadRate
		}
		require.Positive(t, rate, "%s is not throttled: a 900 KiB upload would take a tenth of a second", b.name)
		if b.name == "weather-station" {
			slowest = rate
			continue
		}
		require.GreaterOrEqual(t, rate, 60<<10, b.name)
		require.LessOrEqual(t, rate, 120<<10, b.name)
		fastest = max(fastest, rate)
	}
	require.Less(t, slowest, 60<<10, "the slow board is slower than the others")
	require.Positive(t, fastest)
}

// The serial board starts with an update waiting to be tried: ota_1 boots
// next in state NEW, ota_0 holds the known-good image to roll back to.
func TestSerialBoardHasAPendingUpdate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, err := Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer f.Close()
	st, err := ops.ReadPartitionState(ctx, ops.FileFlash(f.ROM.Flash()), 0, ops.ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "ota_1", st.BootsNext)
	row, ok := st.Row("ota_1")
	require.True(t, ok)
	require.Equal(t, "v2.7.0", row.App.Version)
	require.Equal(t, "new", row.OTAState, "an update that has not been tried yet")
	good, _ := st.Row("ota_0")
	require.Equal(t, "v2.6.3", good.App.Version)
}
