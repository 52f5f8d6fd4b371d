package tuibackend

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/tui"
)

// TestFlashESPHomeBoard: the TUI's flash job reaches an encrypted,
// password-less ESPHome board and its notes name protocol and encryption.
func TestFlashESPHomeBoard(t *testing.T) {
	d, err := esphomesim.New(esphomesim.Config{APIKey: esphomesim.DemoAPIKey, RequireEncryption: true})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })

	img := ops.DemoAppImage(firmware.ChipESP32, "tui-esphome", "2.0.0", 64<<10)
	file := filepath.Join(t.TempDir(), "fw.bin")
	require.NoError(t, os.WriteFile(file, img, 0o644))
	b := New(Config{APIKey: func(tui.Device) (string, bool) { return esphomesim.DemoAPIKey, true }})
	dev := tui.Device{ID: "esphome/kitchen", Kind: tui.KindESPHome, Address: d.Addr().String(), TXT: map[string]string{"platform": "ESP32"}}
	var mu sync.Mutex
	var notes []string
	res := flasher{b}.Flash(context.Background(), tui.FlashRequest{Device: dev, File: file}, func(p tui.Progress) {
		mu.Lock()
		notes = append(notes, p.Note)
		mu.Unlock()
	})
	require.True(t, res.OK(), res.Error)
	require.Equal(t, "2.0.0", res.Version)
	require.Contains(t, notes, "ESPHome v2 · no password · encrypted")
	recs, err := d.WaitRecords(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, img, recs[0].Image)

	// Without the key the job fails with the reason and the next step; it
	// is not a password problem, so the UI does not ask for a password.
	b2 := New(Config{})
	res = flasher{b2}.Flash(context.Background(), tui.FlashRequest{Device: dev, File: file}, func(tui.Progress) {})
	require.False(t, res.OK())
	require.False(t, res.AuthFailed)
	require.Contains(t, res.Hint, "API key")
}

// TestFlashESPHomeS3Board: ESPHome's TXT says platform ESP32 for an
// ESP32-S3 board; an S3 image must not be refused as "built for another chip".
func TestFlashESPHomeS3Board(t *testing.T) {
	d, err := esphomesim.New(esphomesim.Config{})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	img := ops.DemoAppImage(firmware.ChipESP32S3, "s3", "1.0.0", 32<<10)
	file := filepath.Join(t.TempDir(), "fw.bin")
	require.NoError(t, os.WriteFile(file, img, 0o644))
	dev := tui.Device{ID: "esphome/desk", Kind: tui.KindESPHome, Address: d.Addr().String(), Chip: "ESP32",
		Board: "esp32-s3-devkitc-1", TXT: map[string]string{"platform": "ESP32"}}
	res := flasher{New(Config{})}.Flash(context.Background(), tui.FlashRequest{Device: dev, File: file}, func(tui.Progress) {})
	require.True(t, res.OK(), res.Error)

	// And an ESP8266 image for that board is refused before sending.
	img8266 := ops.DemoAppImage(firmware.ChipESP8266, "8266", "1.0.0", 32<<10)
	require.NoError(t, os.WriteFile(file, img8266, 0o644))
	res = flasher{New(Config{})}.Flash(context.Background(), tui.FlashRequest{Device: dev, File: file}, func(tui.Progress) {})
	require.False(t, res.OK())
	require.Contains(t, res.Error, "ESP32-S3", "refused for the chip")
	recs, err := d.WaitRecords(context.Background(), 1)
	require.NoError(t, err)
	require.Len(t, recs, 1, "the refused image never reached the device")
}
