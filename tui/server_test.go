package tui

import (
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/stretchr/testify/require"
)

func sampleServer() ServerState {
	return ServerState{
		Dir:           "/srv/firmware",
		URLs:          []string{"https://192.168.1.20:8443", "https://bench.local:8443", "https://127.0.0.1:8443"},
		CAFingerprint: "3f:a2:19:0c:5e:71:d4:88:12:9b:aa:e0:4c:07:63:f1:2d:9e:58:b0:71:c3:0a:66:e2:41:8d:f5:90:3b:17:c8",
		Images: []ServedImage{
			{Name: "greenhouse-v2.7.1.bin", Version: "v2.7.1", Size: 1268736},
			{Name: "porch-light.bin", Version: "2026.11.1", Size: 1003520},
			{Name: "door-unsigned.bin", Version: "v1.0.0", Size: 301056, Refused: "not signed by a policy key"},
		},
		Problems: map[string]string{"notes.txt": "not an ESP image"},
		Downloads: []Download{
			{Client: "192.168.1.41:50122", MAC: "24:0a:c4:12:34:56", Image: "greenhouse-v2.7.1.bin", Size: 1268736, Bytes: 1268736, Covered: 1268736, Ranges: 4, Rate: 98304, Done: true, Complete: true},
			{Client: "192.168.1.57:49811", Image: "porch-light.bin", Size: 1003520, Bytes: 300000, Covered: 300000, Ranges: 1, Rate: 40960, Done: true},
			{Client: "192.168.1.44:51004", MAC: "f4:12:fa:5c:9e:01", Image: "porch-light.bin", Size: 1003520, Bytes: 524288, Covered: 524288, Ranges: 2, Rate: 131072},
		},
	}
}

// S opens the server pane: the URLs, the CA fingerprint, what is
// published (and refused, and why a file is not), and one row per client
// download with bytes, ranges, rate and whether it is done; esc goes back.
func TestServerPaneShowsURLsFingerprintAndDownloads(t *testing.T) {
	m, fake := newTestModel(t, 120, 40, Config{})
	fake.SetServer(sampleServer())
	m, cmd := sendCmd(t, m, keyMsg("S"))
	require.Equal(t, screenServer, m.screen)
	m = send(t, m, runMsg(t, cmd))
	requireScreenContains(t, m, "https://192.168.1.20:8443/", "https://bench.local:8443/", "CA sha256", "3f:a2:19:0c",
		"porch-light.bin", "refused: not signed by a policy key", "notes.txt not published: not an ESP image",
		"Downloads · 1 in progress, 2 finished", "24:0a:c4:12:34:56", "done", "incomplete", "downloading", "128 KiB/s")
	// The newest download is on top.
	txt := screenText(m)
	require.Less(t, indexOf(txt, "f4:12:fa:5c:9e:01"), indexOf(txt, "24:0a:c4:12:34:56"))

	// A tick reads the server again: a download that finishes shows done.
	st := sampleServer()
	st.Downloads[2].Done, st.Downloads[2].Complete, st.Downloads[2].Covered = true, true, 1003520
	fake.SetServer(st)
	m, cmd = sendCmd(t, m, tickMsg{})
	m = send(t, m, findMsg[serverMsg](t, cmd))
	requireScreenContains(t, m, "Downloads · 0 in progress, 3 finished")

	m = press(t, m, "esc")
	require.Equal(t, screenList, m.screen)

	// q quits from the pane too.
	m = press(t, m, "S")
	_, cmd = sendCmd(t, m, keyMsg("q"))
	require.NotNil(t, cmd)
	require.IsType(t, tea.QuitMsg{}, findMsg[tea.QuitMsg](t, cmd))
}

// Without a running server there is no S key and no pane.
func TestNoServerNoPane(t *testing.T) {
	fake := NewFakeBackend(FakeOptions{Now: fixedNow})
	be := fake.Backend()
	be.Server = nil
	m := New(Config{Now: fixedNow}, be)
	t.Cleanup(m.cancel)
	m = sizeTo(t, m, 80, 24)
	m = press(t, m, "S")
	require.Equal(t, screenList, m.screen)
	m = press(t, m, "?")
	require.NotContains(t, screenText(m), "server")
}

// Plain HTTP is said to be unsafe instead of showing a fingerprint.
func TestServerPanePlainHTTPWarns(t *testing.T) {
	m, fake := newTestModel(t, 80, 24, Config{})
	st := sampleServer()
	st.CAFingerprint = ""
	st.Downloads = nil
	fake.SetServer(st)
	m, cmd := sendCmd(t, m, keyMsg("S"))
	m = send(t, m, runMsg(t, cmd))
	requireScreenContains(t, m, "plain HTTP", "none yet")
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
