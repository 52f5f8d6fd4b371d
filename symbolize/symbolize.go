// Package symbolize turns code addresses from an ESP32/ESP8266 crash into
// function names and source lines, using the application's ELF file and only
// the Go standard library (debug/elf, debug/dwarf).
//
// A Symbolizer answers Lookup(addr) with one Frame per level of inlining
// (innermost first), the way addr2line -i does. Function names of the
// outermost frame come from the ELF symbol table (what the linker kept),
// inlined frames and file:line from DWARF. Addresses outside the ELF's
// executable sections are never "decoded": a stack pointer or a heap address
// that happens to be near a symbol would otherwise print a plausible lie.
//
// Extractor (extract.go) finds the addresses worth decoding in crash output:
// Xtensa "Backtrace:" lines and register dumps, RISC-V MEPC/RA and stack
// memory, ESP8266 exception dumps, abort() and assert lines.
package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Frame is one level of a decoded address. When an address lies in code that
// the compiler inlined, Lookup returns several frames: the innermost function
// first with Inlined set, then each caller it was inlined into, ending with
// the real (out-of-line) function whose Inlined is false.
type Frame struct {
	Addr     uint64
	Function string // "" when unknown
	File     string // "" when DWARF has no line for the address
	Line     int
	// Inlined reports that this frame's code was inlined into the next frame.
	Inlined bool
}

// String renders "app_main at main/main.c:42", "app_main" or "??".
func (f Frame) String() string {
	fn := f.Function
	if fn == "" {
		fn = "??"
	}
	if f.File == "" {
		return fn
	}
	if f.Line > 0 {
		return fmt.Sprintf("%s at %s:%d", fn, f.File, f.Line)
	}
	return fn + " at " + f.File
}

// Format renders the frames of one address the way the monitor prints them
// under a crash:
//
//	0x400d1234: inlined_fn at main/util.h:10
//	            (inlined by) app_main at main/main.c:42
func Format(addr uint64, frames []Frame) []string {
	head := fmt.Sprintf("0x%08x: ", addr)
	if len(frames) == 0 {
		return []string{head + "?? (not in the ELF's code)"}
	}
	out := make([]string, 0, len(frames))
	pad := strings.Repeat(" ", len(head))
	for i, f := range frames {
		if i == 0 {
			out = append(out, head+f.String())
		} else {
			out = append(out, pad+"(inlined by) "+f.String())
		}
	}
	return out
}

// ErrNoDebugInfo is reported by Symbolizer.DebugInfoErr when the ELF has no
// DWARF (built without -g or stripped): names still come from the symbol
// table but there are no file:line or inlined frames.
var ErrNoDebugInfo = errors.New("the ELF has no DWARF debug info (no file:line); build with debug symbols and use the unstripped ELF from the build directory")

// SHAMismatchError says the ELF used for decoding is not the one the running
// firmware was built from, so decoded names and lines would be wrong.
type SHAMismatchError struct {
	ELF     string // hex SHA-256 of the ELF file we have
	Running string // hex (possibly a prefix) reported by the firmware
}

func (e *SHAMismatchError) Error() string {
	return fmt.Sprintf("the ELF (SHA-256 %s…) is not the one the running firmware was built from (its app description says %s…); decoded addresses would point to the wrong code — pass the ELF from the same build",
		short(e.ELF), short(e.Running))
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// Symbolizer decodes addresses of one ELF. It is safe for concurrent use; the
// DWARF tables are built on first use.
type Symbolizer struct {
	code    []codeRange
	funcs   []funcSym
	sha     []byte // nil when unknown (New from an *elf.File)
	dwarf   *dwarf.Data
	dwarfEr error

	once  sync.Once
	lines []lineRow // sorted by addr
	units []unitRange

	mu     sync.Mutex
	scopes map[dwarf.Offset]*unitScopes
	names  map[dwarf.Offset]string
}

type codeRange struct {
	lo, hi uint64
	name   string
}

type funcSym struct {
	addr, size uint64
	name       string
}

type lineRow struct {
	addr uint64
	file string
	line int
	end  bool // end of a sequence: no code here
}

type unitRange struct {
	lo, hi uint64
	off    dwarf.Offset
}

// New builds a Symbolizer from an opened ELF. The symbol table and the DWARF
// sections are read from f before New returns, so f may be closed
// afterwards. The ELF's SHA-256 is unknown this way (Open knows it).
func New(f *elf.File) (*Symbolizer, error) {
	s := &Symbolizer{scopes: map[dwarf.Offset]*unitScopes{}, names: map[dwarf.Offset]string{}}
	for _, sec := range f.Sections {
		if sec.Flags&elf.SHF_ALLOC != 0 && sec.Flags&elf.SHF_EXECINSTR != 0 && sec.Size > 0 {
			s.code = append(s.code, codeRange{sec.Addr, sec.Addr + sec.Size, sec.Name})
		}
	}
	if len(s.code) == 0 {
		return nil, fmt.Errorf("%w: it has no executable sections", ErrNotELF)
	}
	syms, err := f.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, fmt.Errorf("read symbol table: %w", err)
	}
	for _, sym := range syms {
		t := elf.ST_TYPE(sym.Info)
		if (t != elf.STT_FUNC && t != elf.STT_NOTYPE) || sym.Name == "" || sym.Section == elf.SHN_UNDEF {
			continue
		}
		if !s.InCode(sym.Value) || strings.HasPrefix(sym.Name, ".L") || strings.HasPrefix(sym.Name, "$") {
			continue
		}
		if t == elf.STT_NOTYPE && sym.Size == 0 && elf.ST_BIND(sym.Info) == elf.STB_LOCAL {
			// Local untyped labels (loop targets in assembly) would shadow the
			// function they are in.
			continue
		}
		s.funcs = append(s.funcs, funcSym{sym.Value, sym.Size, sym.Name})
	}
	sort.SliceStable(s.funcs, func(i, j int) bool {
		a, b := s.funcs[i], s.funcs[j]
		if a.addr != b.addr {
			return a.addr < b.addr
		}
		return a.size > b.size // prefer the sized (typed) symbol at one address
	})
	s.dwarf, s.dwarfEr = f.DWARF()
	if s.dwarfEr != nil {
		s.dwarfEr = fmt.Errorf("%w (%v)", ErrNoDebugInfo, s.dwarfEr)
		s.dwarf = nil
	}
	return s, nil
}

// DebugInfoErr is nil when the ELF has DWARF, else an error wrapping
// ErrNoDebugInfo that says what to do.
func (s *Symbolizer) DebugInfoErr() error { return s.dwarfEr }

// ELFSHA256 returns the SHA-256 of the ELF file (what ESP-IDF stores in the
// app description as app_elf_sha256), or nil when unknown.
func (s *Symbolizer) ELFSHA256() []byte { return append([]byte(nil), s.sha...) }

// CheckELFSHA256 compares the ELF's SHA-256 with what the firmware reports:
// the 32 bytes of the app description, or the hex prefix the boot log prints
// ("ELF file SHA256:  0123456789abcdef..."). It returns nil when they agree
// or when either side is unknown, and a *SHAMismatchError otherwise.
func (s *Symbolizer) CheckELFSHA256(running string) error {
	running = strings.ToLower(strings.TrimRight(strings.TrimSpace(running), "."))
	if s.sha == nil || len(running) < 8 {
		return nil
	}
	if _, err := hex.DecodeString(running[:len(running)&^1]); err != nil {
		return nil
	}
	mine := hex.EncodeToString(s.sha)
	if len(running) > len(mine) || !strings.HasPrefix(mine, running) {
		return &SHAMismatchError{ELF: mine, Running: running}
	}
	return nil
}

// InCode reports whether addr lies in one of the ELF's executable sections.
func (s *Symbolizer) InCode(addr uint64) bool {
	for _, r := range s.code {
		if addr >= r.lo && addr < r.hi {
			return true
		}
	}
	return false
}

// Lookup decodes addr. It returns nil when addr is outside the ELF's code;
// otherwise at least one frame (whose Function may be empty when neither the
// symbol table nor DWARF names the spot).
func (s *Symbolizer) Lookup(addr uint64) []Frame {
	if !s.InCode(addr) {
		return nil
	}
	symName := s.symbol(addr)
	if d, ok := Demangle(symName); ok {
		symName = d
	}
	file, line := s.line(addr)
	chain := s.inlineChain(addr)
	if len(chain) == 0 {
		return []Frame{{Addr: addr, Function: symName, File: file, Line: line}}
	}
	// chain[0] is the innermost scope. Its frame gets the line-table position;
	// each outer frame gets the call site recorded by the scope inside it.
	frames := make([]Frame, len(chain))
	for i, sc := range chain {
		fr := Frame{Addr: addr, Function: sc.name, Inlined: i < len(chain)-1}
		if i == 0 {
			fr.File, fr.Line = file, line
		} else {
			fr.File, fr.Line = chain[i-1].callFile, chain[i-1].callLine
		}
		frames[i] = fr
	}
	// The outer frame is named by the symbol table (the linker's view).
	// C++ names are demangled; where that fails DWARF's name reads better.
	last := &frames[len(frames)-1]
	if symName != "" && (!strings.HasPrefix(symName, "_Z") || last.Function == "") {
		last.Function = symName
	}
	return frames
}

// symbol returns the name of the function symbol containing addr.
func (s *Symbolizer) symbol(addr uint64) string {
	i := sort.Search(len(s.funcs), func(i int) bool { return s.funcs[i].addr > addr }) - 1
	for ; i >= 0; i-- {
		f := s.funcs[i]
		if f.size > 0 {
			if addr < f.addr+f.size {
				return f.name
			}
			// A sized symbol that ends before addr: addr is in a gap (or in
			// a zero-sized label placed after it); look for a label.
			continue
		}
		// An unsized symbol (assembly) reaches up to the next symbol.
		return f.name
	}
	return ""
}

// Preload builds the address tables now instead of at the first Lookup
// (about 50 ms for a 4 MB ELF), so that the first crash prints at once.
func (s *Symbolizer) Preload() { s.build() }

func (s *Symbolizer) build() {
	s.once.Do(func() {
		if s.dwarf == nil {
			return
		}
		r := s.dwarf.Reader()
		for {
			e, err := r.Next()
			if err != nil || e == nil {
				break
			}
			if e.Tag != dwarf.TagCompileUnit {
				r.SkipChildren()
				continue
			}
			if rs, err := s.dwarf.Ranges(e); err == nil {
				for _, rg := range rs {
					if rg[1] > rg[0] {
						s.units = append(s.units, unitRange{rg[0], rg[1], e.Offset})
					}
				}
			}
			s.readLines(e)
			r.SkipChildren()
		}
		sort.SliceStable(s.lines, func(i, j int) bool {
			if s.lines[i].addr != s.lines[j].addr {
				return s.lines[i].addr < s.lines[j].addr
			}
			// A sequence that ends where another starts: the start must be
			// the last row at that address, because lookups take the last.
			return s.lines[i].end && !s.lines[j].end
		})
		sort.Slice(s.units, func(i, j int) bool { return s.units[i].lo < s.units[j].lo })
	})
}

func (s *Symbolizer) readLines(cu *dwarf.Entry) {
	lr, err := s.dwarf.LineReader(cu)
	if err != nil || lr == nil {
		return
	}
	var le dwarf.LineEntry
	for {
		if err := lr.Next(&le); err != nil {
			return
		}
		row := lineRow{addr: le.Address, line: le.Line, end: le.EndSequence}
		if le.File != nil {
			row.file = le.File.Name
		}
		if n := len(s.lines); n > 0 && !row.end && s.lines[n-1].addr == row.addr && !s.lines[n-1].end {
			s.lines[n-1] = row // several rows at one address: the last one describes it
			continue
		}
		s.lines = append(s.lines, row)
	}
}

func (s *Symbolizer) line(addr uint64) (string, int) {
	s.build()
	i := sort.Search(len(s.lines), func(i int) bool { return s.lines[i].addr > addr }) - 1
	if i < 0 || s.lines[i].end {
		return "", 0
	}
	return s.lines[i].file, s.lines[i].line
}
