package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
)

const esphomeTestKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func esphomeSim(t *testing.T, cfg esphomesim.Config) *esphomesim.Device {
	t.Helper()
	d, err := esphomesim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	return d
}

func esphomeRecord(t *testing.T, d *esphomesim.Device) esphomesim.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := d.WaitRecords(ctx, 1)
	require.NoError(t, err)
	return recs[len(recs)-1]
}

func TestESPHomeUploadPlainJSON(t *testing.T) {
	d := esphomeSim(t, esphomesim.Config{NextVersion: "2026.12.0"})
	file, img := otaImage(t, 100_000)
	r := runCLI(t, nil, "ota", "upload", "--protocol", "esphome", "--host", d.Addr().String(), "--file", file, "--json")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	require.Equal(t, "esphome", res["protocol"])
	require.Equal(t, "none", res["auth_scheme"])
	require.Equal(t, false, res["encrypted"])
	require.EqualValues(t, 2, res["version"])
	require.Equal(t, img, esphomeRecord(t, d).Image)
	require.Equal(t, "2026.12.0", d.FirmwareVersion())
}

func TestESPHomeUploadEncryptedWithPassword(t *testing.T) {
	const pw = "Sh4-pass-for-esphome-tests"
	for _, c := range []struct {
		name string
		cfg  esphomesim.Config
		args []string
		env  map[string]string
		enc  bool
		auth string
	}{
		{"noise via env", esphomesim.Config{APIKey: esphomeTestKey, RequireEncryption: true},
			[]string{"--api-key-env", "KEY"}, map[string]string{"KEY": esphomeTestKey}, true, "none"},
		{"sha256 via env", esphomesim.Config{Password: pw},
			[]string{"--protocol", "esphome", "--password-env", "PW"}, map[string]string{"PW": pw}, false, "sha256"},
		{"md5 old firmware", esphomesim.Config{Password: pw, Scheme: esphomesim.SchemeMD5, Version: 1, Legacy: true},
			[]string{"--protocol", "esphome"}, map[string]string{"ESPDECK_PASSWORD": pw}, false, "md5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := esphomeSim(t, c.cfg)
			file, img := otaImage(t, 50_000)
			args := append([]string{"ota", "upload", "--host", d.Addr().String(), "--file", file, "--json"}, c.args...)
			r := runCLI(t, c.env, args...)
			require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
			res := lastResult(t, r.stdout)
			require.Equal(t, c.enc, res["encrypted"])
			require.Equal(t, c.auth, res["auth_scheme"])
			require.Equal(t, img, esphomeRecord(t, d).Image)
			for _, s := range []string{pw, esphomeTestKey} {
				require.NotContains(t, r.stdout, s)
				require.NotContains(t, r.stderr, s)
			}
		})
	}
}

func TestESPHomeConfigFile(t *testing.T) {
	const pw = "from-the-secrets-file"
	d := esphomeSim(t, esphomesim.Config{APIKey: esphomeTestKey, RequireEncryption: true})
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secrets.yaml"),
		fmt.Appendf(nil, "ota_password: %s\napi_key: %s\n", pw, esphomeTestKey), 0o600))
	cfg := filepath.Join(dir, "kitchen.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `esphome:
  name: kitchen
esp32:
  board: esp32dev
api:
  encryption:
    key: !secret api_key
ota:
  - platform: esphome
    password: !secret ota_password
    port: %d
`, d.Addr().Port), 0o600))
	file, img := otaImage(t, 40_000)
	r := runCLI(t, nil, "ota", "upload", "--esphome-config", cfg, "--host", "127.0.0.1", "--file", file, "--json", "--log-level", "debug")
	require.Equal(t, exitOK, r.code, r.stderr+r.stdout)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["encrypted"])
	rec := esphomeRecord(t, d)
	require.True(t, rec.Encrypted)
	require.Equal(t, img, rec.Image)
	for _, s := range []string{pw, esphomeTestKey} {
		require.NotContains(t, r.stdout, s)
		require.NotContains(t, r.stderr, s)
	}
}

// TestESPHomeExitCodes: each failure ends in its own exit code, a machine
// name (the error's Code()) and a hint.
func TestESPHomeExitCodes(t *testing.T) {
	cases := []struct {
		name string
		cfg  esphomesim.Config
		args []string
		env  map[string]string
		code int
		word string
	}{
		{"wrong password", esphomesim.Config{Password: "right"}, nil, map[string]string{"ESPDECK_PASSWORD": "wrong"}, exitAuth, "auth_invalid"},
		{"password missing", esphomesim.Config{Password: "right"}, nil, nil, exitAuth, "password_required"},
		{"wrong api key", esphomesim.Config{APIKey: esphomeTestKey}, []string{"--api-key-env", "K"},
			map[string]string{"K": "HxwdHhscGRoXGBUWExQREg8QDQ4LDAkKBwgFBgMEAQI="}, exitAuth, "wrong_api_key"},
		{"encryption required", esphomesim.Config{APIKey: esphomeTestKey, RequireEncryption: true}, nil, nil, exitAuth, "encryption_required"},
		{"fail closed", esphomesim.Config{}, []string{"--api-key-env", "K"}, map[string]string{"K": esphomeTestKey}, exitRefused, "encryption_not_offered"},
		{"bad key", esphomesim.Config{}, []string{"--api-key-env", "K"}, map[string]string{"K": "short"}, exitUsage, "usage"},
		{"md5 mismatch", esphomesim.Config{FaultStep: esphomesim.StepEnd, FaultCode: 0x8B}, nil, nil, exitVerify, "md5_mismatch"},
		{"partition too small", esphomesim.Config{SlotSize: 1000}, nil, nil, exitDevice, "partition_too_small"},
		{"bootstrapping", esphomesim.Config{FaultStep: esphomesim.StepPrepare, FaultCode: 0x85}, nil, nil, exitDevice, "invalid_bootstrapping"},
		{"signature", esphomesim.Config{FaultStep: esphomesim.StepEnd, FaultCode: 0x8D}, nil, nil, exitDevice, "signature_invalid"},
		{"downgrade", esphomesim.Config{FaultStep: esphomesim.StepEnd, FaultCode: 0x93}, nil, nil, exitDevice, "downgrade_refused"},
		{"dropped after every byte", esphomesim.Config{DropAfterAll: true}, nil, nil, exitTransfer, "connection_lost"},
		{"bootloader not confirmed", esphomesim.Config{PartitionAccess: true}, []string{"--ota-type", "bootloader"}, nil, exitRefused, "not_confirmed"},
		{"arduino with a key", esphomesim.Config{}, []string{"--protocol", "arduino", "--api-key-env", "K"}, map[string]string{"K": esphomeTestKey}, exitUsage, "usage"},
		{"wrong chip", esphomesim.Config{}, []string{"--chip", "esp8266"}, nil, exitRefused, "refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := esphomeSim(t, c.cfg)
			file, _ := otaImage(t, 20_000)
			args := append([]string{"ota", "upload", "--protocol", "esphome", "--host", d.Addr().String(), "--file", file, "--json"}, c.args...)
			if c.name == "arduino with a key" {
				args = append([]string{"ota", "upload", "--host", d.Addr().String(), "--file", file, "--json"}, c.args...)
			}
			r := runCLI(t, c.env, args...)
			require.Equal(t, c.code, r.code, r.stdout+r.stderr)
			res := lastResult(t, r.stdout)
			require.Equal(t, c.word, res["error"])
			require.NotEmpty(t, res["hint"])
			// Only a connection lost after the last block may have left
			// the new image installed; a device's own verdict says it did not.
			require.Equal(t, c.name == "dropped after every byte", strings.Contains(res["hint"].(string), "may have installed"), res["hint"])
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		d := esphomeSim(t, esphomesim.Config{})
		addr := d.Addr().String()
		d.Close()
		file, _ := otaImage(t, 20_000)
		r := runCLI(t, nil, "ota", "upload", "--protocol", "esphome", "--host", addr, "--file", file, "--json", "--timeout", "2s", "--retries", "0")
		require.Equal(t, exitUnreachable, r.code, r.stdout+r.stderr)
	})
}

func TestSimESPHomeHelp(t *testing.T) {
	r := runCLI(t, nil, "sim", "esphome", "--help")
	require.Equal(t, exitOK, r.code)
	require.Contains(t, r.stderr, "SHA-256")
	for _, args := range [][]string{{"--fault", "end:0x10"}, {"--fault", "nowhere:0x80"}, {"--ota-version", "3"},
		{"--scheme", "pbkdf2"}, {"--api-key-env", "UNSET_VAR"}} {
		r := runCLI(t, nil, append([]string{"sim", "esphome"}, args...)...)
		require.Equal(t, exitUsage, r.code, args)
		require.Contains(t, r.stderr, "espdeck: ", args)
	}
}

// TestESPHomeEveryDeviceCode: every error byte of the device's table ends
// in the exit code of its kind, a machine name and a hint.
func TestESPHomeEveryDeviceCode(t *testing.T) {
	steps := map[byte]esphomesim.Step{0x80: esphomesim.StepMagic, 0x94: esphomesim.StepFeatures, 0x82: esphomesim.StepAuth,
		0x83: esphomesim.StepData, 0xFF: esphomesim.StepData}
	for _, code := range []byte{0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D,
		0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0xFF} {
		step, ok := steps[code]
		if !ok {
			step = esphomesim.StepPrepare
			if code == 0x84 || code == 0x8B || code == 0x8D || code >= 0x8F && code <= 0x93 {
				step = esphomesim.StepEnd
			}
		}
		want := exitDevice
		switch code {
		case 0x82, 0x94:
			want = exitAuth
		case 0x8B:
			want = exitVerify
		}
		t.Run(fmt.Sprintf("0x%02X", code), func(t *testing.T) {
			d := esphomeSim(t, esphomesim.Config{FaultStep: step, FaultCode: code, FaultAfter: 8192})
			file, _ := otaImage(t, 20_000)
			r := runCLI(t, map[string]string{"ESPDECK_PASSWORD": "pw"}, "ota", "upload", "--protocol", "esphome",
				"--host", d.Addr().String(), "--file", file, "--json", "--retries", "0")
			require.Equal(t, want, r.code, r.stdout+r.stderr)
			res := lastResult(t, r.stdout)
			require.NotEmpty(t, res["error"])
			require.NotEqual(t, "internal", res["error"])
			require.NotEmpty(t, res["hint"])
		})
	}
}

// The demo fleet runs until cancelled: it says how to try each board, an
// upload to the first one works, and the board's session is reported at
// the end.
func TestSimESPHomeFleetRunsUntilCancelled(t *testing.T) {
	startFleet := func(json bool) (out *lockedBuffer, stop func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		args := []string{"sim", "esphome"}
		if json {
			args = append(args, "--json")
		}
		out = &lockedBuffer{}
		var errb lockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, args, strings.NewReader(""), out, &errb, func(string) string { return "" })
		}()
		return out, func() int { cancel(); return <-done }
	}

	out, stop := startFleet(false)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Ctrl-C stops them.") }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, exitOK, stop())
	require.Equal(t, 3, strings.Count(out.String(), "espdeck ota upload --protocol esphome --host 127.0.0.1:"), out.String())
	require.Contains(t, out.String(), "ESPDECK_PASSWORD="+esphomesim.DemoPassword)

	out, stop = startFleet(true)
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") >= 4 }, 30*time.Second, 10*time.Millisecond)
	devs := jsonLines(t, out.String())
	require.Len(t, devs, 4)
	for _, d := range devs {
		require.Equal(t, "device", d["event"])
		require.Equal(t, "esphome", d["protocol"])
	}
	file, _ := otaImage(t, 20_000)
	r := runCLI(t, nil, "ota", "upload", "--protocol", "esphome", "--host", devs[0]["addr"].(string), "--file", file, "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Equal(t, exitOK, stop())
	var sessions []map[string]any
	for _, l := range jsonLines(t, out.String()) {
		if l["event"] == "session" {
			sessions = append(sessions, l)
		}
	}
	require.NotEmpty(t, sessions)
	require.Equal(t, devs[0]["name"], sessions[0]["name"])
}
