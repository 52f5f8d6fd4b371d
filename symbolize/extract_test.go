package symbolize

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func refsOf(lines ...string) []Ref {
	var x Extractor
	var out []Ref
	for _, l := range lines {
		out = append(out, x.Line(l)...)
	}
	return out
}

func TestExtractXtensa(t *testing.T) {
	got := refsOf(
		"Guru Meditation Error: Core  0 panic'ed (LoadProhibited). Exception was unhandled.",
		"PC      : 0x400d0a2b  PS      : 0x00060f30  A0      : 0x800d4adc  A1      : 0x3ffb5f40  ",
		"EXCVADDR: 0x00000000  LBEG    : 0x4000c46c  LEND    : 0x4000c477  LCOUNT  : 0x00000000  ",
		"Backtrace:0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60 0x00000000:0x00000000 |<-CORRUPTED",
		"abort() was called at PC 0x400d1234 on core 0",
	)
	require.Equal(t, []Ref{
		{0x400d0a2b, KindPC, "PC"},
		{0x400d4adc, KindReturn, "A0"}, // window bits 0x8… replaced by 0x4…
		{0x400d0a2b, KindBacktrace, "Backtrace"},
		{0x400d4ad9, KindBacktrace, "Backtrace"},
		{0x400d1234, KindPC, "abort PC"},
	}, got)
}

func TestExtractRISCV(t *testing.T) {
	got := refsOf(
		"Core  0 register dump:",
		"MEPC    : 0x42005e6a  RA      : 0x42005e5c  SP      : 0x3fc8f090  GP      : 0x3fc8b600  ",
		"MSTATUS : 0x00001881  MTVEC   : 0x40380001  MCAUSE  : 0x00000005  MTVAL   : 0x00000000  ",
		"",
		"Stack memory:",
		"3fc8f090: 0x00000000 0x42005ec2 0x3fc8f0d0",
		"3fc8f09c: 0x4200a1b4",
		"",
		"ELF file SHA256: 0000000000000000",
		"3fc8f090: 0x00000000 0x42005ec2",
	)
	require.Equal(t, []Ref{
		{0x42005e6a, KindPC, "MEPC"},
		{0x42005e5c, KindReturn, "RA"},
		{0x00000000, KindStack, "stack"},
		{0x42005ec2, KindStack, "stack"},
		{0x3fc8f0d0, KindStack, "stack"},
		{0x4200a1b4, KindStack, "stack"},
		// the last line is after the dump ended: not stack words any more
	}, got)
}

func TestExtractESP8266(t *testing.T) {
	got := refsOf(
		"Exception (28):",
		"epc1=0x40201234 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
		"Fatal exception 28(LoadProhibitedCause):",
		"epc1=0x4000bf80, epc2=0x00000000, epc3=0x00000000, excvaddr=0x00000000, depc=0x00000000",
		"",
		">>>stack>>>",
		"",
		"ctx: cont",
		"sp: 3ffffdc0 end: 3fffffc0 offset: 01a0",
		"3fffff60:  3fffdad0 00000000 3ffee4f8 40201e55",
		"<<<stack<<<",
		"3fffff60:  3fffdad0 00000000 3ffee4f8 40201e55",
		"last failed alloc call: 4020A3B8(1024)",
	)
	require.Equal(t, []Ref{
		{0x40201234, KindPC, "epc1"},
		{0x4000bf80, KindPC, "epc1"},
		{0x3fffdad0, KindStack, "stack"},
		{0x00000000, KindStack, "stack"},
		{0x3ffee4f8, KindStack, "stack"},
		{0x40201e55, KindStack, "stack"},
		{0x4020a3b8, KindPC, "alloc call"},
	}, got)
}

func TestExtractIgnoresOrdinaryLines(t *testing.T) {
	require.Empty(t, refsOf(
		"I (312) cpu_start: Pro cpu start user code",
		"I (12) boot: ESP-IDF v5.1 2nd stage bootloader",
		"W (500) wifi: value 0x40001234 in a message",
		"SPC : 0x400d1234",
		"3fc8f090: 0x00000000 0x42005ec2", // a stack-shaped line outside a dump
	))
}

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]uint64{"0x400d1234": 0x400d1234, "400D1234": 0x400d1234, "0x400d1234:0x3ffb5f50": 0x400d1234, "0x40081d7a,": 0x40081d7a} {
		got, ok := ParseAddress(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "0x", "zz", "0x1234567890", "main.c:12"} {
		_, ok := ParseAddress(bad)
		require.False(t, ok, bad)
	}
}

func FuzzExtractor(f *testing.F) {
	f.Add("Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60 |<-CORRUPTED\nPC      : 0x400d0a2b  A0      : 0x800d4adc")
	f.Add("Stack memory:\n3fc8f090: 0x00000000 0x42005ec2\n\nMEPC    : 0x42005e6a  RA      : 0x42005e5c")
	f.Add(">>>stack>>>\nctx: cont\n3fffff60:  3fffdad0 40201e55\n<<<stack<<<\nepc1=0x40201234, epc2=0x0")
	f.Add("abort() was called at PC 0x400d1234 on core 0\nlast failed alloc call: 4020A3B8(1024)")
	f.Fuzz(func(t *testing.T, text string) {
		var x Extractor
		for _, line := range strings.Split(text, "\n") {
			for _, r := range x.Line(line) {
				if r.Addr > 0xFFFFFFFF {
					t.Fatalf("address %#x wider than 32 bits from %q", r.Addr, line)
				}
				if r.Kind < KindPC || r.Kind > KindStack || r.Label == "" {
					t.Fatalf("bad ref %+v from %q", r, line)
				}
			}
		}
	})
}
