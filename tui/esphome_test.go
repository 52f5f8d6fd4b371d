package tui

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// An ESPHome upload's row keeps what the session turned out to be (the
// protocol, the auth scheme, "encrypted") once the progress bar takes the
// note's place, and again after it is done; the job detail names it too.
func TestESPHomeJobShowsProtocolAuthAndEncryption(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, Config{Concurrency: 1})
	m = cursorTo(t, m, "porch-light")
	m = press(t, m, "space")
	m = chooseFile(t, m, "testdata/demo-app.bin")
	m = press(t, m, "enter")
	if m.prompt != nil { // porch-light asks for a password
		m = typeText(t, m, "espdeck")
		m = press(t, m, "enter")
	}
	require.Len(t, m.jobs, 1, screenText(m))
	j := m.jobs[0]
	session := "ESPHome v2 · SHA-256 · encrypted"
	m = send(t, m, jobProgressMsg{updates: []progressUpdate{
		{job: j.id, p: Progress{Stage: "handshake", Note: "ESPHome"}, at: testNow},
		{job: j.id, p: Progress{Stage: "auth", Note: session}, at: testNow},
		{job: j.id, p: Progress{Stage: "transfer", Note: "", Done: 40, Total: 100}, at: testNow},
	}})
	requireScreenContains(t, m, "porch-light", session)

	m = send(t, m, jobFinishedMsg{job: j.id, result: FlashResult{Bytes: 100}})
	requireScreenContains(t, m, "done", session)

	m = press(t, m, "J", "enter")
	requireScreenContains(t, m, "session", session)
}

// A session note of an ArduinoOTA job is not kept as a session: only
// ESPHome's say which protocol version and encryption were used.
func TestOTAJobKeepsNoSession(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, Config{Concurrency: 1})
	m = cursorTo(t, m, "sensor-attic")
	m = press(t, m, "space")
	m = chooseFile(t, m, "testdata/demo-app.bin")
	m = press(t, m, "enter")
	j := m.jobs[0]
	m = send(t, m, jobProgressMsg{updates: []progressUpdate{{job: j.id, p: Progress{Stage: "auth", Note: "ESPHome v2 · MD5"}, at: testNow}}})
	require.Empty(t, m.jobs[0].session)
}

// ESPHome does not advertise a password or encryption: before an upload
// the detail says so instead of "password no"; after one it shows what
// was learned.
func TestESPHomeDetailSaysAuthIsLearned(t *testing.T) {
	m, _ := newTestModel(t, 120, 40, Config{})
	m = cursorTo(t, m, "porch-light")
	m = press(t, m, "enter")
	requireScreenContains(t, m, "auth MD5")
	d := DemoFleet(testNow)[1]
	d.AuthScheme, d.AuthRequired = "", false
	m = send(t, m, deviceEventsMsg{events: []DeviceEvent{{Kind: DeviceUpdated, Device: d}}})
	requireScreenContains(t, m, "auth not advertised (learned on first upload)")
	require.NotContains(t, screenText(m), "password no")
}
