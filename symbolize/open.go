package symbolize

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Bounds on what Open reads. An ESP-IDF application ELF with full debug
// info is a few to a few tens of megabytes; the bounds leave room for the
// largest builds while keeping a wrong path (a disk image, /dev/zero) from
// costing more than a few reads.
const (
	// MaxELFSize is the largest ELF file Open accepts.
	MaxELFSize = 512 << 20
	// maxSectionBytes bounds the sections New reads whole (symbol and
	// string tables, DWARF) after decompression, so a compressed section
	// that claims gigabytes is refused before it is inflated.
	maxSectionBytes = 2 << 30
)

// Sentinels an *ELFError unwraps to.
var (
	// ErrNotELF: the file is not an ELF executable with code (a .bin
	// image, a text file, a truncated or damaged ELF).
	ErrNotELF = errors.New("not an ELF file")
	// ErrNotRegular: the path names a device, a directory or a pipe.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file or its sections exceed the bounds above.
	ErrTooLarge = errors.New("too large for an application ELF")
	// ErrUnreadable: the file cannot be opened or read.
	ErrUnreadable = errors.New("cannot read the ELF")
)

// ELFError is the error Open returns. It unwraps to one of the sentinels
// above and to the underlying cause, if any. Error is the path and what is
// wrong; Hint, kept apart so a caller can show it as the next step, says
// what to pass instead.
type ELFError struct {
	Path  string
	Kind  error  // one of the sentinels
	Msg   string // what is wrong, one sentence without the path
	Next  string // the next step (returned by Hint)
	Cause error  // may be nil
}

func (e *ELFError) Error() string {
	s := e.Path + ": " + e.Msg
	if e.Cause != nil {
		s += " (" + e.Cause.Error() + ")"
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *ELFError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// Code is a stable machine word: not_elf, elf_not_a_file, elf_too_large
// or elf_unreadable.
func (e *ELFError) Code() string {
	switch e.Kind {
	case ErrNotELF:
		return "not_elf"
	case ErrNotRegular:
		return "elf_not_a_file"
	case ErrTooLarge:
		return "elf_too_large"
	}
	return "elf_unreadable"
}

// Hint is the next step for the user.
func (e *ELFError) Hint() string { return e.Next }

const elfHint = "pass the application's unstripped .elf from the build directory (ESP-IDF: build/PROJECT.elf), not the .bin image"

// Open reads the ELF at path through debug/elf on the open file, remembering
// its SHA-256 for ELFSHA256. Before anything is read whole it checks that
// path is a regular file of at most MaxELFSize bytes that starts with the
// ELF magic, so a device node, a huge file or a non-ELF costs a few small
// reads. The file is closed when Open returns.
func Open(path string) (*Symbolizer, error) {
	f, err := os.Open(path)
	if err != nil {
		next := "check the path"
		if errors.Is(err, os.ErrPermission) {
			next = "check the file's permissions"
		}
		return nil, &ELFError{Path: path, Kind: ErrUnreadable, Msg: "cannot open the ELF", Next: next, Cause: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &ELFError{Path: path, Kind: ErrUnreadable, Msg: "cannot read the ELF", Next: "check the path", Cause: err}
	}
	if !st.Mode().IsRegular() {
		return nil, &ELFError{Path: path, Kind: ErrNotRegular,
			Msg: fmt.Sprintf("is not a regular file (%s)", fileKind(st.Mode())), Next: elfHint}
	}
	if st.Size() > MaxELFSize {
		return nil, &ELFError{Path: path, Kind: ErrTooLarge,
			Msg:  fmt.Sprintf("is %d MiB, more than the %d MiB an application ELF can be", st.Size()>>20, MaxELFSize>>20),
			Next: elfHint}
	}
	return load(f, st.Size(), path)
}

// load reads an ELF of size bytes from r (Open's file, after its checks):
// the magic first, then the SHA-256 in one streaming pass, then the tables
// through debug/elf, which reads sections from r as it needs them.
func load(r io.ReaderAt, size int64, path string) (*Symbolizer, error) {
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil || !bytes.Equal(magic[:], []byte(elf.ELFMAG)) {
		what := "does not start with the ELF magic (\\x7fELF)"
		if size > 0 && magic[0] == 0xE9 {
			what = "is a flash image (first byte 0xE9), not an ELF"
		}
		return nil, &ELFError{Path: path, Kind: ErrNotELF, Msg: what, Next: elfHint}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return nil, &ELFError{Path: path, Kind: ErrUnreadable, Msg: "cannot read the ELF", Next: "check the file", Cause: err}
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, &ELFError{Path: path, Kind: ErrNotELF, Msg: "is not a valid ELF (truncated or damaged?)", Next: elfHint, Cause: err}
	}
	if err := checkSectionSizes(ef); err != nil {
		return nil, &ELFError{Path: path, Kind: ErrTooLarge, Msg: err.Error(), Next: elfHint}
	}
	s, err := New(ef)
	if err != nil {
		kind := ErrNotELF
		if errors.Is(err, ErrTooLarge) {
			kind = ErrTooLarge
		}
		return nil, &ELFError{Path: path, Kind: kind, Msg: "cannot be used for decoding", Next: elfHint, Cause: err}
	}
	s.sha = h.Sum(nil)
	return s, nil
}

// checkSectionSizes refuses an ELF whose symbol, string or debug sections
// together claim more than maxSectionBytes (sizes after decompression):
// New reads those whole.
func checkSectionSizes(f *elf.File) error {
	var total uint64
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		switch {
		case s.Type == elf.SHT_SYMTAB, s.Type == elf.SHT_STRTAB,
			strings.HasPrefix(s.Name, ".debug_"), strings.HasPrefix(s.Name, ".zdebug_"):
			if s.Size > maxSectionBytes || total+s.Size > maxSectionBytes {
				return fmt.Errorf("its symbol and debug sections claim more than %d MiB", uint64(maxSectionBytes)>>20)
			}
			total += s.Size
		}
	}
	return nil
}

// fileKind names a non-regular file type for an error message.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}
