package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/discovery/pluggable"
)

const arduinoUsage = `espdeck arduino discovery|monitor — tools for the Arduino IDE 2 and arduino-cli

  espdeck arduino discovery   the IDE's network ports from espdeck's discovery
                              (Arduino pluggable discovery protocol on stdin/stdout)
  espdeck arduino monitor     the IDE's serial monitor as a plain byte pass-through
                              (Arduino pluggable monitor protocol on stdin/stdout);
                              with --elf APP.elf (or ESPDECK_ELF) crash addresses are
                              decoded under the board's lines (CONFIGURE decode on|off)

Both are started by the IDE, not by hand. Set them up in the core's
platform.local.txt (see docs/ota.md, "Arduino IDE"):

  pluggable_discovery.required.0=builtin:serial-discovery
  pluggable_discovery.espdeck.pattern="/usr/local/bin/espdeck" arduino discovery
  pluggable_monitor.required.serial=builtin:serial-monitor
  pluggable_monitor.pattern.serial="/usr/local/bin/espdeck" arduino monitor

Logs go to stderr (--log-level, --log FILE); stdout carries the protocol only.
ESPDECK_MDNS=off turns network browsing off.`

// runArduino is "espdeck arduino …".
func runArduino(c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(c.stderr, arduinoUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "discovery":
		return runArduinoDiscovery(c, args[1:])
	case "monitor":
		return runArduinoMonitor(c, args[1:])
	}
	fmt.Fprintf(c.stderr, "espdeck: unknown arduino command %q (want discovery or monitor)\n", args[0])
	return exitUsage
}

// runArduinoDiscovery serves the pluggable discovery protocol until QUIT
// or the end of stdin.
func runArduinoDiscovery(c *cli, args []string) int {
	fs, cm := c.newFlags("arduino discovery", arduinoUsage)
	var ifaces repeatedFlag
	fs.Var(&ifaces, "interface", "browse only network interface `NAME` (repeatable; default: every usable one)")
	if _, err := parse(fs, args); err != nil {
		return c.usageExit(err, args)
	}
	logger, closeLog, err := c.logger(cm)
	if err != nil {
		fmt.Fprintln(c.stderr, "espdeck arduino discovery:", err)
		return exitUsage
	}
	defer closeLog()
	noMDNS := c.mdnsOff()
	s := &pluggable.Session{NewWatcher: func() *discovery.Watcher {
		// Serial ports come from the IDE's own serial discovery; this one
		// adds the network ports.
		return discovery.New(discovery.Options{Interfaces: ifaces, DisableSerial: true, DisableMDNS: noMDNS, Logger: logger})
	}}
	if err := s.Serve(c.ctx, c.stdin, c.stdout); err != nil && c.ctx.Err() == nil {
		logger.Error("arduino discovery ended", "err", err)
		return exitInternal
	}
	return exitOK
}

// espotaScriptArgs recognises the ESP8266 core's upload pattern with
// espdeck as its network_cmd: `espdeck -I ".../tools/espota.py" -i … -p …
// --auth=… -f …` (core 3.x) or without the -I (older cores). The pattern
// was written for python3, where -I is an interpreter flag and the script
// follows; what follows the script is espota.py's own command line, which
// "espdeck ota" understands. ok is false for any other argument list.
func espotaScriptArgs(args []string) (otaArgs []string, ok bool) {
	if len(args) > 0 && args[0] == "-I" {
		args = args[1:]
	}
	if len(args) == 0 {
		return nil, false
	}
	script := strings.ToLower(filepath.Base(strings.ReplaceAll(args[0], `\`, "/")))
	if script != "espota.py" {
		return nil, false
	}
	return args[1:], true
}
