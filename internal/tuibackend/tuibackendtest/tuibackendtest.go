// Package tuibackendtest holds the set-up that tests of the TUI's backend
// share across packages: waiting for the boards a backend lists, and for
// the end of a campaign it runs. It is imported by tests only.
package tuibackendtest

import (
	"context"
	"testing"

	"github.com/espdeck/espdeck/tui"
)

// Devices watches src until n boards have appeared and returns them by
// name. The stream keeps being drained until ctx ends, so the source
// never blocks on a test that stopped reading.
func Devices(tb testing.TB, ctx context.Context, src tui.DeviceSource, n int) map[string]tui.Device {
	tb.Helper()
	events := src.Watch(ctx)
	devs := map[string]tui.Device{}
	for len(devs) < n {
		select {
		case ev := <-events:
			devs[ev.Device.Name] = ev.Device
		case <-ctx.Done():
			tb.Fatalf("only %d of %d boards appeared", len(devs), n)
		}
	}
	go func() {
		for range events {
		}
	}()
	return devs
}

// Views tells when a campaign ends, and with which view.
type Views struct {
	done chan tui.CampaignView
}

// NewViews returns a collector; pass its Update as the campaign's update.
func NewViews() *Views { return &Views{done: make(chan tui.CampaignView, 4)} }

// Update takes each view; one that is not running ends the campaign.
func (v *Views) Update(cv tui.CampaignView) {
	if !cv.Running {
		v.done <- cv
	}
}

// Wait returns the view the campaign ended with, failing tb when ctx
// ends first.
func (v *Views) Wait(tb testing.TB, ctx context.Context) tui.CampaignView {
	tb.Helper()
	select {
	case cv := <-v.done:
		return cv
	case <-ctx.Done():
		tb.Fatal("the campaign did not end")
		return tui.CampaignView{}
	}
}
