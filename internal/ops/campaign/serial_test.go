package campaign

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// serialBoard starts a simulated ROM loader on a pty, its flash preloaded
// with a table, otadata and apps when flash is not nil.
func serialBoard(t *testing.T, chip firmware.Chip, flash []byte) (Board, *romsim.ROM) {
	t.Helper()
	path, rom, stop, err := romsim.StartPTY(context.Background(), romsim.Config{Chip: chip, FlashImage: flash})
	require.NoError(t, err)
	t.Cleanup(stop)
	return Board{ID: "serial/" + path, Name: path, Protocol: "serial", Address: path}, rom
}

func serialFlasher() Serial {
	return Serial{Options: serialflash.Options{Before: serialflash.ResetNone, ConnectAttempts: 3, SyncTries: 3,
		SyncTimeout: 300 * time.Millisecond, CommandTimeout: 5 * time.Second, BootLogWait: 50 * time.Millisecond}}
}

func runSerial(t *testing.T, boards []Board, img Image, data []byte) (*File, *harness) {
	t.Helper()
	fl := &fleet{roster: NewRoster(), boards: boards}
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	h.runner.Flashers["serial"] = serialFlasher()
	s := settings(30 * time.Second)
	s.Threshold = Threshold{Count: 5}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	return run(t, h, plan), h
}

func TestSerialBoardsGetTheFreeSlotAndAreReadBack(t *testing.T) {
	flash, err := ops.DemoFlash(firmware.ChipESP32) // ota_0 runs and boots next; ota_1 is free
	require.NoError(t, err)
	a, romA := serialBoard(t, firmware.ChipESP32, flash)
	b, romB := serialBoard(t, firmware.ChipESP32, flash)
	img, data := image(t, firmware.ChipESP32, "3.0.0")
	got, h := runSerial(t, []Board{a, b}, img, data)

	require.Equal(t, OutcomeOK, got.Outcome())
	for _, rom := range []*romsim.ROM{romA, romB} {
		after := rom.Flash()
		require.Equal(t, data, after[0x210000:0x210000+len(data)], "the image went into ota_1, the slot that neither runs nor boots next")
		require.Equal(t, flash[0x110000:0x210000], after[0x110000:0x210000], "the running app (ota_0) is untouched")
		require.Equal(t, flash[0x10000:0x110000], after[0x10000:0x110000], "the factory app is untouched")
	}
	for _, r := range got.Rows {
		require.Equal(t, Uploaded, r.State, "%s: %s %s", r.Board.Name, r.Code, r.Message)
		require.Equal(t, ConfirmBootSlot, r.Confirmation)
		require.Equal(t, "3.0.0", r.Running)
		require.Contains(t, r.Message, "ota_1 boots next")
		require.Equal(t, "serial", r.Protocol)
	}
	recs := h.records(t)
	require.Len(t, recs, 2)
	for _, rec := range recs {
		require.Equal(t, "serial", rec.Protocol)
		require.Equal(t, "ok", rec.Result)
		require.Equal(t, ConfirmBootSlot, rec.Confirmation)
	}
}

func TestSerialBoardWithAnotherChipGetsNothing(t *testing.T) {
	flash, err := ops.DemoFlash(firmware.ChipESP32S3)
	require.NoError(t, err)
	b, rom := serialBoard(t, firmware.ChipESP32S3, flash)
	img, data := image(t, firmware.ChipESP32, "3.0.0") // the only image: the plan cannot know the board's chip
	got, _ := runSerial(t, []Board{b}, img, data)

	row := got.Rows[0]
	require.Equal(t, Failed, row.State)
	require.Equal(t, "refused", row.Code, row.Message)
	require.NotEmpty(t, row.Hint)
	require.True(t, bytes.Equal(flash, rom.Flash()[:len(flash)]), "nothing was written")
}

func TestSerialBoardBootingItsFactoryAppGetsOTA0(t *testing.T) {
	// Erased otadata: the bootloader starts the factory app, so ota_0
	// neither runs nor boots next; it takes the image and is selected.
	flash, err := ops.DemoFlash(firmware.ChipESP32)
	require.NoError(t, err)
	b, rom := serialBoard(t, firmware.ChipESP32, flash)
	require.NoError(t, rom.LoadFlash(0xd000, bytes.Repeat([]byte{0xFF}, 0x2000)))
	img, data := image(t, firmware.ChipESP32, "3.0.0")
	got, _ := runSerial(t, []Board{b}, img, data)

	row := got.Rows[0]
	require.Equal(t, Uploaded, row.State, row.Message)
	require.Contains(t, row.Message, "ota_0 boots next and holds 3.0.0")
	require.Equal(t, data, rom.Flash()[0x110000:0x110000+len(data)])
	require.Equal(t, flash[0x10000:0x110000], rom.Flash()[0x10000:0x110000], "the factory app is untouched")
}

func TestSerialBoardWhoseSlotsCannotBeReadIsRefused(t *testing.T) {
	// The ESP8266 ROM cannot read flash: the table and otadata cannot be
	// read, so no slot can be chosen safely, and nothing is written.
	b, rom := serialBoard(t, firmware.ChipESP8266, nil)
	before := rom.Flash()
	img, data := image(t, firmware.ChipESP32, "3.0.0")
	got, _ := runSerial(t, []Board{b}, img, data)

	row := got.Rows[0]
	require.Equal(t, Failed, row.State)
	require.Equal(t, ops.CodeNoFreeSlot, row.Code, row.Message)
	require.Contains(t, row.Hint, "serial write ADDR FILE")
	require.Equal(t, before, rom.Flash(), "nothing was written")
}

// A serial board counts as uploaded only when what was read back says the
// written slot boots next with the image's version: any other read-back
// (nothing selected, another slot, another version, an empty slot
// selected) is not_selected and names what boots instead.
func TestBootSlotCountsOnlyTheWrittenSlotWithTheImagesVersion(t *testing.T) {
	img := Image{Version: "2.0.0"}
	state := func(next string, app *ops.SlotImage) *ops.PartitionState {
		return &ops.PartitionState{BootsNext: next, Rows: []ops.PartitionRow{
			{Name: "ota_0", App: &ops.SlotImage{Valid: true, Version: "1.0.0"}},
			{Name: "ota_1", App: app},
		}}
	}
	v2 := &ops.SlotImage{Valid: true, Version: "2.0.0"}

	res, err := BootSlot(img, "ota_1", state("ota_1", v2), "/dev/ttyUSB0")
	require.NoError(t, err)
	require.Equal(t, ConfirmBootSlot, res.Confirmation)
	require.Equal(t, "2.0.0", res.Running)
	require.Contains(t, res.Note, "ota_1 boots next")

	for name, tc := range map[string]struct {
		st   *ops.PartitionState
		want string
	}{
		"nothing boots next": {state("", v2), "selects no app"},
		"an empty slot":      {state("ota_1", nil), "selects no app"},
		"another slot":       {state("ota_0", v2), "ota_0 boots next"},
		"another version":    {state("ota_1", &ops.SlotImage{Valid: true, Version: "1.9.9"}), `holds "1.9.9"`},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := BootSlot(img, "ota_1", tc.st, "/dev/ttyUSB0")
			var fe *FlashError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, "not_selected", fe.Code())
			require.Contains(t, fe.Error(), tc.want)
			require.NotEmpty(t, fe.Hint())
			require.Empty(t, res.Confirmation)
		})
	}
}
