package tui

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden screens under testdata/golden")

// goldenStates builds each screen and state the issue lists, on the fake fleet.
func goldenStates() map[string]func(t *testing.T, w, h int) Model {
	return map[string]func(t *testing.T, w, h int) Model{
		"empty": func(t *testing.T, w, h int) Model {
			fake := NewFakeBackend(FakeOptions{Now: fixedNow, Devices: []Device{}})
			m := New(Config{Now: fixedNow}, fake.Backend())
			t.Cleanup(m.cancel)
			return sizeTo(t, m, w, h)
		},
		"devices": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{Demo: true})
			return cursorTo(t, m, "greenhouse-ctl")
		},
		"detail-partitions": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			return openBenchDetail(t, m, fake)
		},
		"partitions": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			m = openBenchDetail(t, m, fake)
			return press(t, m, "p")
		},
		"partitions-confirm-switch": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			m = openBenchDetail(t, m, fake)
			return press(t, m, "p", "up", "s")
		},
		"preflight-failed": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = cursorTo(t, m, "greenhouse-ctl")
			return chooseFile(t, m, "porch-light-esp32c3.bin")
		},
		"campaign-running": func(t *testing.T, w, h int) Model {
			m, _ := startedCampaign(t, w, h, sampleCampaign(true))
			return m
		},
		"campaign-stopped": func(t *testing.T, w, h int) Model {
			m, _ := startedCampaign(t, w, h, sampleCampaign(false))
			return press(t, m, "down")
		},
		"campaign-offer": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			return reviewGroup(t, m, "porch-light.bin", "garage-door", "pump-house", "bench-3")
		},
		"esphome-job": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = cursorTo(t, m, "porch-light")
			m = chooseFile(t, m, "porch-light.bin")
			m = press(t, m, "enter")
			m = typeText(t, m, "demo")
			m = press(t, m, "enter")
			id := m.jobs[0].id
			m = send(t, m, jobProgressMsg{updates: []progressUpdate{{job: id, p: Progress{Stage: "auth", Note: "ESPHome v2 · MD5 · encrypted"}, at: testNow}}})
			return progressTo(t, m, id, "transfer", 401408, 1003520)
		},
		"server": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			fake.SetServer(sampleServer())
			m, cmd := sendCmd(t, m, keyMsg("S"))
			return send(t, m, runMsg(t, cmd))
		},
		"password": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{Demo: true})
			m = cursorTo(t, m, "greenhouse-ctl")
			m = chooseFile(t, m, "greenhouse-v2.7.1.bin")
			m = press(t, m, "enter")
			return typeText(t, m, "dem")
		},
		"job-running": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = cursorTo(t, m, "sensor-attic")
			m = chooseFile(t, m, "sensor-attic.bin")
			m = press(t, m, "enter")
			return progressTo(t, m, m.jobs[0].id, "transfer", 251000, 412160)
		},
		"job-running-detail": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = cursorTo(t, m, "sensor-attic")
			m = chooseFile(t, m, "sensor-attic.bin")
			m = press(t, m, "enter")
			id := m.jobs[0].id
			m = send(t, m, jobProgressMsg{updates: []progressUpdate{{job: id, p: Progress{Stage: "invite"}, at: testNow}, {job: id, p: Progress{Stage: "connect"}, at: testNow}}})
			m = progressTo(t, m, id, "transfer", 251000, 412160)
			return press(t, m, "enter")
		},
		"job-failed-hint": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = cursorTo(t, m, "garage-door")
			m = chooseFile(t, m, "blink-esp32.bin")
			m = press(t, m, "enter")
			return send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{
				Error: "the device never connected back to 127.0.0.1:41234",
				Hint:  "allow inbound TCP on port 41234 in the firewall, or pick an open port with --host-port"}})
		},
		"several-jobs": func(t *testing.T, w, h int) Model {
			m := severalJobs(t, w, h, 2)
			return m
		},
		"filter-marks-hidden": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			for _, n := range []string{"bench-3", "porch-light"} {
				m = cursorTo(t, m, n)
				m = press(t, m, "space")
			}
			m = filterTo(t, m, "greenhouse")
			return press(t, m, "f")
		},
		"group-preflight-some-failed": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			for _, n := range []string{"garage-door", "pump-house", "porch-light"} {
				m = cursorTo(t, m, n)
				m = press(t, m, "space")
			}
			return chooseFile(t, m, "blink-esp32.bin")
		},
		"job-detail-failed": func(t *testing.T, w, h int) Model {
			m := severalJobs(t, w, h, 2)
			m = press(t, m, "J")
			for m.jobAtCursor().running() {
				m = press(t, m, "down")
			}
			return press(t, m, "enter")
		},
		"long-explanation": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			m = openBenchDetail(t, m, fake)
			m = press(t, m, "p")
			r := m.rowByKey(m.current)
			st := m.parts[r.key].state
			st.BootsNextWhy = longWhy
			m = send(t, m, partitionsMsg{row: r.key, action: "boot slot switched to ota_1", state: st})
			return m
		},
		"not-checked-host": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceAdded, Device: Device{ID: "manual/192.0.2.5:3232",
				Name: "192.0.2.5", Kind: KindArduinoOTA, Address: "192.0.2.5:3232", FirstSeen: testNow, Presence: PresenceUnchecked}}}})
			m = cursorTo(t, m, "192.0.2.5")
			return press(t, m, "enter")
		},
		"not-checked-list": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceAdded, Device: Device{ID: "manual/192.0.2.5:3232",
				Name: "192.0.2.5", Kind: KindArduinoOTA, Address: "192.0.2.5:3232", FirstSeen: testNow, Presence: PresenceUnchecked}}}})
			return cursorTo(t, m, "192.0.2.5")
		},
		"log-screen": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			m.fail("switch boot slot on bench-3 failed: " + longWhy)
			return press(t, m, "w")
		},
		"detail-partitions-with-failed-job": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			m = cursorTo(t, m, "garage-door")
			m = chooseFile(t, m, "blink-esp32.bin")
			m = press(t, m, "enter")
			m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{
				Error: "the device never connected back to 127.0.0.1:41234",
				Hint:  "allow inbound TCP on port 41234 in the firewall, or pick an open port with --host-port, and make sure nothing else holds that port"}})
			return openBenchDetail(t, m, fake)
		},
		"help": func(t *testing.T, w, h int) Model {
			m, _ := newTestModel(t, w, h, Config{})
			return press(t, m, "?")
		},
		"monitor": func(t *testing.T, w, h int) Model {
			m, fake := newTestModel(t, w, h, Config{})
			m = openBenchDetail(t, m, fake)
			m, cmd := sendCmd(t, m, keyMsg("m"))
			opened := runMsg(t, cmd).(monitorOpenedMsg)
			m, cmd = sendCmd(t, m, opened)
			var lines []LogLine
			for len(lines) < 9 {
				lines = append(lines, runMsg(t, cmd).(monitorLinesMsg).lines...)
			}
			m.mon.cancel()
			return send(t, m, monitorLinesMsg{session: opened.session, lines: lines[:9]})
		},
	}
}

func sizeTo(t *testing.T, m Model, w, h int) Model {
	return send(t, m, windowSize(w, h))
}

// progressTo reports a stage at a steady 200 KB/s, so rate and ETA are fixed.
func progressTo(t *testing.T, m Model, id int, stage string, done, total int64) Model {
	t.Helper()
	return send(t, m, jobProgressMsg{updates: []progressUpdate{
		{job: id, p: Progress{Stage: stage, Done: 0, Total: total}, at: testNow},
		{job: id, p: Progress{Stage: stage, Done: done, Total: total}, at: testNow.Add(time.Duration(float64(done) / 204800 * float64(time.Second)))},
	}})
}

// severalJobs marks four boards and flashes one image to all, limit limit.
func severalJobs(t *testing.T, w, h, limit int) Model {
	m, _ := newTestModel(t, w, h, Config{Concurrency: limit, Demo: true})
	for _, n := range []string{"bench-3", "garage-door", "sensor-attic", "pump-house"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	m = chooseFile(t, m, "testdata/demo-app.bin")
	m = press(t, m, "J") // plain jobs: enter would run a campaign
	m = progressTo(t, m, m.jobs[0].id, "write", 120000, 307200)
	m = send(t, m, jobFinishedMsg{job: m.jobs[1].id, result: FlashResult{
		Error: "the device never connected back to 127.0.0.1:41234",
		Hint:  "allow inbound TCP on port 41234 in the firewall, or pick an open port with --host-port"}})
	m = progressTo(t, m, m.jobs[2].id, "transfer", 50000, 307200)
	return cursorTo(t, m, "sensor-attic")
}

func TestGoldenScreens(t *testing.T) {
	for name, build := range goldenStates() {
		for _, size := range [][2]int{{80, 24}, {120, 40}} {
			file := filepath.Join("testdata", "golden", name+"-"+itoa(size[0])+"x"+itoa(size[1])+".golden")
			t.Run(filepath.Base(file), func(t *testing.T) {
				got := screenText(build(t, size[0], size[1]))
				lines := strings.Split(got, "\n")
				require.Len(t, lines, size[1], "the view fills the terminal height")
				for _, l := range lines {
					require.LessOrEqual(t, lipglossWidth(l), size[0], "line wider than the terminal: %q", l)
				}
				compareGolden(t, file, got)
			})
		}
	}
}

func compareGolden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(file), 0o755))
		require.NoError(t, os.WriteFile(file, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "missing golden file; run go test ./tui -run Golden -update")
	require.Equal(t, string(want), got, "screen differs from %s; if the change is intended, run go test ./tui -update", file)
}

func itoa(n int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + fmtInt(n))
}
