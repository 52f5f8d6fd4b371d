package campaign

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/firmware"
)

// testAPIKey is base64 of 32 bytes, for the simulated encrypted boards.
const testAPIKey = "Y2FtcGFpZ24tdGVzdC1hcGkta2V5LTMyLWJ5dGVzISE="

// esphomeBoard is one simulated ESPHome board of a test fleet.
type esphomeBoard struct {
	name, version string
	next          string // version after an update; "" keeps the old one (the board rolled back)
	password      bool
	encrypt       bool
	board         string // ESPHome board id (esp32dev, esp32-s3-devkitc-1)
	// fault, when set, changes the simulator's configuration (faults).
	fault func(*esphomesim.Config)
}

// addESPHome starts ESPHome boards on loopback; each reboot is announced
// to the fleet's Roster the way mDNS would (gone, then back with the
// running project version).
func (f *fleet) addESPHome(t *testing.T, specs ...esphomeBoard) map[string]*esphomesim.Device {
	t.Helper()
	sims := map[string]*esphomesim.Device{}
	for _, s := range specs {
		id := "esphome/" + s.name
		var addr string
		cfg := esphomesim.Config{Name: s.name, Board: cmpOr(s.board, "esp32dev"), FirmwareVersion: s.version, NextVersion: s.next,
			RebootDelay: 20 * time.Millisecond, OnAnnounce: f.announce(id, &addr, false)}
		if s.password {
			cfg.Password = testPassword
		}
		if s.encrypt {
			cfg.APIKey, cfg.RequireEncryption = testAPIKey, true
		}
		if s.fault != nil {
			s.fault(&cfg)
		}
		d, err := esphomesim.New(cfg)
		require.NoError(t, err)
		require.NoError(t, d.Start(context.Background()))
		t.Cleanup(func() { d.Close() })
		addr = d.Addr().String()
		f.roster.Seen(id, addr, s.version)
		sims[s.name] = d
		f.boards = append(f.boards, Board{ID: id, Name: s.name, Protocol: "esphome", Address: addr, Chip: "esp32", Version: s.version})
	}
	return sims
}

// withESPHome adds the ESPHome flasher with the fleet's password and,
// when key, the API key (then every ESPHome board must encrypt).
func withESPHome(h *harness, key bool) {
	e := ESPHome{Password: esphomeota.Secret(testPassword), Options: esphomeota.Options{ConnectTimeout: 5 * time.Second}}
	if key {
		e.APIKey = esphomeota.Secret(testAPIKey)
	}
	h.runner.Flashers["esphome"] = e
}

func TestMixedArduinoAndESPHomeCampaignIsConfirmed(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "arduino-1", version: "1.0.0", chip: "esp32"},
		simBoard{name: "arduino-2", version: "1.0.0", chip: "esp32"},
	)
	sims := fl.addESPHome(t,
		esphomeBoard{name: "kitchen", version: "1.0.0", next: "2.0.0"},
		esphomeBoard{name: "porch", version: "1.0.0", next: "2.0.0", password: true},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	withESPHome(h, false)
	s := settings(30 * time.Second)
	s.Threshold = Threshold{Count: 5}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	require.Equal(t, OutcomeOK, got.Outcome())
	for _, r := range got.Rows {
		require.Equal(t, Confirmed, r.State, "%s: %s %s", r.Board.Name, r.Code, r.Message)
		require.Equal(t, "2.0.0", r.Running)
	}
	for name, d := range sims {
		recs := d.Records()
		require.Len(t, recs, 1, name)
		require.Equal(t, data, recs[0].Image, "%s received the image whole", name)
		require.Equal(t, 1, d.Reboots(), name)
	}
	want := map[string]string{"kitchen": "none", "porch": "sha256"}
	byBoard := map[string]string{}
	for _, rec := range h.records(t) {
		byBoard[rec.Board] = rec.Auth
		require.Equal(t, "ok", rec.Result, rec.Board)
		require.Equal(t, ConfirmConfirmed, rec.Confirmation, rec.Board)
		if strings.HasPrefix(rec.Board, "arduino") {
			require.Equal(t, "arduino-ota", rec.Protocol)
		} else {
			require.Equal(t, "esphome", rec.Protocol)
		}
	}
	for name, auth := range want {
		require.Equal(t, auth, byBoard[name], "%s: the audit says how the board was reached", name)
		require.Equal(t, auth, rowOf(t, got, name).Auth)
	}
	require.Len(t, byBoard, 4, "one audit record per board")
	requireNoSecrets(t, h)
}

func TestESPHomeBoardBackOnTheOldVersionRolledBack(t *testing.T) {
	fl := &fleet{roster: NewRoster()}
	fl.addESPHome(t,
		esphomeBoard{name: "good", version: "1.0.0", next: "2.0.0"},
		esphomeBoard{name: "stubborn", version: "1.0.0"}, // reboots, still 1.0.0
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	withESPHome(h, false)
	s := settings(30 * time.Second)
	s.Threshold = Threshold{Count: 5}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	require.Equal(t, OutcomeSomeFailed, got.Outcome())
	require.Equal(t, Confirmed, rowOf(t, got, "good").State)
	rb := rowOf(t, got, "stubborn")
	require.Equal(t, RolledBack, rb.State, rb.Message)
	require.Equal(t, "1.0.0", rb.Running)
	for _, rec := range h.records(t) {
		if rec.Board == "stubborn" {
			require.Equal(t, "rolled_back", rec.Result)
		}
	}
	requireNoSecrets(t, h)
}

func TestESPHomeWithAnAPIKeyEncryptsAndRefusesBoardsThatCannot(t *testing.T) {
	// One key for the campaign: every ESPHome board must take an encrypted
	// session; one that does not offer it gets nothing (no downgrade).
	fl := &fleet{roster: NewRoster()}
	sims := fl.addESPHome(t,
		esphomeBoard{name: "attic", version: "1.0.0", next: "2.0.0", password: true, encrypt: true},
		esphomeBoard{name: "plain", version: "1.0.0", next: "2.0.0", password: true},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	withESPHome(h, true)
	s := settings(30 * time.Second)
	s.Threshold = Threshold{Count: 5}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	attic := rowOf(t, got, "attic")
	require.Equal(t, Confirmed, attic.State, attic.Message)
	require.Equal(t, "noise", attic.Auth, "the key authenticated the session; the device asked no password")
	require.True(t, sims["attic"].Records()[0].Encrypted)
	plain := rowOf(t, got, "plain")
	require.Equal(t, Failed, plain.State)
	require.Equal(t, "encryption_not_offered", plain.Code)
	require.Zero(t, sims["plain"].Updates(), "nothing was written to the board that cannot encrypt")
	auths := map[string]string{}
	for _, rec := range h.records(t) {
		auths[rec.Board] = rec.Auth
	}
	require.Equal(t, "noise", auths["attic"])
	requireNoSecrets(t, h)
}

func TestAuthLabel(t *testing.T) {
	for _, c := range []struct {
		scheme string
		enc    bool
		want   string
	}{{"", false, "none"}, {"none", false, "none"}, {"sha256", false, "sha256"}, {"md5", false, "md5"},
		{"none", true, "noise"}, {"sha256", true, "sha256+noise"}} {
		require.Equal(t, c.want, AuthLabel(c.scheme, c.enc), "%+v", c)
	}
}

func TestESPHomeWrongPasswordFailsWithItsCode(t *testing.T) {
	fl := &fleet{roster: NewRoster()}
	fl.addESPHome(t, esphomeBoard{name: "locked", version: "1.0.0", next: "2.0.0", password: true})
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	h.runner.Flashers["esphome"] = ESPHome{Password: "not-the-password", Options: esphomeota.Options{ConnectTimeout: 5 * time.Second}}
	plan, err := Plan(fl.boards, []Image{img}, settings(30*time.Second), time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	row := rowOf(t, got, "locked")
	require.Equal(t, Failed, row.State)
	require.True(t, strings.Contains(row.Code, "auth") || strings.Contains(row.Code, "password"), "code %q", row.Code)
	require.NotEmpty(t, row.Hint)
	require.NotContains(t, row.Message, "not-the-password")
	require.Equal(t, OutcomeStopped, got.Outcome(), "the canary failed")
}

func TestESPHomeAsksForThePasswordWhenABoardWantsOne(t *testing.T) {
	fl := &fleet{roster: NewRoster()}
	sims := fl.addESPHome(t, esphomeBoard{name: "locked", version: "1.0.0", next: "2.0.0", password: true})
	_, data := image(t, firmware.ChipESP32, "2.0.0")
	asked := 0
	e := ESPHome{Options: esphomeota.Options{ConnectTimeout: 5 * time.Second},
		AskPassword: func(context.Context) (esphomeota.Secret, error) { asked++; return testPassword, nil }}
	res, err := e.Flash(t.Context(), fl.boards[0], Image{}, data, nil)
	require.NoError(t, err)
	require.Equal(t, 1, asked)
	require.Equal(t, "sha256", res.Auth)
	recs, err := sims["locked"].WaitRecords(t.Context(), 2) // refused without a password, then the upload
	require.NoError(t, err)
	require.Equal(t, "sha256", recs[1].Auth)
	require.Equal(t, data, recs[1].Image)

	// A board without a password is never asked about one.
	open := &fleet{roster: NewRoster()}
	open.addESPHome(t, esphomeBoard{name: "open", version: "1.0.0", next: "2.0.0"})
	_, err = e.Flash(t.Context(), open.boards[0], Image{}, data, nil)
	require.NoError(t, err)
	require.Equal(t, 1, asked)
}

func TestESPHomeFlasherRefusesAnotherChipsImage(t *testing.T) {
	fl := &fleet{roster: NewRoster()}
	sims := fl.addESPHome(t, esphomeBoard{name: "s3", version: "1.0.0", next: "2.0.0"})
	_, data := image(t, firmware.ChipESP32, "2.0.0")
	b := fl.boards[0]
	b.Chip = "esp32s3"
	_, err := ESPHome{}.Flash(t.Context(), b, Image{}, data, nil)
	require.Error(t, err)
	code, hint := Classify(t.Context(), err)
	require.Equal(t, "refused", code)
	require.NotEmpty(t, hint)
	require.Empty(t, sims["s3"].Records(), "nothing was sent")
}

// requireNoSecrets reads the audit log and the campaign file whole: no
// password and no API key may appear in either.
func requireNoSecrets(t *testing.T, h *harness) {
	t.Helper()
	for _, p := range []string{h.audit, h.path} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, secret := range []string{testPassword, testAPIKey} {
			require.NotContains(t, string(b), secret, "%s holds a secret", p)
		}
	}
}

func TestESPHomeChipNeverFromThePlatformAlone(t *testing.T) {
	dev := func(platform, board string, txt map[string]string) discovery.Device {
		return discovery.Device{Protocol: discovery.ProtocolESPHome, Platform: platform, Board: board, TXT: txt}
	}
	require.Equal(t, "esp32s3", AnnouncedChip(dev("ESP32", "esp32-s3-devkitc-1", nil)))
	require.Equal(t, "esp32", AnnouncedChip(dev("ESP32", "esp32dev", nil)))
	require.Equal(t, "esp8266", AnnouncedChip(dev("ESP8266", "d1_mini", nil)))
	require.Equal(t, "", AnnouncedChip(dev("ESP32", "my-custom-board", nil)), "ESP32 is every variant: unknown")
	require.Equal(t, "esp32c3", AnnouncedChip(dev("ESP32", "my-custom-board", map[string]string{"variant": "ESP32C3"})))
}

func TestESPHomeDroppedUploadFailsAndResumeFinishesIt(t *testing.T) {
	// The connection drops mid-image on the first session only: the board
	// keeps its firmware (nothing committed), the row fails with the
	// transfer's word, and resume sends it again.
	fl := &fleet{roster: NewRoster()}
	sims := fl.addESPHome(t, esphomeBoard{name: "flaky", version: "1.0.0", next: "2.0.0",
		fault: func(c *esphomesim.Config) { c.DropAfter, c.FaultSessions = 8192, 1 }})
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	h.runner.Flashers["esphome"] = ESPHome{Password: testPassword, Options: esphomeota.Options{ConnectTimeout: 5 * time.Second, Retries: -1}}
	plan, err := Plan(fl.boards, []Image{img}, settings(30*time.Second), time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	row := rowOf(t, got, "flaky")
	require.Equal(t, Failed, row.State)
	require.Equal(t, "1.0.0", sims["flaky"].FirmwareVersion(), "a dropped upload changes nothing on the board")
	require.NotEmpty(t, row.Code)
	require.NotEmpty(t, row.Hint)

	require.Equal(t, 1, Resume(got))
	done := run(t, h, got)
	require.Equal(t, Confirmed, rowOf(t, done, "flaky").State)
	var results []string
	for _, r := range h.records(t) {
		results = append(results, r.Result)
	}
	require.Len(t, results, 2)
	require.Equal(t, row.Code, results[0])
	require.Equal(t, "ok", results[1])
}

func TestESPHomeCtrlCMidUploadLeavesTheBoardAndAResumableFile(t *testing.T) {
	fl := &fleet{roster: NewRoster()}
	sims := fl.addESPHome(t, esphomeBoard{name: "slow", version: "1.0.0", next: "2.0.0",
		// A board that writes flash slowly (about 2.5 s for the image), so
		// the Ctrl-C lands while it is still working on the image.
		fault: func(c *esphomesim.Config) { c.ByteDelay = 100 * time.Microsecond }})
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	withESPHome(h, false)
	s := settings(30 * time.Second)
	s.Outdated = true
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h.runner.OnEvent = func(ev Event) {
		if ev.Progress && ev.Row.Board.Name == "slow" {
			cancel() // Ctrl-C once the image is on its way
		}
	}
	require.NoError(t, h.runner.Run(ctx, plan))
	saved, err := Load(h.path)
	require.NoError(t, err)
	require.Equal(t, OutcomeInterrupted, saved.Outcome())
	row := rowOf(t, saved, "slow")
	require.Equal(t, Queued, row.State, "an interrupted upload is not a failure of the board")
	require.Equal(t, "interrupted", row.Code)

	// ESPHome's device finishes on its own once it holds every byte: a
	// client that stops after sending the last one cannot take the
	// update back. Either way the board is never left half-written, and
	// resume ends with it on the image's version: sent again (harmless
	// when the device had committed it already), or skipped because it
	// already announces it.
	recs, err := sims["slow"].WaitRecords(ctx2(t), 1)
	require.NoError(t, err)
	committed := recs[0].Outcome == 0x45
	if !committed {
		require.Equal(t, "1.0.0", sims["slow"].FirmwareVersion(), "the board keeps its firmware")
	}
	require.Equal(t, 1, Resume(saved))
	h.runner.OnEvent = nil
	done := run(t, h, saved)
	final := rowOf(t, done, "slow")
	require.Contains(t, []State{Confirmed, Skipped}, final.State, final.Message)
	require.Equal(t, "2.0.0", sims["slow"].FirmwareVersion())
	for _, rec := range sims["slow"].Records() {
		if rec.Outcome == 0x45 {
			require.Equal(t, data, rec.Image, "every commit was of the whole image")
		}
	}
}

func ctx2(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
