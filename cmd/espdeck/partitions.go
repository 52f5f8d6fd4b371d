package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/humanize"
	"github.com/espdeck/espdeck/internal/ops"
)

const partitionsUsage = `espdeck partitions — partition tables from a file or a device

Usage:
  espdeck partitions show FILE [--table-offset 0x8000] [--json]
  espdeck partitions show --port PORT [--table-offset 0x8000] [--full] [--json]
  espdeck partitions convert IN OUT [--table-offset 0x8000] [--chip C] [--no-md5]

show FILE reads a binary table, an ESP-IDF CSV, or a whole flash dump (then
otadata and the app slots are shown too). show --port reads the table, both
otadata copies and the header of every app slot from a board in download
mode, and says which app boots next and why.

convert turns a CSV into the binary table gen_esp32part.py would write, or a
binary table into CSV; the direction follows IN's content. OUT "-" is stdout.

Examples:
  espdeck partitions show build/partition_table/partition-table.bin
  espdeck partitions show --port /dev/ttyUSB0
  espdeck partitions convert partitions.csv partitions.bin
`

func runPartitions(c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stderr, partitionsUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "show", "info", "print":
		return runPartitionsShow(c, args[1:])
	case "convert":
		return runPartitionsConvert(c, args[1:])
	}
	fmt.Fprintf(c.stderr, "espdeck partitions: unknown verb %q (show, convert)\n", args[0])
	return exitUsage
}

// boardFlags are the flags of every command that opens a board.
type boardFlags struct {
	port        string
	baud        int
	chip        string
	tableOffset string
	noReset     bool
}

func runPartitionsShow(c *cli, args []string) int {
	fs, cm := c.newFlags("partitions show", partitionsUsage)
	var bf boardFlags
	addBoardFlags(fs, &bf)
	full := fs.Bool("full", false, "read every app image completely and check checksum and SHA-256 (slow over serial)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	tableOff, err := parseUint(bf.tableOffset)
	if err != nil || tableOff%0x1000 != 0 || tableOff > 0xFFFFF000 {
		fmt.Fprintf(c.stderr, "espdeck partitions show: --table-offset %q: want a sector-aligned address such as 0x8000\n", bf.tableOffset)
		return exitUsage
	}
	if len(pos) > 1 || (len(pos) == 1 && bf.port != "") {
		fmt.Fprintln(c.stderr, "espdeck partitions show: give one FILE or --port PORT")
		return exitUsage
	}
	if len(pos) == 1 {
		return showPartitionFile(c, cm, pos[0], uint32(tableOff))
	}
	if err := boardEnv(c, cm, fs, &bf); err != nil {
		fmt.Fprintf(c.stderr, "espdeck partitions show: %v\n", err)
		return exitUsage
	}
	if bf.port == "" {
		fmt.Fprintln(c.stderr, "espdeck partitions show: give a FILE or --port PORT (or set ESPDECK_PORT)")
		return exitUsage
	}
	r := c.reporter(cm, bf.port)
	b, f := openSlotBoard(c, cm, r, bf)
	if f != nil {
		return r.finish(f, nil)
	}
	defer b.close()
	r.stage("read", fmt.Sprintf("reading the partition table at 0x%x, otadata and app headers…", tableOff))
	st, err := ops.ReadPartitionState(c.ctx, b.io, uint32(tableOff), ops.ReadOptions{Chip: b.chip, FullCheck: *full})
	if err != nil {
		return r.finish(slotFailure(c, err, "reading the partition state"), nil)
	}
	b.reset(r)
	if !cm.json {
		printPartitionState(c.stdout, st)
	}
	return r.finish(nil, stateFields(st))
}

// showPartitionFile shows a binary table, a CSV, or a flash dump.
func showPartitionFile(c *cli, cm *common, path string, tableOff uint32) int {
	r := c.reporter(cm, "")
	data, err := ops.ReadInputFile(path, ops.MaxImageFile)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_input", message: err.Error(), hint: "check the file name and path"}, nil)
	}
	// A flash dump: an image at the start and a table at the table offset.
	if len(data) > int(tableOff)+2 && data[tableOff] == 0xAA && data[tableOff+1] == 0x50 && !(data[0] == 0xAA && data[1] == 0x50) {
		st, err := ops.ReadPartitionState(c.ctx, ops.FileFlash(data), tableOff, ops.ReadOptions{Chip: firmware.ChipUnknown, FullCheck: true})
		if err != nil {
			return r.finish(tableFailure(path, err), nil)
		}
		if !cm.json {
			fmt.Fprintf(c.stdout, "%s: flash dump of %s\n", path, humanize.Bytes(int64(len(data))))
			printPartitionState(c.stdout, st)
		}
		fields := stateFields(st)
		fields["file"], fields["kind"] = path, "flash dump"
		return r.finish(nil, fields)
	}
	tab, kind, err := parseTableFile(data, tableOff, nil)
	if err != nil {
		return r.finish(tableFailure(path, err), nil)
	}
	for _, w := range tab.Warnings {
		r.warn(w)
	}
	problem := ""
	if err := tab.Verify(firmware.VerifyOptions{TableOffset: tableOff}); err != nil {
		problem = err.Error()
		r.warn(problem)
	}
	if !cm.json {
		md5 := "no MD5 row"
		if tab.HasMD5 && kind == "binary" {
			md5 = "MD5 ok"
		}
		fmt.Fprintf(c.stdout, "%s: %s partition table, %d partitions", path, kind, len(tab.Partitions))
		if kind == "binary" {
			fmt.Fprintf(c.stdout, ", %s", md5)
		}
		fmt.Fprintln(c.stdout)
		fmt.Fprint(c.stdout, tab.Format())
	}
	fields := map[string]any{"file": path, "kind": kind + " table", "partitions": tableRows(tab), "md5": tab.HasMD5}
	if problem != "" {
		fields["problem"] = problem
	}
	return r.finish(nil, fields)
}

// parseTableFile reads a binary table (starts with AA 50) or a CSV.
func parseTableFile(data []byte, tableOff uint32, bootOff *uint32) (*firmware.PartitionTable, string, error) {
	if len(data) >= 2 && data[0] == 0xAA && data[1] == 0x50 {
		t, err := firmware.ParsePartitionTable(data)
		return t, "binary", err
	}
	if len(data) > 0 && (data[0] == 0xE9 || data[0] == 0xFF) {
		_, err := firmware.ParsePartitionTable(data)
		return nil, "", err
	}
	t, err := firmware.ParsePartitionCSV(data, firmware.CSVOptions{TableOffset: tableOff, BootloaderOffset: bootOff,
		LookupEnv: os.LookupEnv})
	return t, "CSV", err
}

func tableFailure(path string, err error) *failure {
	f := &failure{code: exitUsage, name: "bad_table", message: fmt.Sprintf("%s: %v", path, err)}
	var te *firmware.TableError
	switch {
	case errors.As(err, &te):
		f.hint = te.Hint()
	case errors.Is(err, firmware.ErrNotPartitionTable):
		f.hint = "give a binary partition table (it starts with AA 50), an ESP-IDF partitions CSV, or a flash dump with the table at --table-offset"
	}
	return f
}

type tableRow struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	SubType string   `json:"subtype"`
	Offset  uint32   `json:"offset"`
	Size    uint32   `json:"size"`
	Flags   []string `json:"flags,omitempty"`
}

func tableRows(t *firmware.PartitionTable) []tableRow {
	out := []tableRow{}
	for _, p := range t.Partitions {
		out = append(out, tableRow{p.Name, p.TypeName(), p.SubTypeName(), p.Offset, p.Size, p.FlagNames()})
	}
	return out
}

// stateFields turns a partition state into result fields (its JSON form).
func stateFields(st *ops.PartitionState) map[string]any {
	b, err := json.Marshal(st)
	out := map[string]any{}
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// printPartitionState renders a board's partitions for people.
func printPartitionState(w io.Writer, st *ops.PartitionState) {
	fmt.Fprintf(w, "Partition table at 0x%x: %d partitions", st.TableOffset, len(st.Rows))
	if st.Table != nil && st.Table.HasMD5 {
		fmt.Fprint(w, ", MD5 ok")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  \tName\tType\tSubType\tOffset\tSize\tOTA state\tImage")
	for _, r := range st.Rows {
		mark := " "
		if r.BootsNext {
			mark = "▶"
		}
		img := ""
		if r.App != nil {
			img = r.App.Summary
			if !r.App.Valid && !r.App.Empty {
				img = "INVALID: " + r.App.Problem
			}
		}
		var notes []string
		if r.Running {
			notes = append(notes, "running")
		}
		if r.BootsNext {
			notes = append(notes, "boots next")
		}
		if len(notes) > 0 {
			img += "  [" + strings.Join(notes, ", ") + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t0x%x\t%s\t%s\t%s\n", mark, r.Name, r.Type, r.SubType, r.Offset, firmware.SizeText(r.Size), dash(r.OTAState), img)
	}
	tw.Flush()
	if st.OTAData != nil {
		fmt.Fprintf(w, "otadata at 0x%x:\n", st.OTAData.Offset)
		for _, c := range st.OTAData.Copies {
			switch {
			case c.Empty:
				fmt.Fprintf(w, "  copy %d (0x%x): empty\n", c.Index, c.Offset)
			default:
				crc := "CRC ok"
				if !c.CRCOK {
					crc = fmt.Sprintf("CRC BAD (stored 0x%08x)", c.CRC)
				}
				fmt.Fprintf(w, "  copy %d (0x%x): seq %d → %s, state %s, %s\n", c.Index, c.Offset, c.Seq, dash(c.Partition), c.State, crc)
			}
		}
	} else {
		fmt.Fprintln(w, "no otadata partition")
	}
	if st.BootsNext != "" {
		fmt.Fprintf(w, "Boots next: %s — %s\n", st.BootsNext, st.BootsNextWhy)
	} else {
		fmt.Fprintf(w, "Boots next: nothing — %s\n", st.BootsNextWhy)
	}
	if st.Running != "" && st.Running != st.BootsNext {
		fmt.Fprintf(w, "Last booted, according to otadata: %s — %s\n", st.Running, st.RunningWhy)
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runPartitionsConvert(c *cli, args []string) int {
	fs, cm := c.newFlags("partitions convert", partitionsUsage)
	tableOffset := fs.String("table-offset", "0x8000", "where the table is flashed (automatic offsets start one sector later)")
	chipName := fs.String("chip", "", "chip, for bootloader rows (their offset is the chip's bootloader offset)")
	flashSize := fs.String("flash-size", "", "check that every partition fits a flash of this size (e.g. 4M)")
	noMD5 := fs.Bool("no-md5", false, "write no MD5 row (for bootloaders older than ESP-IDF 3.1)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	r := c.reporter(cm, "")
	if len(pos) != 2 {
		fmt.Fprintln(c.stderr, "espdeck partitions convert: need IN and OUT (e.g. partitions.csv partitions.bin)")
		return exitUsage
	}
	in, out := pos[0], pos[1]
	tableOff, err := parseUint(*tableOffset)
	if err != nil || tableOff%0x1000 != 0 || tableOff > 0xFFFFF000 {
		return r.finish(&failure{code: exitUsage, name: "bad_usage", message: fmt.Sprintf("--table-offset %q: want a sector-aligned address such as 0x8000", *tableOffset)}, nil)
	}
	var bootOff *uint32
	if *chipName != "" {
		chip, err := firmware.ParseChip(*chipName)
		if err != nil {
			return r.finish(&failure{code: exitUsage, name: "bad_usage", message: err.Error()}, nil)
		}
		ci, _ := chip.Info()
		bootOff = &ci.BootloaderOffset
	}
	var fsize uint64
	if *flashSize != "" {
		if fsize, err = parseUint(*flashSize); err != nil || fsize > 1<<32 {
			return r.finish(&failure{code: exitUsage, name: "bad_usage", message: fmt.Sprintf("--flash-size %q: want a size such as 4M", *flashSize)}, nil)
		}
	}
	data, err := ops.ReadInputFile(in, ops.MaxImageFile)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_input", message: err.Error(), hint: "check the file name and path"}, nil)
	}
	tab, kind, err := parseTableFile(data, uint32(tableOff), bootOff)
	if err != nil {
		return r.finish(tableFailure(in, err), nil)
	}
	for _, w := range tab.Warnings {
		r.warn(w)
	}
	if err := tab.Verify(firmware.VerifyOptions{TableOffset: uint32(tableOff), FlashSize: uint32(min(fsize, 0xFFFFFFFF))}); err != nil {
		if !cm.force {
			f := tableFailure(in, err)
			f.hint += "\n--force converts it anyway"
			return r.finish(f, nil)
		}
		r.warn(err.Error() + " (converting anyway: --force)")
	}
	var outData []byte
	outKind := "binary"
	if kind == "binary" {
		outKind = "CSV"
		if strings.HasSuffix(strings.ToLower(out), ".bin") {
			return r.finish(&failure{code: exitUsage, name: "bad_usage", message: fmt.Sprintf("%s is already a binary table, and %s would be binary too", in, out),
				hint: "name the output .csv: binary → CSV"}, nil)
		}
		outData = []byte(tab.CSV())
	} else {
		if strings.HasSuffix(strings.ToLower(out), ".csv") {
			return r.finish(&failure{code: exitUsage, name: "bad_usage", message: fmt.Sprintf("%s is a CSV, and %s would be a CSV too", in, out),
				hint: "name the output .bin: CSV → binary"}, nil)
		}
		if outData, err = tab.Encode(!*noMD5); err != nil {
			return r.finish(tableFailure(in, err), nil)
		}
	}
	if out == "-" {
		if cm.json {
			return r.finish(&failure{code: exitUsage, name: "bad_usage", message: "with --json stdout carries JSON; give an OUT file"}, nil)
		}
		if err := writeStdout(c.stdout, outData); err != nil {
			return r.finish(&failure{code: exitFor(ops.CodeWriteFile), name: ops.CodeWriteFile, message: err.Error()}, nil)
		}
	} else if err := writeOutput(out, outData, 0o644); err != nil {
		return r.finish(&failure{code: exitFor(ops.CodeWriteFile), name: ops.CodeWriteFile, message: fmt.Sprintf("cannot write %s: %v", out, err),
			hint: "give a regular file name in a writable directory"}, nil)
	}
	if out != "-" {
		r.say("%s (%s, %d partitions) → %s (%s, %d bytes)", in, kind, len(tab.Partitions), out, outKind, len(outData))
	}
	return r.finish(nil, map[string]any{"input": in, "output": out, "from": kind, "to": outKind,
		"partitions": tableRows(tab), "bytes": len(outData)})
}
