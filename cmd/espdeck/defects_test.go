package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

func demoBoard(t *testing.T, chip firmware.Chip) (string, *romsim.ROM) {
	t.Helper()
	flash, err := ops.DemoFlash(chip)
	require.NoError(t, err)
	return startSerialSim(t, romsim.Config{Chip: chip, FlashImage: flash})
}

var simFlags = []string{"--before", "no-reset", "--after", "no-reset"}

// Defect 5: `serial write 0x10000 README.md` wrote a text file into the
// factory app slot and exited 0.
func TestDefect5SerialWriteReadmeIntoFactoryIsRefused(t *testing.T) {
	path, rom := demoBoard(t, firmware.ChipESP32)
	before := bytes.Clone(rom.Flash()[0x10000:0x20000])
	readme := writeTemp(t, "README.md", []byte("# espdeck\n\nThe workbench for ESP32 boards.\n"))
	r := runCLI(t, nil, append([]string{"serial", "write", "0x10000", readme, "--port", path, "--json"}, simFlags...)...)
	require.Equal(t, exitRefused, r.code, r.stdout+r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, "refused", res["error"])
	require.Contains(t, res["message"], `"factory"`)
	require.Contains(t, res["message"], "text file")
	require.Equal(t, before, rom.Flash()[0x10000:0x20000], "not a byte of factory changed")
}

// Defect 6: `serial read` skipped its MD5 cross-check silently when the
// ROM's MD5 reply timed out and said "ok" as if it was checked.
func TestDefect6SerialReadWithoutMD5IsNotVerified(t *testing.T) {
	path, rom := demoBoard(t, firmware.ChipESP32)
	rom.SetFaults(romsim.Faults{DropReplyOp: 0x13, DropReplyNth: 1})
	out := filepath.Join(t.TempDir(), "table.bin")
	r := runCLI(t, nil, append([]string{"serial", "read", "0x8000", "0x400", "-o", out, "--port", path, "--json"}, simFlags...)...)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, false, res["verified"])
	require.Contains(t, res["not_verified_why"], "MD5")

	// And when it matches, it says so.
	rom.SetFaults(romsim.Faults{})
	r = runCLI(t, nil, append([]string{"serial", "read", "0x8000", "0x400", "-o", out, "--port", path, "--json"}, simFlags...)...)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Equal(t, true, lastResult(t, r.stdout)["verified"])
	fi, err := os.Stat(out)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a flash dump is private")
}

// Defect 6: Ctrl-C during the MD5 of `serial read` was reported as
// "ok":true, exit 0. It ends in 130.
func TestDefect6CtrlCDuringReadMD5Is130(t *testing.T) {
	path, rom := demoBoard(t, firmware.ChipESP32)
	rom.SetFaults(romsim.Faults{StallOp: 0x13})
	out := filepath.Join(t.TempDir(), "dump.bin")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Ctrl-C once the MD5 request has reached the board.
		for ctx.Err() == nil {
			for _, c := range rom.Commands() {
				if c.Op == 0x13 {
					cancel()
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"serial", "read", "0x8000", "0x400", "-o", out, "--port", path, "--json"}, simFlags...),
		strings.NewReader(""), &stdout, &stderr, func(k string) string { return "" })
	require.Equal(t, exitInterrupted, code, stdout.String()+stderr.String())
	require.Equal(t, false, lastResult(t, stdout.String())["ok"])
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err), "no file from an interrupted read")
}

// Defect 7: output files replaced what was at the path — a symlink became
// a new 0644 file, a device node a regular file — and write errors on
// stdout were ignored.
func TestDefect7OutputFilesNeverReplaceLinksOrDevices(t *testing.T) {
	csv := filepath.Join("..", "..", "..", "shared", "fixtures", "partitions", "partitions_two_ota.csv")
	if _, err := os.Stat(csv); err != nil {
		t.Skipf("fixtures not present: %v", err)
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "keep.bin")
	require.NoError(t, os.WriteFile(target, []byte("keep"), 0o600))
	link := filepath.Join(dir, "link.bin")
	require.NoError(t, os.Symlink(target, link))
	r := runCLI(t, nil, "partitions", "convert", csv, link)
	require.NotEqual(t, exitOK, r.code)
	require.Contains(t, r.stderr, "symbolic link")
	fi, err := os.Lstat(link)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeSymlink, "the link is still a link")
	b, _ := os.ReadFile(target)
	require.Equal(t, "keep", string(b))

	// A FIFO stands in for a device node: not a regular file, refused.
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	r = runCLI(t, nil, "partitions", "convert", csv, fifo)
	require.NotEqual(t, exitOK, r.code)
	require.Contains(t, r.stderr, "not a regular file")
	fi, err = os.Lstat(fifo)
	require.NoError(t, err)
	require.NotZero(t, fi.Mode()&os.ModeNamedPipe)

	// A regular file is replaced, and nothing is left behind.
	out := filepath.Join(dir, "table.bin")
	r = runCLI(t, nil, "partitions", "convert", csv, out)
	require.Equal(t, exitOK, r.code, r.stderr)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".tmp")
	}

	// stdout that cannot be written fails the command (`> /dev/full`).
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"partitions", "convert", csv, "-"}, strings.NewReader(""), failingWriter{}, &stderr,
		func(k string) string { return "" })
	require.NotEqual(t, exitOK, code)
	require.Contains(t, stderr.String(), "stdout")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// Item 9: an input that is a device or huge is refused before it is read.
func TestInputFilesAreCheckedBeforeReading(t *testing.T) {
	r := runCLI(t, nil, "serial", "write", "0x10000", "/dev/zero", "--port", "/nonexistent")
	require.Equal(t, exitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "not a regular file")
}

// Defect 7, the rest of stdout: a command whose --json or table output
// cannot be written (`> /dev/full`) does not exit 0.
func TestStdoutWriteErrorsFailEveryCommand(t *testing.T) {
	csv := filepath.Join("..", "..", "..", "shared", "fixtures", "partitions", "partitions_two_ota.csv")
	if _, err := os.Stat(csv); err != nil {
		t.Skipf("fixtures not present: %v", err)
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"partitions", "show", csv, "--json"}, strings.NewReader(""), failingWriter{}, &stderr,
		func(k string) string { return "" })
	require.Equal(t, exitFor(ops.CodeWriteFile), code)
	require.NotEqual(t, exitOK, code)
	require.Contains(t, stderr.String(), "stdout")
}

// Item 11: README said ESP8266 writes are read back; the ESP8266 ROM
// cannot read flash, and the result says the write was not verified.
func TestESP8266WriteIsNotReportedVerified(t *testing.T) {
	path, _ := startSerialSim(t, romsim.Config{Chip: firmware.ChipESP8266})
	data := writeTemp(t, "data.bin", bytes.Repeat([]byte{0x5A}, 0x1000))
	r := runCLI(t, nil, append([]string{"serial", "write", "0x300000", data, "--port", path, "--json"}, simFlags...)...)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, false, res["verified"])
	require.Contains(t, res["not_verified_why"], "ESP8266 ROM cannot read flash")
}
