package tui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"charm.land/lipgloss/v2/table"
	"github.com/stretchr/testify/require"
)

// bigFleet is n network devices, every fourth also on serial (merged by MAC).
func bigFleet(n int) []DeviceEvent {
	evs := make([]DeviceEvent, 0, n+n/4)
	for i := range n {
		mac := fmt.Sprintf("24:6f:28:00:%02x:%02x", i/256, i%256)
		d := Device{ID: fmt.Sprintf("mdns:node-%03d", i), Name: fmt.Sprintf("node-%03d", i), Kind: KindArduinoOTA,
			Address: fmt.Sprintf("10.0.%d.%d:3232", i/250, i%250+1), MAC: mac, Board: "esp32s3", Chip: "ESP32-S3",
			AuthRequired: i%2 == 0, Interface: "eth0", FirstSeen: testNow.Add(-time.Hour), LastSeen: testNow.Add(-time.Duration(i) * time.Second),
			TXT: map[string]string{"board": "esp32s3", "auth_upload": "yes"}}
		evs = append(evs, DeviceEvent{Kind: DeviceAdded, Device: d})
		if i%4 == 0 {
			s := Device{ID: fmt.Sprintf("usb:/dev/ttyUSB%d", i), Name: "CP2102N", Kind: KindSerial, Port: fmt.Sprintf("/dev/ttyUSB%d", i),
				MAC: mac, SerialMode: SerialApp, LastSeen: testNow}
			evs = append(evs, DeviceEvent{Kind: DeviceAdded, Device: s})
		}
	}
	return evs
}

// busyModel is the benchmark's state: 200 devices and three running jobs.
func busyModel(tb testing.TB, w, h int) Model {
	fake := NewFakeBackend(FakeOptions{Now: fixedNow, Devices: []Device{}})
	m := New(Config{Now: fixedNow, Concurrency: 3}, fake.Backend())
	tb.Cleanup(m.cancel)
	m = send(tb, m, windowSize(w, h))
	m = send(tb, m, deviceEventsMsg{events: bigFleet(200)})
	reqs := map[string]FlashRequest{}
	for _, r := range m.rows[10:13] {
		reqs[r.key] = FlashRequest{Device: *r.net, File: "fw.bin"}
	}
	m.enqueue("fw.bin", reqs) // the commands are not run: the jobs only need to look busy
	for i, j := range m.jobs {
		m = send(tb, m, jobProgressMsg{updates: []progressUpdate{
			{job: j.id, p: Progress{Stage: "transfer", Done: 0, Total: 1 << 20}, at: testNow},
			{job: j.id, p: Progress{Stage: "transfer", Done: int64(i+1) << 18, Total: 1 << 20}, at: testNow.Add(time.Second)},
		}})
	}
	m.cursor = 100
	return m
}

// BenchmarkRenderDeviceList renders the main screen with 200 devices and
// three running jobs, next to a baseline: lipgloss's table component
// rendering the same 200 rows (what a straightforward implementation does).
func BenchmarkRenderDeviceList(b *testing.B) {
	for _, size := range [][2]int{{80, 24}, {200, 60}} {
		m := busyModel(b, size[0], size[1])
		require.Len(b, m.rows, 200)
		require.Equal(b, 3, m.activeJobs())
		b.Run(fmt.Sprintf("espdeck/%dx%d", size[0], size[1]), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			cpu0 := processCPU()
			for b.Loop() {
				n += len(m.View().Content)
			}
			reportFrame(b, n, processCPU()-cpu0)
		})
		b.Run(fmt.Sprintf("baseline-lipgloss-table/%dx%d", size[0], size[1]), func(b *testing.B) {
			b.ReportAllocs()
			var n int
			cpu0 := processCPU()
			for b.Loop() {
				t := table.New().Headers("NAME", "ADDRESS", "KIND", "BOARD", "AUTH", "STATUS").Width(size[0]).
					StyleFunc(func(row, col int) lipgloss.Style { return lipgloss.NewStyle() })
				for _, r := range m.rows {
					t.Row(r.name, rowAddress(r), rowKind(r), rowBoard(r), "", m.rowStatus(r))
				}
				n += len(t.String())
			}
			reportFrame(b, n, processCPU()-cpu0)
		})
	}
}

// reportFrame reports bytes per frame (MB/s), wall time per frame and the
// process CPU time per frame (load-independent on a shared machine).
func reportFrame(b *testing.B, bytes int, cpu time.Duration) {
	b.SetBytes(int64(bytes / max(b.N, 1)))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/frame")
	}
}

// TestIdleMemoryWith200Devices measures the heap the TUI holds with 200
// devices after rendering (Go heap in use after a GC, before and after
// building the model). The target is 60 MB RSS for the whole process; the
// model's share must stay far below it.
func TestIdleMemoryWith200Devices(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := busyModel(t, 120, 40)
	for range 10 {
		_ = m.View()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(&m)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use: %.2f MB before, %.2f MB after (model with 200 devices: %+.2f MB); Sys %.1f MB",
		mb(before.HeapInuse), mb(after.HeapInuse), float64(grew)/(1<<20), mb(after.Sys))
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				t.Logf("whole test process %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
	require.Less(t, grew, int64(20<<20), "the idle model with 200 devices should hold well under 20 MB of heap")
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// TestIdleProgramRSSWith200Devices runs the real program with 200 devices
// discovered and reads the process's resident set size once it is idle.
// The target is under 60 MB; the race detector multiplies memory, so the
// bound is only enforced without it.
func TestIdleProgramRSSWith200Devices(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to read the resident set size")
	}
	var devs []Device
	for _, ev := range bigFleet(200) {
		devs = append(devs, ev.Device)
	}
	fake := NewFakeBackend(FakeOptions{Devices: devs})
	rec := newLogRecorder()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Logger: slog.New(rec)}, fake.Backend(),
			tea.WithInput(pr), tea.WithOutput(io.Discard), tea.WithWindowSize(120, 40), tea.WithoutSignalHandler())
	}()
	rec.waitFor(t, "found node-199")
	time.Sleep(300 * time.Millisecond) // a few frames and ticks at rest
	runtime.GC()
	rss := vmRSS(t)
	_, err := pw.Write([]byte("q"))
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the program did not quit")
	}
	t.Logf("idle TUI with 200 devices: VmRSS %.1f MB (whole test process, race detector %v)", float64(rss)/1024, raceEnabled)
	if !raceEnabled {
		require.Less(t, rss, int64(60*1024), "idle RSS in kB")
	}
}

// vmRSS is the process's resident set size in kB.
func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
