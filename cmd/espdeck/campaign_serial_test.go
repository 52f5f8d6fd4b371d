package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

func TestCampaignOverSerialPorts(t *testing.T) {
	flash, err := ops.DemoFlash(firmware.ChipESP32)
	require.NoError(t, err)
	pathA, romA := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
	pathB, romB := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
	img := campaignImage(t, "2.5.0")
	data, err := os.ReadFile(img)
	require.NoError(t, err)
	dir := t.TempDir()
	state, auditLog := filepath.Join(dir, "c.json"), filepath.Join(dir, "audit.jsonl")

	r := runCLI(t, nil, "campaign", "run", "--image", img, "--port", pathA, "--port", pathB, "--confirm", "0s",
		"--state", state, "--audit", auditLog, "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	res := lastResult(t, r.stdout)
	require.EqualValues(t, 2, res["summary"].(map[string]any)["uploaded"])
	for _, rom := range []*romsim.ROM{romA, romB} {
		require.Equal(t, data, rom.Flash()[0x210000:0x210000+len(data)], "ota_1, the free slot")
	}
	confirmations := 0
	for _, ev := range jsonLines(t, r.stdout) {
		if ev["event"] == "board" && ev["state"] == "uploaded" {
			require.Equal(t, "boot-slot", ev["confirmation"])
			require.Equal(t, "2.5.0", ev["running"])
			confirmations++
		}
	}
	require.Equal(t, 2, confirmations)
	recs := auditRecords(t, auditLog)
	require.Len(t, recs, 2)
	require.Equal(t, "serial", recs[0].Protocol)
}
