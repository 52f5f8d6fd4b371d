package tuibackend_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/tui"
)

// The demo's ESPHome boards are reached like real ones through the real
// backend: the plain one takes an image, the password one refuses it
// without the password (and the TUI would ask) and takes it with the demo
// password, and the encrypting one takes it only because the demo hands
// its API key to the backend. The job notes name protocol, scheme and
// encryption, and the device comes back with the scheme it was found to use.
func TestDemoESPHomeBoards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fleet, err := demo.Start(ctx, t.TempDir(), nil)
	require.NoError(t, err)
	defer fleet.Close()
	backend := tuibackend.New(tuibackend.Config{
		Watcher: discovery.New(discovery.Options{Static: fleet.Devices, DisableMDNS: true, DisableSerial: true}),
		APIKey:  func(d tui.Device) (string, bool) { return fleet.APIKeyFor(d.ID) },
	})
	be := backend.TUI()
	events := be.Devices.Watch(ctx)
	devs := map[string]tui.Device{}
	for len(devs) < 3 {
		select {
		case ev := <-events:
			if ev.Device.Kind == tui.KindESPHome {
				devs[ev.Device.Name] = ev.Device
			}
		case <-ctx.Done():
			t.Fatalf("the ESPHome boards never appeared; have %v", devs)
		}
	}
	go func() { // keep the stream moving; updates are read below through latest
		for range events {
		}
	}()
	for _, n := range []string{"kitchen-plug", "hall-sensor", "front-door-lock"} {
		require.Contains(t, devs, n)
		require.True(t, strings.HasPrefix(devs[n].Address, "127.0.0.1:"), "loopback only: %s", devs[n].Address)
		require.Equal(t, "ESP32", devs[n].Chip, n)
	}
	app := fleet.Files[0] // an ESP32 app
	flash := func(name string, pw tui.Secret) (tui.FlashResult, []string) {
		var mu sync.Mutex
		var notes []string
		res := be.Flasher.Flash(ctx, tui.FlashRequest{Device: devs[name], File: app, Password: pw}, func(p tui.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.Note != "" && (len(notes) == 0 || notes[len(notes)-1] != p.Note) {
				notes = append(notes, p.Note)
			}
		})
		mu.Lock()
		defer mu.Unlock()
		return res, notes
	}

	res, notes := flash("kitchen-plug", "")
	require.True(t, res.OK(), res.Error)
	require.Contains(t, notes, "ESPHome v2 · no password")

	res, _ = flash("hall-sensor", "")
	require.False(t, res.OK())
	require.True(t, res.AuthFailed, "the TUI asks for the password: %s", res.Error)
	res, notes = flash("hall-sensor", demo.Password)
	require.True(t, res.OK(), res.Error)
	require.Contains(t, notes, "ESPHome v2 · SHA-256")

	res, notes = flash("front-door-lock", "")
	require.True(t, res.OK(), res.Error)
	require.Contains(t, notes, "ESPHome v2 · no password · encrypted")

	// Sessions are recorded just after the final OK: wait for each board's
	// (hall-sensor: the refusal, then the image).
	for n, sessions := range map[string]int{"kitchen-plug": 1, "hall-sensor": 2, "front-door-lock": 1} {
		recs, err := fleet.ESPHome(n).WaitRecords(ctx, sessions)
		require.NoError(t, err, n)
		var ok int
		for _, r := range recs {
			if r.Outcome == 0x45 {
				ok++
			}
		}
		require.Equal(t, 1, ok, "%s took the image once", n)
	}
	require.Nil(t, fleet.ESPHome("porch-light"), "an ArduinoOTA board is not an ESPHome one")
}
