package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// auditRecords reads the audit log at p whole.
func auditRecords(t *testing.T, p string) []audit.Record {
	t.Helper()
	fh, err := os.Open(p)
	require.NoError(t, err)
	defer fh.Close()
	recs, skipped, err := audit.Read(fh, audit.Filter{})
	require.NoError(t, err)
	require.Zero(t, skipped)
	return recs
}

func TestOTAUploadWritesOneAuditRecordPerAttempt(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"OTA_PW": otaTestPassword, "XDG_STATE_HOME": dir, "KEY": esphomeTestKey}
	logPath := filepath.Join(dir, "espdeck", "audit.jsonl") // the default path
	require.NoError(t, os.MkdirAll(filepath.Dir(logPath), 0o700))
	file, _ := otaImage(t, 40_000)

	good := otaSim(t, otasim.Config{Password: otaTestPassword, Scheme: otasim.SchemePBKDF2})
	r := runCLI(t, env, "ota", "upload", "--host", good.Addr().String(), "--file", file, "--password-env", "OTA_PW", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)

	locked := otaSim(t, otasim.Config{Password: "another-password", Scheme: otasim.SchemePBKDF2})
	r = runCLI(t, env, "ota", "upload", "--host", locked.Addr().String(), "--file", file, "--password-env", "OTA_PW", "--json")
	require.NotEqual(t, exitOK, r.code)

	eh := esphomeSim(t, esphomesim.Config{Password: otaTestPassword, APIKey: esphomeTestKey, RequireEncryption: true})
	r = runCLI(t, env, "ota", "upload", "--protocol", "esphome", "--host", eh.Addr().String(), "--file", file,
		"--password-env", "OTA_PW", "--api-key-env", "KEY", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)

	recs := auditRecords(t, logPath)
	require.Len(t, recs, 3, "one record per upload, failed ones too")
	require.Equal(t, "ok", recs[0].Result)
	require.Equal(t, "arduino-ota", recs[0].Protocol)
	require.Equal(t, "pbkdf2-sha256", recs[0].Auth)
	require.Equal(t, "1.2.3", recs[0].ToVersion)
	require.Equal(t, "app.bin", recs[0].Image)
	require.Equal(t, "auth_failed", recs[1].Result)
	require.Equal(t, "esphome", recs[2].Protocol)
	require.Equal(t, "ok", recs[2].Result)
	require.Contains(t, recs[2].Auth, "noise")

	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	require.NotContains(t, string(b), otaTestPassword)
	require.NotContains(t, string(b), esphomeTestKey)

	// --audit names another log.
	other := filepath.Join(dir, "other.jsonl")
	r = runCLI(t, env, "ota", "upload", "--host", good.Addr().String(), "--file", file, "--password-env", "OTA_PW", "--audit", other)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Len(t, auditRecords(t, other), 1)
	require.Len(t, auditRecords(t, logPath), 3)
}

func TestOTAUploadWithoutAnAuditLogStillUploadsAndSaysSo(t *testing.T) {
	dev := otaSim(t, otasim.Config{})
	file, _ := otaImage(t, 20_000)
	r := runCLI(t, nil, "ota", "upload", "--host", dev.Addr().String(), "--file", file, "--audit", t.TempDir())
	// A directory is no log: the upload stands, the warning says what is missing.
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "no audit record of this update")
}

func TestSerialWriteOfAnAppWritesAnAuditRecord(t *testing.T) {
	flash, err := ops.DemoFlash(firmware.ChipESP32)
	require.NoError(t, err)
	path, rom := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.jsonl")
	app := ops.DemoAppImage(firmware.ChipESP32, "serial-app", "4.5.6", 30_000)
	data := writeTemp(t, "app.bin", app)
	notApp := writeTemp(t, "data.bin", bytes.Repeat([]byte{0x5A}, 0x1000))

	r := runCLI(t, nil, "serial", "write", "0x210000", data, "0x9000", notApp, "--port", path, "--audit", logPath,
		"--before", "no-reset", "--after", "no-reset", "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Equal(t, app, rom.Flash()[0x210000:0x210000+len(app)])

	recs := auditRecords(t, logPath)
	require.Len(t, recs, 1, "the app is an update; the data region is not")
	rec := recs[0]
	require.Equal(t, "serial", rec.Protocol)
	require.Equal(t, path, rec.Address)
	require.Equal(t, "esp32", rec.Chip)
	require.Equal(t, "4.5.6", rec.ToVersion)
	require.Equal(t, "ok", rec.Result)
	require.EqualValues(t, len(app), rec.Bytes)
	require.NotEmpty(t, rec.MAC)
}
