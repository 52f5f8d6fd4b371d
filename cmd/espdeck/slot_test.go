package main

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
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// simBoard starts a simulated ESP32 ROM on a pty, preloaded with the demo
// layout: bootloader, table, otadata (ota_0 selected) and three app slots
// holding different versions.
func simBoard(t *testing.T, apps ...ops.DemoApp) (string, *romsim.ROM) {
	t.Helper()
	flash, err := ops.DemoFlash(firmware.ChipESP32, apps...)
	require.NoError(t, err)
	path, rom, stop, err := romsim.StartPTY(context.Background(), romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
	require.NoError(t, err)
	t.Cleanup(stop)
	return path, rom
}

// appSlotBytes returns the bytes of every app partition in the simulator's flash.
func appSlotBytes(t *testing.T, rom *romsim.ROM) map[string][]byte {
	t.Helper()
	tab, err := firmware.ParsePartitionCSV([]byte(ops.DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	flash := rom.Flash()
	out := map[string][]byte{}
	for _, p := range tab.Partitions {
		if p.IsApp() {
			out[p.Name] = bytes.Clone(flash[p.Offset:p.End()])
		}
	}
	return out
}

func TestRollbackEndToEnd(t *testing.T) {
	port, rom := simBoard(t)
	before := appSlotBytes(t, rom)
	fast := []string{"--port", port, "--baud", "115200", "--no-reset"}

	// show: ota_0 boots next.
	r := runCLI(t, nil, append([]string{"partitions", "show", "--json"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	require.Equal(t, "ota_0", res["boots_next"])
	parts := res["partitions"].([]any)
	require.Len(t, parts, 6)
	ota1 := parts[5].(map[string]any)
	require.Equal(t, "ota_1", ota1["name"])
	require.Equal(t, "2.1.0", ota1["app"].(map[string]any)["version"])
	require.Equal(t, true, ota1["app"].(map[string]any)["valid"])

	// Human output marks the slot that boots next.
	r = runCLI(t, nil, append([]string{"partitions", "show"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Boots next: ota_0")
	require.Contains(t, r.stdout, "▶")

	// switch without a terminal and without --yes: refused, nothing written.
	r = runCLI(t, nil, append([]string{"slot", "switch", "--to", "ota_1"}, fast...)...)
	require.Equal(t, exitRefused, r.code, r.stderr)
	require.Contains(t, r.stderr, "Afterwards the board boots ota_1")
	require.Contains(t, r.stderr, "pass --yes")
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 32), rom.Flash()[0xE000:0xE020])

	// switch --yes: ota_1 boots next, read back from the board.
	r = runCLI(t, nil, append([]string{"slot", "switch", "--to", "ota_1", "--yes", "--json"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	res = lastResult(t, r.stdout)
	require.Equal(t, "ota_1", res["boots_next"])
	require.Contains(t, res["written"], "copy 1 at 0xe000: seq 2")

	r = runCLI(t, nil, append([]string{"partitions", "show", "--json"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "ota_1", lastResult(t, r.stdout)["boots_next"])

	// erase-otadata: factory boots.
	r = runCLI(t, nil, append([]string{"slot", "erase-otadata", "--yes", "--json"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "factory", lastResult(t, r.stdout)["boots_next"])
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 0x2000), rom.Flash()[0xD000:0xF000])

	// backup a slot: the file holds the partition's bytes.
	out := filepath.Join(t.TempDir(), "ota_1.bin")
	r = runCLI(t, nil, append([]string{"slot", "backup", "--slot", "ota_1", "-o", out, "--json"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, before["ota_1"], got)

	// -o - streams the slot to stdout (for a pipe into another tool).
	r = runCLI(t, nil, append([]string{"slot", "backup", "--slot", "ota_1", "-o", "-"}, fast...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, before["ota_1"], []byte(r.stdout))

	require.Equal(t, before, appSlotBytes(t, rom), "app slots are never written")
}

func TestSwitchRefusesInvalidSlotOnBoard(t *testing.T) {
	port, rom := simBoard(t)
	flash := rom.Flash()
	corrupt := bytes.Clone(flash[0x210000 : 0x210000+0x400])
	corrupt[0x300] ^= 0xFF
	require.NoError(t, rom.LoadFlash(0x210000, corrupt))
	before := appSlotBytes(t, rom)

	r := runCLI(t, nil, "slot", "switch", "--port", port, "--baud", "115200", "--no-reset", "--to", "ota_1", "--yes", "--json")
	require.Equal(t, exitRefused, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, "invalid_slot_image", res["error"])
	require.Contains(t, res["message"], "SHA-256")
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 32), rom.Flash()[0xE000:0xE020], "nothing written")
	require.Equal(t, before, appSlotBytes(t, rom))

	// Marking: the running entry (ota_0, seq 1) becomes invalid.
	r = runCLI(t, nil, "slot", "mark", "--port", port, "--baud", "115200", "--no-reset", "--invalid", "--yes", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res = lastResult(t, r.stdout)
	require.Equal(t, "factory", res["boots_next"])
	e, _ := firmware.DecodeOTAEntry(rom.Flash()[0xD000:])
	require.Equal(t, firmware.NewOTAEntry(1, firmware.OTAStateInvalid), e)
	require.Equal(t, before, appSlotBytes(t, rom))

	// The port and rate can come from the environment.
	env := map[string]string{"ESPDECK_PORT": port, "ESPDECK_BAUD": "115200"}
	r = runCLI(t, env, "partitions", "show", "--no-reset", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res = lastResult(t, r.stdout)
	require.Equal(t, "factory", res["boots_next"])
	ota0 := res["partitions"].([]any)[4].(map[string]any)
	require.Equal(t, "invalid", ota0["ota_state"])

	r = runCLI(t, env, "slot", "backup", "--no-reset", "--slot", "nope", "-o", t.TempDir()+"/x.bin", "--json")
	require.Equal(t, exitUsage, r.code, r.stderr)
	require.Equal(t, "unknown_partition", lastResult(t, r.stdout)["error"])
	r = runCLI(t, map[string]string{"ESPDECK_PORT": port, "ESPDECK_BAUD": "fast"}, "partitions", "show")
	require.Equal(t, exitUsage, r.code)

	// Last: the default is to start the app again afterwards.
	r = runCLI(t, env, "partitions", "show", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	// The ROM acts on the last command after it was sent: wait for it.
	require.Eventually(t, func() bool { return !rom.InDownloadMode() }, 20*time.Second, 20*time.Millisecond,
		"the board was sent back to its app")
}
