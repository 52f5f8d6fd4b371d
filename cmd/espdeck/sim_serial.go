package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

const simSerialUsage = `Usage:
  espdeck sim serial [--chip esp32s3] [--tcp 127.0.0.1:PORT | --rfc2217 127.0.0.1:PORT] [--demo | --flash FILE] [--pace] [--app-log FILE]

Starts a simulated ROM bootloader and prints what to pass to --port: a
pseudo-terminal path, or socket://ADDRESS with --tcp. It runs until Ctrl-C.
Press Enter to reset the board into download mode (what holding BOOT and
tapping EN does on a real board), or type "a" and Enter to reset it into its
app. Each new --tcp connection resets it into download mode.
The flash starts erased (or holds --flash FILE from address 0, or with
--demo a bootloader, a partition table, otadata selecting ota_0 and three
apps: factory 1.0.0, ota_0 2.0.0, ota_1 2.1.0) and is lost on exit. The simulated board behaves like one with a working auto-reset
circuit: each time a program opens the port it restarts in download mode.
(A pty has no DTR/RTS: espdeck notices that and says so.)

Examples:
  espdeck sim serial --chip esp32c3
  espdeck sim serial --demo            # then: espdeck partitions show --port /dev/pts/7
  espdeck serial info --port /dev/pts/7
  espdeck sim serial --tcp 127.0.0.1:4000 &  espdeck serial info --port socket://127.0.0.1:4000`

func runSimSerial(c *cli, args []string) int {
	fs, cm := c.newFlags("sim serial", simSerialUsage)
	chipName := fs.String("chip", "esp32", "chip to simulate: esp32, esp32s2, esp32s3, esp32c3, esp32c6, esp8266")
	tcp := fs.String("tcp", "", "listen on this loopback `ADDRESS` (socket://) instead of a pty")
	rfc := fs.String("rfc2217", "", "serve RFC 2217 on this loopback `ADDRESS` (rfc2217://: baud and DTR/RTS through the protocol)")
	flashFile := fs.String("flash", "", "preload flash from `FILE` at address 0")
	demoFlash := fs.Bool("demo", false, "preload a partition table, otadata and three apps (to try partitions and slot commands)")
	appLog := fs.String("app-log", "", "text `FILE` the board prints after a normal boot")
	pace := fs.Bool("pace", false, "deliver bytes at the real baud rate and model flash erase/program time")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	r := c.reporter(cm, "")
	bad := func(msg string) int { return r.finish(&failure{code: exitUsage, name: "bad_usage", message: msg}, nil) }
	if len(pos) != 0 {
		return bad(fmt.Sprintf("sim serial takes no arguments (got %q)", pos))
	}
	chip, err := firmware.ParseChip(*chipName)
	if err != nil {
		return bad(err.Error())
	}
	cfg := romsim.Config{Chip: chip, Pace: *pace, ResetOnOpen: true}
	if *pace {
		cfg.EraseSectorTime, cfg.ProgramByteTime = benchEraseSector, benchProgramByte
	}
	if *tcp != "" && *rfc != "" {
		return bad("--tcp and --rfc2217 both choose where the board listens; pass one of them")
	}
	if *demoFlash && *flashFile != "" {
		return bad("--demo and --flash both choose what the flash holds; pass one of them")
	}
	if *demoFlash {
		b, err := ops.DemoFlash(chip)
		if err != nil {
			return bad(fmt.Sprintf("--demo: %v", err))
		}
		cfg.FlashImage = b
	}
	if *flashFile != "" {
		b, err := os.ReadFile(*flashFile)
		if err != nil {
			return bad(fmt.Sprintf("read %s: %v", *flashFile, err))
		}
		cfg.FlashImage = b
	}
	if *appLog != "" {
		b, err := os.ReadFile(*appLog)
		if err != nil {
			return bad(fmt.Sprintf("read %s: %v", *appLog, err))
		}
		cfg.AppLog = b
	}
	var where string
	var stop func()
	var rom *romsim.ROM
	switch {
	case *rfc != "":
		var addr string
		addr, rom, stop, err = romsim.StartRFC2217(c.ctx, cfg, *rfc)
		where = "rfc2217://" + addr
	case *tcp != "":
		var addr string
		addr, rom, stop, err = romsim.StartTCP(c.ctx, cfg, *tcp)
		where = "socket://" + addr
	default:
		where, rom, stop, err = romsim.StartPTY(c.ctx, cfg)
	}
	if err != nil {
		return r.finish(&failure{code: exitInternal, name: "sim_failed", message: err.Error()}, nil)
	}
	defer stop()
	r.event("ready", map[string]any{"port": where, "chip": chip.String()})
	if !cm.json {
		fmt.Fprintf(c.stdout, "simulated %s ROM bootloader on %s\n", chip, where)
		fmt.Fprintf(c.stderr, "try: espdeck serial info --port %s\n(Ctrl-C stops it)\n", where)
	}
	// A pty has no DTR/RTS: Enter on stdin stands for "hold BOOT, tap EN"
	// (reset into download mode), "a" Enter for a plain reset into the app.
	go func() {
		sc := bufio.NewScanner(c.stdin)
		for sc.Scan() {
			download := strings.TrimSpace(sc.Text()) != "a"
			rom.Reset(download)
			if download {
				r.say("reset into download mode")
			} else {
				r.say("reset into the app")
			}
		}
	}()
	<-c.ctx.Done()
	return r.finish(nil, map[string]any{"port": where})
}

// Flash timing modelled by --pace (and by the benchmark): a 4 KB sector
// erase and a per-byte program cost of the order of a common SPI NOR part.
const (
	benchEraseSector = 15 * time.Millisecond
	benchProgramByte = 1500 * time.Nanosecond
)
