package symbolize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// tinyELF builds a minimal 32-bit little-endian Xtensa executable: one code
// section (.text at addr, 16 bytes) and a symbol table naming one function,
// app_main, that covers it. Small enough to seed a fuzzer.
func tinyELF(addr uint32) []byte {
	le := binary.LittleEndian
	text := bytes.Repeat([]byte{0x36, 0x41, 0x00, 0x1d}, 4)
	strtab := []byte("\x00app_main\x00")
	shstr := []byte("\x00.text\x00.symtab\x00.strtab\x00.shstrtab\x00")
	sym := func(name, value, size uint32, info byte, shndx uint16) []byte {
		b := make([]byte, 16)
		le.PutUint32(b[0:], name)
		le.PutUint32(b[4:], value)
		le.PutUint32(b[8:], size)
		b[12] = info
		le.PutUint16(b[14:], shndx)
		return b
	}
	symtab := append(sym(0, 0, 0, 0, 0), sym(1, addr, uint32(len(text)), 0x12, 1)...) // GLOBAL FUNC in .text

	const ehsize = 52
	off := uint32(ehsize)
	body := []byte{}
	place := func(b []byte) uint32 {
		o := off
		body = append(body, b...)
		off += uint32(len(b))
		for off%4 != 0 {
			body = append(body, 0)
			off++
		}
		return o
	}
	textOff, symOff, strOff, shstrOff := place(text), place(symtab), place(strtab), place(shstr)
	shoff := off
	sh := func(name, typ, flags, addr, offset, size, link, info, align, entsize uint32) []byte {
		b := make([]byte, 40)
		for i, v := range []uint32{name, typ, flags, addr, offset, size, link, info, align, entsize} {
			le.PutUint32(b[4*i:], v)
		}
		return b
	}
	var shdrs []byte
	shdrs = append(shdrs, sh(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)...)
	shdrs = append(shdrs, sh(1, 1, 0x6, addr, textOff, uint32(len(text)), 0, 0, 4, 0)...) // .text PROGBITS ALLOC|EXEC
	shdrs = append(shdrs, sh(7, 2, 0, 0, symOff, uint32(len(symtab)), 3, 1, 4, 16)...)    // .symtab, link .strtab
	shdrs = append(shdrs, sh(15, 3, 0, 0, strOff, uint32(len(strtab)), 0, 0, 1, 0)...)    // .strtab
	shdrs = append(shdrs, sh(23, 3, 0, 0, shstrOff, uint32(len(shstr)), 0, 0, 1, 0)...)   // .shstrtab

	h := make([]byte, ehsize)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = 1, 1, 1 // ELFCLASS32, little-endian, version 1
	le.PutUint16(h[16:], 2)    // ET_EXEC
	le.PutUint16(h[18:], 94)   // EM_XTENSA
	le.PutUint32(h[20:], 1)
	le.PutUint32(h[24:], addr)
	le.PutUint32(h[32:], shoff)
	le.PutUint16(h[40:], ehsize)
	le.PutUint16(h[46:], 40) // section header size
	le.PutUint16(h[48:], 5)  // sections
	le.PutUint16(h[50:], 4)  // .shstrtab
	out := append(h, body...)
	return append(out, shdrs...)
}

func TestTinyELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tiny.elf")
	require.NoError(t, os.WriteFile(p, tinyELF(0x400d0000), 0o644))
	s, err := Open(p)
	require.NoError(t, err)
	require.ErrorIs(t, s.DebugInfoErr(), ErrNoDebugInfo)
	fr := s.Lookup(0x400d0004)
	require.NotEmpty(t, fr)
	require.Equal(t, "app_main", fr[0].Function)
	require.Empty(t, s.Lookup(0x3ffb0000), "not code")
}

// FuzzOpenELF: whatever bytes a user passes as --elf, loading them never
// panics, errors are *ELFError with a code and a hint, and a loaded ELF
// answers lookups (also walking whatever DWARF it has) without panicking.
func FuzzOpenELF(f *testing.F) {
	f.Add(tinyELF(0x400d0000))
	f.Add(tinyELF(0x42000000))
	f.Add([]byte("\x7fELF"))
	f.Add([]byte{0xE9, 3, 2, 0x20})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := load(bytes.NewReader(data), int64(len(data)), "fuzz.elf")
		if err != nil {
			var e *ELFError
			if !errors.As(err, &e) || e.Code() == "" || e.Hint() == "" {
				t.Fatalf("error without code or hint: %v", err)
			}
			return
		}
		if len(s.ELFSHA256()) != 32 {
			t.Fatal("loaded without its SHA-256")
		}
		for _, r := range s.code {
			for _, a := range []uint64{r.lo, r.lo + (r.hi-r.lo)/2, r.hi - 1} {
				if !s.InCode(a) {
					t.Fatalf("%#x in code range %s but not InCode", a, r.name)
				}
				s.Lookup(a)
			}
		}
		s.Lookup(0)
	})
}
