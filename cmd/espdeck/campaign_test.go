package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
)

func campaignImage(t *testing.T, version string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.bin")
	require.NoError(t, os.WriteFile(p, ops.DemoAppImage(firmware.ChipESP32, "cli-fleet", version, 30_000), 0o644))
	return p
}

func requireNoSecretIn(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NotContains(t, string(b), otaTestPassword, p)
	}
}

func TestCampaignRunOverHostsJSON(t *testing.T) {
	var devs []*otasim.Device
	for range 3 {
		devs = append(devs, otaSim(t, otasim.Config{Password: otaTestPassword, Scheme: otasim.SchemePBKDF2}))
	}
	dir := t.TempDir()
	state, auditLog := filepath.Join(dir, "c.json"), filepath.Join(dir, "audit.jsonl")
	args := []string{"campaign", "run", "--image", campaignImage(t, "2.0.0"), "--chip", "esp32", "--confirm", "0s",
		"--password-env", "OTA_PW", "--state", state, "--audit", auditLog, "--json", "--parallel", "2"}
	for _, d := range devs {
		args = append(args, "--host", d.Addr().String())
	}
	r := runCLI(t, map[string]string{"OTA_PW": otaTestPassword}, args...)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	requireNoSecret(t, r)
	requireNoSecretIn(t, state, auditLog)

	res := lastResult(t, r.stdout)
	require.Equal(t, "ok", res["outcome"])
	require.EqualValues(t, 3, res["summary"].(map[string]any)["uploaded"])
	final := map[string]string{}
	for _, ev := range jsonLines(t, r.stdout) {
		if ev["event"] == "board" {
			final[ev["device"].(string)] = ev["state"].(string)
		}
	}
	require.Len(t, final, 3)
	for id, st := range final {
		require.Equal(t, "uploaded", st, id)
	}
	for _, d := range devs {
		require.Len(t, d.Sessions(), 1)
		require.Equal(t, otasim.StateSuccess, d.Sessions()[0].State)
	}

	// The audit command reads what the campaign wrote.
	a := runCLI(t, nil, "audit", "--file", auditLog, "--json", "--address", devs[1].Addr().String())
	require.Equal(t, exitOK, a.code, a.stderr)
	require.EqualValues(t, 1, lastResult(t, a.stdout)["count"])
	recs := 0
	for _, ev := range jsonLines(t, a.stdout) {
		if ev["event"] == "record" {
			recs++
			rec := ev["record"].(map[string]any)
			require.Equal(t, "ok", rec["result"])
			require.Equal(t, "pbkdf2-sha256", rec["auth"])
			require.Equal(t, "2.0.0", rec["to_version"])
			require.Equal(t, "not-checked", rec["confirmation"])
		}
	}
	require.Equal(t, 1, recs)
}

func TestCampaignCanaryFailureExitCodeAndResume(t *testing.T) {
	bad := otaSim(t, otasim.Config{Faults: otasim.Faults{ErrorText: "ERROR[8]: Flash Write Failed"}})
	good := otaSim(t, otasim.Config{})
	dir := t.TempDir()
	state := filepath.Join(dir, "c.json")
	img := campaignImage(t, "2.0.0")
	common := []string{"--state", state, "--audit", filepath.Join(dir, "audit.jsonl")}
	r := runCLI(t, nil, append([]string{"campaign", "run", "--image", img, "--confirm", "0s",
		"--host", bad.Addr().String(), "--host", good.Addr().String()}, common...)...)
	require.Equal(t, exitStopped, r.code, r.stderr)
	require.Contains(t, r.stderr, "canary")
	require.Contains(t, r.stderr, "espdeck campaign resume "+state)
	require.Empty(t, good.Sessions(), "nothing is sent after a failed canary")

	s := runCLI(t, nil, "campaign", "status", state, "--json")
	require.Equal(t, exitOK, s.code, s.stderr)
	res := lastResult(t, s.stdout)
	require.Equal(t, "stopped", res["outcome"])
	states := map[string]string{}
	for _, ev := range jsonLines(t, s.stdout) {
		if ev["event"] == "board" {
			states[ev["name"].(string)] = ev["state"].(string)
		}
	}
	require.Equal(t, map[string]string{bad.Addr().String(): "failed", good.Addr().String(): "queued"}, states)

	// Resume with a looser threshold: the canary is tried again, then the
	// untouched board.
	r = runCLI(t, nil, append([]string{"campaign", "resume", state, "--max-failures", "5"}, common...)...)
	require.Equal(t, exitStopped, r.code, "the canary fails again: "+r.stderr)
	require.Len(t, bad.Sessions(), 2)
	require.Empty(t, good.Sessions())
}

func TestCampaignResumeRefusesAChangedImage(t *testing.T) {
	dev := otaSim(t, otasim.Config{Faults: otasim.Faults{ErrorText: "ERROR[8]: Flash Write Failed"}})
	dir := t.TempDir()
	state := filepath.Join(dir, "c.json")
	img := campaignImage(t, "2.0.0")
	r := runCLI(t, nil, "campaign", "run", "--image", img, "--confirm", "0s", "--host", dev.Addr().String(),
		"--state", state, "--audit", filepath.Join(dir, "a.jsonl"))
	require.Equal(t, exitStopped, r.code, r.stderr)
	require.NoError(t, os.WriteFile(img, ops.DemoAppImage(firmware.ChipESP32, "cli-fleet", "2.0.1", 30_000), 0o644))
	r = runCLI(t, nil, "campaign", "resume", state, "--audit", filepath.Join(dir, "a.jsonl"), "--json")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, lastResult(t, r.stdout)["message"], "changed since the campaign started")
	require.Len(t, dev.Sessions(), 1, "nothing sent with the changed image")
}

func TestCampaignDemoOutdatedWithRollbackAndAudit(t *testing.T) {
	dir := t.TempDir()
	img := campaignImage(t, "1.0.0")
	env := map[string]string{"XDG_STATE_HOME": dir}
	r := runCLI(t, env, "campaign", "run", "--demo", "--image", img, "--outdated", "--max-failures", "3", "--json")
	require.Equal(t, exitSomeFailed, r.code, r.stdout+r.stderr)
	res := lastResult(t, r.stdout)
	sum := res["summary"].(map[string]any)
	require.EqualValues(t, 4, sum["confirmed"], "kitchen-1, hallway, office, esphome-porch")
	require.EqualValues(t, 2, sum["skipped"], "kitchen-2 is up to date; lab-s3 has no image")
	require.EqualValues(t, 2, sum["rolled_back"], "porch, esphome-cellar")
	require.EqualValues(t, 1, sum["timed_out"])
	require.EqualValues(t, 1, sum["uploaded"], "attic announces no version")
	state := res["state_file"].(string)
	require.True(t, filepath.IsAbs(state))
	require.FileExists(t, state)
	requireNoSecretIn(t, state, filepath.Join(dir, "espdeck", "audit.jsonl"))
	require.NotContains(t, r.stdout, otasim.DemoPassword+`"`)

	a := runCLI(t, env, "audit", "--result", "failed", "--json")
	require.Equal(t, exitOK, a.code, a.stderr)
	failed := map[string]string{}
	for _, ev := range jsonLines(t, a.stdout) {
		if ev["event"] == "record" {
			rec := ev["record"].(map[string]any)
			failed[rec["board"].(string)] = rec["confirmation"].(string)
		}
	}
	require.Equal(t, map[string]string{"porch": "rolled-back", "garage": "timed-out", "esphome-cellar": "rolled-back"}, failed)

	e := runCLI(t, env, "audit", "--board", "esphome-porch", "--json")
	require.Equal(t, exitOK, e.code, e.stderr)
	var porch map[string]any
	for _, ev := range jsonLines(t, e.stdout) {
		if ev["event"] == "record" {
			porch = ev["record"].(map[string]any)
		}
	}
	require.NotNil(t, porch)
	require.Equal(t, "esphome", porch["protocol"])
	require.Equal(t, "sha256", porch["auth"])
	require.Equal(t, "confirmed", porch["confirmation"])

	human := runCLI(t, env, "audit", "--board", "porch")
	require.Equal(t, exitOK, human.code)
	require.Contains(t, human.stdout, "0.9.0 → 1.0.0")
	require.Contains(t, human.stdout, "rolled_back")
}

func TestCampaignUsageMistakes(t *testing.T) {
	img := campaignImage(t, "1.0.0")
	for name, args := range map[string][]string{
		"no targets":     {"campaign", "run", "--image", img},
		"no image":       {"campaign", "run", "--host", "127.0.0.1"},
		"bad threshold":  {"campaign", "run", "--image", img, "--host", "127.0.0.1", "--max-failures", "150%"},
		"bad host":       {"campaign", "run", "--image", img, "--host", "127.0.0.1:0"},
		"select no mdns": {"campaign", "run", "--image", img, "--select", "kitchen-*"},
		"resume no file": {"campaign", "resume"},
		"status garbage": {"campaign", "status", img},
		"unknown verb":   {"campaign", "launch"},
	} {
		dir := t.TempDir()
		r := runCLI(t, map[string]string{"XDG_STATE_HOME": dir}, append(args, "--json")...)
		require.Equal(t, exitUsage, r.code, "%s: %s", name, r.stderr)
	}
	notApp := filepath.Join(t.TempDir(), "table.bin")
	require.NoError(t, os.WriteFile(notApp, []byte{0xAA, 0x50, 1, 1}, 0o644))
	r := runCLI(t, map[string]string{"XDG_STATE_HOME": t.TempDir()}, "campaign", "run", "--image", notApp, "--host", "127.0.0.1", "--json")
	require.Equal(t, exitRefused, r.code, r.stdout)
}

func TestAuditWithoutALog(t *testing.T) {
	r := runCLI(t, map[string]string{"XDG_STATE_HOME": t.TempDir()}, "audit", "--json")
	require.Equal(t, exitOK, r.code)
	require.EqualValues(t, 0, lastResult(t, r.stdout)["count"])
	r = runCLI(t, nil, "audit", "--since", "yesterday")
	require.Equal(t, exitUsage, r.code)
}

func TestCampaignExplainsARollbackOverSerial(t *testing.T) {
	port, _ := simBoard(t)
	dir := t.TempDir()
	r := runCLI(t, map[string]string{"XDG_STATE_HOME": dir, "ESPDECK_BAUD": "115200"}, "campaign", "run", "--demo",
		"--image", campaignImage(t, "1.0.0"), "--max-failures", "5", "--explain", "porch="+port, "--json")
	require.Equal(t, exitSomeFailed, r.code, r.stderr)
	var explained []map[string]any
	for _, ev := range jsonLines(t, r.stdout) {
		if ev["event"] == "explain" {
			explained = append(explained, ev)
		}
	}
	require.Len(t, explained, 1, "only the rolled-back board named with --explain is read")
	require.Equal(t, "porch", explained[0]["name"])
	require.EqualValues(t, exitOK, explained[0]["exit_code"])
	parts := explained[0]["partitions"].(map[string]any)
	require.Equal(t, "ota_0", parts["boots_next"])
	require.Equal(t, "result", jsonLines(t, r.stdout)[len(jsonLines(t, r.stdout))-1]["event"], "the campaign's result stays last")
}

func TestCampaignCtrlCLeavesAResumableFile(t *testing.T) {
	slow := otasim.Config{Faults: otasim.Faults{ReadRate: 32 << 10}}
	a, b := otaSim(t, slow), otaSim(t, slow)
	dir := t.TempDir()
	state := filepath.Join(dir, "c.json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if k == "ESPDECK_MDNS" {
			return "off"
		}
		return ""
	}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"campaign", "run", "--image", campaignImage(t, "2.0.0"), "--confirm", "0s", "--canary", "0",
			"--host", a.Addr().String(), "--host", b.Addr().String(), "--state", state, "--audit", filepath.Join(dir, "a.jsonl"), "--json"},
			strings.NewReader(""), &out, &errb, getenv)
	}()
	// Ctrl-C once the campaign file says a board is sending.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if f, err := campaign.Load(state); err == nil && f.Rows[0].State == campaign.Uploading {
			break
		}
		require.True(t, time.Now().Before(deadline), "no board started uploading")
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	code := <-done
	require.Equal(t, exitInterrupted, code, errb.String())
	res := lastResult(t, out.String())
	require.Equal(t, "interrupted", res["error"])
	require.Contains(t, res["hint"], "campaign resume "+state)
	f, err := campaign.Load(state)
	require.NoError(t, err)
	require.True(t, f.Interrupted)
	require.Equal(t, 2, campaign.Resume(f), "both boards go back to the queue")
}
