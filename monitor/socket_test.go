package monitor

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A TCP serial server on loopback: lines arrive, there are no modem lines,
// and a dropped connection is redialled.
func TestMonitorOverSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	conns := make(chan net.Conn, 2)
	go func() {
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()

	sink := newSink()
	m := New("socket://"+ln.Addr().String(), Options{OnLine: sink.onLine})
	ctx := startMonitor(t, m)
	c1 := <-conns
	_, err = c1.Write([]byte("W (415) wifi: no AP\r\n"))
	require.NoError(t, err)
	got := sink.waitFor(t, "the wifi line", textIs("W (415) wifi: no AP"))
	require.Equal(t, LevelWarn, got[len(got)-1].Level)

	err = m.ResetIntoApp(ctx)
	require.ErrorIs(t, err, ErrNoModemControl)
	require.Contains(t, err.Error(), "RFC 2217")

	require.NoError(t, c1.Close())
	sink.waitFor(t, "the lost notice", func(l Line) bool { return strings.HasPrefix(l.Text, "lost socket://") })
	c2 := <-conns
	defer c2.Close()
	sink.waitFor(t, "the reconnect notice", func(l Line) bool { return strings.HasPrefix(l.Text, "reconnected to socket://") })
	_, err = c2.Write([]byte("I (1) boot: again\n"))
	require.NoError(t, err)
	sink.waitFor(t, "a line on the new connection", textIs("I (1) boot: again"))
}

func TestSocketRefusedIsNotFound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = OpenSerial(t.Context(), "socket://"+addr, 115200)
	require.ErrorIs(t, err, ErrPortNotFound)
}
