package tui

import (
	"fmt"
	"net"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/espdeck/espdeck/internal/humanize"
)

// The server pane (S) shows the pull server running beside the TUI: the
// URLs boards fetch from, the fingerprint of the CA they must trust, what
// is published, and one live row per client download. Its state is read
// from the backend once a second while the pane is open.

// serverMsg carries the server's state.
type serverMsg struct{ st ServerState }

// readServer reads the server's state off the update loop.
func readServer(src ServerSource) tea.Cmd {
	return func() tea.Msg { return serverMsg{st: src.ServerState()} }
}

func (m *Model) openServer() tea.Cmd {
	m.srvBack = m.screen
	m.screen = screenServer
	return readServer(m.be.Server)
}

func (m *Model) serverKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Back), key.Matches(msg, k.Server):
		m.screen = m.srvBack
		if m.screen == screenServer {
			m.screen = screenList
		}
	case key.Matches(msg, k.Quit):
		return m.requestQuit()
	case key.Matches(msg, k.Up):
		m.srvScroll = max(m.srvScroll-1, 0)
	case key.Matches(msg, k.Down):
		m.srvScroll++
	}
	return nil
}

func (m Model) serverLines(h int) []string {
	st, g := m.st, m.glyphs
	s := m.srv
	if s == nil {
		return []string{"", " " + st.Faint.Render("reading the server…")}
	}
	field := func(name, value string) string { return " " + st.Faint.Render(pad(name, 11)) + value }
	lines := []string{" " + st.Title.Render("Pull server") + st.Faint.Render("  "+g.dot+"  "+s.Dir)}
	for i, u := range s.URLs {
		name := ""
		if i == 0 {
			name = "urls"
		}
		lines = append(lines, field(name, u+"/"))
	}
	if fp := s.CAFingerprint; fp != "" {
		if 12+len(fp) <= m.width || len(fp) < 48 {
			lines = append(lines, field("CA sha256", fp))
		} else { // two lines of 16 bytes: a fingerprint is compared, not read
			lines = append(lines, field("CA sha256", fp[:48]), field("", fp[48:]))
		}
	} else {
		lines = append(lines, field("tls", st.Warning.Render("plain HTTP: anyone on the network can read and replace the images")))
	}
	var served []string
	for _, im := range s.Images {
		w := im.Name + " " + humanize.Bytes(im.Size)
		if im.Version != "" {
			w += " " + im.Version
		}
		if im.Refused != "" {
			w = st.Error.Render(w + " refused: " + im.Refused)
		}
		served = append(served, w)
	}
	if len(served) == 0 {
		served = []string{st.Faint.Render("nothing yet; put .bin files in " + s.Dir)}
	}
	lines = append(lines, wrapStyled(field("images", strings.Join(served, " "+g.dot+" ")), m.width, 12)...)
	names := make([]string, 0, len(s.Problems))
	for n := range s.Problems {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		lines = append(lines, wrapStyled(st.Warning.Render(fmt.Sprintf(" %s not published: %s", n, s.Problems[n])), m.width, 2)...)
	}
	lines = append(lines, "")
	active := 0
	for _, d := range s.Downloads {
		if !d.Done {
			active++
		}
	}
	title := fmt.Sprintf("Downloads · %d in progress, %d finished", active, len(s.Downloads)-active)
	lines = append(lines, " "+st.Bold.Render(title))
	if len(s.Downloads) == 0 {
		lines = append(lines, " "+st.Faint.Render("none yet: a board downloads with an HTTPS GET of "+firstOr(s.URLs, "the URL")+"/FILE.bin"))
		return lines
	}
	narrow := m.width < 100
	clientW, imgW, sentW, rateW := 21, 24, 21, 11
	if narrow {
		clientW, imgW, sentW, rateW = 15, 14, 14, 10
	}
	lines = append(lines, st.Faint.Render("   "+pad("CLIENT", clientW)+" "+pad("IMAGE", imgW)+" "+pad("SENT", sentW)+" "+pad("RANGES", 6)+" "+pad("RATE", rateW)+" STATE"))
	rows := make([]string, 0, len(s.Downloads))
	// Newest first: the ones in progress, then the finished, latest first.
	for i := len(s.Downloads) - 1; i >= 0; i-- {
		d := s.Downloads[i]
		client := d.Client
		switch {
		case d.MAC != "" && !narrow:
			client = d.MAC
		case narrow:
			if host, _, err := net.SplitHostPort(client); err == nil {
				client = host
			}
		}
		sent := fmt.Sprintf("%s / %s", humanize.Bytes(d.Covered), humanize.Bytes(d.Size))
		if narrow {
			pct := 0
			if d.Size > 0 {
				pct = int(d.Covered * 100 / d.Size)
			}
			sent = fmt.Sprintf("%3d%% %s", pct, humanize.Bytes(d.Covered))
		}
		state := m.st.Key.Render("downloading")
		switch {
		case d.Done && d.Complete:
			state = m.st.Success.Render(g.ok + " done")
		case d.Done:
			state = m.st.Error.Render(g.fail + " incomplete")
		}
		rate := ""
		if d.Rate > 0 {
			rate = humanize.Rate(d.Rate)
		}
		rows = append(rows, clip("   "+pad(client, clientW)+" "+pad(d.Image, imgW)+" "+pad(sent, sentW)+" "+pad(fmt.Sprint(d.Ranges), 6)+" "+pad(rate, rateW)+" "+state, m.width))
	}
	room := max(h-len(lines), 1)
	scroll := min(m.srvScroll, max(len(rows)-room, 0))
	end := min(scroll+room, len(rows))
	return append(lines, rows[scroll:end]...)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// serverScreen is the pull server pane.
type serverScreen struct{}

func (serverScreen) update(m *Model, msg tea.KeyPressMsg) tea.Cmd { return m.serverKey(msg) }
func (serverScreen) view(m Model, h int) []string                 { return m.serverLines(h) }
func (serverScreen) resize(m *Model)                              {}
func (serverScreen) layout() screenLayout                         { return screenLayout{jobsBelow: true} }

func (serverScreen) keys(m Model) screenKeys {
	k := m.keys
	return screenKeys{nav: []key.Binding{k.Up, k.Down, k.Back}, view: []key.Binding{k.Log, k.Help}}
}
