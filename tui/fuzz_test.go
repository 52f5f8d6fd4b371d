package tui

import (
	"strings"
	"testing"
)

// fuzzKeys is the alphabet FuzzUpdateKeys types from (no q: quitting ends the run).
func fuzzKeys() []string {
	return []string{"up", "down", "enter", "esc", "space", "tab", "f", "F", "a", "r", "c", "p", "m", "s", "e", "i",
		"y", "n", "/", "l", "?", "x", "g", "G", "k", "j", "b", "1", ".", "J", "w", "X", "C", "R", "S"}
}

// FuzzUpdateKeys drives the model with arbitrary key sequences and sizes
// (commands are not run) and checks that it never panics and always draws
// exactly the terminal's size.
func FuzzUpdateKeys(f *testing.F) {
	f.Add([]byte{2, 2, 6, 2}, uint8(80), uint8(24))
	f.Add([]byte{25, 22, 3, 3, 15, 16}, uint8(40), uint8(10))
	f.Add([]byte{1, 2, 12, 13, 14, 16, 3, 3}, uint8(120), uint8(40))
	f.Fuzz(func(t *testing.T, seq []byte, w, h uint8) {
		if len(seq) > 64 {
			seq = seq[:64]
		}
		// Sizes up to 200×80 cover every layout; larger only slows each run.
		width, height := 20+int(w)%181, 8+int(h)%73
		m, _ := newTestModel(t, width, height, Config{Demo: true})
		// The server pane's state as a read would bring it (commands are
		// not run here).
		m = send(t, m, serverMsg{st: sampleServer()})
		alphabet := fuzzKeys()
		for _, b := range seq {
			m = send(t, m, keyMsg(alphabet[int(b)%len(alphabet)]))
		}
		lines := strings.Split(screenText(m), "\n")
		if len(lines) != height {
			t.Fatalf("%d lines for height %d", len(lines), height)
		}
		for _, l := range lines {
			if lipglossWidth(l) > width {
				t.Fatalf("line wider than %d: %q", width, l)
			}
		}
	})
}
