package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/humanize"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
)

const serialUsage = `Usage:
  espdeck serial info   [--port P]                        chip, revision, MAC, crystal, flash id and size, security
  espdeck serial write  ADDR FILE [ADDR FILE…] [--port P] write (erase, compressed transfer, MD5 verify, reset)
  espdeck serial read   ADDR SIZE -o FILE [--port P]      read flash (slow: the ROM sends 64 bytes per round trip)
  espdeck serial erase  ADDR SIZE | --all [--port P]      erase a region (multiples of 0x1000) or the whole flash
  espdeck serial verify ADDR FILE [ADDR FILE…] [--port P] compare flash with files by MD5 (writes nothing)
  espdeck serial reset  [--port P]                        reset the board into its app

esptool command lines work too, options before or after the verb (see docs/serial.md):
  espdeck --chip esp32 --port P --baud 921600 write_flash -z --flash_mode dio 0x1000 boot.bin 0x10000 app.bin
Everything goes through the chip's ROM bootloader (no stub is uploaded).

Examples:
  espdeck serial write 0x1000 bootloader.bin 0x8000 partitions.bin 0x10000 app.bin --port /dev/ttyUSB0
  espdeck serial info --port socket://127.0.0.1:4000 --json
  espdeck serial read 0x8000 0xC00 -o table.bin
  espdeck sim serial --chip esp32s3     (a simulated board to try all of this on)`

// serialVerbs maps esptool-style aliases (arriving as args[0]) to verbs.
var serialVerbs = map[string]string{
	"info": "info", "write": "write", "read": "read", "erase": "erase", "reset": "reset",
	"write-flash": "write", "write_flash": "write", "read-flash": "read", "read_flash": "read",
	"erase-flash": "erase-all", "erase_flash": "erase-all", "erase-region": "erase", "erase_region": "erase",
	"chip-id": "info", "chip_id": "info", "flash-id": "info", "flash_id": "info",
	"verify": "verify", "verify-flash": "verify", "verify_flash": "verify",
}

// serialFlags are the flags of every serial verb.
type serialFlags struct {
	port      string
	baud      int
	chip      string
	before    string
	after     string
	output    string
	all       bool
	noCompr   bool
	noDiff    bool
	auditPath string
	flashSize string
}

func runSerial(c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(c.stderr, serialUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	verb, ok := serialVerbs[args[0]]
	if !ok {
		fmt.Fprintf(c.stderr, "espdeck serial: unknown verb %q%s\n  run 'espdeck serial --help' for the verbs\n", args[0], didYouMeanSerial(args[0]))
		return exitUsage
	}
	fs, cm := c.newFlags("serial "+args[0], serialUsage)
	var sf serialFlags
	fs.StringVar(&sf.port, "port", "", "serial `PORT`, socket://HOST:PORT or rfc2217://HOST:PORT (default $ESPDECK_PORT, or the one ESP-looking port)")
	fs.StringVar(&sf.port, "p", "", "short for --port")
	fs.IntVar(&sf.baud, "baud", 460800, "baud rate after syncing at 115200 (ESP8266 stays at 115200; $ESPDECK_BAUD)")
	fs.IntVar(&sf.baud, "b", 460800, "short for --baud")
	fs.StringVar(&sf.chip, "chip", "auto", "expected chip: auto, esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c6, esp32h2, esp8266")
	fs.StringVar(&sf.before, "before", "default", "reset into download mode: default, usb-jtag or no-reset")
	fs.StringVar(&sf.after, "after", "hard-reset", "after the command: hard-reset or no-reset")
	fs.StringVar(&sf.output, "o", "", "read: output `FILE`")
	fs.StringVar(&sf.output, "output", "", "read: output `FILE`")
	fs.BoolVar(&sf.all, "all", false, "erase: the whole flash")
	fs.BoolVar(&sf.noCompr, "no-compress", false, "write: send data uncompressed")
	fs.BoolVar(&sf.noDiff, "no-diff", false, "write: write every sector, also those the flash already holds")
	fs.StringVar(&sf.auditPath, "audit", "", "write: audit log `FILE` that gets a record when an app image is written (default $XDG_STATE_HOME/espdeck/audit.jsonl)")
	fs.StringVar(&sf.flashSize, "flash-size", "", "flash size (e.g. 4M) when detection is impossible or wrong")
	baudSet := false
	pos, err := parse(fs, args[1:])
	if err != nil {
		return c.usageExit(err, args)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "baud" || f.Name == "b" {
			baudSet = true
		}
	})
	if !baudSet {
		// The config file's baud, or ESPDECK_BAUD over it.
		cfg, err := config.Load(cm.config, c.getenv)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: %v\n  fix it, or give --baud (and --config FILE for another config file)\n", err)
			return exitUsage
		}
		if cfg.Defaults.Baud > 0 {
			sf.baud = cfg.Defaults.Baud
		}
	}
	if verb == "erase-all" {
		verb, sf.all = "erase", true
	}
	r := c.reporter(cm, sf.port)
	usage := func(msg, hint string) int {
		return r.finish(&failure{code: exitUsage, name: "bad_usage", message: msg, hint: hint}, nil)
	}
	// Check arguments before touching the port.
	var regions []ops.Region
	var rdAddr, rdSize uint64
	switch verb {
	case "write", "verify":
		if len(pos) == 0 || len(pos)%2 != 0 {
			return usage(fmt.Sprintf("serial %s needs ADDR FILE pairs", verb), fmt.Sprintf("e.g. espdeck serial %s 0x10000 app.bin --port /dev/ttyUSB0", verb))
		}
		for i := 0; i < len(pos); i += 2 {
			a, err := parseUint(pos[i])
			if err != nil || a > 0xFFFFFFFF {
				return usage(fmt.Sprintf("address %q: not a flash address", pos[i]), "addresses are 0x… hex or decimal")
			}
			data, err := ops.ReadInputFile(pos[i+1], ops.MaxImageFile)
			if err != nil {
				return r.finish(failureOf(c, err, ""), nil)
			}
			if len(data) == 0 {
				return usage(pos[i+1]+" is empty", "")
			}
			regions = append(regions, ops.Region{Addr: uint32(a), Data: data, Name: pos[i+1]})
		}
	case "read":
		if len(pos) == 3 && sf.output == "" {
			// esptool's read_flash ADDR SIZE FILE, typed from habit.
			sf.output, pos = pos[2], pos[:2]
		}
		if len(pos) != 2 || sf.output == "" {
			return usage("serial read needs ADDR SIZE and -o FILE", "e.g. espdeck serial read 0x8000 0xC00 -o table.bin")
		}
		var err1, err2 error
		rdAddr, err1 = parseUint(pos[0])
		rdSize, err2 = parseUint(pos[1])
		if err1 != nil || err2 != nil || rdSize == 0 || rdAddr+rdSize > 1<<32 {
			return usage(fmt.Sprintf("read %s %s: bad address or size", pos[0], pos[1]), "sizes accept 0x…, decimal and K/M suffixes")
		}
	case "erase":
		if sf.all != (len(pos) == 0) || (!sf.all && len(pos) != 2) {
			return usage("serial erase needs ADDR SIZE, or --all", "e.g. espdeck serial erase 0xd000 0x2000")
		}
		if !sf.all {
			var err1, err2 error
			rdAddr, err1 = parseUint(pos[0])
			rdSize, err2 = parseUint(pos[1])
			if err1 != nil || err2 != nil || rdAddr%0x1000 != 0 || rdSize%0x1000 != 0 || rdSize == 0 || rdAddr+rdSize > 1<<32 {
				return usage(fmt.Sprintf("erase %s %s: address and size must be multiples of 0x1000", pos[0], pos[1]), "the ROM erases whole 4 KiB sectors")
			}
		}
	default:
		if len(pos) != 0 {
			return usage(fmt.Sprintf("serial %s takes no arguments (got %q)", verb, strings.Join(pos, " ")), "")
		}
	}
	opts, f := serialOptions(c, cm, r, &sf)
	if f != nil {
		return r.finish(f, nil)
	}
	port, f := pickPort(c, sf.port)
	if f != nil {
		return r.finish(f, nil)
	}
	r.device = port
	log, closeLog, err := c.logger(cm)
	if err != nil {
		return usage(err.Error(), "")
	}
	defer closeLog()
	opts.Logger = log
	r.stage("connect", "connecting to "+port+"…")
	fl, err := serialflash.Open(c.ctx, port, opts)
	if err != nil {
		return r.finish(serialFailure(c, err, "connecting to "+port), nil)
	}
	defer fl.Close()
	info, err := fl.Info(c.ctx)
	if err != nil {
		return r.finish(serialFailure(c, err, "reading chip information"), nil)
	}
	fields := infoFields(info, fl)
	r.say("connected: %s %s at %d Bd, flash %s", info.Chip, info.RevisionString(), fl.Baud(), sizeOrUnknown(fl.FlashSize()))
	var fail *failure
	switch verb {
	case "info":
		if !cm.json {
			printInfo(c, info, fl)
		}
	case "write":
		fail = serialWrite(c, cm, r, fl, info, regions, fields, sf.auditPath, port)
	case "verify":
		fail = serialVerify(c, r, fl, info, regions, fields)
	case "read":
		fail = serialRead(c, r, fl, uint32(rdAddr), uint32(rdSize), sf.output, fields)
	case "erase":
		fail = serialErase(c, cm, r, fl, info, sf.all, uint32(rdAddr), uint32(rdSize))
	case "reset":
		// The reset below does it.
	}
	if fail == nil && (sf.after != "no-reset" || verb == "reset") {
		r.stage("reset", "resetting into the app…")
		if err := fl.HardReset(c.ctx); err != nil {
			if verb == "reset" {
				fail = serialFailure(c, err, "resetting the board")
			} else {
				r.warn("could not reset the board: " + serialflash.Message(err) + "; press its reset button")
			}
		}
	}
	return r.finish(fail, fields)
}

// serialOptions turns the flags into serialflash options wired to the reporter.
func serialOptions(c *cli, cm *common, r *reporter, sf *serialFlags) (serialflash.Options, *failure) {
	opts := serialflash.Options{Baud: sf.baud, NoCompress: sf.noCompr, NoDiff: sf.noDiff, Owner: "espdeck serial",
		OnProgress: func(p serialflash.Progress) {
			if p.Total <= 0 || p.Stage == "sync" {
				return
			}
			stage := p.Stage
			if p.Stage != "reset" && p.Stage != "read" {
				stage = fmt.Sprintf("%s 0x%X", p.Stage, p.Addr)
			}
			r.progress(stage, p.Done, p.Total, p.Rate)
		},
		OnNotice: func(s string) { r.warn(s) },
	}
	bad := func(msg string) *failure { return &failure{code: exitUsage, name: "bad_usage", message: msg} }
	if sf.chip != "" && sf.chip != "auto" {
		chip, err := firmware.ParseChip(sf.chip)
		if err != nil {
			return opts, bad(err.Error())
		}
		opts.Chip, opts.ChipSet = chip, true
	}
	mode, err := serialflash.ParseResetMode(sf.before)
	if err != nil {
		return opts, bad(err.Error())
	}
	opts.Before = mode
	switch sf.after {
	case "hard-reset", "hard_reset", "no-reset", "no_reset":
		sf.after = strings.ReplaceAll(sf.after, "_", "-")
	default:
		return opts, bad(fmt.Sprintf("--after %q: want hard-reset or no-reset", sf.after))
	}
	if sf.flashSize != "" {
		n, err := parseUint(sf.flashSize)
		if err != nil || n == 0 || n > 1<<30 {
			return opts, bad(fmt.Sprintf("--flash-size %q: want a size like 4M", sf.flashSize))
		}
		opts.FlashSize = uint32(n)
	}
	if sf.baud < 9600 {
		return opts, bad(fmt.Sprintf("--baud %d is too low", sf.baud))
	}
	return opts, nil
}

// pickPort returns --port, $ESPDECK_PORT, or the only likely ESP port.
func pickPort(c *cli, port string) (string, *failure) {
	if port == "" {
		port = c.getenv("ESPDECK_PORT")
	}
	if port != "" {
		return port, nil
	}
	ports, err := serialflash.ListPorts()
	var likely, all []string
	for _, p := range ports {
		all = append(all, p.Name)
		if p.LikelyESP {
			likely = append(likely, p.Name)
		}
	}
	switch {
	case err == nil && len(likely) == 1:
		return likely[0], nil
	case len(likely) > 1:
		if p, ok := choosePort(c, ports); ok {
			return p, nil
		}
		return "", &failure{code: exitUsage, name: "port_ambiguous", message: "several ESP-looking ports are present: " + strings.Join(likely, ", "),
			hint: "choose one with --port (on a terminal espdeck asks, and remembers the board)"}
	case len(all) > 0:
		return "", &failure{code: exitUnreachable, name: "port_not_found", message: "no port looks like an ESP board (present: " + strings.Join(all, ", ") + ")",
			hint: "pass --port explicitly, or check the cable (charge-only cables carry no data)"}
	}
	return "", &failure{code: exitUnreachable, name: "port_not_found", message: "no serial port found",
		hint: "plug the board in with a data cable and check 'dmesg' for its driver, or pass --port socket://HOST:PORT"}
}

func sizeOrUnknown(n uint32) string {
	if n == 0 {
		return "size unknown"
	}
	return humanize.Bytes(int64(n))
}

func infoFields(info serialflash.ChipInfo, fl *serialflash.Flasher) map[string]any {
	key := ""
	if ci, ok := info.Chip.Info(); ok {
		key = ci.Key
	}
	return map[string]any{
		"chip": info.Chip.String(), "chip_key": key, "revision": info.Revision, "mac": info.MAC,
		"crystal_mhz": info.CrystalMHz, "flash_id": fmt.Sprintf("0x%06X", info.FlashID), "flash_size": fl.FlashSize(),
		"baud": fl.Baud(), "secure_boot": info.Security.SecureBoot, "secure_boot_version": info.Security.SecureBootVersion,
		"flash_encryption": info.Security.FlashEncryption, "secure_download_mode": info.Security.SecureDownloadMode,
		"jtag_disabled": info.Security.JTAGDisabled,
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func printInfo(c *cli, info serialflash.ChipInfo, fl *serialflash.Flasher) {
	w := c.stdout
	fmt.Fprintf(w, "Chip:        %s (revision %s)\n", info.Chip, info.RevisionString())
	if info.MAC != "" {
		fmt.Fprintf(w, "MAC:         %s\n", info.MAC)
	}
	if info.CrystalMHz != 0 {
		fmt.Fprintf(w, "Crystal:     %d MHz\n", info.CrystalMHz)
	}
	if info.FlashID != 0 {
		fmt.Fprintf(w, "Flash:       manufacturer %02x, device %04x, %s\n", info.FlashManufacturer(), info.FlashDevice(), sizeOrUnknown(fl.FlashSize()))
	} else {
		fmt.Fprintf(w, "Flash:       %s\n", sizeOrUnknown(fl.FlashSize()))
	}
	sb := onOff(info.Security.SecureBoot)
	if info.Security.SecureBoot && info.Security.SecureBootVersion > 0 {
		sb += fmt.Sprintf(" (v%d)", info.Security.SecureBootVersion)
	}
	jtag := ", JTAG enabled"
	switch {
	case info.Chip == firmware.ChipESP8266:
		jtag = "" // no JTAG eFuse (nor secure boot hardware) to speak of
	case info.Security.JTAGDisabled:
		jtag = ", JTAG disabled"
	}
	fmt.Fprintf(w, "Security:    secure boot %s, flash encryption %s, secure download mode %s%s\n",
		sb, onOff(info.Security.FlashEncryption), onOff(info.Security.SecureDownloadMode), jtag)
	fmt.Fprintf(w, "Link:        %d Bd, ROM bootloader (no stub)\n", fl.Baud())
}

// serialWrite renders ops.WriteRegions: every decision (chip, revision,
// flash size, the partition each region lands in, signatures) is made there.
func serialWrite(c *cli, cm *common, r *reporter, fl *serialflash.Flasher, info serialflash.ChipInfo, regions []ops.Region, fields map[string]any, auditPath, port string) *failure {
	policy, err := c.preflightPolicy(cm)
	if err != nil {
		return &failure{code: exitUsage, name: "bad_config", message: err.Error(), hint: "fix the config file or the key file its signing_key names, or point --config at another one"}
	}
	total := 0
	for _, reg := range regions {
		total += len(reg.Data)
	}
	r.stage("write", fmt.Sprintf("checking and writing %d region(s), %s…", len(regions), humanize.Bytes(int64(total))))
	start := time.Now()
	res, err := ops.WriteRegions(c.ctx, fl, info, regions, ops.WriteOptions{Policy: policy, OnWarning: r.warn})
	for _, reg := range regions {
		if ops.IsUpdate(reg.Data) {
			c.recordAttempt(r, auditPath, ops.Attempt{Board: port, Address: port, MAC: info.MAC, Chip: ops.ChipKey(info.Chip),
				Protocol: "serial", Image: reg.Name, Data: reg.Data, Bytes: int64(len(reg.Data)), Duration: time.Since(start), Err: err})
		}
	}
	if err != nil {
		return failureOf(c, err, "")
	}
	fields["regions"] = res.Regions
	fields["skipped_bytes"] = res.Skipped()
	fields["baud"] = fl.Baud() // a failing link may have stepped it down
	fields["verified"] = res.Verified
	fields["verified_md5"] = res.Verified
	if res.Verified {
		r.say("wrote and verified %d region(s)%s", len(regions), writeSummary(res))
	} else {
		fields["not_verified_why"] = res.NotVerifiedWhy
		r.say("wrote %d region(s), not read back: %s", len(regions), res.NotVerifiedWhy)
	}
	return nil
}

// serialRead renders ops.ReadRegion: a region whose MD5 cross-check could
// not be made is reported as not verified, with the reason.
func serialRead(c *cli, r *reporter, fl *serialflash.Flasher, addr, size uint32, file string, fields map[string]any) *failure {
	r.stage("read", fmt.Sprintf("reading %s from 0x%X…", humanize.Bytes(int64(size)), addr))
	res, err := ops.ReadRegion(c.ctx, fl, addr, size)
	if err != nil {
		return failureOf(c, err, "reading flash")
	}
	// A flash dump may hold Wi-Fi credentials and keys: 0600.
	if err := writeOutput(file, res.Data, 0o600); err != nil {
		return &failure{code: exitFor(ops.CodeWriteFile), name: ops.CodeWriteFile, message: fmt.Sprintf("write %s: %v", file, err), hint: "check the output path"}
	}
	fields["file"], fields["address"], fields["size"], fields["md5"] = file, fmt.Sprintf("0x%X", addr), size, res.MD5
	fields["verified"] = res.Verified
	if res.Verified {
		r.say("read %s into %s (the chip's MD5 matches)", humanize.Bytes(int64(size)), file)
	} else {
		fields["not_verified_why"] = res.NotVerifiedWhy
		r.warn("not verified: " + res.NotVerifiedWhy)
		r.say("read %s into %s, NOT verified", humanize.Bytes(int64(size)), file)
	}
	return nil
}

// serialErase renders ops.EraseFlash (the security refusal and the
// question are decided there).
func serialErase(c *cli, cm *common, r *reporter, fl *serialflash.Flasher, info serialflash.ChipInfo, all bool, addr, size uint32) *failure {
	if !all {
		r.stage("erase", fmt.Sprintf("erasing 0x%X..0x%X…", addr, addr+size))
	}
	err := ops.EraseFlash(c.ctx, fl, info, all, addr, size, ops.EraseOptions{Force: cm.force,
		Confirm: func(q string) bool {
			if !c.confirm(cm, q) {
				return false
			}
			r.stage("erase", fmt.Sprintf("erasing the whole flash (%s)…", sizeOrUnknown(fl.FlashSize())))
			return true
		}})
	if err != nil {
		if errors.Is(err, ops.ErrDeclined) {
			return &failure{code: exitRefused, name: ops.CodeNotConfirmed, message: "nothing was erased: the erase was not confirmed",
				hint: "answer y on a terminal, or pass --yes in scripts"}
		}
		return failureOf(c, err, "erasing flash")
	}
	r.say("erased")
	return nil
}

// serialFailure is failureOf: one classification for every command.
func serialFailure(c *cli, err error, doing string) *failure { return failureOf(c, err, doing) }
