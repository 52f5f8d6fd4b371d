package esphomeyaml

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestLoadCurrentFormWithSecrets(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "secrets.yaml", "ota_pw: s3cret\napi_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
	p := write(t, dir, "kitchen.yaml", `
esphome:
  name: kitchen
esp8266:
  board: d1_mini
api:
  encryption:
    key: !secret api_key
ota:
  - platform: web_server
  - platform: esphome
    password: !secret ota_pw
    port: 8267
sensor:
  - platform: template
    lambda: !lambda return 1.0;
`)
	d, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, Device{Name: "kitchen", Platform: "ESP8266", Board: "d1_mini", Password: "s3cret",
		APIKey: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", OTAPort: 8267}, d)
}

func TestLoadVariant(t *testing.T) {
	p := write(t, t.TempDir(), "a.yaml", "esp32:\n  board: my-board\n  variant: ESP32S3\n")
	d, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, "ESP32S3", d.Variant)
}

func TestLoadOldForm(t *testing.T) {
	p := write(t, t.TempDir(), "a.yaml", "esphome:\n  name: porch\nesp32:\n  board: esp32dev\nota:\n  password: plain\n")
	d, err := Load(p)
	require.NoError(t, err)
	require.Equal(t, "plain", d.Password)
	require.Equal(t, "ESP32", d.Platform)
	require.Zero(t, d.OTAPort)
}

func TestLoadErrorsNameTheCauseNotTheSecret(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "secrets.yaml", "other: topsecretvalue\n")
	for name, text := range map[string]string{
		"missing secret": "ota:\n  password: !secret ota_pw\n",
		"substitution":   "ota:\n  password: ${pw}\n",
		"bad port":       "ota:\n  - platform: esphome\n    port: http\n",
		"not yaml":       "ota: [\n",
		"not a mapping":  "- a\n- b\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(write(t, dir, "d.yaml", text))
			require.Error(t, err)
			require.NotContains(t, err.Error(), "topsecretvalue")
		})
	}
	_, err := Load(write(t, t.TempDir(), "x.yaml", "ota:\n  password: !secret pw\n"))
	require.ErrorContains(t, err, "secrets.yaml")
}

func FuzzLoad(f *testing.F) {
	f.Add("esphome:\n  name: a\nota:\n  - platform: esphome\n    password: !secret x\n")
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "secrets.yaml"), []byte("x: y\n"), 0o600)
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(dir, "f.yaml")
		os.WriteFile(p, []byte(text), 0o600)
		Load(p)
	})
}
