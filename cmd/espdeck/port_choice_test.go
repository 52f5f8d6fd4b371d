package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/serialflash"
)

func TestPortChoiceAskedOnceThenRemembered(t *testing.T) {
	ports := []serialflash.PortInfo{
		{Name: "/dev/ttyUSB0", VID: "10c4", PID: "ea60", Serial: "A1", LikelyESP: true},
		{Name: "/dev/ttyUSB1", VID: "1a86", PID: "55d4", Serial: "B2", LikelyESP: true},
		{Name: "/dev/ttyS0"},
	}
	var out bytes.Buffer
	name, remember, ok := pickAmong(ports, portChoices{}, true, strings.NewReader("2\n"), &out)
	require.True(t, ok)
	require.Equal(t, "/dev/ttyUSB1", name)
	require.Contains(t, out.String(), "1) /dev/ttyUSB0")
	require.NotContains(t, out.String(), "ttyS0", "only ESP-looking ports are offered")

	path := filepath.Join(t.TempDir(), "espdeck", "port-choices.json")
	saveChoices(path, remember)
	// Re-plugged: the board with serial B2 is now ttyUSB0.
	replugged := []serialflash.PortInfo{
		{Name: "/dev/ttyUSB0", Serial: "B2", LikelyESP: true},
		{Name: "/dev/ttyUSB1", Serial: "A1", LikelyESP: true},
	}
	out.Reset()
	name, _, ok = pickAmong(replugged, loadChoices(path), false, strings.NewReader(""), &out)
	require.True(t, ok)
	require.Equal(t, "/dev/ttyUSB0", name, "the board, not the device name, is remembered")
	require.Contains(t, out.String(), "chosen before")

	// Not a terminal and nothing remembered: no guess.
	_, _, ok = pickAmong(ports, portChoices{}, false, strings.NewReader("1\n"), &out)
	require.False(t, ok)
	// A bad answer is no choice.
	_, _, ok = pickAmong(ports, portChoices{}, true, strings.NewReader("7\n"), &out)
	require.False(t, ok)
}
