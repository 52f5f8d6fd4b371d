package campaign

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/ops"
)

const testPassword = "campaign-Secret-7f3a"

// simBoard is one simulated board of a test fleet.
type simBoard struct {
	name    string
	version string // running at start
	chip    string // announced chip ("" unknown)
	outcome otasim.RebootOutcome
	faults  otasim.Faults
	noTXT   bool // announces no version
}

type fleet struct {
	roster *Roster
	boards []Board
	sims   map[string]*otasim.Device
}

// startFleet runs the boards on loopback; each announces itself (and its
// reboots) to the fleet's Roster, the test's static discovery source.
func startFleet(t *testing.T, specs ...simBoard) *fleet {
	t.Helper()
	f := &fleet{roster: NewRoster(), sims: map[string]*otasim.Device{}}
	for _, s := range specs {
		id := "sim/" + s.name
		var addr string
		cfg := otasim.Config{Name: s.name, Password: testPassword, ReceiveTimeout: 5 * time.Second, Faults: s.faults,
			Reboot: &otasim.Reboot{Version: s.version, Down: 20 * time.Millisecond, Outcome: s.outcome,
				OnAnnounce: f.announce(id, &addr, s.noTXT)}}
		d, err := otasim.New(cfg)
		require.NoError(t, err)
		require.NoError(t, d.Start(context.Background()))
		t.Cleanup(func() { d.Close() })
		addr = d.Addr().String()
		v := s.version
		if s.noTXT {
			v = ""
		}
		f.roster.Seen(id, addr, v)
		f.sims[s.name] = d
		f.boards = append(f.boards, Board{ID: id, Name: s.name, Protocol: "arduino-ota", Address: addr, Chip: s.chip, Version: v})
	}
	return f
}

// announce is what a simulated board calls on each reboot: gone, then
// back at *addr (set once the board listens) with the version it runs,
// or none when hideVersion, the way mDNS would tell the Roster.
func (f *fleet) announce(id string, addr *string, hideVersion bool) func(up bool, v string) {
	return func(up bool, v string) {
		if !up {
			f.roster.Gone(id)
			return
		}
		if hideVersion {
			v = ""
		}
		f.roster.Seen(id, *addr, v)
	}
}

func (f *fleet) sessions(name string) []otasim.Session { return f.sims[name].Sessions() }

// image writes an app image for chip with version and loads it.
func image(t *testing.T, chip firmware.Chip, version string) (Image, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), ops.ChipKey(chip)+"-"+version+".bin")
	require.NoError(t, os.WriteFile(p, ops.DemoAppImage(chip, "fleet-app", version, 24_000), 0o644))
	img, data, err := LoadImage(p)
	require.NoError(t, err)
	return img, data
}

type harness struct {
	runner *Runner
	path   string
	audit  string
	mu     sync.Mutex
	events []Event
}

func newHarness(t *testing.T, f *fleet, images map[string][]byte) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{path: filepath.Join(dir, "campaign.json"), audit: filepath.Join(dir, "audit.jsonl")}
	log, err := audit.Open(h.audit)
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	h.runner = &Runner{
		Path: h.path, Presence: f.roster, Audit: log, Images: images,
		Flashers: map[string]Flasher{"arduino-ota": ArduinoOTA{Password: espota.Secret(testPassword),
			Options: espota.Options{InviteTimeout: 5 * time.Second, ConnectTimeout: 2 * time.Second}}},
		OnEvent: func(ev Event) {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
		},
	}
	return h
}

func (h *harness) records(t *testing.T) []audit.Record {
	t.Helper()
	fh, err := os.Open(h.audit)
	require.NoError(t, err)
	defer fh.Close()
	recs, skipped, err := audit.Read(fh, audit.Filter{})
	require.NoError(t, err)
	require.Zero(t, skipped, "every line of the audit log is a record")
	return recs
}

func rowOf(t *testing.T, f *File, name string) Row {
	t.Helper()
	for _, r := range f.Rows {
		if r.Board.Name == name {
			return r
		}
	}
	t.Fatalf("no row for %s", name)
	return Row{}
}

func settings(confirm time.Duration) Settings {
	return Settings{Canary: 1, Parallel: 4, Confirm: confirm}
}

func run(t *testing.T, h *harness, f *File) *File {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, h.runner.Run(ctx, f))
	saved, err := Load(h.path)
	require.NoError(t, err)
	return saved
}

func TestOutdatedOnlySkipsBoardsOnTheTargetVersion(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "a", version: "1.0.0", chip: "esp32"},
		simBoard{name: "b", version: "2.0.0", chip: "esp32"},
		simBoard{name: "c", version: "1.9.0", chip: "esp32"},
		simBoard{name: "d", version: "2.0.0", chip: "esp32"},
		simBoard{name: "e", chip: "esp32", noTXT: true},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(30 * time.Second)
	s.Outdated, s.SkipUnknown = true, true
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	require.Equal(t, OutcomeOK, got.Outcome())
	for _, n := range []string{"b", "d"} {
		r := rowOf(t, got, n)
		require.Equal(t, Skipped, r.State, n)
		require.Equal(t, "up_to_date", r.Code)
		require.Empty(t, fl.sessions(n), "%s already runs 2.0.0: nothing is sent", n)
	}
	require.Equal(t, "version_unknown", rowOf(t, got, "e").Code)
	require.Empty(t, fl.sessions("e"))
	for _, n := range []string{"a", "c"} {
		r := rowOf(t, got, n)
		require.Equal(t, Confirmed, r.State, "%s: %s", n, r.Message)
		require.Equal(t, "2.0.0", r.Running)
		require.Len(t, fl.sessions(n), 1)
		require.True(t, bytes.Equal(data, fl.sessions(n)[0].Received))
	}
	require.False(t, rowOf(t, got, "b").Canary, "a skipped board is never the canary")
	require.Len(t, h.records(t), 2, "one audit record per attempt; skips are not attempts")
}

func TestCanaryFailureStopsBeforeTheFirstWave(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "canary", version: "1.0.0", chip: "esp32", faults: otasim.Faults{ErrorText: "ERROR[8]: Flash Write Failed"}},
		simBoard{name: "w1", version: "1.0.0", chip: "esp32"},
		simBoard{name: "w2", version: "1.0.0", chip: "esp32"},
		simBoard{name: "w3", version: "1.0.0", chip: "esp32"},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(30 * time.Second)
	s.Threshold = Threshold{Count: 10}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	require.Equal(t, OutcomeStopped, got.Outcome())
	require.Contains(t, got.StopReason, "canary")
	c := rowOf(t, got, "canary")
	require.True(t, c.Canary)
	require.Equal(t, Failed, c.State)
	require.Equal(t, "device_error", c.Code)
	for _, n := range []string{"w1", "w2", "w3"} {
		require.Equal(t, Queued, rowOf(t, got, n).State, "%s is left untouched", n)
		require.Empty(t, fl.sessions(n), "%s: nothing sent after a failed canary", n)
	}
	require.Equal(t, 3, got.Summarize().Untouched)
}

func TestThresholdStopsMidway(t *testing.T) {
	bad := otasim.Faults{ErrorText: "ERROR[8]: Flash Write Failed"}
	fl := startFleet(t,
		simBoard{name: "b0", version: "1", chip: "esp32"},
		simBoard{name: "b1", version: "1", chip: "esp32", faults: bad},
		simBoard{name: "b2", version: "1", chip: "esp32"},
		simBoard{name: "b3", version: "1", chip: "esp32", faults: bad},
		simBoard{name: "b4", version: "1", chip: "esp32"},
		simBoard{name: "b5", version: "1", chip: "esp32"},
	)
	img, data := image(t, firmware.ChipESP32, "2")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(30 * time.Second)
	s.Parallel = 1 // one at a time, so "mid-way" is one exact place
	s.Threshold = Threshold{Count: 1}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	require.Equal(t, OutcomeStopped, got.Outcome())
	require.Contains(t, got.StopReason, "2 of")
	want := map[string]State{"b0": Confirmed, "b1": Failed, "b2": Confirmed, "b3": Failed, "b4": Queued, "b5": Queued}
	for n, st := range want {
		require.Equal(t, st, rowOf(t, got, n).State, n)
	}
	require.Empty(t, fl.sessions("b4"))
	require.Empty(t, fl.sessions("b5"))
}

func TestPercentThreshold(t *testing.T) {
	th := Threshold{Percent: 20}
	require.False(t, th.Exceeded(1, 1), "one board of one is not yet a share")
	require.False(t, th.Exceeded(1, 5))
	require.True(t, th.Exceeded(2, 5))
	require.False(t, Threshold{Count: 2}.Exceeded(2, 3))
	require.True(t, Threshold{Count: 2}.Exceeded(3, 3))
}

func TestRollbackAndNoReturnAreNotDone(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "ok", version: "1.0.0", chip: "esp32"},
		simBoard{name: "rollback", version: "1.0.0", chip: "esp32", outcome: otasim.BootRollback},
		simBoard{name: "gone", version: "1.0.0", chip: "esp32", outcome: otasim.BootNever},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(3 * time.Second) // bounds the wait for the board that never returns
	s.Threshold = Threshold{Count: 5}
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	require.Equal(t, OutcomeSomeFailed, got.Outcome())
	require.Equal(t, Confirmed, rowOf(t, got, "ok").State)
	rb := rowOf(t, got, "rollback")
	require.Equal(t, RolledBack, rb.State, rb.Message)
	require.Equal(t, "1.0.0", rb.Running)
	require.Contains(t, rb.Hint, "otadata")
	gone := rowOf(t, got, "gone")
	require.Equal(t, TimedOut, gone.State)
	require.Equal(t, ConfirmTimedOut, gone.Confirmation)

	byBoard := map[string]audit.Record{}
	for _, r := range h.records(t) {
		byBoard[r.Board] = r
	}
	require.Equal(t, ConfirmRolledBack, byBoard["rollback"].Confirmation)
	require.Equal(t, "rolled_back", byBoard["rollback"].Result)
	require.Equal(t, "confirm_timeout", byBoard["gone"].Result)
	require.Equal(t, "ok", byBoard["ok"].Result)
	require.Equal(t, ConfirmTimedOut, byBoard["gone"].Confirmation)
	require.Equal(t, ConfirmConfirmed, byBoard["ok"].Confirmation)
}

func TestResumeTouchesOnlyFailedAndUnconfirmedBoards(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "a", version: "1.0.0", chip: "esp32"},
		simBoard{name: "b", version: "1.0.0", chip: "esp32", outcome: otasim.BootRollback},
		simBoard{name: "c", version: "2.0.0", chip: "esp32"},
		simBoard{name: "d", version: "1.0.0", chip: "esp32", faults: otasim.Faults{MD5Failure: true}},
		simBoard{name: "e", version: "1.0.0", chip: "esp32"},
		simBoard{name: "f", version: "1.0.0", chip: "esp32"},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(30 * time.Second)
	s.Parallel, s.Outdated = 1, true
	s.Threshold = Threshold{Count: 1} // stops after d: e and f never start
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	first := run(t, h, plan)
	require.Equal(t, OutcomeStopped, first.Outcome())
	require.Equal(t, Queued, rowOf(t, first, "e").State)

	loaded, err := Load(h.path)
	require.NoError(t, err)
	require.Equal(t, 4, Resume(loaded), "b (rolled back), d (failed), e and f (never started)")
	loaded.Settings.Threshold = Threshold{Count: 10}
	second := run(t, h, loaded)

	require.Len(t, fl.sessions("a"), 1, "a was confirmed: resume leaves it alone")
	require.Empty(t, fl.sessions("c"), "c was skipped as up to date")
	require.Len(t, fl.sessions("b"), 2)
	require.Len(t, fl.sessions("d"), 2)
	require.Len(t, fl.sessions("e"), 1)
	require.Len(t, fl.sessions("f"), 1)
	require.Equal(t, 2, rowOf(t, second, "d").Attempts)
	require.Equal(t, 1, rowOf(t, second, "a").Attempts)
	require.Equal(t, Confirmed, rowOf(t, second, "e").State)
	require.Equal(t, 2, second.Runs)

	// One record per attempt, each well formed, and no secret anywhere.
	recs := h.records(t)
	require.Len(t, recs, 1+2+2+1+1)
	for _, r := range recs {
		require.Equal(t, audit.KindUpdate, r.Kind)
		require.Equal(t, plan.ID, r.Campaign)
		require.NotZero(t, r.Attempt)
		require.Equal(t, "arduino-ota", r.Protocol)
		require.Equal(t, img.SHA256, r.ImageSHA256)
		require.Equal(t, "2.0.0", r.ToVersion)
		require.NotEmpty(t, r.Result)
		require.False(t, r.Time.IsZero())
		if r.Result != "device_error" {
			// espota reports the scheme only with a successful upload.
			require.Equal(t, "md5", r.Auth)
		}
	}
	for _, p := range []string{h.audit, h.path} {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		require.NotContains(t, string(b), testPassword, "%s holds the password", p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotContains(t, fmt.Sprintf("%+v", h.events), testPassword)
}

func TestMixedChipsNeverGetAnotherChipsImage(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "classic", version: "1", chip: "esp32"},
		simBoard{name: "s3", version: "1", chip: "esp32s3"},
		simBoard{name: "c3", version: "1", chip: "esp32c3"},
		simBoard{name: "mystery", version: "1"},
	)
	img32, data32 := image(t, firmware.ChipESP32, "2")
	imgS3, dataS3 := image(t, firmware.ChipESP32S3, "2")
	h := newHarness(t, fl, map[string][]byte{img32.SHA256: data32, imgS3.SHA256: dataS3})
	plan, err := Plan(fl.boards, []Image{img32, imgS3}, settings(30*time.Second), time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)

	chipOf := func(b []byte) uint16 { return binary.LittleEndian.Uint16(b[12:]) }
	require.Equal(t, Confirmed, rowOf(t, got, "classic").State)
	require.Equal(t, uint16(firmware.ChipESP32), chipOf(fl.sessions("classic")[0].Received))
	require.Equal(t, Confirmed, rowOf(t, got, "s3").State)
	require.Equal(t, uint16(firmware.ChipESP32S3), chipOf(fl.sessions("s3")[0].Received))
	require.Equal(t, "no_image_for_chip", rowOf(t, got, "c3").Code)
	require.Empty(t, fl.sessions("c3"))
	require.Equal(t, "chip_unknown", rowOf(t, got, "mystery").Code)
	require.Empty(t, fl.sessions("mystery"))
}

func TestFlasherRefusesAnotherChipsImage(t *testing.T) {
	// Even when handed the wrong image, the ArduinoOTA flasher's pre-flight
	// refuses it before a byte is sent.
	fl := startFleet(t, simBoard{name: "s3", version: "1", chip: "esp32s3"})
	img, data := image(t, firmware.ChipESP32, "2")
	_, err := ArduinoOTA{Password: testPassword}.Flash(context.Background(), fl.boards[0], img, data, nil)
	require.Error(t, err)
	code, _ := Classify(context.Background(), err)
	require.Equal(t, "refused", code)
	require.Empty(t, fl.sessions("s3"))
	require.Zero(t, fl.sims["s3"].Stats().Invitations)
}

func TestUnsupportedProtocolIsSkippedNotFailed(t *testing.T) {
	fl := startFleet(t, simBoard{name: "ota", version: "1", chip: "esp32"})
	boards := append([]Board{{ID: "esphome/kitchen", Name: "kitchen", Protocol: "esphome", Address: "127.0.0.1:1", Chip: "esp32"}}, fl.boards...)
	img, data := image(t, firmware.ChipESP32, "2")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	plan, err := Plan(boards, []Image{img}, settings(30*time.Second), time.Now())
	require.NoError(t, err)
	got := run(t, h, plan)
	k := rowOf(t, got, "kitchen")
	require.Equal(t, Skipped, k.State)
	require.Equal(t, "unsupported_protocol", k.Code)
	require.False(t, k.Canary, "a board espdeck cannot update is never the canary")
	require.Equal(t, Confirmed, rowOf(t, got, "ota").State)
	require.Equal(t, OutcomeOK, got.Outcome())
}

func TestCancelMidWaveLeavesAResumableFile(t *testing.T) {
	slow := otasim.Faults{ReadRate: 64 << 10}
	fl := startFleet(t,
		simBoard{name: "a", version: "1", chip: "esp32"},
		simBoard{name: "b", version: "1", chip: "esp32", faults: slow},
		simBoard{name: "c", version: "1", chip: "esp32"},
		simBoard{name: "d", version: "1", chip: "esp32"},
	)
	img, data := image(t, firmware.ChipESP32, "2")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(30 * time.Second)
	s.Parallel = 1
	plan, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h.runner.OnEvent = func(ev Event) {
		// Ctrl-C while b (first of the wave) is sending its image.
		if ev.Progress && ev.Row.Board.Name == "b" && ev.Row.Done > 0 {
			cancel()
		}
	}
	require.NoError(t, h.runner.Run(ctx, plan))

	saved, err := Load(h.path)
	require.NoError(t, err)
	require.True(t, saved.Interrupted)
	require.Equal(t, OutcomeInterrupted, saved.Outcome())
	require.Equal(t, Confirmed, rowOf(t, saved, "a").State)
	b := rowOf(t, saved, "b")
	require.Equal(t, Queued, b.State, "an interrupted upload is not a failure of the board")
	require.Equal(t, "interrupted", b.Code)
	require.Equal(t, Queued, rowOf(t, saved, "c").State)
	require.Empty(t, fl.sessions("c"))

	require.Equal(t, 3, Resume(saved))
	h.runner.OnEvent = nil
	done := run(t, h, saved)
	require.Equal(t, OutcomeOK, done.Outcome())
	for _, n := range []string{"a", "b", "c", "d"} {
		require.Equal(t, Confirmed, rowOf(t, done, n).State, n)
	}
	require.Len(t, fl.sessions("a"), 1)
	recs := h.records(t)
	results := map[string][]string{}
	for _, r := range recs {
		results[r.Board] = append(results[r.Board], r.Result)
	}
	require.Equal(t, []string{"interrupted", "ok"}, results["b"])
}

func TestLoadRefusesWhatIsNotACampaign(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"empty.json": "", "garbage.json": "{{{", "norows.json": `{"id":"x","rows":[]}`,
		"noid.json": `{"id":"x","rows":[{"board":{"id":""}}]}`} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		_, err := Load(p)
		require.Error(t, err, name)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "campaign_invalid", e.Code())
		require.NotEmpty(t, e.Hint())
	}
	_, err := Load(filepath.Join(dir, "missing.json"))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "campaign_unreadable", e.Code())
}

func TestAuditLogKnowsWhatASilentBoardRuns(t *testing.T) {
	fl := startFleet(t,
		simBoard{name: "silent", chip: "esp32", noTXT: true},
		simBoard{name: "silent-2", chip: "esp32", noTXT: true},
	)
	img, data := image(t, firmware.ChipESP32, "2.0.0")
	h := newHarness(t, fl, map[string][]byte{img.SHA256: data})
	s := settings(30 * time.Second)
	s.Outdated = true
	plan, err := Plan(fl.boards[:1], []Image{img}, s, time.Now())
	require.NoError(t, err)
	first := run(t, h, plan)
	require.Equal(t, Uploaded, rowOf(t, first, "silent").State, "no version to confirm with")

	// A new campaign with the same image: the audit log says espdeck wrote
	// exactly this image to "silent"; "silent-2" never got it.
	h.runner.History = LastWrites(h.records(t))
	again, err := Plan(fl.boards, []Image{img}, s, time.Now())
	require.NoError(t, err)
	got := run(t, h, again)
	r := rowOf(t, got, "silent")
	require.Equal(t, Skipped, r.State)
	require.Equal(t, "up_to_date", r.Code)
	require.Contains(t, r.Message, "audit log")
	require.Equal(t, "2.0.0", r.FromVersion)
	require.Len(t, fl.sessions("silent"), 1)
	require.Len(t, fl.sessions("silent-2"), 1)

	// Another image (same version string, other bytes) is sent again.
	p := filepath.Join(t.TempDir(), "other.bin")
	require.NoError(t, os.WriteFile(p, ops.DemoAppImage(firmware.ChipESP32, "fleet-app", "2.0.0", 25_000), 0o644))
	other, otherData, err := LoadImage(p)
	require.NoError(t, err)
	h.runner.Images[other.SHA256] = otherData
	third, err := Plan(fl.boards[:1], []Image{other}, s, time.Now())
	require.NoError(t, err)
	run(t, h, third)
	require.Len(t, fl.sessions("silent"), 2)
}

func TestLastWritesPrefersTheMAC(t *testing.T) {
	recs := []audit.Record{
		{Kind: audit.KindUpdate, Board: "a", Address: "10.0.0.1:3232", MAC: "AA:BB:CC:00:00:01", ImageSHA256: "old", Result: "ok"},
		{Kind: audit.KindUpdate, Board: "a", Address: "10.0.0.9:3232", MAC: "aabbcc000001", ImageSHA256: "new", Result: "ok"},
		{Kind: audit.KindUpdate, Board: "a", Address: "10.0.0.9:3232", MAC: "aabbcc000001", ImageSHA256: "bad", Result: "device_error"},
		{Kind: audit.KindDownload, Board: "b", Address: "10.0.0.2:3232", ImageSHA256: "x", Result: "ok"},
	}
	last := LastWrites(recs)
	r, ok := last(Board{Name: "renamed", Address: "10.0.0.5:3232", MAC: "aa-bb-cc-00-00-01"})
	require.True(t, ok)
	require.Equal(t, "new", r.ImageSHA256, "the latest ok attempt, failures ignored")
	_, ok = last(Board{Name: "b", Address: "10.0.0.2:3232"})
	require.False(t, ok, "downloads are not writes")
}
