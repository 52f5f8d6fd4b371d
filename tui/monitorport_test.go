package tui

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"
)

// hasMsg runs cmd's commands that finish at once and says whether one of
// them produced a T (commands that would block are not waited for).
func opensMonitor(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		for _, c := range b {
			if opensMonitor(c) {
				return true
			}
		}
		return false
	}
	_, ok := msg.(monitorOpenedMsg)
	return ok
}

// Two readers on one serial port each get part of the bytes (the garbled
// "rst:0x1 (POWERON_RESET),boot:0x13 (S" / "PI_FAST_FLASH_BOOT)"): the
// monitor waits until the detail view's chip and partition reads are done.
func TestMonitorWaitsForTheReadsThatHoldThePort(t *testing.T) {
	m, fake := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "bench-3")
	m = press(t, m, "enter") // starts the chip and partition reads
	r := m.rowByKey(m.current)
	require.True(t, m.portBusy(r.key))

	m, cmd := sendCmd(t, m, keyMsg("m"))
	require.Equal(t, screenMonitor, m.screen)
	require.False(t, opensMonitor(cmd), "the port is still being read")
	requireWhole(t, m, "waiting for the chip and partition reads to release the port")

	info, err := fake.ChipInfo(context.Background(), *r.ser)
	m, cmd = sendCmd(t, m, chipInfoMsg{row: r.key, info: info, err: err})
	require.False(t, opensMonitor(cmd), "the partition read still holds the port")
	st, err := fake.ReadPartitions(context.Background(), *r.ser)
	m, cmd = sendCmd(t, m, partitionsMsg{row: r.key, state: st, err: err})
	require.True(t, opensMonitor(cmd), "both reads are done: the monitor opens the port")
	require.False(t, m.mon.waiting)
	m.mon.cancel()
}

// After a serial flash the partitions are read again; the monitor that
// lent its port to the flash reattaches only after that read.
func TestMonitorReattachesAfterThePostFlashRead(t *testing.T) {
	m, fake := newTestModel(t, 100, 30, Config{})
	m = openBenchDetail(t, m, fake)
	m, cmd := sendCmd(t, m, keyMsg("m"))
	require.True(t, opensMonitor(cmd))
	// A queued job of a group flash starts while the monitor is open.
	r := m.rowByKey(m.current)
	m.enqueue("x.bin", map[string]FlashRequest{r.key: {Device: *r.ser, Route: RouteSerial, File: "x.bin"}})
	require.NotZero(t, m.mon.yielded, "the monitor lent the port to the flash")
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Bytes: 1}})
	require.True(t, m.mon.waiting, "the partition read after the flash goes first")
	st, err := fake.ReadPartitions(context.Background(), *r.ser)
	m, cmd = sendCmd(t, m, partitionsMsg{row: r.key, state: st, err: err})
	require.True(t, opensMonitor(cmd))
	m.mon.cancel()
}

// A monitor still waiting for a read when a serial flash of the same board
// starts does not open the port under the flash when the read ends.
func TestWaitingMonitorDoesNotOpenUnderAFlash(t *testing.T) {
	m, fake := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "bench-3")
	m = press(t, m, "enter", "m")
	require.True(t, m.mon.waiting)
	r := m.rowByKey(m.current)
	m.enqueue("x.bin", map[string]FlashRequest{r.key: {Device: *r.ser, Route: RouteSerial, File: "x.bin"}})
	require.NotZero(t, m.mon.yielded)
	info, err := fake.ChipInfo(context.Background(), *r.ser)
	m = send(t, m, chipInfoMsg{row: r.key, info: info, err: err})
	st, err := fake.ReadPartitions(context.Background(), *r.ser)
	m, cmd := sendCmd(t, m, partitionsMsg{row: r.key, state: st, err: err})
	require.False(t, opensMonitor(cmd), "the flash has the port")
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Bytes: 1}})
	st, err = fake.ReadPartitions(context.Background(), *r.ser)
	m, cmd = sendCmd(t, m, partitionsMsg{row: r.key, state: st, err: err})
	require.True(t, opensMonitor(cmd), "after the flash and its read-back the monitor opens")
	m.mon.cancel()
}
