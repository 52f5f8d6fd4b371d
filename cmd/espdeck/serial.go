package main

import (
	"context"
	"crypto/md5"
	"errors"
	"flag"
	"fmt"
	"github.com/espdeck/espdeck/internal/humanize"
	"os"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
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
	"verify": "verify",
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
	var regions []serialflash.Region
	var files []string
	var rdAddr, rdSize uint64
	switch verb {
	case "write", "verify":
		if len(pos) == 0 || len(pos)%2 != 0 {
			return usage("serial write needs ADDR FILE pairs", "e.g. espdeck serial write 0x10000 app.bin --port /dev/ttyUSB0")
		}
		for i := 0; i < len(pos); i += 2 {
			a, err := parseUint(pos[i])
			if err != nil || a > 0xFFFFFFFF {
				return usage(fmt.Sprintf("address %q: not a flash address", pos[i]), "addresses are 0x… hex or decimal")
			}
			data, err := os.ReadFile(pos[i+1])
			if err != nil {
				return usage(fmt.Sprintf("read %s: %v", pos[i+1], errors.Unwrap(err)), "check the file name")
			}
			if len(data) == 0 {
				return usage(pos[i+1]+" is empty", "")
			}
			regions = append(regions, serialflash.Region{Addr: uint32(a), Data: data})
			files = append(files, pos[i+1])
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
				return usage(fmt.Sprintf("erase %s %s: address and size must be multiples of 0x1000", pos[0], pos[1]), "the ROM erases whole 4 KB sectors")
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
		fail = serialWrite(c, cm, r, fl, info, regions, files, fields)
	case "verify":
		fail = serialVerify(c, r, fl, regions, files, fields)
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

func serialWrite(c *cli, cm *common, r *reporter, fl *serialflash.Flasher, info serialflash.ChipInfo, regions []serialflash.Region, files []string, fields map[string]any) *failure {
	flashSize := fl.FlashSize()
	policy, err := c.preflightPolicy(cm)
	if err != nil {
		return &failure{code: exitUsage, name: "bad_config", message: err.Error(), hint: "fix the config file or the key file its signing_key names, or point --config at another one"}
	}
	for _, w := range ops.SecurityWarnings(info.Security.SecureBoot, info.Security.FlashEncryption) {
		r.warn(w)
	}
	var out []map[string]any
	for i, reg := range regions {
		end := uint64(reg.Addr) + uint64(len(reg.Data))
		if flashSize != 0 && end > uint64(flashSize) {
			return &failure{code: exitRefused, name: "too_big",
				message: fmt.Sprintf("%s (%d bytes at 0x%X) ends at 0x%X, past the end of the %s flash", files[i], len(reg.Data), reg.Addr, end, humanize.Bytes(int64(flashSize))),
				hint:    "check the address and file; if the flash size was detected wrongly, give it with --flash-size"}
		}
		v, err := ops.Preflight(reg.Data, ops.Target{Route: ops.RouteSerial, Chip: info.Chip, ChipRevision: info.Revision,
			FlashSize: flashSize, Address: reg.Addr}, policy)
		for _, w := range v.Warnings {
			r.warn(files[i] + ": " + w)
		}
		if err != nil {
			hint := "pass --force to write it anyway (you are on your own)"
			var re *ops.RefusedError
			if errors.As(err, &re) && !re.Forceable {
				hint = "this check cannot be overridden"
			}
			return &failure{code: exitRefused, name: "refused", message: fmt.Sprintf("%s at 0x%X refused: %v", files[i], reg.Addr, err), hint: hint}
		}
		sum := md5.Sum(reg.Data)
		out = append(out, map[string]any{"address": fmt.Sprintf("0x%X", reg.Addr), "file": files[i], "size": len(reg.Data), "md5": fmt.Sprintf("%x", sum)})
	}
	total := 0
	for _, reg := range regions {
		total += len(reg.Data)
	}
	r.stage("write", fmt.Sprintf("writing %d region(s), %s…", len(regions), humanize.Bytes(int64(total))))
	res, err := fl.Write(c.ctx, regions)
	if err != nil {
		return serialFailure(c, err, "writing flash")
	}
	addWriteResults(out, res)
	fields["regions"] = out
	fields["skipped_bytes"] = res.Skipped()
	fields["baud"] = fl.Baud() // a failing link may have stepped it down
	verified := info.Chip != firmware.ChipESP8266 && !info.Security.SecureDownloadMode
	fields["verified_md5"] = verified
	if verified {
		r.say("wrote and verified %d region(s)%s", len(regions), writeSummary(res))
	} else {
		r.say("wrote %d region(s); this ROM cannot read back, so only its per-block write check applies", len(regions))
	}
	return nil
}

func serialRead(c *cli, r *reporter, fl *serialflash.Flasher, addr, size uint32, file string, fields map[string]any) *failure {
	r.stage("read", fmt.Sprintf("reading %s from 0x%X…", humanize.Bytes(int64(size)), addr))
	data, err := fl.ReadFlash(c.ctx, addr, size)
	if err != nil {
		return serialFailure(c, err, "reading flash")
	}
	sum := md5.Sum(data)
	if want, err := fl.FlashMD5(c.ctx, addr, size); err == nil && want != sum {
		return &failure{code: exitVerify, name: "verify_failed", message: fmt.Sprintf("read 0x%X..0x%X: data read (MD5 %x) differs from the chip's MD5 %x", addr, addr+size, sum, want),
			hint: "read again at a lower --baud; check the cable and the board's power"}
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return &failure{code: exitUsage, name: "write_file", message: fmt.Sprintf("write %s: %v", file, err), hint: "check the output path"}
	}
	fields["file"], fields["address"], fields["size"], fields["md5"] = file, fmt.Sprintf("0x%X", addr), size, fmt.Sprintf("%x", sum)
	r.say("read %s into %s", humanize.Bytes(int64(size)), file)
	return nil
}

func serialErase(c *cli, cm *common, r *reporter, fl *serialflash.Flasher, info serialflash.ChipInfo, all bool, addr, size uint32) *failure {
	if (info.Security.FlashEncryption || info.Security.SecureBoot) && !cm.force {
		return &failure{code: exitRefused, name: "refused", message: "refusing to erase: secure boot or flash encryption is on, and erasing can leave the chip unable to boot",
			hint: "pass --force if you know what the chip will boot afterwards"}
	}
	var err error
	if all {
		q := fmt.Sprintf("Erase the whole %s flash of this %s — bootloader, partition table, every app and all data?", sizeOrUnknown(fl.FlashSize()), info.Chip)
		if !c.confirm(cm, q) {
			return &failure{code: exitRefused, name: "not_confirmed", message: "nothing was erased: the erase was not confirmed",
				hint: "answer y on a terminal, or pass --yes in scripts"}
		}
		r.stage("erase", fmt.Sprintf("erasing the whole flash (%s)…", sizeOrUnknown(fl.FlashSize())))
		err = fl.EraseAll(c.ctx)
	} else {
		r.stage("erase", fmt.Sprintf("erasing 0x%X..0x%X…", addr, addr+size))
		err = fl.EraseRegion(c.ctx, addr, size)
	}
	if err != nil {
		return serialFailure(c, err, "erasing flash")
	}
	r.say("erased")
	return nil
}

// serialFailure maps a serialflash error to an exit code, a message and
// the next step.
func serialFailure(c *cli, err error, doing string) *failure {
	if c.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return interrupted(doing)
	}
	msg := doing + ": " + serialflash.Message(err)
	hint := serialflash.Hint(err)
	var ce *serialflash.CommandError
	switch {
	case errors.Is(err, serialflash.ErrPermission):
		return &failure{code: exitPermission, name: "permission_denied", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrPortBusy):
		return &failure{code: exitPermission, name: "port_busy", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrPortNotFound):
		return &failure{code: exitUnreachable, name: "port_not_found", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrBaudChange):
		return &failure{code: exitUnreachable, name: "baud_change_failed", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrWrongBootMode):
		return &failure{code: exitUnreachable, name: "wrong_boot_mode", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrNoSync), errors.Is(err, serialflash.ErrNoModemLines):
		return &failure{code: exitUnreachable, name: "no_sync", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrVerify):
		return &failure{code: exitVerify, name: "verify_failed", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrTimeout):
		return &failure{code: exitTransfer, name: "timeout", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrWrongChip):
		return &failure{code: exitRefused, name: "wrong_chip", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrBadArgument):
		return &failure{code: exitUsage, name: "bad_usage", message: msg, hint: hint}
	case errors.Is(err, serialflash.ErrTooBig):
		return &failure{code: exitRefused, name: "too_big", message: msg, hint: hint}
	case errors.As(err, &ce), errors.Is(err, serialflash.ErrUnsupported):
		return &failure{code: exitDevice, name: "device_error", message: msg, hint: hint}
	}
	return &failure{code: exitTransfer, name: "transfer_failed", message: msg, hint: hint}
}
