package tui

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"
)

// runMsg runs a command that must finish (not a ticker or a channel wait)
// and returns its message, unwrapping a batch of one.
func runMsg(t *testing.T, cmd tea.Cmd) tea.Msg {
	t.Helper()
	require.NotNil(t, cmd)
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		return msg
	case <-time.After(10 * time.Second):
		t.Fatal("command did not finish")
		return nil
	}
}

func cursorTo(t *testing.T, m Model, name string) Model {
	t.Helper()
	for i, r := range m.visible {
		if r.name == name {
			m.cursor = i
			return m
		}
	}
	t.Fatalf("no row %q", name)
	return m
}

// chooseFile opens the flash dialog for the cursor row (or the marked rows),
// types path and runs the inspection.
func chooseFile(t *testing.T, m Model, path string) Model {
	t.Helper()
	m = press(t, m, "f")
	require.NotNil(t, m.flow)
	m.flow.input.SetValue("")
	m = typeText(t, m, path)
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	return send(t, m, runMsg(t, cmd))
}

func TestRowsMergeByMACAndKeepCursor(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	require.Len(t, m.sightings, 7)
	require.Len(t, m.rows, 6, "the greenhouse board is on the network and on USB: one row")
	r := m.rowByKey("mac:" + fakeGreenMAC)
	require.NotNil(t, r)
	require.NotNil(t, r.net)
	require.NotNil(t, r.ser)
	require.Equal(t, "greenhouse-ctl", r.name, "named after the network sighting")

	m = cursorTo(t, m, "porch-light")
	// A new device sorting before the cursor must not move the cursor off porch-light.
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceAdded, Device: Device{ID: "host:a", Name: "aaa-first", Kind: KindArduinoOTA, Address: "127.0.0.1:1"}}}})
	require.Equal(t, "porch-light", m.cursorRow().name)
	// Removing the cursor row leaves a valid cursor.
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceRemoved, Device: Device{ID: FakePorch}}}})
	require.Len(t, m.rows, 6)
	require.NotNil(t, m.cursorRow())
	requireScreenContains(t, m, "aaa-first")
}

func TestFilterByTyping(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = press(t, m, "/")
	require.True(t, m.filtering)
	m = typeText(t, m, "attic") // letters like j and k type, not move
	require.Len(t, m.visible, 1)
	require.Equal(t, "sensor-attic", m.cursorRow().name)
	m = press(t, m, "enter")
	require.False(t, m.filtering)
	requireScreenContains(t, m, `filter "attic": 1 of 6`)
	m = press(t, m, "esc")
	require.Len(t, m.visible, 6)
}

func TestAddHost(t *testing.T) {
	m, fake := newTestModel(t, 80, 24, Config{})
	m = press(t, m, "a")
	require.NotNil(t, m.prompt)
	m = typeText(t, m, "127.0.0.1:4000")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	require.Nil(t, m.prompt)
	msg := runMsg(t, cmd)
	require.NoError(t, msg.(hostAddedMsg).err)
	m = send(t, m, msg)
	// The host arrives through Watch like any device.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := fake.Watch(ctx)
	var evs []DeviceEvent
	for range 8 {
		evs = append(evs, <-ch)
	}
	m = send(t, m, deviceEventsMsg{events: evs})
	requireScreenContains(t, m, "127.0.0.1:4000")
	// Typing an address proves nothing: the host is not called online.
	m = cursorTo(t, m, "127.0.0.1:4000")
	require.Equal(t, "not checked", m.rowStatus(m.cursorRow()))
	m = press(t, m, "enter")
	requireWhole(t, m, "nothing has answered from this address yet")
	require.NotContains(t, screenText(m), "last answer")
	m = press(t, m, "esc")

	// A typo is caught when typed, not at flash time.
	m = press(t, m, "a")
	m = typeText(t, m, "not a host!!")
	m = press(t, m, "enter")
	require.NotNil(t, m.prompt, "the prompt stays open")
	requireScreenContains(t, m, "not a host name or an IP address")
	m = press(t, m, "esc")

	m = press(t, m, "a")
	m = typeText(t, m, "192.0.2.7")
	m, cmd = sendCmd(t, m, keyMsg("enter"))
	m = send(t, m, runMsg(t, cmd))
	require.Contains(t, m.errMsg, "loopback", "the error says what to do")
}

func TestFlashAsksPasswordOnceAndSendsIt(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Demo: true})
	m = cursorTo(t, m, "greenhouse-ctl")
	m = chooseFile(t, m, "greenhouse-v2.7.1.bin")
	require.NotNil(t, m.flow.facts)
	require.Equal(t, VerdictOK, m.flow.verdicts["mac:"+fakeGreenMAC].Kind)
	requireScreenContains(t, m, "ESP32-S3 app", "v2.7.1", "pre-flight ok")

	m = press(t, m, "enter")
	require.NotNil(t, m.prompt, "a protected device asks for its password")
	m = typeText(t, m, "demo")
	require.NotContains(t, screenText(m), "demo\n", "the password is not echoed")
	require.Contains(t, screenText(m), "••••")
	m = press(t, m, "enter")
	require.Len(t, m.jobs, 1)
	j := m.jobs[0]
	require.Equal(t, jobRunning, j.state)
	require.Equal(t, Secret("demo"), j.req.Password)
	require.Equal(t, RouteNetwork, j.req.Route)
	require.Equal(t, "127.0.0.1:3232", j.req.Device.Address)
	require.Equal(t, "[redacted]", j.req.Password.String())

	m = send(t, m, jobFinishedMsg{job: j.id, result: FlashResult{Bytes: 1268736, Version: "v2.7.1", Duration: 9600 * time.Millisecond}})
	require.Equal(t, jobDone, m.jobs[0].state)
	requireScreenContains(t, m, "done", "v2.7.1 1.21 MiB in 9.6 s (129 KiB/s)")

	// The second flash of the same board does not ask again.
	m = chooseFile(t, m, "greenhouse-v2.7.1.bin")
	m = press(t, m, "enter")
	require.Nil(t, m.prompt)
	require.Len(t, m.jobs, 1, "one job line per device: the newest")
	require.Equal(t, jobRunning, m.jobs[0].state)
	require.Equal(t, "greenhouse-v2.7.1.bin", m.cfg.RecentFiles[0])
}

func TestPreflightFailureNeedsForceAndSecondConfirmation(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "greenhouse-ctl")
	m = chooseFile(t, m, "porch-light-esp32c3.bin")
	requireScreenContains(t, m, "built for ESP32-C3, this board is ESP32-S3", "F forces")
	m = press(t, m, "enter")
	require.Empty(t, m.jobs, "enter does not send a refused image")
	require.Nil(t, m.prompt)
	m = press(t, m, "F")
	require.NotNil(t, m.prompt, "forcing asks a second time")
	require.Contains(t, strings.Join(m.prompt.lines, " "), "built for ESP32-C3")
	m = press(t, m, "n")
	require.Empty(t, m.jobs)
	m = press(t, m, "F", "y")
	require.NotNil(t, m.prompt, "then the password")
	m = typeText(t, m, "demo")
	m = press(t, m, "enter")
	require.Len(t, m.jobs, 1)
	require.True(t, m.jobs[0].req.Force)
}

func TestRefusedImageCannotBeForced(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "garage-door")
	m = chooseFile(t, m, "unsigned-esp32.bin")
	requireScreenContains(t, m, "not signed", "cannot be forced")
	m = press(t, m, "F", "y", "enter")
	require.Empty(t, m.jobs)
	m = press(t, m, "esc")
	require.Equal(t, flowFile, m.flow.step, "esc goes back to the file")
	m = press(t, m, "esc")
	require.Nil(t, m.flow)
}

func TestMissingFileSaysWhy(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = chooseFile(t, m, "no/such/file.bin")
	require.Equal(t, flowFile, m.flow.step)
	requireScreenContains(t, m, "cannot read no/such/file.bin")
}

func TestFileCompletion(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeFile(dir+"/greenhouse-a.bin"))
	require.NoError(t, writeFile(dir+"/greenhouse-b.bin"))
	m, _ := newTestModel(t, 80, 24, Config{})
	m = press(t, m, "f")
	m.flow.input.SetValue(dir + "/gr")
	m, cmd := sendCmd(t, m, keyMsg("tab"))
	m = send(t, m, runMsg(t, cmd))
	require.Equal(t, dir+"/greenhouse-", m.flow.input.Value(), "completes the common prefix")
	require.Len(t, m.flow.completions, 2)
	m = typeText(t, m, "b")
	m, cmd = sendCmd(t, m, keyMsg("tab"))
	m = send(t, m, runMsg(t, cmd))
	require.Equal(t, dir+"/greenhouse-b.bin", m.flow.input.Value())
}

func TestRecentFiles(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{RecentFiles: []string{"a.bin", "b.bin"}})
	m = press(t, m, "f")
	require.Empty(t, m.flow.input.Value(), "typing starts a new path")
	requireScreenContains(t, m, "a.bin  (enter takes it")
	m = press(t, m, "down", "down")
	require.Equal(t, "b.bin", m.flow.input.Value())
	m = press(t, m, "up")
	require.Equal(t, "a.bin", m.flow.input.Value())
	m.flow.input.SetValue("")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	require.NotNil(t, cmd)
	require.Equal(t, "a.bin", m.flow.path, "enter on an empty input takes the newest recent file")
}

func TestAuthFailureAsksAgainAndRetries(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "porch-light")
	m = chooseFile(t, m, "porch-light.bin")
	m = press(t, m, "enter")
	m = typeText(t, m, "wrong")
	m = press(t, m, "enter")
	id := m.jobs[0].id
	m = send(t, m, jobFinishedMsg{job: id, result: FlashResult{Error: "the device rejected the password", AuthFailed: true}})
	require.Equal(t, jobFailed, m.jobs[0].state)
	require.NotNil(t, m.prompt, "asks for the password again")
	require.NotContains(t, m.passwords, m.jobs[0].row, "the wrong password is forgotten")
	m = typeText(t, m, "demo")
	m = press(t, m, "enter")
	require.Len(t, m.jobs, 1)
	require.Equal(t, jobRunning, m.jobs[0].state)
	require.Equal(t, Secret("demo"), m.jobs[0].req.Password)
}

func TestFailureShowsHintAndRetries(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "garage-door")
	m = chooseFile(t, m, "blink-esp32.bin")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	require.NotNil(t, cmd)
	require.Len(t, m.jobs, 1)
	// Run the real fake flash: it reports progress and then the firewall failure.
	m = send(t, m, findMsg[jobFinishedMsg](t, cmd))
	require.Equal(t, jobFailed, m.jobs[0].state)
	requireScreenContains(t, m, "failed", "never connected back", "J why")
	require.Equal(t, "failed", m.rowStatus(m.cursorRow()))
	// The whole sentence and the hint are in the job detail.
	m = press(t, m, "J", "enter")
	require.Equal(t, screenJobDetail, m.screen)
	requireScreenContains(t, m, "never connected back to 127.0.0.1:41234", "allow inbound TCP on port 41234", "r retries")
	m = press(t, m, "esc", "esc")
	require.Equal(t, screenList, m.screen)

	m = press(t, m, "r")
	require.Equal(t, jobRunning, m.jobs[0].state)
	require.Equal(t, "blink-esp32.bin", m.jobs[0].req.File)
}

func TestGroupFlashHonoursConcurrencyAndSummarises(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Concurrency: 2})
	for _, n := range []string{"bench-3", "garage-door", "sensor-attic"} {
		m = cursorTo(t, m, n)
		m = press(t, m, "space")
	}
	require.Len(t, m.marked, 3)
	m = chooseFile(t, m, "testdata/demo-app.bin")
	require.Len(t, m.flow.verdicts, 3)
	m = press(t, m, "J") // plain jobs; enter runs a campaign
	require.Len(t, m.jobs, 3)
	states := func() []jobState {
		var s []jobState
		for _, j := range m.jobs {
			s = append(s, j.state)
		}
		return s
	}
	require.Equal(t, []jobState{jobRunning, jobRunning, jobQueued}, states())
	require.Equal(t, RouteSerial, m.jobs[0].req.Route, "bench-3 is serial only")
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Bytes: 10}})
	require.Equal(t, []jobState{jobDone, jobRunning, jobRunning}, states(), "the queued job starts when one ends")
	m = send(t, m, jobFinishedMsg{job: m.jobs[1].id, result: FlashResult{Error: "x", Hint: "y"}})
	require.Empty(t, m.notice)
	m = send(t, m, jobFinishedMsg{job: m.jobs[2].id, result: FlashResult{}})
	require.Contains(t, m.notice, "2 done, 1 failed")
	requireScreenContains(t, m, "2 done, 1 failed")
}

func TestFlashRefusedWhileRunning(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m = press(t, m, "enter")
	m = press(t, m, "f")
	require.Nil(t, m.flow)
	require.Contains(t, m.errMsg, "being flashed already")
	m = press(t, m, "x")
	require.Empty(t, m.errMsg, "x dismisses the error")
	require.Contains(t, screenText(press(t, m, "l")), "being flashed already", "it stays in the log")
}

func TestProgressUpdatesJobRow(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m = press(t, m, "enter")
	id := m.jobs[0].id
	m = send(t, m, jobProgressMsg{updates: []progressUpdate{
		{job: id, p: Progress{Stage: "invite"}, at: testNow},
		{job: id, p: Progress{Stage: "transfer", Done: 0, Total: 400000}, at: testNow},
		{job: id, p: Progress{Stage: "transfer", Done: 200000, Total: 400000}, at: testNow.Add(time.Second)},
	}})
	j := m.jobs[0]
	require.Equal(t, "transfer", j.stage)
	// invite, auth and connect weigh 6%, transfer 90%: half the transfer is 51% overall.
	require.InDelta(t, 0.51, j.percent(), 0.001)
	require.InDelta(t, 200000, j.rate, 1)
	requireScreenContains(t, m, "transfer", "51%", "195 KiB/s", "eta 1s", "flashing 51%")
	// Reports for unknown jobs are ignored.
	m = send(t, m, jobProgressMsg{updates: []progressUpdate{{job: 999, p: Progress{Stage: "x"}}}})
	require.Equal(t, "transfer", m.jobs[0].stage)
}

func TestProgressSinkThrottlesAndNeverBlocks(t *testing.T) {
	now := testNow
	clock := func() time.Time { return now }
	ch := make(chan progressUpdate, 4)
	sink := progressSink(7, ch, 100*time.Millisecond, clock)
	for i := range 1000 {
		sink(Progress{Stage: "transfer", Done: int64(i), Total: 10000})
	}
	require.Len(t, ch, 1, "a burst within the interval sends one report")
	sink(Progress{Stage: "finalize"})
	require.Len(t, ch, 2, "a stage change is sent at once")
	now = now.Add(150 * time.Millisecond)
	sink(Progress{Stage: "finalize", Done: 1})
	require.Len(t, ch, 3)
	now = now.Add(time.Second)
	sink(Progress{Stage: "finalize", Done: 2})
	now = now.Add(time.Second)
	done := make(chan struct{})
	go func() { // the channel is full: the sink must drop, not block
		sink(Progress{Stage: "reset"})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("progress sink blocked the flash")
	}
	u := <-ch
	require.Equal(t, 7, u.job)
}

func TestWaitProgressTakesAllQueued(t *testing.T) {
	ch := make(chan progressUpdate, 8)
	for i := range 5 {
		ch <- progressUpdate{job: i}
	}
	msg := waitProgress(context.Background(), ch)().(jobProgressMsg)
	require.Len(t, msg.updates, 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.Nil(t, waitProgress(ctx, ch)(), "a cancelled wait ends")
}

func TestWaitDevicesBatchesAndSeesClose(t *testing.T) {
	ch := make(chan DeviceEvent, 4)
	ch <- DeviceEvent{Device: Device{ID: "a"}}
	ch <- DeviceEvent{Device: Device{ID: "b"}}
	close(ch)
	msg := waitDevices(context.Background(), ch)().(deviceEventsMsg)
	require.Len(t, msg.events, 2)
	require.True(t, msg.closed)
}

func TestQuitWithoutJobsQuits(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m, cmd := sendCmd(t, m, keyMsg("q"))
	require.IsType(t, tea.QuitMsg{}, runMsg(t, cmd))
	require.Error(t, m.ctx.Err())
}

func TestQuitWhileFlashingAsksAndCancels(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m, flashCmd := sendCmd(t, m, keyMsg("enter"))
	m, cmd := sendCmd(t, m, keyMsg("q"))
	require.Nil(t, cmd)
	require.NotNil(t, m.prompt)
	requireScreenContains(t, m, "1 flash job still running")
	m = press(t, m, "n")
	require.NoError(t, m.ctx.Err(), "no: nothing is cancelled")
	m = press(t, m, "q")
	m, cmd = sendCmd(t, m, keyMsg("y"))
	require.Nil(t, cmd, "waits for the job to end")
	require.Error(t, m.ctx.Err())
	// The running fake flash sees the cancellation and ends.
	fin := findMsg[jobFinishedMsg](t, flashCmd)
	require.True(t, fin.result.Canceled)
	m, cmd = sendCmd(t, m, fin)
	require.Equal(t, jobCanceled, m.jobs[0].state)
	require.IsType(t, tea.QuitMsg{}, runMsg(t, cmd))
}

func openBenchDetail(t *testing.T, m Model, fake *FakeBackend) Model {
	t.Helper()
	m = cursorTo(t, m, "bench-3")
	m = press(t, m, "enter")
	require.Equal(t, screenDetail, m.screen)
	r := m.rowByKey(m.current)
	info, err := fake.ChipInfo(context.Background(), *r.ser)
	m = send(t, m, chipInfoMsg{row: r.key, info: info, err: err})
	st, err := fake.ReadPartitions(context.Background(), *r.ser)
	return send(t, m, partitionsMsg{row: r.key, state: st, err: err})
}

func TestDetailShowsChipAndPartitions(t *testing.T) {
	m, fake := newTestModel(t, 100, 40, Config{})
	m = openBenchDetail(t, m, fake)
	requireScreenContains(t, m, "ESP32-D0WD-V3", "secure boot off", "ota_1", "boots next", "v2.7.0", "v2.6.3")
	m = press(t, m, "esc")
	require.Equal(t, screenList, m.screen)
}

func TestSwitchBootSlotConfirmsAndShowsNewState(t *testing.T) {
	m, fake := newTestModel(t, 100, 40, Config{})
	m = openBenchDetail(t, m, fake)
	m = press(t, m, "p")
	require.Equal(t, screenPartitions, m.screen)
	ps := m.parts[m.current]
	require.Equal(t, "ota_1", ps.state.BootsNext)
	require.Equal(t, "ota_1", ps.state.Partitions[m.partCursor].Name, "the cursor starts on the slot that boots next")
	m = press(t, m, "up")
	m = press(t, m, "s")
	require.NotNil(t, m.prompt)
	require.Equal(t, "Boot ota_0 (greenhouse v2.6.3) next time? The app slots are not touched.", m.prompt.lines[0])
	m, cmd := sendCmd(t, m, keyMsg("y"))
	require.True(t, m.parts[m.current].busy)
	m = send(t, m, runMsg(t, cmd))
	require.Equal(t, "ota_0", m.parts[m.current].state.BootsNext)
	requireScreenContains(t, m, "boot slot switched to ota_0", "ota_0 boots next")
}

func TestEraseAndMarkInvalidSayWhatBootsNext(t *testing.T) {
	m, fake := newTestModel(t, 100, 40, Config{})
	m = openBenchDetail(t, m, fake)
	m = press(t, m, "p", "e")
	require.Contains(t, m.prompt.lines[0], "Then ota_0 (greenhouse v2.6.3) boots next time")
	m = press(t, m, "n")
	m = press(t, m, "i")
	require.Contains(t, m.prompt.lines[0], "Mark ota_1 (greenhouse v2.7.0) invalid")
	require.Contains(t, m.prompt.lines[0], "Then ota_0 (greenhouse v2.6.3) boots next time")
	m, cmd := sendCmd(t, m, keyMsg("y"))
	m = send(t, m, runMsg(t, cmd))
	st := m.parts[m.current].state
	require.Equal(t, "ota_0", st.BootsNext)
	p, _ := st.Slot("ota_1")
	require.Equal(t, "invalid", p.State)
}

func TestMonitorFollowsPausesAndCloses(t *testing.T) {
	m, fake := newTestModel(t, 100, 30, Config{})
	m = openBenchDetail(t, m, fake)
	m, cmd := sendCmd(t, m, keyMsg("m"))
	require.Equal(t, screenMonitor, m.screen)
	opened := runMsg(t, cmd).(monitorOpenedMsg)
	require.NoError(t, opened.err)
	m, cmd = sendCmd(t, m, opened)
	lines := runMsg(t, cmd).(monitorLinesMsg)
	m = send(t, m, lines)
	require.NotEmpty(t, m.mon.lines)
	m = send(t, m, monitorLinesMsg{session: m.mon.session, lines: []LogLine{{Level: 'E', Tag: "pump", Text: "dry run"}}})
	requireScreenContains(t, m, "E pump: dry run")
	m = send(t, m, monitorLinesMsg{session: m.mon.session, lines: []LogLine{{Level: 'E', Text: "Guru Meditation Error"}}})
	requireScreenContains(t, m, "E Guru Meditation Error")
	require.NotContains(t, screenText(m), "E : Guru", "a line without a tag has no empty tag")
	m = press(t, m, "space")
	require.True(t, m.mon.paused)
	m = send(t, m, monitorLinesMsg{session: m.mon.session, lines: []LogLine{{Level: 'I', Tag: "x", Text: "held line"}}})
	require.NotContains(t, screenText(m), "held line", "a paused view does not move")
	requireScreenContains(t, m, "1 new line held")
	m = press(t, m, "space")
	requireScreenContains(t, m, "held line")
	// Lines of an old session are ignored.
	m = send(t, m, monitorLinesMsg{session: 99, lines: []LogLine{{Text: "stale"}}})
	require.NotContains(t, screenText(m), "stale")
	// Filter and save.
	m = press(t, m, "/")
	require.NotNil(t, m.prompt)
	m = typeText(t, m, "pump")
	m = press(t, m, "enter")
	require.Equal(t, "pump", m.mon.filter)
	require.NotContains(t, screenText(m), "held line")
	requireScreenContains(t, m, "dry run", `filter "pump"`)
	dir := t.TempDir()
	m.cfg.SaveDir = dir
	m, cmd = sendCmd(t, m, keyMsg("s"))
	m = send(t, m, runMsg(t, cmd))
	require.Contains(t, m.notice, dir)
	saved, err := os.ReadFile(strings.Fields(m.notice[strings.Index(m.notice, dir):])[0])
	require.NoError(t, err)
	require.Contains(t, string(saved), "E pump: dry run")
	require.Contains(t, string(saved), "held line", "the file has every line, not only the filtered ones")

	mon := m.mon
	m = press(t, m, "esc")
	require.Nil(t, m.mon)
	require.Equal(t, screenDetail, m.screen)
	require.Error(t, context.Cause(monCtx(mon)), "leaving the monitor releases the port")
}

func TestNarrowTerminalDropsColumnsBeforeNames(t *testing.T) {
	for _, w := range []int{60, 80, 120} {
		m, _ := newTestModel(t, w, 24, Config{})
		s := screenText(m)
		require.Contains(t, s, "greenhouse-ctl", "width %d", w)
		require.Contains(t, s, "STATUS", "width %d", w)
		if w < 100 {
			require.NotContains(t, s, "SEEN", "width %d", w)
		} else {
			require.Contains(t, s, "SEEN")
			require.Contains(t, s, "BOARD")
		}
		for _, l := range strings.Split(s, "\n") {
			require.LessOrEqual(t, lipglossWidth(l), w, "line wider than the terminal: %q", l)
		}
		require.Len(t, strings.Split(s, "\n"), 24)
	}
}

func TestHelpAndLogToggle(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = press(t, m, "?")
	require.True(t, m.showHelp)
	requireScreenContains(t, m, "mark all", "refresh", "ctrl+c")
	m = press(t, m, "?")
	require.False(t, m.showHelp)
	m = press(t, m, "l")
	requireScreenContains(t, m, "Log", "found bench-3")
}

func TestDemoHeader(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Demo: true})
	requireScreenContains(t, m, "DEMO · password: demo")
	m, _ = newTestModel(t, 80, 24, Config{})
	require.NotContains(t, screenText(m), "DEMO")
}

func TestSecretRedacts(t *testing.T) {
	s := Secret("hunter2")
	require.Equal(t, "[redacted]", s.String())
	require.Equal(t, "[redacted]", s.LogValue().String())
	require.Equal(t, "hunter2", s.Reveal())
}

func TestSerialRecoveryAfterNetworkFailure(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{})
	m = cursorTo(t, m, "greenhouse-ctl")
	m.passwords[m.cursorRow().key] = "demo"
	m = chooseFile(t, m, "greenhouse-v2.7.1.bin")
	m = press(t, m, "enter")
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Error: "the device never connected back to 127.0.0.1:41234", Hint: "allow inbound TCP on port 41234"}})
	m = press(t, m, "enter")
	requireScreenContains(t, m, "s flashes it over /dev/ttyUSB1")
	m = press(t, m, "s")
	require.NotNil(t, m.flow)
	require.True(t, m.flow.viaSerial)
	require.Equal(t, "greenhouse-v2.7.1.bin", m.flow.input.Value(), "the same file is offered")
	m, cmd := sendCmd(t, m, keyMsg("enter"))
	m = send(t, m, runMsg(t, cmd))
	requireScreenContains(t, m, "over serial (recovery)", "via serial /dev/ttyUSB1")
	m = press(t, m, "enter")
	require.Nil(t, m.prompt, "no network password for a serial flash")
	require.Equal(t, RouteSerial, m.jobs[0].req.Route)
	require.Equal(t, "/dev/ttyUSB1", m.jobs[0].req.Device.Port)
}

func TestMonitorYieldsPortToSerialFlash(t *testing.T) {
	m, fake := newTestModel(t, 100, 30, Config{})
	m = openBenchDetail(t, m, fake)
	m, cmd := sendCmd(t, m, keyMsg("m"))
	opened := runMsg(t, cmd).(monitorOpenedMsg)
	m = send(t, m, opened)
	oldSession := m.mon.session
	r := m.rowByKey(m.current)
	m.enqueue("fw.bin", map[string]FlashRequest{r.key: {Device: *r.ser, Route: RouteSerial, File: "fw.bin"}})
	require.NotZero(t, m.mon.yielded)
	requireScreenContains(t, m, "port lent to a flash")
	m = send(t, m, monitorLinesMsg{session: oldSession, lines: []LogLine{{Text: "late line"}}})
	require.NotContains(t, screenText(m), "late line")
	m, cmd = sendCmd(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{}})
	require.Zero(t, m.mon.yielded)
	require.NotNil(t, cmd, "the monitor reattaches")
}

func TestRowKeyChangesWhenMACIsLearned(t *testing.T) {
	fake := NewFakeBackend(FakeOptions{Now: fixedNow})
	m := New(Config{Now: fixedNow}, fake.Backend())
	t.Cleanup(m.cancel)
	m = send(t, m, windowSize(100, 40))
	board := Device{ID: "usb:/dev/ttyUSB5", Name: "bench-9", Kind: KindSerial, Port: "/dev/ttyUSB5", SerialMode: SerialDownload}
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceAdded, Device: board}}})
	m = press(t, m, "space", "enter")
	oldKey := m.current
	require.Equal(t, "usb:/dev/ttyUSB5", oldKey)
	// The ROM tells the MAC: discovery updates the sighting, the row's key changes.
	board.MAC = "24:0a:c4:99:99:99"
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceUpdated, Device: board}}})
	require.Equal(t, "mac:24:0a:c4:99:99:99", m.current, "the detail follows the board")
	require.True(t, m.marked[m.current], "the mark follows the board")
	// An answer to a request made under the old key lands on the board.
	st, err := fake.ReadPartitions(context.Background(), board)
	require.NoError(t, err)
	m = send(t, m, partitionsMsg{row: oldKey, state: st})
	require.NotNil(t, m.parts[m.current])
	require.True(t, m.parts[m.current].loaded)
	requireScreenContains(t, m, "boots next")
	m = press(t, m, "p", "up", "s")
	require.NotNil(t, m.prompt)
	_, cmd := sendCmd(t, m, keyMsg("y"))
	require.NotNil(t, cmd)
}

func TestDeviceGoneDuringFlashDialog(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceRemoved, Device: Device{ID: FakeAttic}}}})
	_ = screenText(m) // renders without the row
	m = press(t, m, "enter")
	require.Empty(t, m.jobs)
	require.Contains(t, m.errMsg, "gone from discovery")
}

func TestSpinnerRunsOnlyWhileJobsRun(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m = press(t, m, "enter")
	require.True(t, m.spinning)
	requireScreenContains(t, m, "starting")
	m, cmd := sendCmd(t, m, m.spin.Tick())
	require.NotNil(t, cmd, "turns while the job runs")
	m = send(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{}})
	m, cmd = sendCmd(t, m, m.spin.Tick())
	require.Nil(t, cmd, "stops when no job runs: no repaints when idle")
	require.False(t, m.spinning)
}

func TestMissingBackendPartsDoNotPanic(t *testing.T) {
	m := New(Config{Now: fixedNow}, Backend{})
	t.Cleanup(m.cancel)
	require.Nil(t, waitDevices(m.ctx, watchDevices(m.ctx, nil)))
	m = send(t, m, windowSize(80, 24))
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Device: Device{ID: "usb:x", Kind: KindSerial, Port: "/dev/x"}}}})
	m = press(t, m, "a", "f", "enter", "p", "m", "esc")
	require.Contains(t, m.errMsg, "not available")
	_ = screenText(m)
}

func TestASCIIGlyphs(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{ASCII: true, Demo: true})
	m = cursorTo(t, m, "greenhouse-ctl")
	m = press(t, m, "space")
	s := screenText(m)
	require.Contains(t, s, " pw ")
	require.Contains(t, s, "DEMO - password: demo")
	require.NotContains(t, s, "🔒")
	require.NotContains(t, s, "▸")
	require.Contains(t, s, " * greenhouse-ctl", "marks are asterisks")
}

func TestResizeReflowsEveryScreen(t *testing.T) {
	m, fake := newTestModel(t, 120, 40, Config{})
	m = openBenchDetail(t, m, fake)
	m, cmd := sendCmd(t, m, keyMsg("m"))
	m = send(t, m, runMsg(t, cmd))
	for _, size := range [][2]int{{80, 24}, {60, 15}, {200, 60}} {
		m = send(t, m, windowSize(size[0], size[1]))
		lines := strings.Split(screenText(m), "\n")
		require.Len(t, lines, size[1])
		require.Equal(t, size[0], m.mon.vp.Width(), "the monitor follows the width")
		for _, l := range lines {
			require.LessOrEqual(t, lipglossWidth(l), size[0])
		}
	}
}

func TestSecondCtrlCLeavesAtOnce(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{})
	m = cursorTo(t, m, "sensor-attic")
	m = chooseFile(t, m, "sensor-attic.bin")
	m = press(t, m, "enter")
	m = press(t, m, "ctrl+c")
	require.NotNil(t, m.prompt, "the first ctrl+c asks")
	m = press(t, m, "y")
	require.True(t, m.quitting)
	_, cmd := sendCmd(t, m, keyMsg("ctrl+c"))
	require.IsType(t, tea.QuitMsg{}, runMsg(t, cmd), "a second ctrl+c does not wait for the job")
}

func TestStoredPasswordIsNotAskedFor(t *testing.T) {
	m, _ := newTestModel(t, 80, 24, Config{Demo: true})
	m = cursorTo(t, m, "greenhouse-ctl")
	r := m.rowByKey(m.visible[m.cursor].key)
	require.NotNil(t, r.net)
	d := *r.net
	d.PasswordStored = true
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceUpdated, Device: d}}})
	m = cursorTo(t, m, "greenhouse-ctl")
	m = chooseFile(t, m, "greenhouse-v2.7.1.bin")
	m = press(t, m, "enter")
	require.Nil(t, m.prompt, "the backend holds the password: no prompt")
	require.Len(t, m.jobs, 1)
	require.Equal(t, Secret(""), m.jobs[0].req.Password, "the backend fills it in")
}

func TestSerialFlashRereadsPartitions(t *testing.T) {
	m, fake := newTestModel(t, 100, 40, Config{})
	m = openBenchDetail(t, m, fake)
	r := m.rowByKey(m.current)
	require.True(t, m.parts[r.key].loaded)
	m.enqueue("fw.bin", map[string]FlashRequest{r.key: {Device: *r.ser, Route: RouteSerial, File: "fw.bin"}})
	m, cmd := sendCmd(t, m, jobFinishedMsg{job: m.jobs[0].id, result: FlashResult{Bytes: 1}})
	require.True(t, m.parts[r.key].busy, "the partition view is read again after a serial write")
	require.NotNil(t, cmd)
}

func TestASCIIModeDrawsNoBoxGlyphs(t *testing.T) {
	m, _ := newTestModel(t, 100, 30, Config{ASCII: true})
	screen := screenText(m)
	for _, g := range []string{"┌", "┐", "└", "┘", "─", "│", "▸", "🔒"} {
		require.NotContains(t, screen, g)
	}
	require.Contains(t, screen, "+ Devices")
	require.Contains(t, screen, "pw")
}

func TestDiscoveryStatusIsShownAndCleared(t *testing.T) {
	m, _ := newTestModel(t, 120, 30, Config{})
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceSourceStatus, Status: "UDP port 5353 is held exclusively by another program; showing hand-added and USB devices only"}}})
	requireScreenContains(t, m, "discovery: UDP port 5353 is held exclusively")
	require.Len(t, m.rows, 6, "a status event is not a device")
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceSourceStatus}}})
	require.NotContains(t, screenText(m), "discovery: UDP port 5353")
}
