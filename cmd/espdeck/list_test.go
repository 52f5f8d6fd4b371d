package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The list tests never browse the host's network: mDNS is off (--no-mdns)
// and devices are hand-added. Browsing is tested inside network namespaces
// in package discovery.

func TestListHandAddedJSON(t *testing.T) {
	r := runCLI(t, nil, "list", "--no-mdns", "--no-usb", "--json",
		"--host", "192.0.2.10:3232", "--host", "[2001:db8::1]:8266", "--host", "greenhouse.local")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := jsonLines(t, r.stdout)
	var ids []string
	for _, l := range lines[:len(lines)-1] {
		require.Equal(t, "device", l["event"])
		require.Equal(t, "found", l["change"])
		info := l["info"].(map[string]any)
		require.Equal(t, l["device"], info["id"])
		require.Equal(t, "manual", info["protocol"])
		require.Equal(t, true, info["static"])
		require.NotEmpty(t, l["target"])
		ids = append(ids, info["id"].(string))
	}
	require.ElementsMatch(t, []string{"manual/192.0.2.10:3232", "manual/[2001:db8::1]:8266", "manual/greenhouse.local"}, ids)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	require.Equal(t, float64(3), res["count"])
	st := res["status"].(map[string]any)
	require.Equal(t, "off", st["mdns"])
	require.Equal(t, "off", st["serial"])
}

func TestListTable(t *testing.T) {
	r := runCLI(t, nil, "list", "--no-mdns", "--no-usb", "--host", "192.0.2.10:3232")
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	require.Regexp(t, `^NAME\s+PROTOCOL\s+ADDRESS\s+BOARD\s+DETAILS$`, lines[0])
	require.Regexp(t, `^192\.0\.2\.10\s+manual\s+192\.0\.2\.10:3232\s+-\s+hand-added$`, lines[1])
}

func TestListNothingFoundSaysWhatWasTried(t *testing.T) {
	r := runCLI(t, nil, "list", "--no-mdns", "--no-usb")
	require.Equal(t, exitOK, r.code)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "No devices found.")
	require.Contains(t, r.stderr, "mDNS: off (--no-mdns)")
	require.Contains(t, r.stderr, "USB: off (--no-usb)")
	require.Contains(t, r.stderr, "espdeck list --host", "suggests adding a host by hand")
	require.Contains(t, r.stderr, "[[device]]")
}

func TestListConfigDevices(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
[[device]]
name = "greenhouse"
host = "192.0.2.40:8266"
board = "d1_mini"
password_env = "GREENHOUSE_OTA_PW"

[[device]]
name = "bench"
port = "/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00"
`), 0o600))
	r := runCLI(t, nil, "list", "--no-mdns", "--no-usb", "--config", cfg, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	byName := map[string]map[string]any{}
	for _, l := range jsonLines(t, r.stdout) {
		if l["event"] == "device" {
			info := l["info"].(map[string]any)
			byName[info["name"].(string)] = info
		}
	}
	require.Equal(t, "192.0.2.40", byName["greenhouse"]["host"])
	require.Equal(t, float64(8266), byName["greenhouse"]["port"])
	require.Equal(t, "d1_mini", byName["greenhouse"]["board"])
	require.Equal(t, "/dev/serial/by-id/usb-Silicon_Labs_CP2102-if00", byName["bench"]["path"])
	require.Equal(t, "serial", byName["bench"]["protocol"])
	require.NotContains(t, r.stdout, "GREENHOUSE_OTA_PW", "password sources are not device data")
}

func TestListUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"list", "--no-mdns", "--host", "bad host"},
		{"list", "--no-mdns", "--host", "10.0.0.1:99999"},
		{"list", "192.0.2.1"},
		{"list", "--timeout", "0s"},
		{"list", "--bogus"},
	} {
		r := runCLI(t, nil, args...)
		require.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
	}
	r := runCLI(t, nil, "list", "--config", filepath.Join(t.TempDir(), "missing.toml"), "--no-mdns", "--no-usb")
	require.Equal(t, exitUsage, r.code)
}

func TestListWatchStreamsUntilInterrupted(t *testing.T) {
	// Ctrl-C comes once the device line is out: a fixed delay could end
	// the watch before a slow machine has printed anything.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := &cancelOnOutput{marker: "manual/192.0.2.77", cancel: cancel}
	var errb bytes.Buffer
	code := run(ctx, []string{"list", "--watch", "--no-mdns", "--no-usb", "--json", "--host", "192.0.2.77"},
		strings.NewReader(""), out, &errb, func(string) string { return "" })
	require.Equal(t, exitOK, code, "ending a watch with Ctrl-C is its normal end")
	require.ErrorIs(t, ctx.Err(), context.Canceled, "the watch ended before the device was printed")
	lines := jsonLines(t, out.String())
	require.GreaterOrEqual(t, len(lines), 2)
	require.Equal(t, "device", lines[0]["event"])
	require.Equal(t, "added", lines[0]["change"])
	require.Equal(t, "manual/192.0.2.77", lines[0]["device"])
	require.Equal(t, "result", lines[len(lines)-1]["event"])

	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	out = &cancelOnOutput{marker: "192.0.2.77", cancel: cancel2}
	code = run(ctx2, []string{"list", "--watch", "--no-mdns", "--no-usb", "--host", "192.0.2.77"},
		strings.NewReader(""), out, &errb, func(string) string { return "" })
	require.Equal(t, exitOK, code)
	require.ErrorIs(t, ctx2.Err(), context.Canceled, "the watch ended before the device was printed")
	require.Regexp(t, `(?m)^CHANGE\s+NAME\s+PROTOCOL`, out.String())
	require.Regexp(t, `(?m)^added\s+192\.0\.2\.77\s+manual`, out.String())
}

// cancelOnOutput is standard output that presses Ctrl-C (cancels the
// command's context) once what was written contains marker.
type cancelOnOutput struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (c *cancelOnOutput) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.marker) {
		c.cancel()
	}
	return n, err
}

func (c *cancelOnOutput) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
