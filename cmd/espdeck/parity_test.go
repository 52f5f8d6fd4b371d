package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
	"github.com/espdeck/espdeck/tui"
)

// The command line and the TUI backend, driven into the same failure,
// report the same code and the same hint: both classify through ops.
func TestCLIAndTUIReportTheSameFailure(t *testing.T) {
	file, _ := otaImage(t, 40_000)
	backend := tuibackend.New(tuibackend.Config{ConnectTimeout: 500 * time.Millisecond,
		Serial: serialflash.Options{Before: serialflash.ResetNone, Baud: 115200}}).TUI()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ota := []struct {
		name     string
		cfg      otasim.Config
		chip     string // --chip / the device's chip
		password string
		extra    []string
		code     string
	}{
		{name: "wrong password", cfg: otasim.Config{Password: "other"}, password: otaTestPassword, code: ops.CodeAuthFailed},
		{name: "no connect-back", cfg: otasim.Config{Faults: otasim.Faults{NeverConnect: true}}, extra: []string{"--timeout", "500ms"}, code: ops.CodeNoConnectBack},
		{name: "wrong chip", cfg: otasim.Config{}, chip: "esp32s3", code: ops.CodeWrongChip},
	}
	for _, tc := range ota {
		t.Run(tc.name, func(t *testing.T) {
			dev := otaSim(t, tc.cfg)
			args := []string{"ota", "upload", "--host", dev.Addr().String(), "--file", file, "--json"}
			env := map[string]string{}
			if tc.password != "" {
				env["OTA_PW"] = tc.password
				args = append(args, "--password-env", "OTA_PW")
			}
			if tc.chip != "" {
				args = append(args, "--chip", tc.chip)
			}
			r := runCLI(t, env, append(args, tc.extra...)...)
			res := lastResult(t, r.stdout)
			require.Equal(t, tc.code, res["error"], r.stdout)
			require.Equal(t, exitFor(tc.code), r.code)

			d := tui.Device{ID: "x", Kind: tui.KindArduinoOTA, Address: dev.Addr().String()}
			if tc.chip != "" {
				c, err := firmware.ParseChip(tc.chip)
				require.NoError(t, err)
				d.Chip = c.String()
			}
			got := backend.Flasher.Flash(ctx, tui.FlashRequest{Device: d, File: file, Password: tui.Secret(tc.password)}, func(tui.Progress) {})
			require.Equal(t, tc.code, got.Code, got.Error)
			require.Equal(t, sameHint(res["hint"]), sameHint(hintOrNil(got.Hint)), "the same hint")
		})
	}

	t.Run("slot write refused", func(t *testing.T) {
		// Defect 1's table: otadata of 0x1000 bytes right before ota_0.
		tab := &firmware.PartitionTable{Partitions: []firmware.Partition{
			{Name: "nvs", Type: firmware.TypeData, SubType: firmware.SubtypeDataNVS, Offset: 0x9000, Size: 0x6000},
			{Name: "factory", Type: firmware.TypeApp, SubType: firmware.SubtypeFactory, Offset: 0x10000, Size: 0xFF000},
			{Name: "otadata", Type: firmware.TypeData, SubType: firmware.SubtypeDataOTA, Offset: 0x10F000, Size: 0x1000},
			{Name: "ota_0", Type: firmware.TypeApp, SubType: 0x10, Offset: 0x110000, Size: 0x100000},
			{Name: "ota_1", Type: firmware.TypeApp, SubType: 0x11, Offset: 0x210000, Size: 0x100000},
		}}
		flash, err := ops.DemoFlash(firmware.ChipESP32)
		require.NoError(t, err)
		bin, err := tab.MarshalBinary()
		require.NoError(t, err)
		copy(flash[0x8000:], bin)
		copy(flash[0x10F000:], firmware.NewOTAEntry(1, firmware.OTAStateValid).Encode())
		copy(flash[0x210000:], ops.DemoAppImage(firmware.ChipESP32, "p", "3", 0x3000))
		path, rom, stop, err := romsim.StartPTY(ctx, romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
		require.NoError(t, err)
		defer stop()

		r := runCLI(t, nil, "slot", "switch", "--to", "ota_1", "--port", path, "--baud", "115200", "--no-reset", "--yes", "--json")
		res := lastResult(t, r.stdout)
		require.Equal(t, ops.CodeSlotWriteRefuse, res["error"], r.stdout)
		require.Equal(t, exitRefused, r.code)

		_, err = backend.Partitions.SwitchBoot(ctx, tui.Device{ID: "s", Kind: tui.KindSerial, Port: path}, "ota_1")
		require.Error(t, err)
		var coded ops.Coded
		require.True(t, errors.As(err, &coded))
		require.Equal(t, ops.CodeSlotWriteRefuse, coded.Code())
		require.Equal(t, res["hint"], coded.Hint())
		require.Equal(t, flash[0x10F000:0x111000], rom.Flash()[0x10F000:0x111000], "nothing written by either")
	})
}

// sameHint drops what differs between two runs (the random connect-back
// port) and the command line's line breaks after sentences.
func sameHint(h any) any {
	s, ok := h.(string)
	if !ok {
		return h
	}
	s = strings.ReplaceAll(s, ".\n", ". ")
	return regexp.MustCompile(`\b\d{4,5}\b`).ReplaceAllString(s, "PORT")
}

func hintOrNil(h string) any {
	if h == "" {
		return nil
	}
	return h
}

// The TUI asks the same question the command line asks before a slot
// change, for each action on the same board.
func TestCLIAndTUIAskTheSameQuestion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, _ := simBoard(t)
	actions := [][]string{{"switch", "--to", "ota_1"}, {"erase-otadata"}, {"mark", "--invalid", "--slot", "ota_0"}}
	var asked []string
	for _, args := range actions {
		// Not confirmed (no terminal, no --yes): nothing is written, the
		// question is in the confirm event, the board stays in download mode.
		r := runCLI(t, nil, append(append([]string{"slot"}, args...), "--port", path, "--baud", "115200", "--no-reset", "--json")...)
		require.Equal(t, exitRefused, r.code, r.stdout)
		q := ""
		for _, l := range jsonLines(t, r.stdout) {
			if l["stage"] == "confirm" {
				q, _ = l["question"].(string)
			}
		}
		asked = append(asked, q)
	}
	// The TUI backend reads the same board (and resets it into its app afterwards).
	backend := tuibackend.New(tuibackend.Config{Serial: serialflash.Options{Before: serialflash.ResetNone, Baud: 115200}}).TUI()
	st, err := backend.Partitions.ReadPartitions(ctx, tui.Device{ID: "s", Kind: tui.KindSerial, Port: path})
	require.NoError(t, err)
	ota1, _ := st.Slot("ota_1")
	ota0, _ := st.Slot("ota_0")
	for i, tq := range []string{ota1.SwitchQuestion, st.EraseQuestion, ota0.MarkInvalidQuestion} {
		require.NotEmpty(t, tq, actions[i])
		require.Equal(t, tq, asked[i], actions[i])
	}
}

// Item 10: the CLI's ota upload ignored [[device]] password_env and
// password_file from the config file (only the TUI read them).
func TestOTAUploadUsesTheConfigFilePassword(t *testing.T) {
	dev := otaSim(t, otasim.Config{Password: otaTestPassword, Scheme: otasim.SchemePBKDF2})
	file, _ := otaImage(t, 20_000)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte(otaTestPassword+"\n"), 0o600))
	host := dev.Addr().Addr().String()
	for _, entry := range []string{`password_env = "BENCH_PW"`, `password_file = "` + pwFile + `"`} {
		cfg := filepath.Join(dir, "config.toml")
		require.NoError(t, os.WriteFile(cfg, []byte("[[device]]\nname = \"bench\"\nhost = \""+host+"\"\n"+entry+"\n"), 0o600))
		r := runCLI(t, map[string]string{"BENCH_PW": otaTestPassword}, "ota", "upload", "--host", dev.Addr().String(), "--file", file,
			"--config", cfg, "--json")
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		require.Equal(t, "pbkdf2-sha256", lastResult(t, r.stdout)["auth_scheme"], "the device asked and got the password")
		requireNoSecret(t, r)
	}
}

// Every error code has its exit status in the one table.
func TestEveryCodeHasAnExitStatus(t *testing.T) {
	for _, code := range ops.Codes() {
		_, ok := exitCodes[code]
		require.True(t, ok, "no exit status for %q", code)
	}
}

// ESPHome too: a refused password is the same word, hint and class from
// the command line and from the TUI, and the exit status follows the
// class (auth), not a second table.
func TestCLIAndTUIReportTheSameESPHomeFailure(t *testing.T) {
	d := esphomeSim(t, esphomesim.Config{Password: "the-right-one"})
	file, _ := otaImage(t, 30_000)
	r := runCLI(t, map[string]string{"PW": "a-wrong-one"}, "ota", "upload", "--protocol", "esphome", "--host", d.Addr().String(),
		"--file", file, "--password-env", "PW", "--json")
	res := lastResult(t, r.stdout)
	code, _ := res["error"].(string)
	require.NotEmpty(t, code, r.stdout)
	require.Equal(t, exitAuth, r.code, r.stdout)
	require.NotContains(t, r.stdout+r.stderr, "a-wrong-one")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	backend := tuibackend.New(tuibackend.Config{}).TUI()
	dev := tui.Device{ID: "esphome/x", Kind: tui.KindESPHome, Address: d.Addr().String()}
	got := backend.Flasher.Flash(ctx, tui.FlashRequest{Device: dev, File: file, Password: tui.Secret("a-wrong-one")}, func(tui.Progress) {})
	require.Equal(t, code, got.Code, got.Error)
	require.Equal(t, sameHint(res["hint"]), sameHint(hintOrNil(got.Hint)), "the same hint")
	require.True(t, got.AuthFailed)
}
