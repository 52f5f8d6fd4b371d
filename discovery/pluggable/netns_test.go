//go:build linux

package pluggable

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/discovery/internal/mdnssim"
	"github.com/espdeck/espdeck/discovery/internal/netns"
)

// TestNamespaceSyncOverMDNS runs a session on the real browser inside a
// test-made namespace: a board that announces itself becomes an add event,
// its goodbye a remove event.
func TestNamespaceSyncOverMDNS(t *testing.T) {
	if !netns.Run(t) {
		return
	}
	lo, err := net.InterfaceByName("lo")
	require.NoError(t, err)
	s := &Session{NewWatcher: func() *discovery.Watcher {
		return discovery.New(discovery.Options{Interfaces: []string{"lo"}, DisableSerial: true})
	}}
	d, done := startSession(t, s)
	d.send(`HELLO 1 "arduino-cli 1.2.0"`, 1)
	d.send("START_SYNC", 1)

	board := mdnssim.Instance{Name: "esp32-ide01", Service: discovery.ServiceArduino, IP: net.IPv4(127, 0, 0, 9), Port: 3232,
		TXT: []string{"board=esp32", "auth_upload=yes", "tcp_check=no", "ssh_upload=no"}}
	r, err := mdnssim.Start(t.Context(), lo, board)
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Announce())
	var add message
	require.NoError(t, json.Unmarshal([]byte(d.read(1)[0]), &add))
	require.Equal(t, "add", add.EventType)
	require.Equal(t, "127.0.0.9", add.Port.Address)
	require.Equal(t, "network", add.Port.Protocol)
	require.Equal(t, map[string]string{"board": "esp32", "auth_upload": "yes", "tcp_check": "no", "ssh_upload": "no",
		"port": "3232", "hostname": "esp32-ide01.local"}, add.Port.Properties)

	require.NoError(t, r.Goodbye())
	var rm message
	require.NoError(t, json.Unmarshal([]byte(d.read(1)[0]), &rm))
	require.Equal(t, "remove", rm.EventType)
	require.Equal(t, &Port{Address: "127.0.0.9", Protocol: "network"}, rm.Port)
	d.send("STOP", 1)
	d.send("QUIT", 1)
	require.NoError(t, <-done)
}
