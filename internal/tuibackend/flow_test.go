package tuibackend_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

// messages is a slog handler that keeps what the TUI reports, so a test can
// wait for it while the real program runs.
type messages struct {
	mu      *sync.Mutex
	msgs    *[]string
	next    *int           // waitFor looks only at messages after the last one it matched
	changed *chan struct{} // closed and replaced on every message
}

func newMessages() messages {
	ch := make(chan struct{})
	return messages{mu: &sync.Mutex{}, msgs: &[]string{}, next: new(int), changed: &ch}
}

func (l messages) Enabled(context.Context, slog.Level) bool { return true }
func (l messages) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.msgs = append(*l.msgs, r.Message)
	close(*l.changed)
	*l.changed = make(chan struct{})
	return nil
}
func (l messages) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l messages) WithGroup(string) slog.Handler      { return l }

// match returns the first message after the last match that contains every
// part. The caller holds l.mu.
func (l messages) match(parts []string) (string, bool) {
	for i := *l.next; i < len(*l.msgs); i++ {
		m := (*l.msgs)[i]
		all := true
		for _, p := range parts {
			all = all && strings.Contains(m, p)
		}
		if all {
			*l.next = i + 1
			return m, true
		}
	}
	return "", false
}

// waitFor waits until a message contains every part and returns it. It
// wakes on every new message, not on a clock, and looks once more under the
// lock before failing, so the failure output never shows a message it
// reported missing (it used to poll, and a message logged during its last
// sleep was printed in the very failure that said it was missing). timeout
// only bounds a program that is stuck.
func (l messages) waitFor(t *testing.T, timeout time.Duration, parts ...string) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		m, ok := l.match(parts)
		ch := *l.changed
		if ok {
			l.mu.Unlock()
			return m
		}
		l.mu.Unlock()
		select {
		case <-ch:
			continue
		case <-timer.C:
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if m, ok := l.match(parts); ok {
			return m
		}
		t.Fatalf("no message with %q within %s; got:\n%s", parts, timeout, strings.Join(*l.msgs, "\n"))
		return ""
	}
}

// TestDemoFlows runs the real program on the demo fleet — simulated OTA
// devices on loopback and a simulated ROM on a pseudo-terminal, through
// the real espota, serialflash and ops code — and drives it with keys:
// flash an ESP32 over the air, see the firewall hint for the board that
// never connects back, and roll the serial board's untried update back.
func TestDemoFlows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()

	rec := newMessages()
	log := slog.New(rec)
	backend := tuibackend.New(tuibackend.Config{
		Watcher:        discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		ConnectTimeout: 2 * time.Second,
		Serial:         serialflash.Options{Baud: 921600},
		OpenSerialPort: fleet.OpenSerialPort,
		Logger:         slog.New(slog.DiscardHandler),
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		done <- tui.Run(ctx, tui.Config{Demo: true, DemoPassword: demo.Password, RecentFiles: fleet.Files, Logger: log},
			backend.TUI(), tea.WithInput(pr), tea.WithOutput(io.Discard), tea.WithWindowSize(120, 40), tea.WithoutSignalHandler())
	}()
	keys := func(s string) {
		t.Helper()
		_, err := pw.Write([]byte(s))
		require.NoError(t, err)
	}
	filter := func(name string) {
		keys("/" + strings.Repeat("\x7f", 20) + name + "\r")
	}
	app := fleet.Files[1] // greenhouse-v2.7.1.bin, an ESP32 app
	rec.waitFor(t, 60*time.Second, "found greenhouse-ctl")

	// 1. OTA with the PBKDF2 password.
	filter("greenhouse")
	keys("f")
	keys(strings.Repeat("\x7f", 200) + app + "\r")
	rec.waitFor(t, 60*time.Second, "image", "greenhouse-v2.7.1.bin")
	// Enter opens the password prompt in the same update that handles it,
	// and the program reads keys in order: no pause is needed before typing.
	keys("\r")
	keys(demo.Password + "\r")
	rec.waitFor(t, 60*time.Second, "flash greenhouse-ctl done")

	// 2. The board behind a firewall: the hint names the port to open.
	filter("garage")
	keys("f")
	keys(strings.Repeat("\x7f", 200) + app + "\r")
	rec.waitFor(t, 60*time.Second, "image", "greenhouse-v2.7.1.bin")
	keys("\r")
	hint := rec.waitFor(t, 60*time.Second, "hint for garage-door")
	require.Contains(t, hint, "allow inbound TCP on port")

	// 3. The serial board has an untried update in ota_1: roll back to ota_0.
	filter("bench")
	keys("\r") // detail
	keys("p")
	rec.waitFor(t, 60*time.Second, "partitions of", "bench-3", "ota_1 boots next")
	keys("k") // up: from ota_1 to ota_0
	keys("s") // opens the confirmation in the same update; "y" follows in order
	keys("y")
	rec.waitFor(t, 90*time.Second, "bench-3", "ota_0 boots next")

	keys("q")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not quit")
	}

	// The board's app slots were never written by the switch.
	st, err := ops.ReadPartitionState(ctx, ops.FileFlash(fleet.ROM.Flash()), 0, ops.ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "ota_0", st.BootsNext)
	row, _ := st.Row("ota_1")
	require.Equal(t, "v2.7.0", row.App.Version)
}

// TestDemoGroupFlashReachesOnlyTheMarkedBoards filters, marks two boards,
// filters to a third and flashes: the dialog acts on the two marks, and the
// simulators' own records show that only those two received bytes.
func TestDemoGroupFlashReachesOnlyTheMarkedBoards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()

	rec := newMessages()
	backend := tuibackend.New(tuibackend.Config{
		Watcher:        discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		ConnectTimeout: 2 * time.Second,
		OpenSerialPort: fleet.OpenSerialPort,
		Logger:         slog.New(slog.DiscardHandler),
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		done <- tui.Run(ctx, tui.Config{Demo: true, DemoPassword: demo.Password, RecentFiles: fleet.Files, Logger: slog.New(rec)},
			backend.TUI(), tea.WithInput(pr), tea.WithOutput(io.Discard), tea.WithWindowSize(120, 40), tea.WithoutSignalHandler())
	}()
	keys := func(s string) {
		t.Helper()
		_, err := pw.Write([]byte(s))
		require.NoError(t, err)
	}
	filter := func(name string) { keys("/" + strings.Repeat("\x7f", 20) + name + "\r") }
	app := fleet.Files[0] // bench-fixture-v2.8.0.bin, a 220 KiB ESP32 app
	rec.waitFor(t, 10*time.Second, "found weather-station")

	filter("porch")
	keys(" ")
	filter("weather")
	keys(" ")
	filter("greenhouse") // the marked boards are hidden now; f still means them
	keys("f")
	keys(strings.Repeat("\x7f", 200) + app + "\r")
	rec.waitFor(t, 10*time.Second, "image", "bench-fixture-v2.8.0.bin")
	keys("J") // as plain jobs, all at once (enter would run a campaign)
	rec.waitFor(t, 90*time.Second, "group flash of", "2 done, 0 failed")

	keys("q")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not quit")
	}
	for _, name := range []string{"porch-light", "weather-station"} {
		// The simulator records a session after it has sent its final OK
		// and closed the connection, so the client can be done a moment
		// before the record exists: wait for it (bounded), then check.
		require.Eventually(t, func() bool { return len(fleet.Sessions(name)) > 0 }, 30*time.Second, 10*time.Millisecond, name)
		s := fleet.Sessions(name)
		require.Len(t, s, 1, "%s was marked and flashed once", name)
		require.Positive(t, len(s[0].Received), name)
	}
	for _, name := range []string{"greenhouse-ctl", "sensor-attic", "garage-door"} {
		require.Empty(t, fleet.Sessions(name), "%s was not marked and received nothing", name)
	}
}

// TestDemoCampaignFromTheTUI marks three boards in the real program (all
// hidden by the filter by then), reviews an image and sends it: a group
// flash is a campaign. The canary's password is refused (ESPHome does not
// announce one) and the campaign stops; its file, as saved then, resumes
// the failed and untouched boards. R asks for the password and resumes,
// the campaign ends with every board uploaded, each simulator took the
// image once, and the boards not marked received nothing. The audit log
// holds one well-formed record per attempt and no secret.
func TestDemoCampaignFromTheTUI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()

	rec := newMessages()
	state := ops.StateDir(filepath.Join(t.TempDir(), "state"))
	backend := tuibackend.New(tuibackend.Config{
		Watcher:         discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		ConnectTimeout:  2 * time.Second,
		CampaignConfirm: -1,
		APIKey:          func(d tui.Device) (string, bool) { return fleet.APIKeyFor(d.ID) },
		Logger:          slog.New(slog.DiscardHandler),
		AuditLog:        state.AuditLog(),
		CampaignDir:     state.Campaigns(),
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() {
		// Not Demo: the campaign is saved in a state folder as in a real
		// run, and the TUI names the file to resume it from.
		done <- tui.Run(ctx, tui.Config{RecentFiles: fleet.Files, Logger: slog.New(rec)},
			backend.TUI(), tea.WithInput(pr), tea.WithOutput(io.Discard), tea.WithWindowSize(120, 40), tea.WithoutSignalHandler())
	}()
	keys := func(s string) {
		t.Helper()
		_, err := pw.Write([]byte(s))
		require.NoError(t, err)
	}
	filter := func(name string) { keys("/" + strings.Repeat("\x7f", 20) + name + "\r") }
	app := fleet.Files[0] // bench-fixture-v2.8.0.bin, an ESP32 app
	rec.waitFor(t, 10*time.Second, "found weather-station")

	for _, n := range []string{"kitchen-plug", "hall-sensor", "porch-light"} {
		filter(n)
		keys(" ")
	}
	filter("front-door") // the marked boards are hidden now; f still means them
	keys("f")
	keys(strings.Repeat("\x7f", 200) + app + "\r")
	rec.waitFor(t, 10*time.Second, "image", "bench-fixture-v2.8.0.bin")
	keys("\r")
	// hall-sensor (the canary: first in the list) does not announce that
	// it wants a password, so the campaign stops at its refusal and
	// leaves the others untouched; R asks for the password and resumes.
	stop := rec.waitFor(t, 90*time.Second, "campaign", "1 failed")
	require.Contains(t, stop, "2 untouched", stop)
	saved := rec.waitFor(t, 10*time.Second, "is saved in", "espdeck campaign resume")

	// The file as the stop left it: what 'espdeck campaign resume FILE'
	// needs (the image by an absolute path and its SHA-256, the boards with
	// their protocol and address, the settings), and resuming it retries
	// exactly the failed and untouched boards.
	files, err := filepath.Glob(filepath.Join(state.Campaigns(), "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	require.Contains(t, saved, files[0])
	cf, err := campaign.Load(files[0])
	require.NoError(t, err)
	require.Len(t, cf.Images, 1)
	require.True(t, filepath.IsAbs(cf.Images[0].Path), cf.Images[0].Path)
	require.Equal(t, app, cf.Images[0].Path)
	require.Equal(t, sha256Of(t, app), cf.Images[0].SHA256)
	require.Equal(t, 1, cf.Settings.Canary)
	require.True(t, cf.Stopped)
	for _, r := range cf.Rows {
		require.NotEmpty(t, r.Board.Protocol, r.Board.Name)
		require.NotEmpty(t, r.Board.Address, r.Board.Name)
	}
	require.Equal(t, 3, campaign.Resume(cf), "the failed canary and the two untouched boards")
	for _, r := range cf.Rows {
		require.Equal(t, campaign.Queued, r.State, r.Board.Name)
	}
	keys("R")
	keys(demo.Password + "\r")
	rec.waitFor(t, 10*time.Second, "resuming 3 boards")
	end := rec.waitFor(t, 90*time.Second, "campaign", "3 uploaded")
	require.NotContains(t, end, "failed", end)

	keys("q")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not quit")
	}
	// The simulators record a session just after their final OK: wait
	// for the sessions expected (hall-sensor: the refusal, then the image).
	for n, sessions := range map[string]int{"kitchen-plug": 1, "hall-sensor": 2} {
		recs, err := fleet.ESPHome(n).WaitRecords(ctx, sessions)
		require.NoError(t, err, n)
		ok := 0
		for _, r := range recs {
			if r.Outcome == 0x45 {
				ok++
			}
		}
		require.Equal(t, 1, ok, "%s took the image once", n)
	}
	require.Eventually(t, func() bool { return len(fleet.Sessions("porch-light")) > 0 }, 30*time.Second, 10*time.Millisecond)
	require.Len(t, fleet.Sessions("porch-light"), 1)
	require.Empty(t, fleet.ESPHome("front-door-lock").Records(), "not marked: nothing sent")
	require.Empty(t, fleet.Sessions("garage-door"))

	// The audit log: one record per attempt (hall-sensor twice), each of
	// the campaign, and never the password typed at R.
	recs := readRecords(t, state.AuditLog())
	require.Len(t, recs, 4)
	attempts := map[string][]string{}
	for _, r := range recs {
		require.Equal(t, audit.KindUpdate, r.Kind)
		require.Equal(t, cf.ID, r.Campaign)
		require.Equal(t, "esp32", r.Chip, r.Board)
		require.Equal(t, sha256Of(t, app), r.ImageSHA256)
		require.Equal(t, "v2.8.0", r.ToVersion)
		attempts[r.Board] = append(attempts[r.Board], fmt.Sprintf("%d:%s", r.Attempt, r.Result))
	}
	require.Equal(t, []string{"1:password_required", "2:ok"}, attempts["hall-sensor"])
	require.Equal(t, []string{"1:ok"}, attempts["kitchen-plug"])
	require.Equal(t, []string{"1:ok"}, attempts["porch-light"])
	requireNoSecret(t, state.AuditLog(), demo.Password, demo.APIKey)

	// The file now says the campaign is done: nothing left to resume.
	cf, err = campaign.Load(files[0])
	require.NoError(t, err)
	require.Equal(t, 2, cf.Runs)
	require.Equal(t, campaign.OutcomeOK, cf.Outcome())
	require.Zero(t, campaign.Resume(cf))
	requireNoSecret(t, files[0], demo.Password, demo.APIKey)
}
