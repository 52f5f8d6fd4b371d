package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/internal/tuibackend/tuibackendtest"
	"github.com/espdeck/espdeck/tui"
)

// The TUI writes where the command line reads: the audit log 'espdeck
// audit' lists and the campaign folder 'campaign resume' defaults to. The
// demo writes to a folder of its own run, never under the user's state
// folder, and removes it at exit.
func TestTUIStateIsTheCommandLinesOrTheDemosOwn(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"XDG_STATE_HOME": filepath.Join(home, "state")}
	c := &cli{ctx: context.Background(), getenv: func(k string) string { return env[k] }}

	dir, cleanup, warning, err := c.tuiState(false)
	require.NoError(t, err)
	defer cleanup()
	require.Empty(t, warning)
	want, err := c.stateDir()
	require.NoError(t, err)
	require.Equal(t, want, dir)
	require.Equal(t, filepath.Join(home, "state", "espdeck", "audit.jsonl"), dir.AuditLog())
	require.Equal(t, filepath.Join(home, "state", "espdeck", "campaigns"), dir.Campaigns())

	demoDir, demoCleanup, warning, err := c.tuiState(true)
	require.NoError(t, err)
	require.Empty(t, warning)
	require.False(t, strings.HasPrefix(string(demoDir), home), "the demo writes nothing under the user's state folder")
	require.DirExists(t, string(demoDir))
	require.NoError(t, os.MkdirAll(demoDir.Campaigns(), 0o700))
	demoCleanup()
	require.NoDirExists(t, string(demoDir), "removed at exit")

	// No state folder at all: the TUI still runs, unaudited, and says why.
	c.getenv = func(string) string { return "" }
	dir, cleanup, warning, err = c.tuiState(false)
	require.NoError(t, err)
	cleanup()
	require.Empty(t, dir)
	require.Contains(t, warning, "not audited")
	require.Contains(t, warning, "XDG_STATE_HOME")
}

// A campaign the TUI started is a file the command line takes over: the
// TUI saves it where 'campaign run' would (the same state folder),
// 'campaign status FILE' reads it, and 'campaign resume FILE' retries the
// board whose password was missing and the one the stop left untouched,
// writing to the same audit log as the TUI.
func TestCommandLineResumesATUICampaign(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	env := map[string]string{"XDG_STATE_HOME": home, "OTA_PW": otaTestPassword}
	c := &cli{ctx: ctx, getenv: func(k string) string { return env[k] }}
	state, cleanup, _, err := c.tuiState(false)
	require.NoError(t, err)
	defer cleanup()
	file, _ := otaImage(t, 30_000)

	locked := otaSim(t, otasim.Config{Password: otaTestPassword, Scheme: otasim.SchemePBKDF2})
	open := otaSim(t, otasim.Config{})
	var static []discovery.Device
	for _, b := range []struct {
		name string
		sim  *otasim.Device
	}{{"a-locked", locked}, {"b-open", open}} {
		ap := b.sim.Addr()
		static = append(static, discovery.Device{ID: "bench/" + b.name, Name: b.name, Protocol: discovery.ProtocolArduinoOTA,
			Host: ap.Addr().String(), Addrs: []netip.Addr{ap.Addr()}, Port: int(ap.Port()), Board: "esp32"})
	}
	backend := tuibackend.New(tuibackend.Config{
		Watcher:         discovery.New(discovery.Options{Static: static, DisableMDNS: true, DisableSerial: true}),
		CampaignConfirm: -1, AuditLog: state.AuditLog(), CampaignDir: state.Campaigns(),
	})
	be := backend.TUI()
	devs := tuibackendtest.Devices(t, ctx, be.Devices, len(static))
	views := tuibackendtest.NewViews()
	reqs := []tui.FlashRequest{{Device: devs["a-locked"], File: file}, {Device: devs["b-open"], File: file}}
	require.NoError(t, be.Campaigns.StartCampaign(ctx, tui.CampaignRequest{Boards: reqs, Canary: 1}, views.Update))
	v := views.Wait(t, ctx)
	require.Equal(t, state.Campaign(v.ID), v.File, "saved where the command line saves its campaigns")
	require.Equal(t, 1, v.Summary.Failed, "no password for the canary: it failed and stopped the campaign")
	require.Equal(t, 1, v.Summary.Untouched)
	require.Empty(t, open.Sessions(), "the stop left the second board untouched")

	r := runCLI(t, env, "campaign", "status", v.File, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `"auth_failed"`)

	r = runCLI(t, env, "campaign", "resume", v.File, "--password-env", "OTA_PW", "--json")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	requireNoSecret(t, r)
	f, err := campaign.Load(v.File)
	require.NoError(t, err)
	for _, row := range f.Rows {
		require.Equal(t, campaign.Uploaded, row.State, row.Board.Name)
	}
	require.Equal(t, 2, f.Rows[0].Attempts, "the canary: once from the TUI, once from the command line")
	require.Len(t, open.Sessions(), 1)

	recs := auditRecords(t, state.AuditLog())
	require.Len(t, recs, 3, "one record per attempt, the TUI's and the command line's in one log")
	require.Equal(t, "auth_failed", recs[0].Result)
	for _, rec := range recs {
		require.Equal(t, v.ID, rec.Campaign)
	}
	b, err := os.ReadFile(state.AuditLog())
	require.NoError(t, err)
	require.NotContains(t, string(b), otaTestPassword)
}
