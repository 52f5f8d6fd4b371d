package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/symbolize"
)

const decodeUsage = `espdeck decode --elf APP.elf ADDR…     addresses to functions and source lines
espdeck decode --elf APP.elf < crash.txt   decode a pasted crash log line by line

Addresses are hex (0x400d1234 or 400d1234); backtrace pairs 0xPC:0xSP are
accepted as pasted. With no addresses, a log on standard input is read and
printed back with every code address in it decoded underneath (Xtensa
Backtrace lines, register dumps, RISC-V MEPC/RA and stack memory, ESP8266
epc1= exception dumps). Use the ELF from the same build as the firmware.

Examples:
  espdeck decode --elf build/app.elf 0x400d0a2b 0x400d4ad9
  espdeck decode --elf build/app.elf "Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60"
  espdeck decode --elf build/app.elf < crash.txt
  espdeck decode --elf build/app.elf 0x400d0a2b --json`

func runDecode(c *cli, args []string) int {
	fs, cm := c.newFlags("decode", decodeUsage)
	elfPath := fs.String("elf", "", "the application's `ELF` file (from the build directory)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	rep := c.reporter(cm, "")
	if *elfPath == "" {
		return rep.finish(&failure{code: exitUsage, name: "usage", message: "decode needs the application's ELF: --elf build/APP.elf",
			hint: "it is in the build directory next to the .bin (ESP-IDF: build/PROJECT.elf; Arduino: the sketch's build folder)"}, nil)
	}
	sym, err := symbolize.Open(*elfPath)
	if err != nil {
		hint := "pass the unstripped .elf that the build produced, not the .bin image"
		if e := (*symbolize.ELFError)(nil); errors.As(err, &e) {
			hint = e.Hint()
		}
		return rep.finish(&failure{code: exitUsage, name: "bad_elf", message: err.Error(), hint: hint}, nil)
	}
	if err := sym.DebugInfoErr(); err != nil {
		rep.warn(err.Error())
	}

	// Positional arguments: addresses, or words of a pasted line.
	var addrs []uint64
	var text []string
	for _, a := range pos {
		for _, f := range strings.Fields(a) {
			if v, ok := symbolize.ParseAddress(f); ok {
				addrs = append(addrs, v)
			} else if len(pos) == 1 && strings.Contains(a, "0x") {
				text = append(text, a) // a whole pasted line: let the extractor read it
				break
			} else if !strings.HasSuffix(f, ":") {
				return rep.finish(&failure{code: exitUsage, name: "usage", message: fmt.Sprintf("%q is not an address", f),
					hint: "addresses are hex, like 0x400d1234; quote a pasted log line or pipe the log on standard input"}, nil)
			}
		}
	}
	if len(text) > 0 {
		return decodeLog(c, cm.json, rep, sym, strings.NewReader(strings.Join(text, "\n")))
	}
	if len(addrs) == 0 {
		if f, ok := c.stdin.(*os.File); ok && isTerminal(f) {
			return rep.finish(&failure{code: exitUsage, name: "usage", message: "no addresses given",
				hint: "espdeck decode --elf APP.elf 0x400d1234 …, or pipe a crash log: espdeck decode --elf APP.elf < crash.txt"}, nil)
		}
		return decodeLog(c, cm.json, rep, sym, c.stdin)
	}
	var results []map[string]any
	for _, a := range addrs {
		frames := sym.Lookup(a)
		results = append(results, addressJSON(a, "", frames))
		if !cm.json {
			for _, l := range symbolize.Format(a, frames) {
				fmt.Fprintln(c.stdout, l)
			}
		}
	}
	return rep.finish(nil, map[string]any{"addresses": results, "elf_sha256": fmt.Sprintf("%x", sym.ELFSHA256())})
}

// decodeLog prints a log with its code addresses decoded underneath.
func decodeLog(c *cli, jsonOut bool, rep *reporter, sym *symbolize.Symbolizer, r io.Reader) int {
	p := monitor.NewParser(sym)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var results []map[string]any
	for sc.Scan() {
		l := p.Parse(strings.TrimRight(sc.Text(), "\r"), time.Time{})
		for _, d := range l.Decoded {
			results = append(results, addressJSON(d.Ref.Addr, d.Ref.Label, d.Frames))
		}
		if l.Warning != "" {
			rep.warn(l.Warning)
		}
		if !jsonOut {
			for _, s := range monitor.Plain(l, false) {
				if !strings.HasPrefix(s, "warning: ") {
					fmt.Fprintln(c.stdout, s)
				}
			}
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return rep.finish(&failure{code: exitUsage, name: "bad_input", message: "read the log: " + err.Error()}, nil)
	}
	if len(results) == 0 && !jsonOut {
		fmt.Fprintln(c.stderr, "espdeck: no code addresses of this ELF found in the input")
	}
	return rep.finish(nil, map[string]any{"addresses": results, "elf_sha256": fmt.Sprintf("%x", sym.ELFSHA256())})
}

// addressJSON is the machine form of one decoded address.
func addressJSON(addr uint64, label string, frames []symbolize.Frame) map[string]any {
	fr := make([]map[string]any, 0, len(frames))
	for _, f := range frames {
		m := map[string]any{"function": f.Function, "inlined": f.Inlined}
		if f.File != "" {
			m["file"] = f.File
			m["line"] = f.Line
		}
		fr = append(fr, m)
	}
	out := map[string]any{"addr": fmt.Sprintf("0x%08x", addr), "in_code": len(frames) > 0, "frames": fr}
	if label != "" {
		out["found_as"] = label
	}
	return out
}
