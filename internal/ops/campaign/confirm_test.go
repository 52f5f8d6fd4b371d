package campaign

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// rebootScript is what a fake board does after it accepted the image.
type rebootScript func(r *Roster, b Board)

// runFake runs a one-board campaign whose flasher accepts at once and
// then plays script, inside a synctest bubble so the minute-long
// confirmation windows pass without waiting.
func runFake(t *testing.T, confirm time.Duration, script rebootScript) Row {
	t.Helper()
	var row Row
	synctest.Test(t, func(t *testing.T) {
		roster := NewRoster()
		b := Board{ID: "fake/1", Name: "fake", Protocol: "fake", Address: "10.0.0.1:3232", Version: "1"}
		roster.Seen(b.ID, b.Address, "1")
		img := Image{Path: "app.bin", Chip: "esp32", Version: "2", SHA256: "abc"}
		r := &Runner{Presence: roster, Images: map[string][]byte{"abc": {0xE9}},
			Flashers: map[string]Flasher{"fake": FlasherFunc(func(ctx context.Context, b Board, _ Image, data []byte, _ func(int64, int64)) (FlashResult, error) {
				go script(roster, b)
				return FlashResult{Protocol: "fake", Auth: "none", Bytes: int64(len(data))}, nil
			})}}
		plan, err := Plan([]Board{b}, []Image{img}, Settings{Confirm: confirm, Threshold: Threshold{Count: 1}}, time.Now())
		require.NoError(t, err)
		require.NoError(t, r.Run(t.Context(), plan))
		row = plan.Rows[0]
	})
	return row
}

func TestConfirmWaitsForTheNewVersion(t *testing.T) {
	row := runFake(t, time.Minute, func(r *Roster, b Board) {
		r.Gone(b.ID)
		time.Sleep(20 * time.Second) // a slow Wi-Fi join
		r.Seen(b.ID, b.Address, "2")
	})
	require.Equal(t, Confirmed, row.State)
	require.Equal(t, "2", row.Running)
	require.Equal(t, int64(20_000), row.ConfirmMS, "confirmed the moment the board came back")
}

func TestConfirmTimesOutWhenTheBoardNeverReturns(t *testing.T) {
	row := runFake(t, time.Minute, func(r *Roster, b Board) { r.Gone(b.ID) })
	require.Equal(t, TimedOut, row.State)
	require.Equal(t, "confirm_timeout", row.Code)
	require.Equal(t, int64(60_000), row.ConfirmMS)
}

func TestBoardThatNeverWentAwayButStillAnnouncesTheOldVersion(t *testing.T) {
	// Real mDNS may not notice a fast reboot: the board is seen again, on
	// the old version, without a "gone" in between.
	row := runFake(t, time.Minute, func(r *Roster, b Board) {
		time.Sleep(5 * time.Second)
		r.Seen(b.ID, b.Address, "1")
	})
	require.Equal(t, RolledBack, row.State)
	require.Contains(t, row.Message, "still announces 1")
}

func TestBoardBackWithoutAVersionIsUploadedNotConfirmed(t *testing.T) {
	row := runFake(t, time.Minute, func(r *Roster, b Board) {
		r.Gone(b.ID)
		time.Sleep(time.Second)
		r.Seen(b.ID, b.Address, "")
	})
	require.Equal(t, Uploaded, row.State)
	require.Equal(t, ConfirmNoVersion, row.Confirmation)
}

func TestSightingsOfOtherBoardsDoNotConfirm(t *testing.T) {
	row := runFake(t, time.Minute, func(r *Roster, b Board) {
		r.Gone(b.ID)
		r.Seen("fake/2", "10.0.0.2:3232", "2")
	})
	require.Equal(t, TimedOut, row.State)
}

func TestConfirmationOffEndsAtUploaded(t *testing.T) {
	row := runFake(t, 0, func(*Roster, Board) {})
	require.Equal(t, Uploaded, row.State)
	require.Equal(t, ConfirmNotChecked, row.Confirmation)
	require.Zero(t, row.ConfirmMS)
}

func TestHandNamedHostIsConfirmedByAddress(t *testing.T) {
	// A --host board has a "manual/…" ID; discovery knows it by its own ID.
	row := runFake(t, time.Minute, func(r *Roster, b Board) {
		r.Seen("arduino-ota/esp32-aabbcc", b.Address, "1")
		r.Gone("arduino-ota/esp32-aabbcc")
		r.Seen("arduino-ota/esp32-aabbcc", b.Address, "2")
	})
	require.Equal(t, Confirmed, row.State)
}

func TestSnapshotFromEventsShowsTheLiveCampaign(t *testing.T) {
	// What a campaign view does: rebuild its rows from Snapshot on every
	// event (OnEvent runs without the runner's lock, so this cannot deadlock).
	synctest.Test(t, func(t *testing.T) {
		roster := NewRoster()
		var boards []Board
		for i := range 3 {
			b := Board{ID: fmt.Sprintf("fake/%d", i), Name: fmt.Sprintf("b%d", i), Protocol: "fake", Address: fmt.Sprintf("10.0.0.%d:3232", i), Version: "1"}
			roster.Seen(b.ID, b.Address, "1")
			boards = append(boards, b)
		}
		img := Image{Path: "app.bin", Chip: "esp32", Version: "2", SHA256: "abc"}
		var views []View
		var r *Runner
		r = &Runner{Presence: roster, Images: map[string][]byte{"abc": {0xE9}},
			Flashers: map[string]Flasher{"fake": FlasherFunc(func(ctx context.Context, b Board, _ Image, data []byte, progress func(int64, int64)) (FlashResult, error) {
				progress(1, 1)
				go func() {
					roster.Gone(b.ID)
					time.Sleep(time.Second)
					roster.Seen(b.ID, b.Address, "2")
				}()
				return FlashResult{Protocol: "fake", Bytes: 1}, nil
			})},
			OnEvent: func(Event) { views = append(views, r.Snapshot()) }}
		plan, err := Plan(boards, []Image{img}, Settings{Canary: 1, Parallel: 2, Confirm: time.Minute}, time.Now())
		require.NoError(t, err)
		require.NoError(t, r.Run(t.Context(), plan))

		sawCanaryRebooting := false
		for _, v := range views[:len(views)-1] {
			require.True(t, v.Running)
			require.Len(t, v.File.Rows, 3)
			if v.File.Rows[0].Canary && v.File.Rows[0].State == Rebooting {
				sawCanaryRebooting = true
			}
		}
		require.True(t, sawCanaryRebooting)
		last := r.Snapshot()
		require.False(t, last.Running)
		require.Equal(t, 3, last.Summary.Confirmed)
		require.Equal(t, "more than 0 failed", last.File.Settings.Threshold.String())
	})
}

func TestAFloodOfSightingsIsBounded(t *testing.T) {
	r := NewRoster()
	b := Board{ID: "x", Address: "10.0.0.1:3232"}
	f := r.Follow(b)
	defer f.Stop()
	for i := range 100_000 {
		r.Seen("x", b.Address, fmt.Sprint(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	var last Sighting
	for {
		s, err := f.Next(ctx)
		if err != nil {
			break
		}
		n++
		last = s
	}
	require.Equal(t, maxQueued, n, "a chatty or hostile announcer cannot make a follower hold more")
	require.Equal(t, "99999", last.Version, "the newest sightings are the ones kept")
	cur, ok := r.Current(b)
	require.True(t, ok)
	require.Equal(t, "99999", cur.Version)
	r.Gone("x")
	_, ok = r.Current(b)
	require.False(t, ok)
}

func TestEachProtocolGetsItsOwnFlasher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		roster := NewRoster()
		sent := map[string][]string{}
		flasher := func(proto string) Flasher {
			return FlasherFunc(func(ctx context.Context, b Board, _ Image, _ []byte, _ func(int64, int64)) (FlashResult, error) {
				sent[proto] = append(sent[proto], b.Name)
				return FlashResult{Protocol: proto, Auth: "none"}, nil
			})
		}
		boards := []Board{
			{ID: "a", Name: "ota-1", Protocol: "arduino-ota", Address: "10.0.0.1:3232", Chip: "esp32"},
			{ID: "e", Name: "esphome-1", Protocol: "esphome", Address: "10.0.0.2:3232", Chip: "esp32"},
			{ID: "b", Name: "ota-2", Protocol: "arduino-ota", Address: "10.0.0.3:3232", Chip: "esp32"},
		}
		r := &Runner{Presence: roster, Images: map[string][]byte{"abc": {0xE9}},
			Flashers: map[string]Flasher{"arduino-ota": flasher("arduino-ota"), "esphome": flasher("esphome")}}
		plan, err := Plan(boards, []Image{{Path: "app.bin", Chip: "esp32", Version: "2", SHA256: "abc"}}, Settings{Parallel: 1}, time.Now())
		require.NoError(t, err)
		require.NoError(t, r.Run(t.Context(), plan))
		require.Equal(t, map[string][]string{"arduino-ota": {"ota-1", "ota-2"}, "esphome": {"esphome-1"}}, sent)
		require.Equal(t, "esphome", plan.Rows[1].Protocol)
	})
}
