package tui

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// busyModelWithHistory is the frame benchmark's state of issue 12: 200
// devices, ten finished jobs (half failed, with a firewall hint) and three
// running ones. It uses only what the model had before the jobs rework, so
// the same file measures the old code for the README's side-by-side table.
func busyModelWithHistory(tb testing.TB, w, h int) Model {
	fake := NewFakeBackend(FakeOptions{Now: fixedNow, Devices: []Device{}})
	m := New(Config{Now: fixedNow, Concurrency: 3}, fake.Backend())
	tb.Cleanup(m.cancel)
	m = send(tb, m, windowSize(w, h))
	m = send(tb, m, deviceEventsMsg{events: bigFleet(200)})
	old := map[string]FlashRequest{}
	for _, r := range m.rows[20:30] {
		old[r.key] = FlashRequest{Device: *r.net, File: "old.bin"}
	}
	m.enqueue("old.bin", old) // commands are not run: the jobs only need states
	for i := 0; i < 10; i++ {
		var running *job
		for _, j := range m.jobs {
			if j.state == jobRunning {
				running = j
				break
			}
		}
		require.NotNil(tb, running)
		res := FlashResult{Bytes: 900 << 10, Duration: 9 * time.Second}
		if i%2 == 1 {
			res = FlashResult{Error: "the device never connected back to 10.0.0.1:41234",
				Hint: "allow inbound TCP on port 41234 in the firewall, or pick an open port with --host-port", Duration: 12 * time.Second}
		}
		m = send(tb, m, jobFinishedMsg{job: running.id, result: res})
	}
	reqs := map[string]FlashRequest{}
	for _, r := range m.rows[10:13] {
		reqs[r.key] = FlashRequest{Device: *r.net, File: "fw.bin"}
	}
	m.enqueue("fw.bin", reqs)
	n := 0
	for _, j := range m.jobs {
		if j.state != jobRunning {
			continue
		}
		n++
		m = send(tb, m, jobProgressMsg{updates: []progressUpdate{
			{job: j.id, p: Progress{Stage: "transfer", Done: 0, Total: 1 << 20}, at: testNow},
			{job: j.id, p: Progress{Stage: "transfer", Done: int64(n) << 18, Total: 1 << 20}, at: testNow.Add(time.Second)},
		}})
	}
	require.Equal(tb, 3, n)
	require.Len(tb, m.jobs, 13)
	m.cursor = 100
	return m
}

// BenchmarkRenderWithJobHistory renders the main screen at 200×60 with 200
// devices, three running jobs and ten finished ones. Run the same file on
// the code before the jobs rework for the README's "before" column.
func BenchmarkRenderWithJobHistory(b *testing.B) {
	for _, size := range [][2]int{{80, 24}, {200, 60}} {
		m := busyModelWithHistory(b, size[0], size[1])
		b.Run(fmt.Sprintf("espdeck/%dx%d", size[0], size[1]), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			cpu0 := processCPU()
			for b.Loop() {
				n += len(m.View().Content)
			}
			reportFrame(b, n, processCPU()-cpu0)
		})
	}
}
