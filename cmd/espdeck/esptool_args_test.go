package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// arduinoFiles writes what arduino-esp32's upload line names: bootloader,
// partition table, boot_app0 (an otadata image) and the sketch.
func arduinoFiles(t *testing.T) (boot, parts, app0, app string) {
	b := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32, Entry: 0x40080400, FlashMode: firmware.FlashQIO,
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x40080400, Data: bytes.Repeat([]byte{0x11}, 4096)}}})
	a := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32, AppDesc: &firmware.AppDesc{Version: "1.0"}})
	tbl, err := os.ReadFile(fixture(t, "images/partitions_singleapp.bin"))
	require.NoError(t, err)
	return writeTemp(t, "sketch.ino.bootloader.bin", b), writeTemp(t, "sketch.ino.partitions.bin", tbl),
		writeTemp(t, "boot_app0.bin", bytes.Repeat([]byte{0xFF}, 0x2000)), writeTemp(t, "sketch.ino.bin", a)
}

func TestEsptoolTranslation(t *testing.T) {
	boot, parts, app0, app := arduinoFiles(t)
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("arduino-esp32 upload line", func(t *testing.T) {
		l, err := translateEsptool(strings.Fields("--chip esp32 --port /dev/ttyUSB0 --baud 921600 --before default_reset --after hard_reset write_flash -z --flash_mode dio --flash_freq 80m --flash_size 4MB 0x1000 "+boot+" 0x8000 "+parts+" 0xe000 "+app0+" 0x10000 "+app), env(nil))
		require.NoError(t, err)
		t.Cleanup(l.removeTemp)
		require.Len(t, l.steps, 1)
		step := strings.Join(l.steps[0], " ")
		require.True(t, strings.HasPrefix(step, "serial write 0x1000 "), step)
		require.Contains(t, step, "--chip esp32 --port /dev/ttyUSB0 --baud 921600 --before default --after hard-reset")
		require.Contains(t, step, "0x8000 "+parts+" 0xe000 "+app0+" 0x10000 "+app)
		require.NotContains(t, step, "-z")
		require.Len(t, l.temp, 1, "the bootloader is patched on a copy")
		require.NotContains(t, step, " "+boot+" ")
		patched, err := os.ReadFile(l.temp[0])
		require.NoError(t, err)
		require.Equal(t, byte(firmware.FlashDIO), patched[2], "--flash_mode dio")
		require.Equal(t, byte(0x2F), patched[3], "--flash_size 4MB, --flash_freq 80m")
		im, err := firmware.ParseImage(patched)
		require.NoError(t, err)
		require.True(t, im.ChecksumValid())
	})
	t.Run("v5 spellings, options after the verb", func(t *testing.T) {
		l, err := translateEsptool(strings.Fields("write-flash --flash-mode keep --flash-size keep -u 0x10000 "+app+" -p /dev/ttyACM0 --after no-reset-stay --before no-reset-no-sync"), env(nil))
		require.NoError(t, err)
		step := strings.Join(l.steps[0], " ")
		require.Equal(t, "serial write 0x10000 "+app+" --no-compress --port /dev/ttyACM0 --after no-reset --before no-reset", step)
		require.Empty(t, l.temp, "keep leaves the header alone")
		require.NotEmpty(t, l.notes, "no-reset-no-sync is taken differently and said")
	})
	t.Run("verify compares with the bootloader as the write patched it", func(t *testing.T) {
		// esptool's verify_flash applies --flash_mode/--flash_freq/--flash_size
		// to the bootloader before comparing, as write_flash does.
		l, err := translateEsptool(strings.Fields("--chip esp32 verify_flash --flash_mode dio --flash_freq 80m --flash_size 4MB 0x1000 "+boot+" 0x10000 "+app), env(nil))
		require.NoError(t, err)
		t.Cleanup(l.removeTemp)
		require.Len(t, l.temp, 1)
		require.Equal(t, "serial verify 0x1000 "+l.temp[0]+" 0x10000 "+app+" --chip esp32", strings.Join(l.steps[0], " "))
		patched, err := os.ReadFile(l.temp[0])
		require.NoError(t, err)
		require.Equal(t, byte(firmware.FlashDIO), patched[2])
		require.Equal(t, byte(0x2F), patched[3])
	})
	t.Run("ESP8266 core line", func(t *testing.T) {
		l, err := translateEsptool(strings.Fields("--chip esp8266 --port /dev/ttyUSB0 --baud 115200 --before default_reset --after hard_reset write_flash 0x0 "+app), env(nil))
		require.NoError(t, err)
		require.Equal(t, "serial write 0x0 "+app+" --chip esp8266 --port /dev/ttyUSB0 --baud 115200 --before default --after hard-reset", strings.Join(l.steps[0], " "))
	})
	t.Run("erase-all before a write", func(t *testing.T) {
		l, err := translateEsptool(strings.Fields("write_flash --erase-all 0x10000 "+app+" --port P"), env(nil))
		require.NoError(t, err)
		require.Len(t, l.steps, 2)
		require.Equal(t, "serial erase --all --yes --after no-reset --port P", strings.Join(l.steps[0], " "))
	})
	t.Run("verbs", func(t *testing.T) {
		for verb, want := range map[string]string{"read-mac": "serial info", "chip_id": "serial info", "flash-id": "serial info",
			"read-flash-status": "serial info", "get-security-info": "serial info", "board-info": "serial info",
			"verify-flash": "serial verify", "erase_flash": "serial erase --all", "run": "serial reset"} {
			l, err := translateEsptool([]string{verb}, env(nil))
			require.NoError(t, err, verb)
			require.Equal(t, want, strings.Join(l.steps[0], " "), verb)
		}
		l, err := translateEsptool([]string{"image-info", app}, env(nil))
		require.NoError(t, err)
		require.Equal(t, []string{"image", "info", app}, l.steps[0])
	})
	t.Run("ESPTOOL_* when espdeck's own are unset", func(t *testing.T) {
		l, err := translateEsptool([]string{"chip_id"}, env(map[string]string{"ESPTOOL_PORT": "/dev/ttyUSB3", "ESPTOOL_BAUD": "230400", "ESPTOOL_CHIP": "esp32c3"}))
		require.NoError(t, err)
		step := strings.Join(l.steps[0], " ")
		require.Contains(t, step, "--port /dev/ttyUSB3")
		require.Contains(t, step, "--baud 230400")
		require.Contains(t, step, "--chip esp32c3")
		l, err = translateEsptool([]string{"chip_id"}, env(map[string]string{"ESPTOOL_PORT": "/dev/ttyUSB3", "ESPDECK_PORT": "/dev/ttyUSB9"}))
		require.NoError(t, err)
		require.NotContains(t, strings.Join(l.steps[0], " "), "ttyUSB3", "ESPDECK_PORT wins")
	})
	t.Run("bad values name the accepted ones", func(t *testing.T) {
		_, err := translateEsptool(strings.Fields("--before sometimes chip_id"), env(nil))
		require.ErrorContains(t, err, "default_reset")
	})
}

// arduino-esp32's own upload line, unchanged, against the simulated ESP32.
func TestArduinoUploadLineAgainstTheROM(t *testing.T) {
	path, rom := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32})
	boot, parts, app0, app := arduinoFiles(t)
	r := runCLI(t, nil, strings.Fields("--chip esp32 --port "+path+" --baud 921600 --before default_reset --after hard_reset write_flash -z --flash_mode dio --flash_freq 80m --flash_size 4MB 0x1000 "+boot+" 0x8000 "+parts+" 0xe000 "+app0+" 0x10000 "+app)...)
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	flash := rom.Flash()
	a, _ := os.ReadFile(app)
	require.Equal(t, a, flash[0x10000:0x10000+len(a)])
	require.Equal(t, byte(firmware.FlashDIO), flash[0x1002], "the bootloader header carries --flash_mode dio")
	require.Equal(t, byte(0x2F), flash[0x1003])
	require.Contains(t, r.stderr, "-z", "what is taken differently is said")
}

// Every esptool spelling of a serial verb works after "serial" too, as
// write-flash and erase-region do.
func TestSerialTakesEsptoolVerifySpellings(t *testing.T) {
	for _, verb := range []string{"verify-flash", "verify_flash"} {
		r := runCLI(t, nil, "serial", verb)
		require.Equal(t, exitUsage, r.code, verb)
		require.Contains(t, r.stderr, "serial verify needs ADDR FILE pairs", verb)
		require.NotContains(t, r.stderr, "unknown verb", verb)
	}
}

func TestUnknownVerbsSuggest(t *testing.T) {
	r := runCLI(t, nil, "serial", "wirte")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, `did you mean "write"?`)
	require.NotContains(t, r.stderr, "Examples:", "not the whole usage")
	r = runCLI(t, nil, "read-macc")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, `Did you mean "read-mac"`)
	require.NotContains(t, r.stderr, "mean did you")
}
