package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
)

const slotUsage = `espdeck slot — OTA slot control over serial (the board must be in download mode)

Usage:
  espdeck slot switch --port PORT --to ota_1      make ota_1 boot next
  espdeck slot erase-otadata --port PORT          boot factory (or ota_0 when there is none)
  espdeck slot mark --port PORT --valid|--invalid [--slot ota_1]   set the state of the running app's entry (or that slot's)
  espdeck slot backup --port PORT --slot ota_0 -o FILE   save a partition to a file

These commands write only the otadata partition, never an app slot: no
write may leave otadata's real extent or touch an app partition, whatever
the table says, and a table that fails validation refuses them (exit 3,
slot_write_refused). Each write first says what will boot afterwards and
asks for confirmation (the TUI asks the same words); --yes answers for
scripts. Without a terminal and without --yes nothing is written and the
exit code is 3 (refused).

switch --to factory and erase-otadata first read the app the bootloader
falls back to (factory, or ota_0) completely and refuse when it is not a
valid app for the chip; --force goes on past an invalid one, never an
erased one.

switch refuses a slot whose image is not a valid app for the board's chip
(the image is read completely and its checksum and SHA-256 checked);
--force switches anyway (never to an erased slot). It writes the next
sequence number into the other otadata copy, as ESP-IDF does, so a power
cut keeps the old choice, then reads it back and recomputes the decision.

After the command the board is reset into its app, unless --no-reset.

Examples:
  espdeck partitions show --port /dev/ttyUSB0
  espdeck slot switch --port /dev/ttyUSB0 --to ota_0 --yes
  espdeck slot backup --port /dev/ttyUSB0 --slot ota_1 -o ota_1.bin
`

// addBoardFlags registers the flags of commands that open a board.
func addBoardFlags(fs *flag.FlagSet, b *boardFlags) {
	fs.StringVar(&b.port, "port", "", "serial `PORT` or socket://HOST:PORT (default $ESPDECK_PORT)")
	fs.StringVar(&b.port, "p", "", "short for --port")
	fs.IntVar(&b.baud, "baud", 460800, "baud rate after connecting (ESP8266 stays at 115200)")
	fs.StringVar(&b.chip, "chip", "", "expected chip (esp32, esp32s3, …); default: detect")
	fs.StringVar(&b.tableOffset, "table-offset", "0x8000", "partition table `ADDRESS`")
	fs.BoolVar(&b.noReset, "no-reset", false, "leave the chip in download mode afterwards")
}

// boardEnv fills what the command line left open from the environment
// (ESPDECK_PORT, ESPDECK_BAUD) and the config file's baud, which override
// defaults but not flags.
func boardEnv(c *cli, cm *common, fs *flag.FlagSet, b *boardFlags) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if b.port == "" {
		b.port = c.getenv("ESPDECK_PORT")
	}
	cfg, err := config.Load(cm.config, c.getenv) // applies ESPDECK_BAUD
	if err != nil {
		return err
	}
	if cfg.Defaults.Baud > 0 && !set["baud"] {
		b.baud = cfg.Defaults.Baud
	}
	return nil
}

// slotBoard is an open board.
type slotBoard struct {
	f        *serialflash.Flasher
	io       ops.FlashIO
	chip     firmware.Chip
	ctx      context.Context
	noReset  bool
	closeLog func()
}

func (b *slotBoard) close() {
	b.f.Close()
	b.closeLog()
}

// reset starts the app again (a warning when that is not possible).
func (b *slotBoard) reset(r *reporter) {
	if b.noReset {
		return
	}
	if err := b.f.HardReset(b.ctx); err != nil {
		r.warn("could not reset the board into its app: " + serialflash.Message(err) + "; press its reset button")
	}
}

// openSlotBoard connects to the ROM loader on bf.port.
func openSlotBoard(c *cli, cm *common, r *reporter, bf boardFlags) (*slotBoard, *failure) {
	log, closeLog, err := c.logger(cm)
	if err != nil {
		return nil, &failure{code: exitUsage, name: "bad_usage", message: err.Error()}
	}
	opts := serialflash.Options{Baud: bf.baud, Logger: log,
		OnProgress: func(p serialflash.Progress) {
			if p.Total > 0 {
				r.progress(p.Stage, p.Done, p.Total, p.Rate)
			}
		},
		OnNotice: func(s string) { r.warn(s) },
	}
	if bf.chip != "" {
		chip, err := firmware.ParseChip(bf.chip)
		if err != nil {
			closeLog()
			return nil, &failure{code: exitUsage, name: "bad_usage", message: err.Error()}
		}
		opts.Chip, opts.ChipSet = chip, true
	}
	r.stage("connect", "connecting to "+bf.port+"…")
	f, err := serialflash.Open(c.ctx, bf.port, opts)
	if err != nil {
		closeLog()
		return nil, slotFailure(c, err, "connecting to "+bf.port)
	}
	return &slotBoard{f: f, io: ops.SerialFlashIO(f), chip: f.Chip(), ctx: c.ctx, noReset: bf.noReset, closeLog: closeLog}, nil
}

// slotFailure is failureOf: one classification for every command.
func slotFailure(c *cli, err error, doing string) *failure { return failureOf(c, err, doing) }

func runSlot(c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stderr, slotUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "switch", "erase-otadata", "erase_otadata", "mark", "backup":
	default:
		fmt.Fprintf(c.stderr, "espdeck slot: unknown verb %q (switch, erase-otadata, mark, backup)\n", verb)
		return exitUsage
	}
	fs, cm := c.newFlags("slot "+verb, slotUsage)
	var bf boardFlags
	addBoardFlags(fs, &bf)
	to := fs.String("to", "", "switch: the OTA partition to boot next (ota_0, ota_1, … or factory)")
	valid := fs.Bool("valid", false, "mark: mark the running app's entry valid")
	invalid := fs.Bool("invalid", false, "mark: mark the running app's entry invalid (the bootloader will not pick it again)")
	slotName := fs.String("slot", "", "backup: partition to save; mark: the OTA partition (default: the running one)")
	outPath := fs.String("o", "", "backup: output `FILE`")
	fs.StringVar(outPath, "output", "", "backup: output `FILE`")
	stateName := fs.String("state", "auto", "switch: state to write: new (rollback builds: the app must confirm itself), undefined, or auto (what the board's firmware uses)")
	pos, err := parse(fs, rest)
	if err != nil {
		return c.usageExit(err, args)
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(c.stderr, "espdeck slot %s: %s\n", verb, fmt.Sprintf(format, a...))
		return exitUsage
	}
	if len(pos) > 0 {
		if verb == "switch" && *to == "" && len(pos) == 1 {
			*to = pos[0]
		} else if verb == "backup" && *slotName == "" && len(pos) == 1 {
			*slotName = pos[0]
		} else {
			return usage("unexpected argument %q", pos[0])
		}
	}
	tableOff, err := parseUint(bf.tableOffset)
	if err != nil || tableOff%0x1000 != 0 || tableOff > 0xFFFFF000 {
		return usage("--table-offset %q: want a sector-aligned address such as 0x8000", bf.tableOffset)
	}
	if err := boardEnv(c, cm, fs, &bf); err != nil {
		return usage("%v", err)
	}
	var markState firmware.OTAState
	changeOpts := ops.ChangeOptions{Force: cm.force}
	switch verb {
	case "switch":
		if *to == "" {
			return usage("--to SLOT is required (ota_0, ota_1, … or factory)")
		}
		switch strings.ToLower(*stateName) {
		case "auto":
		case "new":
			changeOpts.State, changeOpts.StateSet = firmware.OTAStateNew, true
		case "undefined":
			changeOpts.State, changeOpts.StateSet = firmware.OTAStateUndefined, true
		default:
			return usage("--state %q: want auto, new or undefined", *stateName)
		}
	case "mark":
		if *valid == *invalid {
			return usage("give exactly one of --valid or --invalid")
		}
		markState = firmware.OTAStateValid
		if *invalid {
			markState = firmware.OTAStateInvalid
		}
	case "backup":
		if *slotName == "" || *outPath == "" {
			return usage("--slot NAME and -o FILE are required")
		}
	}

	if bf.port == "" {
		// As with 'serial': the only ESP-looking port when exactly one is plugged in.
		port, f := pickPort(c, "")
		if f != nil {
			return c.reporter(cm, "").finish(f, nil)
		}
		bf.port = port
	}
	r := c.reporter(cm, bf.port)
	b, f := openSlotBoard(c, cm, r, bf)
	if f != nil {
		return r.finish(f, nil)
	}
	defer b.close()
	changeOpts.Chip = b.chip
	changeOpts.Confirm = func(ch ops.SlotChange) bool {
		for _, w := range ch.Warnings {
			r.warn(w)
		}
		r.event("stage", map[string]any{"stage": "confirm", "writes": ch.Writes, "boots_next": ch.BootsNext, "boots_next_why": ch.Why,
			"question": ch.Question()})
		// The same sentence the TUI asks (ops.SlotChange.Question).
		return c.confirm(cm, ch.Question()+"\nGo on?")
	}

	var st *ops.PartitionState
	var change ops.SlotChange
	tOff := uint32(tableOff)
	switch verb {
	case "switch":
		r.stage("check", fmt.Sprintf("reading the partition state and checking the image in %s…", *to))
		st, change, err = ops.SwitchBootSlot(c.ctx, b.io, tOff, *to, changeOpts)
	case "erase-otadata", "erase_otadata":
		r.stage("read", "reading the partition state…")
		st, change, err = ops.EraseOtadata(c.ctx, b.io, tOff, changeOpts)
	case "mark":
		r.stage("read", "reading the partition state…")
		st, change, err = ops.MarkSlot(c.ctx, b.io, tOff, *slotName, markState, changeOpts)
	case "backup":
		return slotBackup(c, r, b, tOff, *slotName, *outPath)
	}
	if err != nil {
		fields := map[string]any{}
		if change.Writes != "" {
			fields["planned"] = change.Writes
		}
		return r.finish(slotFailure(c, err, "slot "+verb), fields)
	}
	b.reset(r)
	fields := stateFields(st)
	if !change.NoChange {
		fields["written"] = change.Writes
	}
	if !cm.json {
		if change.NoChange {
			r.say("%s", change.Writes)
		} else {
			r.say("done: %s (read back and checked)", change.Writes)
		}
		printPartitionState(c.stdout, st)
	}
	return r.finish(nil, fields)
}

func slotBackup(c *cli, r *reporter, b *slotBoard, tableOff uint32, name, out string) int {
	r.stage("read", fmt.Sprintf("reading %s…", name))
	data, p, err := ops.BackupPartition(c.ctx, b.io, tableOff, name)
	if err != nil {
		return r.finish(slotFailure(c, err, "backup "+name), nil)
	}
	b.reset(r)
	if out == "-" {
		if r.json {
			return r.finish(&failure{code: exitUsage, name: "usage", message: "-o - writes the slot to stdout, which --json keeps for JSON lines",
				hint: "give -o a file name"}, nil)
		}
		if err := writeStdout(c.stdout, data); err != nil {
			return r.finish(&failure{code: exitFor(ops.CodeWriteFile), name: ops.CodeWriteFile, message: err.Error()}, nil)
		}
		return r.finish(nil, map[string]any{"partition": p.Name, "bytes": len(data)})
	}
	// A backup may hold Wi-Fi credentials (NVS) or keys: 0600.
	if err := writeOutput(out, data, 0o600); err != nil {
		return r.finish(&failure{code: exitFor(ops.CodeWriteFile), name: ops.CodeWriteFile, message: fmt.Sprintf("cannot write %s: %v", out, err),
			hint: "check the directory exists and is writable"}, nil)
	}
	r.say("saved %s (0x%x bytes at 0x%x) to %s", p.Name, p.Size, p.Offset, out)
	fields := map[string]any{"partition": p.Name, "offset": p.Offset, "size": p.Size, "file": out}
	if p.IsApp() {
		if im, err := firmware.ParseImage(data); err == nil && im.Verify() == nil {
			fields["image"] = im.Summary("")
		}
	}
	return r.finish(nil, fields)
}
