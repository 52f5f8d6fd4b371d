package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/internal/fixture"
)

const fixtureELF = "../../shared/fixtures/elf/esp32-app-template.elf"

func openFixture(t testing.TB) *Symbolizer {
	t.Helper()
	if _, err := os.Stat(fixtureELF); err != nil {
		fixture.Missing(t, "fixture %s not present (%v); decoding tests need the shared fixtures", fixtureELF, err)
	}
	s, err := Open(fixtureELF)
	require.NoError(t, err)
	require.NoError(t, s.DebugInfoErr())
	return s
}

// fixtureBytes returns the fixture ELF's contents.
func fixtureBytes(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(fixtureELF)
	if err != nil {
		fixture.Missing(t, "fixture %s not present (%v)", fixtureELF, err)
	}
	return b
}

// symbolAt reads the fixture's symbol table independently of the package.
func fixtureSymbols(t *testing.T) []elf.Symbol {
	f, err := elf.Open(fixtureELF)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	return syms
}

// execSections reports, per section index, whether it holds code.
func execSections(t *testing.T) map[elf.SectionIndex]bool {
	f, err := elf.Open(fixtureELF)
	require.NoError(t, err)
	defer f.Close()
	out := map[elf.SectionIndex]bool{}
	for i, sec := range f.Sections {
		out[elf.SectionIndex(i)] = sec.Flags&elf.SHF_EXECINSTR != 0
	}
	return out
}

func symbolValue(t *testing.T, name string) uint64 {
	for _, s := range fixtureSymbols(t) {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("symbol %s not in fixture", name)
	return 0
}

func TestSymbolTableAddressesResolveToTheirFunction(t *testing.T) {
	s := openFixture(t)
	syms := fixtureSymbols(t)
	exec := execSections(t)
	// Several functions may share an address (aliases); any of them is right.
	names := map[uint64]map[string]bool{}
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC {
			if names[sym.Value] == nil {
				names[sym.Value] = map[string]bool{}
			}
			names[sym.Value][sym.Name] = true
		}
	}
	checked := 0
	for i, sym := range syms {
		if elf.ST_TYPE(sym.Info) != elf.STT_FUNC || sym.Size < 4 || !exec[sym.Section] {
			continue // ROM functions (absolute symbols) are not in the ELF's code
		}
		if testing.Short() && i%8 != 0 {
			continue
		}
		for _, addr := range []uint64{sym.Value, sym.Value + sym.Size/2, sym.Value + sym.Size - 1} {
			frames := s.Lookup(addr)
			require.NotEmpty(t, frames, "%s+%#x", sym.Name, addr-sym.Value)
			outer := frames[len(frames)-1]
			require.False(t, outer.Inlined)
			ok := names[sym.Value][outer.Function]
			for n := range names[sym.Value] {
				if d, dok := Demangle(n); dok {
					ok = ok || d == outer.Function
				} else if strings.HasPrefix(n, "_Z") {
					// Templates and the like: DWARF's name, which the
					// mangled symbol spells out.
					base, _, _ := strings.Cut(outer.Function, "<")
					ok = ok || (base != "" && strings.Contains(n, base))
				}
			}
			require.True(t, ok, "0x%x in %s decoded as %q", addr, sym.Name, outer.Function)
			for _, f := range frames[:len(frames)-1] {
				require.True(t, f.Inlined)
			}
			checked++
		}
	}
	if !testing.Short() {
		require.Greater(t, checked, 3000, "the fixture has thousands of functions")
	}
}

func TestFileAndLineFromDWARF(t *testing.T) {
	s := openFixture(t)
	appMain := symbolValue(t, "app_main")

	// Lines as GNU addr2line reports them for the fixture.
	frames := s.Lookup(appMain)
	require.Len(t, frames, 1)
	require.Equal(t, "app_main", frames[0].Function)
	require.True(t, strings.HasSuffix(frames[0].File, "main/main.c"), frames[0].File)
	require.Equal(t, 15, frames[0].Line)
	require.Equal(t, "0x400d0a18: app_main at /home/gus/esp/32/idf-template/main/main.c:15", Format(appMain, frames)[0])

	// A few instructions later it is the body (line 16 in the fixture).
	frames = s.Lookup(appMain + 3)
	require.Equal(t, 16, frames[0].Line)

	mainTask := symbolValue(t, "main_task")
	frames = s.Lookup(mainTask)
	require.Equal(t, "main_task", frames[0].Function)
	require.True(t, strings.HasSuffix(frames[0].File, "components/esp32/cpu_start.c"), frames[0].File)
	require.Equal(t, 479, frames[0].Line)
}

func TestInlinedFrames(t *testing.T) {
	s := openFixture(t)
	// wdt_reset_cpu1_info_enable inlines DPORT_REG_READ from dport_access.h
	// near its start (checked against the DWARF of the fixture).
	addr := symbolValue(t, "wdt_reset_cpu1_info_enable") + 4
	frames := s.Lookup(addr)
	require.Len(t, frames, 2)
	require.Equal(t, "DPORT_REG_READ", frames[0].Function)
	require.True(t, frames[0].Inlined)
	require.True(t, strings.HasSuffix(frames[0].File, "soc/dport_access.h"), frames[0].File)
	require.Equal(t, "wdt_reset_cpu1_info_enable", frames[1].Function)
	require.False(t, frames[1].Inlined)
	require.True(t, strings.HasSuffix(frames[1].File, "esp32/cpu_start.c"), frames[1].File)
	require.Equal(t, 262, frames[1].Line, "the call site of the inlined read")

	lines := Format(addr, frames)
	require.Len(t, lines, 2)
	require.Contains(t, lines[1], "(inlined by) wdt_reset_cpu1_info_enable at ")
}

func TestAddressesOutsideCodeAreLeftAlone(t *testing.T) {
	s := openFixture(t)
	for _, a := range []uint64{0, 0x3ffb0000, 0x3ffb5f50, 0x3f400020, 0x40000000, 0x400d0000, 0x50000000, 0xffffffff} {
		require.False(t, s.InCode(a), "%#x", a)
		require.Nil(t, s.Lookup(a), "%#x", a)
	}
	require.Equal(t, []string{"0x3ffb5f50: ?? (not in the ELF's code)"}, Format(0x3ffb5f50, nil))
}

func TestELFSHA256(t *testing.T) {
	s := openFixture(t)
	const want = "138cb4392e3b79803b69e554ee515713d3ace655f5dab3f9fc08b1cfbfd6d727"
	require.Len(t, s.ELFSHA256(), 32)
	require.NoError(t, s.CheckELFSHA256(want))
	require.NoError(t, s.CheckELFSHA256("138cb4392e3b7980..."), "the boot log prints a 16-digit prefix")
	require.NoError(t, s.CheckELFSHA256(""), "unknown is not a mismatch")
	err := s.CheckELFSHA256("0123456789abcdef...")
	var mm *SHAMismatchError
	require.True(t, errors.As(err, &mm), "%v", err)
	require.Contains(t, err.Error(), "138cb4392e3b7980")
	require.Contains(t, err.Error(), "pass the ELF from the same build")

	// New from an *elf.File cannot know the file's hash: never a mismatch.
	f, err := elf.Open(fixtureELF)
	require.NoError(t, err)
	defer f.Close()
	s2, err := New(f)
	require.NoError(t, err)
	require.Nil(t, s2.ELFSHA256())
	require.NoError(t, s2.CheckELFSHA256("0123456789abcdef"))
}

func TestOpenRejectsNonELF(t *testing.T) {
	p := t.TempDir() + "/app.bin"
	require.NoError(t, os.WriteFile(p, []byte{0xE9, 3, 2, 0x20, 0, 0, 0, 0}, 0o644))
	_, err := Open(p)
	require.ErrorIs(t, err, ErrNotELF)
	require.Contains(t, err.Error(), "flash image")
	var e *ELFError
	require.ErrorAs(t, err, &e)
	require.Contains(t, e.Hint(), "not the .bin")
	_, err = Open(t.TempDir() + "/missing.elf")
	require.ErrorIs(t, err, os.ErrNotExist)
}

// A synthetic ESP-IDF panic, with addresses taken from the fixture, decodes
// line by line: the Backtrace PCs and the register PC resolve, the stack
// pointers do not.
func TestDecodePanicLog(t *testing.T) {
	s := openFixture(t)
	appMain := symbolValue(t, "app_main")
	mainTask := symbolValue(t, "main_task")
	wrapper := symbolValue(t, "vPortTaskWrapper")
	log := strings.Join([]string{
		"Guru Meditation Error: Core  0 panic'ed (StoreProhibited). Exception was unhandled.",
		"Core 0 register dump:",
		"PC      : 0x400d0a2b  PS      : 0x00060f30  A0      : 0x800d4adc  A1      : 0x3ffb5f40  ",
		"A2      : 0x00000000  A3      : 0x3ffb2d90  A4      : 0x00000001  A5      : 0x00000000  ",
		"EXCVADDR: 0x00000000  LBEG    : 0x4000c46c  LEND    : 0x4000c477  LCOUNT  : 0x00000000  ",
		"",
		"Backtrace: 0x400d0a2b:0x3ffb5f40 0x400d4ad9:0x3ffb5f60 0x40088c85:0x3ffb5f80 |<-CORRUPTED",
		"",
		"Rebooting...",
	}, "\n")
	_ = appMain
	_ = mainTask
	_ = wrapper
	var x Extractor
	var got []string
	for _, line := range strings.Split(log, "\n") {
		for _, r := range x.Line(line) {
			if !s.InCode(r.Addr) {
				continue
			}
			fr := s.Lookup(r.Addr)
			got = append(got, r.Label+" "+fr[len(fr)-1].Function)
		}
	}
	require.Equal(t, []string{
		"PC app_main",
		"A0 main_task",
		"Backtrace app_main",
		"Backtrace main_task",
		"Backtrace vPortTaskWrapper",
	}, got)
}

func TestDWARFAbsentStillNamesFunctions(t *testing.T) {
	if _, err := os.Stat(fixtureELF); err != nil {
		fixture.Missing(t, "fixture %s not present", fixtureELF)
	}
	f, err := elf.Open(fixtureELF)
	require.NoError(t, err)
	defer f.Close()
	s, err := New(f)
	require.NoError(t, err)
	s.dwarf, s.dwarfEr = nil, ErrNoDebugInfo // as if stripped of .debug_*
	frames := s.Lookup(symbolValue(t, "app_main") + 3)
	require.Equal(t, []Frame{{Addr: 0x400d0a1b, Function: "app_main"}}, frames)
	require.Equal(t, "app_main", frames[0].String())
	var _ = dwarf.TagSubprogram
}
