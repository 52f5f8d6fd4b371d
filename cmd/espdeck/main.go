// Command espdeck is the workbench for ESP32 and ESP8266 boards: discovery on
// the network and on USB, OTA and serial flashing, firmware inspection, OTA
// slot control and a serial monitor, as a TUI and as scriptable subcommands.
//
// This file is the composition root: it parses the command line, sets up
// logging and signals, and hands each subcommand a *cli that carries the
// process's streams and environment, so tests can run the whole command
// in-process with run().
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// command is one top-level noun (or verb) of the command line.
type command struct {
	name    string
	aliases []string
	summary string
	run     func(c *cli, args []string) int
}

// commands lists every top-level command. Each group lives in a file of its
// own (ota.go, serial.go, …) so that work on one does not touch the others.
func commands() []command {
	return []command{
		{name: "list", summary: "devices on the network and on USB", run: runList},
		{name: "ota", summary: "network OTA upload (ArduinoOTA / espota)", run: runOTA},
		{name: "campaign", summary: "update many boards: canary, waves, confirmation, resume", run: runCampaign},
		{name: "audit", summary: "what espdeck wrote to which board, when (the audit log)", run: runAudit},
		{name: "serial", summary: "ROM bootloader over a serial port or socket://", run: runSerial,
			aliases: []string{"write-flash", "write_flash", "read-flash", "read_flash", "erase-flash", "erase_flash", "erase-region", "erase_region", "chip-id", "chip_id", "flash-id", "flash_id"}},
		{name: "image", summary: "what is in a firmware image; signature check", run: runImage, aliases: []string{"image-info", "image_info"}},
		{name: "partitions", summary: "partition table from a file or a device", run: runPartitions},
		{name: "slot", summary: "OTA slot control over serial (switch, erase-otadata, mark, backup)", run: runSlot},
		{name: "monitor", summary: "serial monitor with log colours and backtrace decoding", run: runMonitor},
		{name: "decode", summary: "addresses to functions and source lines (needs --elf)", run: runDecode},
		{name: "arduino", summary: "network discovery and serial monitor for the Arduino IDE 2", run: runArduino},
		{name: "serve", summary: "HTTPS firmware server for boards that pull their updates", run: runServe},
		{name: "pki", summary: "bench CA and server certificate boards pin (init, show)", run: runPKI},
		{name: "sim", summary: "run simulated devices to try espdeck by hand", run: runSim},
		{name: "version", summary: "print the version", run: runVersion},
		{name: "help", summary: "help for a command", run: runHelp},
	}
}

// run executes espdeck with args (without the program name) and returns the
// process exit code. getenv supplies the environment (os.Getenv in main).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		return runTUI(c, args)
	}
	first := args[0]
	switch first {
	case "--version", "-version", "-V":
		return runVersion(c, nil)
	case "-h", "--help", "-help":
		return runHelp(c, nil)
	}
	if otaArgs, ok := espotaScriptArgs(args); ok {
		// The ESP8266 core's upload pattern with espdeck as network_cmd.
		return runOTA(c, otaArgs)
	}
	if isEsptoolLine(args) {
		return runEsptoolLine(c, args)
	}
	if strings.HasPrefix(first, "-") {
		// Flags before any command: the TUI (espdeck --demo, espdeck --config F).
		return runTUI(c, args)
	}
	for _, cmd := range commands() {
		if cmd.name == first {
			return stdoutChecked(c, func() int { return cmd.run(c, args[1:]) })
		}
		for _, a := range cmd.aliases {
			if a == first {
				// esptool spellings: hand the whole argument list (alias included)
				// to the group, which maps the alias to its verb.
				return stdoutChecked(c, func() int { return cmd.run(c, args) })
			}
		}
	}
	fmt.Fprintf(stderr, "espdeck: unknown command %q\n", first)
	if s := suggest(first); s != "" {
		fmt.Fprintf(stderr, "  Did you mean %q?\n", s)
	} else if v := closestEsptoolVerb(first); v != "" {
		fmt.Fprintf(stderr, "  Did you mean %q (esptool's spelling, which espdeck understands)?\n", v)
	}
	fmt.Fprintln(stderr, "  Run 'espdeck help' for the list of commands.")
	return exitUsage
}

func runVersion(c *cli, _ []string) int {
	fmt.Fprintf(c.stdout, "espdeck %s\n", version)
	return exitOK
}

func runHelp(c *cli, args []string) int {
	if len(args) > 0 {
		for _, cmd := range commands() {
			if cmd.name == args[0] {
				return cmd.run(c, []string{"--help"})
			}
		}
		fmt.Fprintf(c.stderr, "espdeck: no help for unknown command %q\n", args[0])
		return exitUsage
	}
	w := c.stdout
	fmt.Fprint(w, `espdeck — the workbench for ESP32 and ESP8266 boards

Usage:
  espdeck                 open the TUI (discovers devices live)
  espdeck --demo          open the TUI on a simulated fleet (no hardware needed)
  espdeck COMMAND [flags] run one action; add --json for machine output

Commands:
`)
	cmds := commands()
	for _, cmd := range cmds {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Flags every command understands:
  --json             one JSON object per line on stdout (events, then a result)
  --log-level LEVEL  debug, info, warn or error (default warn); --log FILE writes the log to a file
  --yes              answer yes to confirmations
  --force            go on despite a failed pre-flight check (never a failed signature)

TUI flags (espdeck without a command):
  --demo, --host HOST[:PORT] (repeatable), --elf APP.elf, --host-ip IP, --host-port PORT,
  --baud N, --no-mdns, --ascii, --config FILE, --log FILE

Examples:
  espdeck --demo                                     try the TUI on simulated boards
  espdeck list                                       boards on the network and on USB
  espdeck ota upload --host 192.168.1.40 --file build/app.bin
  espdeck serial write 0x10000 app.bin --port /dev/ttyUSB0
  espdeck image info build/app.bin
  espdeck monitor --port /dev/ttyUSB0 --elf build/app.elf

Run 'espdeck help COMMAND' or 'espdeck COMMAND --help' for a command's flags and examples.
`)
	return exitOK
}

// suggest returns the command name closest to s, or "" if none is close.
func suggest(s string) string {
	best, bestDist := "", 3
	for _, cmd := range commands() {
		if d := editDistance(s, cmd.name); d < bestDist {
			best, bestDist = cmd.name, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
