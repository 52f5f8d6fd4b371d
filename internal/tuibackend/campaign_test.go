package tuibackend_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/internal/tuibackend/tuibackendtest"
	"github.com/espdeck/espdeck/tui"
)

// A TUI campaign on the demo fleet runs through the campaign engine: the
// ESP8266 board is skipped (no image for its chip), the first board is
// the canary, the firewalled board fails and stops the campaign at the
// default threshold, and a resume sends to that board only, again.
func TestDemoCampaign(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()
	backend := tuibackend.New(tuibackend.Config{
		Watcher:         discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		ConnectTimeout:  2 * time.Second,
		CampaignConfirm: -1,
		APIKey:          func(d tui.Device) (string, bool) { return fleet.APIKeyFor(d.ID) },
	})
	be := backend.TUI()
	devs := tuibackendtest.Devices(t, ctx, be.Devices, len(fleet.Devices))
	app := fleet.Files[0] // bench-fixture v2.8.0, ESP32
	var reqs []tui.FlashRequest
	for _, n := range []string{"kitchen-plug", "sensor-attic", "garage-door", "porch-light"} {
		reqs = append(reqs, tui.FlashRequest{Device: devs[n], File: app})
	}
	v := tuibackendtest.NewViews()
	require.NoError(t, be.Campaigns.StartCampaign(ctx, tui.CampaignRequest{Boards: reqs, Canary: 1}, v.Update))
	cv := v.Wait(t, ctx)
	rows := map[string]tui.CampaignRow{}
	for _, r := range cv.Rows {
		rows[r.Name] = r
	}
	require.True(t, rows["kitchen-plug"].Canary, "the first board that gets the image is the canary")
	require.Equal(t, "uploaded", rows["kitchen-plug"].State, rows["kitchen-plug"].Message)
	require.Equal(t, "not-checked", rows["kitchen-plug"].Confirmation)
	require.Equal(t, "v2.8.0", rows["kitchen-plug"].To)
	require.Equal(t, "skipped", rows["sensor-attic"].State)
	require.Equal(t, "no_image_for_chip", rows["sensor-attic"].Code)
	require.Equal(t, "failed", rows["garage-door"].State)
	require.NotEmpty(t, rows["garage-door"].Hint)
	require.Equal(t, "more than 0 failed", cv.Threshold)
	require.NotEmpty(t, cv.StopReason, "the failure stopped the campaign")
	require.Equal(t, 1, cv.Summary.Failed)
	// The simulator records a session just after its final OK: wait for it.
	recs, err := fleet.ESPHome("kitchen-plug").WaitRecords(ctx, 1)
	require.NoError(t, err)
	require.Len(t, recs, 1)

	before := len(fleet.Sessions("porch-light"))
	retry := cv.Retryable()
	require.GreaterOrEqual(t, retry, 1)
	v2 := tuibackendtest.NewViews()
	require.NoError(t, be.Campaigns.ResumeCampaign(ctx, cv.ID, nil, v2.Update))
	cv2 := v2.Wait(t, ctx)
	for _, r := range cv2.Rows {
		if r.Name == "garage-door" {
			require.Equal(t, 2, r.Attempts, "resumed: sent again")
		}
		if r.Name == "kitchen-plug" {
			require.Equal(t, 1, r.Attempts, "the canary that passed is not sent again")
		}
	}
	require.Len(t, fleet.ESPHome("kitchen-plug").Records(), 1)
	require.GreaterOrEqual(t, len(fleet.Sessions("porch-light")), before)

	// Resuming a campaign that is not of this run is refused with a reason.
	require.Error(t, be.Campaigns.ResumeCampaign(ctx, "nope", nil, v2.Update))
}
