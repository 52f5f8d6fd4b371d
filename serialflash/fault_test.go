package serialflash_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// Each fault knob must end in its own clear outcome within a bounded time.
func TestFaultKnobs(t *testing.T) {
	t.Parallel()
	data := firmwareLike(8000, 9)
	write := []serialflash.Region{{Addr: 0x10000, Data: data}}
	for _, tc := range []struct {
		name   string
		faults romsim.Faults
		check  func(t *testing.T, openErr, writeErr error, rom *romsim.ROM)
	}{
		// Cases that wait for a reply that never comes in time (dropped,
		// stalled, delayed past the wait) get a short CommandTimeout; the
		// others keep fastOpts' generous one, so a reply that a busy
		// machine delays is not taken for a fault.
		// A lost reply or a failed block no longer ends the write: it
		// resumes (TestResume* check how); a chip that stays silent still
		// ends it.
		{"dropped reply resumes", romsim.Faults{DropReplyOp: 0x03, DropReplyNth: 3}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			require.NoError(t, err)
		}},
		{"slow replies within the timeout", romsim.Faults{DelayOp: 0x03, Delay: 150 * time.Millisecond}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			require.NoError(t, err)
		}},
		{"reply later than the timeout", romsim.Faults{DelayOp: 0x13, Delay: 2500 * time.Millisecond}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			require.ErrorIs(t, err, serialflash.ErrTimeout)
			require.Contains(t, err.Error(), "MD5")
		}},
		{"stall", romsim.Faults{StallOp: 0x03, StallNth: 2}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			require.ErrorIs(t, err, serialflash.ErrTimeout)
			require.Contains(t, err.Error(), "not written", "the region's state is said")
			require.NotEmpty(t, serialflash.Hint(err))
		}},
		{"corrupt checksum is sent again", romsim.Faults{CorruptChecksumNth: 2}, func(t *testing.T, _, err error, rom *romsim.ROM) {
			require.NoError(t, err)
			var sevens int
			for _, c := range rom.Commands() {
				if c.Status == 7 {
					sevens++
				}
			}
			require.Equal(t, 1, sevens, "the ROM saw one bad checksum and the block was sent again")
		}},
		{"one flash write error resumes", romsim.Faults{FailFlashDataNth: 2}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			require.NoError(t, err)
		}},
		{"flash write errors from a block on", romsim.Faults{FailFlashDataFromNth: 2}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			var ce *serialflash.CommandError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, byte(0x08), ce.ROMCode)
			require.Contains(t, serialflash.Hint(err), "power")
			require.Contains(t, err.Error(), "after 3 resumes")
		}},
		{"error status", romsim.Faults{ErrorOp: 0x0D, ErrorCode: 0x06}, func(t *testing.T, err, _ error, _ *romsim.ROM) {
			var ce *serialflash.CommandError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, serialflash.OpSPIAttach, ce.Op)
			require.Equal(t, byte(0x06), ce.ROMCode)
		}},
		{"wrong md5", romsim.Faults{WrongMD5: true}, func(t *testing.T, _, err error, _ *romsim.ROM) {
			require.ErrorIs(t, err, serialflash.ErrVerify)
			require.Contains(t, serialflash.Hint(err), "baud")
		}},
		{"never syncs", romsim.Faults{NeverSync: true}, func(t *testing.T, err, _ error, _ *romsim.ROM) {
			require.ErrorIs(t, err, serialflash.ErrNoSync)
			require.NotEmpty(t, serialflash.Hint(err))
		}},
		{"secure download mode", romsim.Faults{SecureDownloadMode: true}, func(t *testing.T, openErr, err error, rom *romsim.ROM) {
			require.NoError(t, openErr)
			require.NoError(t, err, "plain writes work in Secure Download Mode")
			for _, c := range rom.Commands() {
				require.NotEqual(t, byte(0x10), c.Op, "no compression in SDM")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32S3, Faults: tc.faults})
			opts := fastOpts()
			if tc.faults.NeverSync {
				opts = noSyncOpts()
			}
			if tc.faults.DropReplyOp != 0 || tc.faults.StallOp != 0 || tc.faults.Delay > time.Second {
				opts.CommandTimeout = time.Second
			}
			opts.ConnectAttempts = 2
			opts.SyncTries = 2
			ctx := testCtx(t)
			f, openErr := serialflash.Open(ctx, env.path, opts)
			var writeErr error
			if openErr == nil {
				writeErr = f.WriteFlash(ctx, write)
				f.Close()
			}
			tc.check(t, openErr, writeErr, env.rom)
			require.NoError(t, ctx.Err(), "ended by its own bounds, not by the test's hang guard")
		})
	}
}

func TestCancelMidWriteLeavesPortUsable(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, Pace: true})
	f := openPTY(t, env, fastOpts())
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	data := firmwareLike(400_000, 11)
	errc := make(chan error, 1)
	go func() {
		errc <- f.WriteFlash(ctx, []serialflash.Region{{Addr: 0, Data: data}})
	}()
	// Cancel once the ROM has seen a few data blocks.
	require.Eventually(t, func() bool {
		n := 0
		for _, c := range env.rom.Commands() {
			if c.Op == 0x11 {
				n++
			}
		}
		return n >= 3
	}, 30*time.Second, 5*time.Millisecond)
	cancel()
	// The paced write of 400 kB would finish with nil if the cancel were
	// ignored; only the cancel ends it with context.Canceled.
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, f.Close())

	// The port and the ROM are still usable.
	g := openPTY(t, env, fastOpts())
	require.NoError(t, g.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x10000, Data: data[:5000]}}))
}

func TestDownloadModeButNoAnswer(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32S3, Faults: romsim.Faults{NeverSync: true}})
	port, err := serialflash.OpenPort(testCtx(t), env.path)
	require.NoError(t, err)
	lp := &linePort{Port: port, rom: env.rom}
	defer lp.Close()
	opts := noSyncOpts()
	opts.Before = serialflash.ResetDefault
	opts.ConnectAttempts = 1
	_, err = serialflash.OpenWithPort(testCtx(t), lp, opts)
	require.ErrorIs(t, err, serialflash.ErrNoSync)
	require.Contains(t, err.Error(), "download mode but does not answer")
}

func TestContextCancelledDuringSync(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32, Faults: romsim.Faults{NeverSync: true}})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	opts := noSyncOpts()
	opts.ConnectAttempts = 1000 // far more than fit in the hang guard
	errc := make(chan error, 1)
	go func() {
		_, err := serialflash.Open(ctx, env.path, opts)
		errc <- err
	}()
	// Cancel once the chip has been asked to sync.
	require.Eventually(t, func() bool {
		for _, c := range env.rom.Commands() {
			if c.Op == 0x08 {
				return true
			}
		}
		return false
	}, 30*time.Second, 5*time.Millisecond)
	cancel()
	// The hang guard would end the connect with DeadlineExceeded and the
	// attempts with ErrNoSync: only the cancel ends it with Canceled.
	err := <-errc
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}

// Real images from Espressif's test set go through the ROM and come back
// byte for byte.
func TestFixtureImagesRoundTrip(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "..", "shared", "fixtures", "images")
	entries, err := os.ReadDir(dir)
	if err != nil {
		fixture.Missing(t, "fixtures not present (%v): real images not exercised", err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32})
	f := openPTY(t, env, fastOpts())
	var regions []serialflash.Region
	addr := uint32(0x10000)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		regions = append(regions, serialflash.Region{Addr: addr, Data: b})
		addr += (uint32(len(b)) + 0xFFFF) &^ 0xFFFF
	}
	require.NoError(t, f.WriteFlash(testCtx(t), regions))
	for i, r := range regions {
		back, err := f.ReadFlash(testCtx(t), r.Addr, uint32(len(r.Data)))
		require.NoError(t, err)
		require.Equal(t, r.Data, back, names[i])
	}
}

func TestWriteStepsDownWhenLinkFailsMidTransfer(t *testing.T) {
	t.Parallel()
	env := startPTY(t, romsim.Config{Chip: firmware.ChipESP32C3})
	opts := fastOpts()
	opts.Baud = 921600
	// At 921600 every reply is dropped, so the failure is found however
	// long the wait, and the wait is what this test costs; 1 s also failed
	// replies that a busy machine merely delayed at 460800.
	opts.CommandTimeout = 3 * time.Second
	opts.Before = serialflash.ResetDefault // stepping down resets the chip
	var notices []string
	opts.OnNotice = func(s string) { notices = append(notices, s) }
	port, err := serialflash.OpenPort(testCtx(t), env.path)
	require.NoError(t, err)
	f, err := serialflash.OpenWithPort(testCtx(t), &linePort{Port: port, rom: env.rom}, opts)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	require.Equal(t, 921600, f.Baud())
	// The adapter starts failing at this rate (a warm CH340).
	env.rom.SetFaults(romsim.Faults{MaxReliableBaud: 460800})
	data := firmwareLike(6000, 13)
	require.NoError(t, f.WriteFlash(testCtx(t), []serialflash.Region{{Addr: 0x4000, Data: data}}))
	require.Equal(t, 460800, f.Baud())
	require.Equal(t, data, env.rom.Flash()[0x4000:0x4000+len(data)])
	require.NotEmpty(t, notices)
	require.Contains(t, notices[0], "stepping down")
}
