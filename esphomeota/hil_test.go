//go:build hil

package esphomeota

import (
	"context"
	"os"
	"strconv"
	"testing"
)

// TestESPHomeHIL uploads to a real ESPHome board. Opt-in only:
// ESPDECK_ESPHOME_HOST (host[:port]), ESPDECK_ESPHOME_IMAGE (the build's
// firmware.bin), and the board's ESPDECK_ESPHOME_PASSWORD and
// ESPDECK_ESPHOME_KEY when it has them.
func TestESPHomeHIL(t *testing.T) {
	host := os.Getenv("ESPDECK_ESPHOME_HOST")
	path := os.Getenv("ESPDECK_ESPHOME_IMAGE")
	if host == "" || path == "" {
		t.Skip("set ESPDECK_ESPHOME_HOST and ESPDECK_ESPHOME_IMAGE")
	}
	image, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Host: host}
	if p := os.Getenv("ESPDECK_ESPHOME_PORT"); p != "" {
		target.Port, _ = strconv.Atoi(p)
	}
	res, err := Upload(context.Background(), target, image, Options{
		Password: Secret(os.Getenv("ESPDECK_ESPHOME_PASSWORD")),
		APIKey:   Secret(os.Getenv("ESPDECK_ESPHOME_KEY")),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("v%d auth=%s encrypted=%v gzip=%v: %d bytes in %s (%s transfer), %d attempts",
		res.Version, res.AuthScheme, res.Encrypted, res.Gzip, res.Bytes, res.Duration, res.Transfer, res.Attempts)
}
