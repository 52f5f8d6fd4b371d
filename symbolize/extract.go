package symbolize

import (
	"regexp"
	"strconv"
	"strings"
)

// Kind says where in a crash an address was found.
type Kind uint8

const (
	// KindPC is the faulting program counter (PC, MEPC, epc1, abort's PC).
	KindPC Kind = iota + 1
	// KindReturn is a return address from a register (RA, Xtensa A0).
	KindReturn
	// KindBacktrace is a PC from an Xtensa "Backtrace:" line.
	KindBacktrace
	// KindStack is a word from a stack memory dump; only the ones that fall
	// in code are meaningful (likely return addresses).
	KindStack
)

func (k Kind) String() string {
	switch k {
	case KindPC:
		return "pc"
	case KindReturn:
		return "return"
	case KindBacktrace:
		return "backtrace"
	case KindStack:
		return "stack"
	}
	return "unknown"
}

// Ref is one address found in crash output.
type Ref struct {
	Addr  uint64
	Kind  Kind
	Label string // what the firmware called it: "PC", "MEPC", "RA", "A0", "epc1", "Backtrace", "stack"
}

// Extractor finds code addresses in crash output, one line at a time. It
// keeps a little state (whether the lines being read are a stack memory dump),
// so feed it every line of a log in order; its zero value is ready to use.
// It does not know the ELF: callers keep only the Refs that Symbolizer.InCode
// accepts.
type Extractor struct {
	stack stackMode
}

type stackMode uint8

const (
	noStack      stackMode = iota
	riscvStack             // after "Stack memory:" (ESP-IDF RISC-V panic)
	esp8266Stack           // between ">>>stack>>>" and "<<<stack<<<"
)

// Register names whose values are code addresses, in ESP-IDF (Xtensa and
// RISC-V) and ESP8266 RTOS SDK register dumps.
var regRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_])(PC|MEPC|RA|A0)\s*:\s*0x([0-9a-fA-F]{1,8})\b`)

// epcRE matches ESP8266 exception dumps: "epc1=0x40201234 epc2=…" (Arduino
// core) and "epc1=0x4000bf80, epc2=…" (non-OS SDK "Fatal exception").
var epcRE = regexp.MustCompile(`\b(epc[123]|depc)=0x([0-9a-fA-F]{1,8})\b`)

// hexWord matches a bare or 0x-prefixed 32-bit word.
var hexWord = regexp.MustCompile(`^(?:0x)?([0-9a-fA-F]{8})$`)

// Line returns the addresses worth decoding in one line of output (without
// its line ending; ANSI colour codes should be removed first).
func (x *Extractor) Line(line string) []Ref {
	t := strings.TrimSpace(line)
	switch {
	case t == "":
		if x.stack == riscvStack {
			x.stack = noStack
		}
		return nil
	case strings.HasPrefix(t, "Stack memory:"):
		x.stack = riscvStack
		return nil
	case strings.Contains(t, ">>>stack>>>"):
		x.stack = esp8266Stack
		return nil
	case strings.Contains(t, "<<<stack<<<"):
		x.stack = noStack
		return nil
	}
	if x.stack != noStack {
		if refs, ok := stackWords(t); ok {
			return refs
		}
		// ESP8266 stack blocks also hold "ctx: cont" and "sp: … end: …"
		// lines; a RISC-V dump ends at the first line that is not one.
		if x.stack == riscvStack {
			x.stack = noStack
		} else {
			return nil
		}
	}
	var refs []Ref
	if i := strings.Index(t, "Backtrace:"); i >= 0 {
		refs = append(refs, backtrace(t[i+len("Backtrace:"):])...)
		return refs
	}
	if i := strings.Index(t, "abort() was called at PC "); i >= 0 {
		if a, ok := parseHex(firstField(t[i+len("abort() was called at PC "):])); ok {
			refs = append(refs, Ref{a, KindPC, "abort PC"})
		}
	}
	if i := strings.Index(t, "last failed alloc call: "); i >= 0 {
		// ESP8266 Arduino: "last failed alloc call: 40201234(24)".
		f := firstField(t[i+len("last failed alloc call: "):])
		if j := strings.IndexByte(f, '('); j >= 0 {
			f = f[:j]
		}
		if a, ok := parseHex(f); ok {
			refs = append(refs, Ref{a, KindPC, "alloc call"})
		}
	}
	// Cheap checks first: the regular expressions are the slow part and
	// almost every line of a log has none of these words.
	hasReg := strings.Contains(t, "PC") || strings.Contains(t, "RA") || strings.Contains(t, "A0")
	for _, m := range regMatches(hasReg, t) {
		a, ok := parseHex(m[2])
		if !ok {
			continue
		}
		switch m[1] {
		case "PC", "MEPC":
			refs = append(refs, Ref{a, KindPC, m[1]})
		case "RA":
			refs = append(refs, Ref{a, KindReturn, m[1]})
		case "A0":
			// Xtensa windowed calls keep the window increment in the top
			// two bits of the return address; the code is at 0x4xxxxxxx.
			if a&0xC0000000 != 0 {
				a = a&0x3FFFFFFF | 0x40000000
			}
			refs = append(refs, Ref{a, KindReturn, m[1]})
		}
	}
	if !strings.Contains(t, "epc") {
		return refs
	}
	for _, m := range epcRE.FindAllStringSubmatch(t, -1) {
		if a, ok := parseHex(m[2]); ok && a != 0 {
			refs = append(refs, Ref{a, KindPC, m[1]})
		}
	}
	return refs
}

func regMatches(has bool, t string) [][]string {
	if !has {
		return nil
	}
	return regRE.FindAllStringSubmatch(t, -1)
}

// backtrace parses " 0xPC:0xSP 0xPC:0xSP |<-CORRUPTED".
func backtrace(s string) []Ref {
	var refs []Ref
	for _, f := range strings.Fields(s) {
		pc, _, _ := strings.Cut(f, ":")
		a, ok := parseHex(pc)
		if !ok {
			continue
		}
		if a == 0 {
			continue // end of chain
		}
		refs = append(refs, Ref{a, KindBacktrace, "Backtrace"})
	}
	return refs
}

// stackWords parses "3fc8f090: 0x00000000 0x42005ec2 …" (RISC-V) and
// "3fffff60:  3fffdad0 00000000 3ffee4f8 40201234" (ESP8266).
func stackWords(t string) ([]Ref, bool) {
	head, rest, ok := strings.Cut(t, ":")
	if !ok || !hexWord.MatchString(head) {
		return nil, false
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return nil, false
	}
	var refs []Ref
	for _, f := range fields {
		m := hexWord.FindStringSubmatch(f)
		if m == nil {
			return nil, false
		}
		a, _ := strconv.ParseUint(m[1], 16, 32)
		refs = append(refs, Ref{a, KindStack, "stack"})
	}
	return refs, true
}

func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return strings.TrimRight(f[0], ",;.")
}

// parseHex parses "0x400d1234" or "400d1234" as a 32-bit address.
func parseHex(s string) (uint64, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s) > 8 {
		return 0, false
	}
	a, err := strconv.ParseUint(s, 16, 32)
	return a, err == nil
}

// ParseAddress parses an address typed or pasted by a person: "0x400d1234",
// "400d1234", or a backtrace pair "0x400d1234:0x3ffb5f50" (the PC is taken).
func ParseAddress(s string) (uint64, bool) {
	s = strings.TrimSpace(strings.TrimRight(s, ",;"))
	pc, _, _ := strings.Cut(s, ":")
	return parseHex(pc)
}
