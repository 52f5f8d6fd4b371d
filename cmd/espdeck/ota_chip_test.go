package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota/otasim"
)

// OTA cannot ask a board which chip it has; --chip says it, and an image
// for another chip is then refused before the device is even invited.
func TestOTAUploadChipFlagRefusesOtherChip(t *testing.T) {
	dev := otaSim(t, otasim.Config{})
	file, _ := otaImage(t, 20_000) // an ESP32 app

	r := runCLI(t, nil, "ota", "upload", "--host", dev.Addr().String(), "--file", file, "--chip", "esp32s3", "--json")
	require.Equal(t, exitRefused, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, "wrong_chip", res["error"])
	require.Contains(t, res["message"], "ESP32-S3")
	require.Zero(t, dev.Stats().Invitations, "nothing may be sent to the device")

	r = runCLI(t, nil, "ota", "upload", "--host", dev.Addr().String(), "--file", file, "--chip", "esp33")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "unknown chip")

	r = runCLI(t, nil, "ota", "upload", "--host", dev.Addr().String(), "--file", file, "--chip", "esp32")
	require.Equal(t, exitOK, r.code, r.stderr)
}
