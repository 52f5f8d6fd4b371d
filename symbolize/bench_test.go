package symbolize

import (
	"debug/dwarf"
	"debug/elf"
	"testing"
)

// BenchmarkLookup compares Symbolizer.Lookup (sorted tables built once) with
// the straightforward standard-library way: per address, find the compile
// unit with dwarf.Reader.SeekPC, then the row with LineReader.SeekPC, and
// the symbol by scanning the symbol table. Run:
//
//	go test -run '^$' -bench Lookup -benchtime 2s ./symbolize
func BenchmarkLookup(b *testing.B) {
	s := openFixture(b)
	f, err := elf.Open(fixtureELF)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	var addrs []uint64
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC && sym.Size >= 8 && s.InCode(sym.Value) {
			addrs = append(addrs, sym.Value+sym.Size/2)
		}
		if len(addrs) == 512 {
			break
		}
	}
	s.Lookup(addrs[0]) // build the tables outside the timing

	b.Run("espdeck", func(b *testing.B) {
		found := 0
		for i := 0; b.Loop(); i++ {
			if fr := s.Lookup(addrs[i%len(addrs)]); len(fr) > 0 && fr[0].Line > 0 {
				found++
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
		if found == 0 {
			b.Fatal("nothing decoded")
		}
	})

	b.Run("baseline-stdlib-seekpc", func(b *testing.B) {
		d, err := f.DWARF()
		if err != nil {
			b.Fatal(err)
		}
		found := 0
		for i := 0; b.Loop(); i++ {
			a := addrs[i%len(addrs)]
			r := d.Reader()
			cu, err := r.SeekPC(a)
			if err != nil {
				continue
			}
			lr, err := d.LineReader(cu)
			if err != nil || lr == nil {
				continue
			}
			var le dwarf.LineEntry
			if lr.SeekPC(a, &le) == nil && le.Line > 0 {
				found++
			}
			name := ""
			for _, sym := range syms {
				if a >= sym.Value && a < sym.Value+sym.Size {
					name = sym.Name
					break
				}
			}
			_ = name
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "addrs/s")
		if found == 0 {
			b.Fatal("nothing decoded")
		}
	})
}

// BenchmarkOpen is the cost of loading the fixture ELF and building the
// line and unit tables (what the first decoded crash pays).
func BenchmarkOpen(b *testing.B) {
	if testing.Short() {
		b.Skip("short")
	}
	for b.Loop() {
		s := openFixture(b)
		s.build()
	}
}
