package tuibackend_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
	"github.com/espdeck/espdeck/tui"
)

// Defect 2: with ota_0 running and ota_1 pending (switched, not yet
// rebooted), the TUI flashed the new app over ota_0 — the running,
// last-known-good app. Now the job is refused and no app slot changes.
func TestDefect2TUIDoesNotFlashOverTheRunningApp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	flash, err := ops.DemoFlash(firmware.ChipESP32)
	require.NoError(t, err)
	// ota_0 ran (seq 1 valid); ota_1 was switched to and has not booted (seq 2 new).
	copy(flash[0xD000:], firmware.NewOTAEntry(1, firmware.OTAStateValid).Encode())
	copy(flash[0xE000:], firmware.NewOTAEntry(2, firmware.OTAStateNew).Encode())
	path, rom, stop, err := romsim.StartPTY(ctx, romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
	require.NoError(t, err)
	defer stop()
	before := bytes.Clone(rom.Flash()[0x10000:0x310000])

	app := filepath.Join(t.TempDir(), "new.bin")
	require.NoError(t, os.WriteFile(app, ops.DemoAppImage(firmware.ChipESP32, "greenhouse", "9.9.9", 0x5000), 0o644))
	b := tuibackend.New(tuibackend.Config{Serial: serialflash.Options{Before: serialflash.ResetNone, Baud: 115200}}).TUI()
	res := b.Flasher.Flash(ctx, tui.FlashRequest{Device: tui.Device{ID: "usb", Kind: tui.KindSerial, Port: path}, Route: tui.RouteSerial, File: app},
		func(tui.Progress) {})
	require.False(t, res.OK(), "refused")
	require.Equal(t, ops.CodeNoFreeSlot, res.Code, res.Error)
	require.Contains(t, res.Error, "ota_0 runs")
	require.NotEmpty(t, res.Hint)
	require.Equal(t, before, rom.Flash()[0x10000:0x310000], "no app slot was written")
}
