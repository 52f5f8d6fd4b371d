package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	fx "github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

func startSerialSim(t *testing.T, cfg romsim.Config) (string, *romsim.ROM) {
	t.Helper()
	path, rom, stop, err := romsim.StartPTY(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(stop)
	return path, rom
}

func writeTemp(t *testing.T, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}

func TestSerialInfoJSON(t *testing.T) {
	path, _ := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32S3})
	r := runCLI(t, nil, "serial", "info", "--port", path, "--json", "--after", "no-reset")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	require.Equal(t, "ESP32-S3", res["chip"])
	require.Equal(t, "f4:12:fa:43:21:10", res["mac"])
	require.Equal(t, float64(8<<20), res["flash_size"])
	require.Equal(t, float64(460800), res["baud"])
	// A pty has no DTR/RTS: that is said as a warning, not a failure.
	var warned bool
	for _, l := range jsonLines(t, r.stdout) {
		if l["event"] == "warning" {
			warned = true
		}
	}
	require.True(t, warned)
}

func TestSerialInfoHumanOverSocket(t *testing.T) {
	addr, _, stop, err := romsim.StartTCP(context.Background(), romsim.Config{Chip: firmware.ChipESP8266}, "")
	require.NoError(t, err)
	defer stop()
	r := runCLI(t, nil, "chip_id", "--port", "socket://"+addr, "--before", "no-reset")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Chip:        ESP8266")
	require.Contains(t, r.stdout, "MAC:         18:fe:34:a1:b2:c3")
	require.Contains(t, r.stdout, "Crystal:     26 MHz")
}

func TestSerialWriteReadErase(t *testing.T) {
	path, rom := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32C3})
	a := bytes.Repeat([]byte("espdeck-"), 1000)
	b := make([]byte, 5000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	fa, fb := writeTemp(t, "a.bin", a), writeTemp(t, "b.bin", b)
	r := runCLI(t, nil, "write_flash", "0x9000", fa, "--port", path, "0x20000", fb, "--json", "--before", "no-reset", "--after", "no-reset")
	require.Equal(t, exitOK, r.code, r.stdout)
	res := lastResult(t, r.stdout)
	regions := res["regions"].([]any)
	require.Len(t, regions, 2)
	require.Equal(t, fmt.Sprintf("%x", md5.Sum(b)), regions[1].(map[string]any)["md5"])
	flash := rom.Flash()
	require.Equal(t, a, flash[0x9000:0x9000+len(a)])
	require.Equal(t, b, flash[0x20000:0x20000+len(b)])
	var sawProgress bool
	for _, l := range jsonLines(t, r.stdout) {
		if l["event"] == "progress" && l["stage"] == "write 0x20000" {
			sawProgress = true
		}
	}
	require.True(t, sawProgress, "progress per region")

	out := filepath.Join(t.TempDir(), "back.bin")
	r = runCLI(t, nil, "serial", "read", "0x20000", "5000", "-o", out, "--port", path, "--before", "no-reset", "--after", "no-reset")
	require.Equal(t, exitOK, r.code, r.stderr)
	back, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, b, back)

	r = runCLI(t, nil, "serial", "erase", "0x9000", "0x2000", "--port", path, "--before", "no-reset")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 0x2000), rom.Flash()[0x9000:0xB000])
	// Without modem lines the after-reset asks the ROM to run the app. The
	// ROM acts on that last command after the CLI has sent it (and may have
	// exited): wait for it.
	require.Eventually(t, func() bool { return !rom.InDownloadMode() }, 20*time.Second, 20*time.Millisecond,
		"the board was sent back to its app")
}

func TestSerialRefusals(t *testing.T) {
	path, _ := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32})
	big := writeTemp(t, "big.bin", make([]byte, 0x3000))
	r := runCLI(t, nil, "serial", "write", "0x3FF000", big, "--port", path, "--json", "--before", "no-reset", "--after", "no-reset")
	require.Equal(t, exitRefused, r.code, r.stdout)
	res := lastResult(t, r.stdout)
	require.Equal(t, "too_big", res["error"])
	require.Contains(t, res["message"], "0x3ff000 to its end")

	r = runCLI(t, nil, "serial", "info", "--chip", "esp32c3", "--port", path, "--json", "--before", "no-reset", "--after", "no-reset")
	require.Equal(t, exitRefused, r.code, r.stdout)
	require.Equal(t, "wrong_chip", lastResult(t, r.stdout)["error"])

	img, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", "images", "helloworld-esp32c3.bin"))
	if err != nil {
		fx.Missing(t, "fixtures not present (%v): image chip refusal not exercised", err)
	}
	f := writeTemp(t, "c3.bin", img)
	r = runCLI(t, nil, "serial", "write", "0x10000", f, "--port", path, "--json", "--before", "no-reset", "--after", "no-reset")
	require.Equal(t, exitRefused, r.code, r.stdout)
	res = lastResult(t, r.stdout)
	require.Contains(t, res["message"], "ESP32-C3")
	require.Contains(t, res["message"], "ESP32")
}

func TestSerialUsageAndPortErrors(t *testing.T) {
	r := runCLI(t, nil, "serial", "write", "0x1000")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "serial", "frobnicate")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "serial", "info", "--port", "/dev/nonexistent-espdeck", "--json")
	require.Equal(t, exitUnreachable, r.code)
	require.Equal(t, "port_not_found", lastResult(t, r.stdout)["error"])
}

func TestSerialNoSyncExitCode(t *testing.T) {
	path, _ := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32, Faults: romsim.Faults{NeverSync: true}})
	r := runCLI(t, nil, "serial", "info", "--port", path, "--json", "--before", "no-reset")
	require.Equal(t, exitUnreachable, r.code)
	res := lastResult(t, r.stdout)
	require.Equal(t, "no_sync", res["error"])
	require.NotEmpty(t, res["hint"])
}

func TestSerialEraseFlashAlias(t *testing.T) {
	path, rom := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32S3, FlashImage: bytes.Repeat([]byte{0x42}, 0x3000)})
	// Without a terminal and without --yes the whole flash is not erased.
	r := runCLI(t, nil, "erase_flash", "--port", path, "--before", "no-reset", "--json")
	require.Equal(t, exitRefused, r.code, r.stdout)
	require.Equal(t, "not_confirmed", lastResult(t, r.stdout)["error"])
	require.Equal(t, byte(0x42), rom.Flash()[0x1000], "nothing was erased")

	r = runCLI(t, nil, "erase_flash", "--port", path, "--before", "no-reset", "--json", "--yes")
	require.Equal(t, exitOK, r.code, r.stdout)
	flash := rom.Flash()
	require.Equal(t, bytes.Repeat([]byte{0xFF}, len(flash)), flash)

	// Secure boot on: erasing is refused without --force.
	path, _ = startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32S3, Security: romsim.Security{SecureBoot: true}})
	r = runCLI(t, nil, "serial", "erase", "0x0", "0x1000", "--port", path, "--before", "no-reset", "--json")
	require.Equal(t, exitRefused, r.code, r.stdout)
}

func TestSerialWriteWarnsOnSecuredChip(t *testing.T) {
	path, _ := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32S3, Security: romsim.Security{SecureBoot: true, FlashEncryption: true}})
	data := writeTemp(t, "nvs.bin", bytes.Repeat([]byte{0x5a}, 4096))
	r := runCLI(t, nil, "serial", "write", "0x9000", data, "--port", path, "--json", "--after", "no-reset")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	var warnings []string
	for _, l := range jsonLines(t, r.stdout) {
		if l["event"] == "warning" {
			warnings = append(warnings, fmt.Sprint(l["message"]))
		}
	}
	require.Contains(t, fmt.Sprint(warnings), "flash encryption is on")
	require.Contains(t, fmt.Sprint(warnings), "secure boot is on")
}
