package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cliResult is what one in-process run of espdeck produced.
type cliResult struct {
	code   int
	stdout string
	stderr string
}

// runCLI runs espdeck in-process with args and the given environment
// (nil: empty) and a 60 s bound.
func runCLI(t *testing.T, env map[string]string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "ESPDECK_MDNS" {
			return "off" // never browse the host's network from a test
		}
		return ""
	}
	code := run(ctx, args, strings.NewReader(""), &out, &errb, getenv)
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// jsonLines decodes every stdout line as a JSON object; a line that is not
// JSON fails the test (--json must put nothing else on stdout).
func jsonLines(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "stdout line is not JSON: %q", sc.Text())
		out = append(out, m)
	}
	return out
}

// lastResult returns the final "result" event and checks it is the last line.
func lastResult(t *testing.T, stdout string) map[string]any {
	t.Helper()
	lines := jsonLines(t, stdout)
	require.NotEmpty(t, lines, "no JSON output")
	last := lines[len(lines)-1]
	require.Equal(t, "result", last["event"], "the last JSON line must be the result")
	return last
}

func TestVersionAndHelp(t *testing.T) {
	r := runCLI(t, nil, "--version")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "espdeck "+version)

	r = runCLI(t, nil, "version")
	require.Equal(t, 0, r.code)

	r = runCLI(t, nil, "help")
	require.Equal(t, 0, r.code)
	for _, cmd := range commands() {
		require.Contains(t, r.stdout, "  "+cmd.name+" ", "help lists every command")
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	r := runCLI(t, nil, "seria")
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, `Did you mean "serial"?`)
}

func TestParseInterleavedFlags(t *testing.T) {
	c := &cli{stderr: &bytes.Buffer{}}
	fs, cm := c.newFlags("x", "usage")
	port := fs.String("port", "", "")
	pos, err := parse(fs, []string{"0x1000", "boot.bin", "--port", "/dev/ttyUSB0", "0x10000", "--json", "app.bin", "--", "--weird"})
	require.NoError(t, err)
	require.Equal(t, []string{"0x1000", "boot.bin", "0x10000", "app.bin", "--weird"}, pos)
	require.Equal(t, "/dev/ttyUSB0", *port)
	require.True(t, cm.json)
}

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0x10000": 0x10000, "4096": 4096, "24K": 24 << 10, "1M": 1 << 20, "0X1a": 26} {
		got, err := parseUint(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "0x", "12Q", "-1", "K"} {
		_, err := parseUint(bad)
		require.Error(t, err, bad)
	}
}

func TestReporterJSONResult(t *testing.T) {
	var out, errb bytes.Buffer
	r := &reporter{json: true, out: &out, human: &errb, device: "dev1", start: time.Now()}
	r.progress("transfer", 10, 20, 100)
	code := r.finish(&failure{code: exitAuth, name: "auth_failed", message: "wrong password", hint: "check it"}, map[string]any{"auth_scheme": "md5"})
	require.Equal(t, exitAuth, code)
	require.Empty(t, errb.String(), "--json writes nothing human")
	res := lastResult(t, out.String())
	require.Equal(t, false, res["ok"])
	require.Equal(t, "auth_failed", res["error"])
	require.Equal(t, "md5", res["auth_scheme"])
	require.Equal(t, "dev1", res["device"])
}

func TestHarnessKeepsMDNSOff(t *testing.T) {
	// A plain list in a test must not browse: the harness turns mDNS off.
	r := runCLI(t, nil, "list", "--no-usb", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	status, _ := res["status"].(map[string]any)
	require.Equal(t, "off", status["mdns"], "mDNS must be off in tests: %v", res)
}

func TestBadFlagWithJSONGivesAResult(t *testing.T) {
	r := runCLI(t, nil, "image", "info", "--jsn", "x.bin", "--json")
	require.Equal(t, exitUsage, r.code)
	res := lastResult(t, r.stdout)
	require.Equal(t, "usage", res["error"])
	require.Equal(t, "unknown flag -jsn", res["message"])
	require.Contains(t, r.stderr, "unknown flag -jsn", "people still read it on stderr")

	r = runCLI(t, nil, "image", "info", "--jsn", "x.bin")
	require.Equal(t, exitUsage, r.code)
	require.Empty(t, r.stdout, "without --json stdout stays empty")
}

// espdeck --serve with a folder that does not exist stops before the TUI
// opens, with the reason and exit status 2.
func TestTUIServeRefusesAMissingFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "no-such-folder")
	res := runCLI(t, map[string]string{"XDG_CONFIG_HOME": t.TempDir()}, "--serve", dir, "--serve-listen", "127.0.0.1:0", "--no-mdns")
	require.Equal(t, 2, res.code, res.stderr)
	require.Contains(t, res.stderr, "--serve")
	require.Contains(t, res.stderr, "no-such-folder")
}

// A cancelled command whose failure names no action still says what was
// interrupted (failureOf is called with doing "" by most commands).
func TestInterruptedWithoutActionNamesTheCommand(t *testing.T) {
	f := interrupted("")
	require.Equal(t, exitInterrupted, f.code)
	require.True(t, strings.HasPrefix(f.message, "the command was interrupted"), f.message)
}
