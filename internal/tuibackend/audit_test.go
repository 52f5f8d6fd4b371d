package tuibackend_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/internal/tuibackend/tuibackendtest"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
	"github.com/espdeck/espdeck/tui"
)

// demoBackend starts the demo fleet and a backend on it with cfg (its
// Watcher and APIKey filled in), and returns the devices by name once
// discovery has listed them all.
func demoBackend(t *testing.T, ctx context.Context, cfg tuibackend.Config) (*demo.Fleet, tui.Backend, map[string]tui.Device) {
	t.Helper()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { fleet.Close() })
	cfg.Watcher = discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true})
	cfg.APIKey = func(d tui.Device) (string, bool) { return fleet.APIKeyFor(d.ID) }
	if cfg.OpenSerialPort == nil {
		cfg.OpenSerialPort = fleet.OpenSerialPort
	}
	be := tuibackend.New(cfg).TUI()
	devs := tuibackendtest.Devices(t, ctx, be.Devices, len(fleet.Devices))
	return fleet, be, devs
}

// readRecords reads an audit log strictly: every line one well-formed
// record (audit.Read would skip a bad line; a test must not).
func readRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var recs []audit.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r audit.Record
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&r), "line %q", sc.Text())
		recs = append(recs, r)
	}
	require.NoError(t, sc.Err())
	return recs
}

// requireNoSecret fails when a secret appears in any value of the JSON
// file at path, one document or one per line. The operator, host and
// path fields are the computer's own names (user, machine, folders),
// which a short demo password could happen to be part of; they are
// checked to be no secret by equality.
func requireNoSecret(t *testing.T, path string, secrets ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(b))
	n := 0
	for dec.More() {
		var v any
		require.NoError(t, dec.Decode(&v))
		walkStrings(v, "", func(key, s string) {
			n++
			for _, secret := range secrets {
				if key == "operator" || key == "host" || key == "path" {
					require.NotEqual(t, secret, s, "%s: %s is a secret", path, key)
					continue
				}
				require.NotContains(t, s, secret, "%s: %s holds a secret", path, key)
			}
		})
	}
	require.Positive(t, n, "%s holds no values to check", path)
	for _, secret := range secrets {
		if len(secret) > 16 { // long enough to be nothing else: not anywhere in the bytes
			require.NotContains(t, string(b), secret, path)
		}
	}
}

func walkStrings(v any, key string, f func(key, s string)) {
	switch v := v.(type) {
	case string:
		f(key, v)
	case map[string]any:
		for k, x := range v {
			f("", k)
			walkStrings(x, k, f)
		}
	case []any:
		for _, x := range v {
			walkStrings(x, key, f)
		}
	}
}

func sha256Of(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Every flash job of an app image, whichever its protocol and however it
// ends, leaves one record in the audit log, the command line's shape:
// protocol, auth scheme, board, address, chip, image SHA-256, bytes,
// duration and result code, and never the password or the API key.
func TestFlashJobsAreAudited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logPath := filepath.Join(t.TempDir(), "state", "audit.jsonl")
	fleet, be, devs := demoBackend(t, ctx, tuibackend.Config{ConnectTimeout: 2 * time.Second, AuditLog: logPath})
	app := fleet.Files[0] // bench-fixture v2.8.0, ESP32
	sum := sha256Of(t, app)

	jobs := []struct {
		name     string
		password tui.Secret
		code     string // "" for success
	}{
		{"greenhouse-ctl", demo.Password, ""},  // ArduinoOTA, PBKDF2
		{"front-door-lock", "", ""},            // ESPHome, encrypted with the API key
		{"garage-door", "", "no_connect_back"}, // never connects back
		{"hall-sensor", "", ""},                // ESPHome wants a password it does not announce
	}
	hallCode := ""
	for _, j := range jobs {
		res := be.Flasher.Flash(ctx, tui.FlashRequest{Device: devs[j.name], File: app, Password: j.password}, func(tui.Progress) {})
		switch j.name {
		case "hall-sensor":
			require.False(t, res.OK())
			require.True(t, res.AuthFailed, res.Error)
			require.NotEmpty(t, res.Code)
			hallCode = res.Code
		default:
			require.Equal(t, j.code, res.Code, "%s: %s", j.name, res.Error)
		}
		require.Empty(t, res.Warnings, j.name)
	}
	// A serial job writes the app into the board's free OTA slot (or is
	// refused); either way it is an attempt on the board and recorded with
	// what the ROM told: its MAC and chip.
	serial := be.Flasher.Flash(ctx, tui.FlashRequest{Device: devs["bench-3"], Route: tui.RouteSerial, File: app}, func(tui.Progress) {})

	recs := readRecords(t, logPath)
	require.Len(t, recs, len(jobs)+1, "one record per attempt")
	by := map[string]audit.Record{}
	for _, r := range recs {
		by[r.Board] = r
		require.Equal(t, audit.KindUpdate, r.Kind)
		require.Equal(t, sum, r.ImageSHA256, r.Board)
		require.Equal(t, filepath.Base(app), r.Image)
		require.Equal(t, "v2.8.0", r.ToVersion)
		require.Equal(t, 1, r.Attempt)
		require.Empty(t, r.Campaign, "a job is not part of a campaign")
		require.NotEmpty(t, r.Address, r.Board)
		require.NotEmpty(t, r.Result, r.Board)
		require.False(t, r.Time.IsZero())
	}
	gh := by["greenhouse-ctl"]
	require.Equal(t, "ok", gh.Result)
	require.Equal(t, "arduino-ota", gh.Protocol)
	require.Equal(t, "pbkdf2-sha256", gh.Auth)
	require.Equal(t, "esp32", gh.Chip)
	require.Positive(t, gh.Bytes)
	fd := by["front-door-lock"]
	require.Equal(t, "ok", fd.Result)
	require.Equal(t, "esphome", fd.Protocol)
	require.Contains(t, fd.Auth, "noise", "the session was encrypted")
	require.Equal(t, "f4:12:fa:33:44:03", fd.MAC)
	require.Equal(t, "no_connect_back", by["garage-door"].Result)
	require.NotEmpty(t, by["garage-door"].Message)
	require.Zero(t, by["garage-door"].Bytes, "it never connected back: nothing was sent")
	require.Equal(t, hallCode, by["hall-sensor"].Result)
	bench := by["bench-3"]
	require.Equal(t, "serial", bench.Protocol)
	require.Equal(t, fleet.SerialPath, bench.Address)
	require.Equal(t, "esp32", bench.Chip, "the chip the ROM told")
	require.NotEmpty(t, bench.MAC, "the MAC the ROM told")
	if serial.OK() {
		require.Equal(t, "ok", bench.Result)
	} else {
		require.Equal(t, serial.Code, bench.Result)
	}
	requireNoSecret(t, logPath, demo.Password, demo.APIKey)
}

// An audit log that cannot be written costs the job nothing: the job
// reports its real outcome, success or failure, with a warning that
// names the log's problem.
func TestUnwritableAuditLogIsAWarningNotAFailure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-folder")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o600))
	logPath := filepath.Join(blocker, "audit.jsonl") // its folder is a file
	fleet, be, devs := demoBackend(t, ctx, tuibackend.Config{ConnectTimeout: 2 * time.Second, AuditLog: logPath})
	app := fleet.Files[0]

	ok := be.Flasher.Flash(ctx, tui.FlashRequest{Device: devs["porch-light"], File: app}, func(tui.Progress) {})
	require.True(t, ok.OK(), ok.Error)
	require.Len(t, ok.Warnings, 1)
	require.Contains(t, ok.Warnings[0], "no audit record of this update")
	require.Contains(t, ok.Warnings[0], "not-a-folder", "the warning names the path that failed")
	require.Eventually(t, func() bool { return len(fleet.Sessions("porch-light")) == 1 }, 30*time.Second, 10*time.Millisecond,
		"the image was sent all the same")

	failed := be.Flasher.Flash(ctx, tui.FlashRequest{Device: devs["garage-door"], File: app}, func(tui.Progress) {})
	require.False(t, failed.OK())
	require.Equal(t, "no_connect_back", failed.Code, "the job's own failure, not the log's")
	require.NotEmpty(t, failed.Hint)
	require.Len(t, failed.Warnings, 1)
}

// A TUI campaign whose folder and audit log cannot be written still runs,
// in memory, and says so: the view carries the warnings.
func TestCampaignWithoutWritableStateRunsAndWarns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "not-a-folder")
	require.NoError(t, os.WriteFile(blocker, []byte("x"), 0o600))
	fleet, be, devs := demoBackend(t, ctx, tuibackend.Config{CampaignConfirm: -1,
		AuditLog: filepath.Join(blocker, "audit.jsonl"), CampaignDir: filepath.Join(blocker, "campaigns")})
	var reqs []tui.FlashRequest
	for _, n := range []string{"kitchen-plug", "porch-light"} {
		reqs = append(reqs, tui.FlashRequest{Device: devs[n], File: fleet.Files[0]})
	}
	v := tuibackendtest.NewViews()
	require.NoError(t, be.Campaigns.StartCampaign(ctx, tui.CampaignRequest{Boards: reqs, Canary: 1}, v.Update))
	cv := v.Wait(t, ctx)
	require.Equal(t, 2, cv.Summary.Uploaded, "the boards were updated all the same")
	require.Empty(t, cv.File, "no file: the campaign lives in this run only")
	require.Len(t, cv.Warnings, 2, "%q", cv.Warnings)
	require.Contains(t, cv.Warnings[0], "not saved")
	require.Contains(t, cv.Warnings[1], "no audit records")
}

// Quitting the TUI cancels a running campaign: Wait lets it save its file
// and its audit records, and names the file, which resumes the boards
// that were cut short or never started.
func TestInterruptedCampaignIsSavedResumable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := filepath.Join(t.TempDir(), "state")
	cfg := tuibackend.Config{CampaignConfirm: -1, AuditLog: filepath.Join(state, "audit.jsonl"), CampaignDir: filepath.Join(state, "campaigns")}
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()
	cfg.Watcher = discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true})
	backend := tuibackend.New(cfg)
	be := backend.TUI()
	devs := tuibackendtest.Devices(t, ctx, be.Devices, len(fleet.Devices))

	runCtx, quit := context.WithCancel(ctx)
	defer quit()
	var reqs []tui.FlashRequest
	for _, n := range []string{"weather-station", "porch-light"} { // the slow board is the canary
		reqs = append(reqs, tui.FlashRequest{Device: devs[n], File: fleet.Files[1]}) // 900 KiB
	}
	v := tuibackendtest.NewViews()
	sending := make(chan struct{})
	var once sync.Once
	update := func(cv tui.CampaignView) {
		for _, r := range cv.Rows {
			if r.State == "uploading" && r.Done > 0 {
				once.Do(func() { close(sending) })
			}
		}
		v.Update(cv)
	}
	require.NoError(t, be.Campaigns.StartCampaign(runCtx, tui.CampaignRequest{Boards: reqs, Canary: 1}, update))
	select {
	case <-sending:
	case <-ctx.Done():
		t.Fatal("the canary never started sending")
	}
	quit() // as quitting the TUI does

	files, err := backend.Wait(ctx)
	require.NoError(t, err)
	require.Len(t, files, 1)
	cv := v.Wait(t, ctx)
	require.True(t, cv.Interrupted)
	require.Equal(t, cv.File, files[0])

	cf, err := campaign.Load(files[0])
	require.NoError(t, err)
	require.True(t, cf.Interrupted)
	require.Equal(t, 2, campaign.Resume(cf), "the canary cut short and the board never started")
	recs := readRecords(t, cfg.AuditLog)
	require.Len(t, recs, 1, "one attempt: the canary's")
	require.Equal(t, "weather-station", recs[0].Board)
	require.Equal(t, "interrupted", recs[0].Result)
	require.Equal(t, cf.ID, recs[0].Campaign)
}

// In a TUI campaign a board that nothing announces after its reboot does
// not make the campaign wait for it and then count it failed: a serial
// board ends on what its partitions say boots next, read back from the
// board (as the command line's serial campaigns do), and a host added by
// hand ends uploaded, not checked. The confirmation wait is the default
// minute, so a wait would show as a timed-out board.
func TestUnannouncedBoardsInACampaignEndWithoutWaiting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	flash, err := ops.DemoFlash(firmware.ChipESP32) // ota_0 runs and boots next; ota_1 is free
	require.NoError(t, err)
	port, rom, stop, err := romsim.StartPTY(ctx, romsim.Config{Chip: firmware.ChipESP32, FlashImage: flash})
	require.NoError(t, err)
	defer stop()
	host := otasimDevice(t, ctx)
	ap := host.Addr()

	file := filepath.Join(t.TempDir(), "app.bin")
	data := ops.DemoAppImage(firmware.ChipESP32, "bench", "3.0.0", 60_000)
	require.NoError(t, os.WriteFile(file, data, 0o644))
	static := []discovery.Device{
		{ID: "serial/bench", Name: "bench", Protocol: discovery.ProtocolSerial, Path: port},
		{ID: "manual/by-hand", Name: "by-hand", Protocol: discovery.ProtocolManual, Host: ap.Addr().String(),
			Addrs: []netip.Addr{ap.Addr()}, Port: int(ap.Port()), Board: "esp32"},
	}
	backend := tuibackend.New(tuibackend.Config{
		Watcher: discovery.New(discovery.Options{Static: static, DisableMDNS: true, DisableSerial: true}),
		Serial: serialflash.Options{Before: serialflash.ResetNone, ConnectAttempts: 3, SyncTries: 3,
			SyncTimeout: 300 * time.Millisecond, CommandTimeout: 5 * time.Second, BootLogWait: 50 * time.Millisecond},
	})
	be := backend.TUI()
	devs := tuibackendtest.Devices(t, ctx, be.Devices, len(static))
	v := tuibackendtest.NewViews()
	reqs := []tui.FlashRequest{{Device: devs["bench"], Route: tui.RouteSerial, File: file}, {Device: devs["by-hand"], File: file}}
	require.NoError(t, be.Campaigns.StartCampaign(ctx, tui.CampaignRequest{Boards: reqs, Canary: 1}, v.Update))
	cv := v.Wait(t, ctx)
	require.Equal(t, campaign.DefaultConfirm, cv.Confirm, "confirmation is on")
	rows := map[string]tui.CampaignRow{}
	for _, r := range cv.Rows {
		rows[r.Name] = r
	}
	require.Equal(t, "uploaded", rows["bench"].State, rows["bench"].Message)
	require.Equal(t, campaign.ConfirmBootSlot, rows["bench"].Confirmation)
	require.Equal(t, "3.0.0", rows["bench"].Running)
	require.Contains(t, rows["bench"].Message, "ota_1 boots next")
	require.Equal(t, data, rom.Flash()[0x210000:0x210000+len(data)], "the image went into the free slot")
	require.Equal(t, "uploaded", rows["by-hand"].State, rows["by-hand"].Message)
	require.Equal(t, campaign.ConfirmNotChecked, rows["by-hand"].Confirmation)
	require.Contains(t, rows["by-hand"].Message, "added by hand")
}

func otasimDevice(t *testing.T, ctx context.Context) *otasim.Device {
	t.Helper()
	d, err := otasim.New(otasim.Config{ReceiveTimeout: 5 * time.Second, OKDelay: 20 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, d.Start(ctx))
	t.Cleanup(func() { d.Close() })
	return d
}

// Once the program is quitting (Wait began), a campaign asked for at that
// moment does not start: nothing is sent, the view says it is not
// running, and Wait is not raced by a new run.
func TestNoCampaignStartsOnceQuitting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, _, devs := demoBackend(t, ctx, tuibackend.Config{CampaignConfirm: -1})
	backendCfg := tuibackend.Config{CampaignConfirm: -1,
		Watcher: discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true})}
	backend := tuibackend.New(backendCfg)
	files, err := backend.Wait(ctx)
	require.NoError(t, err)
	require.Empty(t, files)
	v := tuibackendtest.NewViews()
	req := tui.FlashRequest{Device: devs["porch-light"], File: fleet.Files[0]}
	require.NoError(t, backend.TUI().Campaigns.StartCampaign(ctx, tui.CampaignRequest{Boards: []tui.FlashRequest{req}, Canary: 1}, v.Update))
	cv := v.Wait(t, ctx)
	require.False(t, cv.Running)
	require.Zero(t, cv.Summary.Uploaded+cv.Summary.Confirmed+cv.Summary.Failed, "nothing was sent")
}
