package romsim

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.bug.st/serial"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash/slip"
)

// syncOnce opens the pty through the real serial library, sends SYNC until
// a reply comes (bounded), and closes the port.
func syncOnce(t *testing.T, path string) bool {
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200, DataBits: 8})
	require.NoError(t, err)
	defer p.Close()
	p.SetReadTimeout(50 * time.Millisecond)
	p.ResetInputBuffer()
	req := slip.Encode(nil, append([]byte{0, 0x08, 0x24, 0, 0, 0, 0, 0, 0x07, 0x07, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...))
	buf := make([]byte, 1024)
	for range 20 {
		p.Write(req)
		var d slip.Decoder
		got := false
		for range 4 {
			n, _ := p.Read(buf)
			d.Feed(buf[:n], func(f []byte, err error) {
				if err == nil && len(f) >= 2 && f[0] == 1 && f[1] == 0x08 {
					got = true
				}
			})
		}
		if got {
			return true
		}
	}
	return false
}

func TestResetOnOpenStartsEachSessionInDownloadMode(t *testing.T) {
	hungUp := make(chan struct{}, 4)
	path, rom, stop, err := StartPTY(context.Background(), Config{Chip: firmware.ChipESP32C3, ResetOnOpen: true,
		onHangUp: func() { hungUp <- struct{}{} }})
	require.NoError(t, err)
	defer stop()
	require.True(t, syncOnce(t, path))
	// A pty tells the simulator about a closed port only while it stays
	// closed: reopen once it has seen that, or a loaded machine may reopen
	// first and the reopen is no new session.
	select {
	case <-hungUp:
	case <-time.After(30 * time.Second):
		t.Fatal("the simulator never saw the port close")
	}
	rom.Reset(false) // the app runs: SYNC is ignored until the next session
	require.Eventually(t, func() bool { return !rom.InDownloadMode() }, 5*time.Second, 10*time.Millisecond)
	require.True(t, syncOnce(t, path), "reopening the port reset the board into download mode")
}

func TestStartTCPRefusesNonLoopback(t *testing.T) {
	_, _, _, err := StartTCP(context.Background(), Config{}, "0.0.0.0:0")
	require.Error(t, err)
}

// Back-to-back sessions: a host that reopens the port at once (before the
// simulator could read the close) still gets a chip reset into download
// mode. This is what made about 3 in 30 back-to-back commands fail with
// "no sync" against the simulated board: the app of the previous session
// kept running.
func TestImmediateReopenIsANewSession(t *testing.T) {
	path, rom, stop, err := StartPTY(context.Background(), Config{Chip: firmware.ChipESP32C3, ResetOnOpen: true})
	require.NoError(t, err)
	defer stop()
	for i := range 10 {
		require.True(t, syncOnce(t, path), "session %d", i)
		rom.Reset(false) // the previous command ended by running the app
		require.Eventually(t, func() bool { return !rom.InDownloadMode() }, 5*time.Second, time.Millisecond)
	}
}
