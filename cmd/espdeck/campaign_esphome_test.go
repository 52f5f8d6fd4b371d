package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
)

func TestCampaignESPHomeHostsWithPasswordAndKey(t *testing.T) {
	plain := esphomeSim(t, esphomesim.Config{Password: otaTestPassword})
	enc := esphomeSim(t, esphomesim.Config{Password: otaTestPassword, APIKey: esphomeTestKey, RequireEncryption: true})
	dir := t.TempDir()
	state, auditLog, keyFile := filepath.Join(dir, "c.json"), filepath.Join(dir, "audit.jsonl"), filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(esphomeTestKey+"\n"), 0o600))

	// With a key, every ESPHome board of the campaign must encrypt: one
	// campaign for the encrypted board, one without a key for the other.
	r := runCLI(t, map[string]string{"OTA_PW": otaTestPassword}, "campaign", "run", "--image", campaignImage(t, "2.0.0"),
		"--protocol", "esphome", "--host", enc.Addr().String(), "--confirm", "0s", "--password-env", "OTA_PW",
		"--api-key-file", keyFile, "--state", state, "--audit", auditLog, "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.True(t, esphomeRecord(t, enc).Encrypted)

	r = runCLI(t, map[string]string{"OTA_PW": otaTestPassword}, "campaign", "run", "--image", campaignImage(t, "2.0.0"),
		"--protocol", "esphome", "--host", plain.Addr().String(), "--confirm", "0s", "--password-env", "OTA_PW",
		"--state", filepath.Join(dir, "c2.json"), "--audit", auditLog, "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Equal(t, "sha256", esphomeRecord(t, plain).Auth)
	requireNoSecret(t, r)

	a := runCLI(t, nil, "audit", "--file", auditLog, "--json")
	require.Equal(t, exitOK, a.code, a.stderr)
	auth := map[string]string{}
	for _, ev := range jsonLines(t, a.stdout) {
		if ev["event"] == "record" {
			rec := ev["record"].(map[string]any)
			require.Equal(t, "esphome", rec["protocol"])
			require.Equal(t, "ok", rec["result"])
			auth[rec["address"].(string)] = rec["auth"].(string)
		}
	}
	require.Equal(t, map[string]string{enc.Addr().String(): "noise", plain.Addr().String(): "sha256"}, auth)
	for _, p := range []string{state, auditLog} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NotContains(t, string(b), otaTestPassword, p)
		require.NotContains(t, string(b), esphomeTestKey, p)
	}
}

func TestCampaignKeyRefusesABoardThatCannotEncrypt(t *testing.T) {
	plain := esphomeSim(t, esphomesim.Config{})
	dir := t.TempDir()
	r := runCLI(t, map[string]string{"KEY": esphomeTestKey}, "campaign", "run", "--image", campaignImage(t, "2.0.0"),
		"--protocol", "esphome", "--host", plain.Addr().String(), "--confirm", "0s", "--api-key-env", "KEY",
		"--state", filepath.Join(dir, "c.json"), "--audit", filepath.Join(dir, "a.jsonl"), "--json")
	require.Equal(t, exitStopped, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "encryption_not_offered")
	require.Zero(t, plain.Updates())
}

func TestCampaignBadAPIKeyIsAUsageError(t *testing.T) {
	r := runCLI(t, map[string]string{"KEY": "short"}, "campaign", "run", "--image", campaignImage(t, "2.0.0"),
		"--protocol", "esphome", "--host", "127.0.0.1", "--api-key-env", "KEY", "--state", filepath.Join(t.TempDir(), "c.json"))
	require.Equal(t, exitUsage, r.code, r.stdout+r.stderr)
	require.NotContains(t, r.stderr, "short")
}
