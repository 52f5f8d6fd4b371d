package ops

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/firmware"
)

func esphomeDevice(t *testing.T, cfg esphomesim.Config) *esphomesim.Device {
	t.Helper()
	d, err := esphomesim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	return d
}

func TestUploadESPHome(t *testing.T) {
	d := esphomeDevice(t, esphomesim.Config{Password: "pw"})
	img := DemoAppImage(firmware.ChipESP32, "ops-esphome", "3.0.0", 40<<10)
	res, err := UploadESPHome(context.Background(), ESPHomeUpload{
		Target: esphomeota.Target{Host: "127.0.0.1", Port: d.Addr().Port}, Image: img,
		Chip: firmware.ChipESP32, Password: "pw",
	})
	require.NoError(t, err)
	require.Equal(t, esphomeota.SchemeSHA256, res.Upload.AuthScheme)
	require.Empty(t, res.Verdict.Failed())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := d.WaitRecords(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, img, recs[0].Image)
}

// TestUploadESPHomeRefusesBeforeConnecting: a pre-flight refusal sends
// nothing — the device sees no session at all.
func TestUploadESPHomeRefusesBeforeConnecting(t *testing.T) {
	d := esphomeDevice(t, esphomesim.Config{PartitionAccess: true})
	target := esphomeota.Target{Host: "127.0.0.1", Port: d.Addr().Port}
	app := DemoAppImage(firmware.ChipESP32, "ops-esphome", "3.0.0", 20<<10)
	for name, u := range map[string]ESPHomeUpload{
		"wrong chip":             {Target: target, Image: app, Chip: firmware.ChipESP8266},
		"app as a bootloader":    {Target: target, Image: app, Chip: firmware.ChipESP32, Type: esphomeota.TypeBootloader, AllowRisky: true},
		"garbage as a table":     {Target: target, Image: []byte("not a partition table"), Type: esphomeota.TypePartitionTable, AllowRisky: true},
		"app as a table":         {Target: target, Image: app, Type: esphomeota.TypePartitionTable, AllowRisky: true},
		"not an image as an app": {Target: target, Image: []byte("hello"), Chip: firmware.ChipUnknown},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := UploadESPHome(context.Background(), u)
			require.ErrorIs(t, err, ErrRefused)
			var re *RefusedError
			require.ErrorAs(t, err, &re)
			require.NotEmpty(t, re.Hint())
		})
	}
	require.Empty(t, d.Records())
}

func TestChipFromESPHome(t *testing.T) {
	for _, c := range []struct {
		platform, board string
		want            firmware.Chip
		ok              bool
	}{
		{"ESP8266", "d1_mini", firmware.ChipESP8266, true},
		{"ESP32", "esp32dev", firmware.ChipESP32, true},
		{"ESP32", "esp32-s3-devkitc-1", firmware.ChipESP32S3, true},
		{"ESP32", "esp32-c3-devkitm-1", firmware.ChipESP32C3, true},
		{"ESP32", "my-custom-board", firmware.ChipUnknown, false},
		{"ESP32", "", firmware.ChipUnknown, false},
		{"RP2040", "rpipicow", firmware.ChipUnknown, false},
		{"", "", firmware.ChipUnknown, false},
	} {
		got, ok := ChipFromESPHome(c.platform, c.board)
		require.Equal(t, c.ok, ok, "%s/%s", c.platform, c.board)
		require.Equal(t, c.want, got, "%s/%s", c.platform, c.board)
	}
	require.Equal(t, 8266, ESPHomePort("esp8266"))
	require.Equal(t, 8892, ESPHomePort("BK7231N"))
	require.Equal(t, 3232, ESPHomePort(""))
}

func TestResolveAPIKeyOrderAndErrors(t *testing.T) {
	const key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	const other = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(key+"\n"), 0o600))
	env := map[string]string{"K": other, "ESPDECK_API_KEY": other, "BAD": "not-base64-at-all"}
	getenv := func(k string) string { return env[k] }

	got, ws, err := ResolveAPIKey(APIKeySources{File: keyFile, Env: "K", Config: other, Getenv: getenv})
	require.NoError(t, err)
	require.Equal(t, key, string(got), "the file wins")
	require.Empty(t, ws)
	got, _, _ = ResolveAPIKey(APIKeySources{Env: "K", Config: key, Getenv: getenv})
	require.Equal(t, other, string(got), "then the variable")
	got, _, _ = ResolveAPIKey(APIKeySources{Config: key, Getenv: getenv})
	require.Equal(t, key, string(got), "then the YAML")
	got, _, _ = ResolveAPIKey(APIKeySources{Getenv: getenv})
	require.Equal(t, other, string(got), "then ESPDECK_API_KEY")
	got, _, err = ResolveAPIKey(APIKeySources{})
	require.NoError(t, err)
	require.Empty(t, got, "no key: no encryption")

	_, _, err = ResolveAPIKey(APIKeySources{Env: "BAD", Getenv: getenv})
	require.Error(t, err)
	require.Equal(t, CodeUsage, CodeOf(err))
	require.NotContains(t, err.Error(), "not-base64-at-all", "an error never holds the key")
	_, _, err = ResolveAPIKey(APIKeySources{Env: "UNSET", Getenv: getenv})
	require.ErrorContains(t, err, "UNSET")
	require.NotEmpty(t, HintOf(err))
	_, _, err = ResolveAPIKey(APIKeySources{File: filepath.Join(dir, "missing")})
	require.Error(t, err)

	require.NoError(t, os.Chmod(keyFile, 0o644))
	_, ws, err = ResolveAPIKey(APIKeySources{File: keyFile})
	require.NoError(t, err)
	require.Len(t, ws, 1, "a key file others can read is warned about")
}
