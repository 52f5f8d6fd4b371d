package firmware

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Partition table layout (flash-formats.md §4).
const (
	// DefaultTableOffset is where ESP-IDF puts the partition table.
	DefaultTableOffset = 0x8000
	// TableSectorSize is the flash the table occupies.
	TableSectorSize = 0x1000
	// TableMaxLength is the data area of the table: entries, MD5 row and
	// FF padding as gen_esp32part writes it. Readers never look further.
	TableMaxLength = 0xC00
	// PartitionEntrySize is the size of one row.
	PartitionEntrySize = 32
	// OTADataSize is the only size an otadata partition may have.
	OTADataSize = 0x2000
)

// Partition types (§4.3).
const (
	TypeApp            uint8 = 0x00
	TypeData           uint8 = 0x01
	TypeBootloader     uint8 = 0x02
	TypePartitionTable uint8 = 0x03
)

// Subtypes the tools care about by value.
const (
	SubtypeFactory     uint8 = 0x00
	SubtypeOTA0        uint8 = 0x10
	SubtypeOTA15       uint8 = 0x1F
	SubtypeTest        uint8 = 0x20
	SubtypeDataOTA     uint8 = 0x00
	SubtypeDataNVS     uint8 = 0x02
	SubtypeDataCoredmp uint8 = 0x03
	SubtypeDataTeeOTA  uint8 = 0x90
	subtypePrimary     uint8 = 0x00
	subtypeRecovery    uint8 = 0x02
)

// Partition flags (§4.2).
const (
	FlagEncrypted uint32 = 1 << 0
	FlagReadOnly  uint32 = 1 << 1
)

const (
	partitionMagic = 0x50AA
	md5Magic       = 0xEBEB
)

// ErrNotPartitionTable is returned when data does not start with a partition
// entry: an erased sector, an image, or another file.
var ErrNotPartitionTable = errors.New("not a partition table")

// Partition is one row of a partition table.
type Partition struct {
	Name    string // label, at most 16 bytes of UTF-8
	Type    uint8
	SubType uint8
	Offset  uint32
	Size    uint32
	Flags   uint32 // FlagEncrypted, FlagReadOnly; unknown bits are kept
}

// End is the first byte after the partition.
func (p Partition) End() uint64 { return uint64(p.Offset) + uint64(p.Size) }

// IsApp reports whether p is an app partition (factory, OTA, test, TEE).
func (p Partition) IsApp() bool { return p.Type == TypeApp }

// OTASlot returns the OTA slot index (subtype ota_N → N) and true for OTA app
// partitions.
func (p Partition) OTASlot() (int, bool) {
	if p.Type == TypeApp && p.SubType >= SubtypeOTA0 && p.SubType <= SubtypeOTA15 {
		return int(p.SubType - SubtypeOTA0), true
	}
	return -1, false
}

// TypeName is the type as ESP-IDF spells it, or a hex number.
func (p Partition) TypeName() string { return typeName(p.Type) }

// SubTypeName is the subtype as ESP-IDF spells it for this type, or a hex number.
func (p Partition) SubTypeName() string { return subtypeName(p.Type, p.SubType) }

// FlagNames lists the known flags that are set, in CSV order.
func (p Partition) FlagNames() []string {
	var out []string
	if p.Flags&FlagEncrypted != 0 {
		out = append(out, "encrypted")
	}
	if p.Flags&FlagReadOnly != 0 {
		out = append(out, "readonly")
	}
	return out
}

// PartitionTable is a parsed table.
type PartitionTable struct {
	Partitions []Partition
	// HasMD5 is true when the table carries the MD5 row (it was checked).
	HasMD5 bool
	// EndMarker is false when the data ended without an all-FF row (a bare
	// file of rows, like esptool's test table); on flash that is where the
	// erased bytes begin.
	EndMarker bool
	// Warnings are oddities that do not make the table unusable (unknown
	// flag bits, names that read like another type).
	Warnings []string
}

// Find returns the partition called name.
func (t *PartitionTable) Find(name string) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

// FindType returns the first partition with this type and subtype.
func (t *PartitionTable) FindType(typ, sub uint8) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Type == typ && p.SubType == sub {
			return p, true
		}
	}
	return Partition{}, false
}

// OTAData returns the otadata partition (data/ota).
func (t *PartitionTable) OTAData() (Partition, bool) { return t.FindType(TypeData, SubtypeDataOTA) }

// Factory returns the factory app partition.
func (t *PartitionTable) Factory() (Partition, bool) { return t.FindType(TypeApp, SubtypeFactory) }

// OTASlots returns the OTA app partitions indexed by slot; missing slots in
// a non-contiguous table are absent from the map. Count is what the
// bootloader calls app_count.
func (t *PartitionTable) OTASlots() map[int]Partition {
	out := map[int]Partition{}
	for _, p := range t.Partitions {
		if s, ok := p.OTASlot(); ok {
			if _, dup := out[s]; !dup {
				out[s] = p
			}
		}
	}
	return out
}

// OTAAppCount is the number of OTA app partitions, as the bootloader counts them.
func (t *PartitionTable) OTAAppCount() int {
	n := 0
	for _, p := range t.Partitions {
		if _, ok := p.OTASlot(); ok {
			n++
		}
	}
	return n
}

// TableError is a partition table that cannot be used, with the row at fault.
type TableError struct {
	Row    int    // 0-based row in a binary table, 1-based line in a CSV; -1 when the whole table is at fault
	Line   bool   // Row is a CSV line number
	Name   string // the partition at fault, when known
	Reason string
}

func (e *TableError) Error() string {
	var b strings.Builder
	b.WriteString("partition table: ")
	switch {
	case e.Row >= 0 && e.Line:
		fmt.Fprintf(&b, "line %d: ", e.Row)
	case e.Row >= 0:
		fmt.Fprintf(&b, "row %d: ", e.Row)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, "partition %q: ", e.Name)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Hint says what to do about a rejected table.
func (e *TableError) Hint() string {
	return "fix the partition table CSV and regenerate it (espdeck partitions convert IN.csv OUT.bin), then flash it at the table offset"
}

func tableErr(row int, name, format string, args ...any) *TableError {
	return &TableError{Row: row, Name: name, Reason: fmt.Sprintf(format, args...)}
}

// ParsePartitionTable parses a binary partition table: rows of 32 bytes,
// an optional MD5 row, then an all-FF end row (§4.4). Data may be a whole
// flash sector, the 0xC00 bytes gen_esp32part writes, or just the rows.
// Only the first TableMaxLength bytes are examined, as the bootloader does.
// It checks the structure (magic, MD5, end); call Verify for the layout rules.
func ParsePartitionTable(data []byte) (*PartitionTable, error) {
	if len(data) > TableMaxLength {
		data = data[:TableMaxLength]
	}
	if len(data) < 2 || binary.LittleEndian.Uint16(data) != partitionMagic {
		if len(data) >= 2 && data[0] == 0xFF && data[1] == 0xFF {
			return nil, fmt.Errorf("%w: the first row is erased (FF), no table was written there", ErrNotPartitionTable)
		}
		if len(data) >= 1 && data[0] == 0xE9 {
			return nil, fmt.Errorf("%w: the data starts with E9, which is an app or bootloader image", ErrNotPartitionTable)
		}
		return nil, fmt.Errorf("%w: the first row does not start with AA 50", ErrNotPartitionTable)
	}
	t := &PartitionTable{}
	h := md5.New()
	for row := 0; row*PartitionEntrySize < len(data); row++ {
		e := data[row*PartitionEntrySize:]
		if len(e) < PartitionEntrySize {
			return nil, tableErr(row, "", "the table is %d bytes, not a multiple of 32", len(data))
		}
		e = e[:PartitionEntrySize]
		// The end row: the bootloader looks at magic, type and subtype only
		// (gen_esp32part wants all 32 bytes FF; erased flash is both).
		if allFF(e[:4]) {
			t.EndMarker = true
			return t, nil
		}
		switch binary.LittleEndian.Uint16(e) {
		case md5Magic:
			if t.HasMD5 {
				return nil, tableErr(row, "", "a second MD5 row")
			}
			var sum [16]byte
			h.Sum(sum[:0])
			if !bytes.Equal(e[16:], sum[:]) {
				return nil, tableErr(row, "", "MD5 mismatch: the rows hash to %x but the table stores %x (corrupt or hand-edited table)", sum, e[16:])
			}
			t.HasMD5 = true
			continue
		case partitionMagic:
		default:
			return nil, tableErr(row, "", "row starts with %02X %02X, not AA 50 (partition), EB EB (MD5) or an FF end row", e[0], e[1])
		}
		if t.HasMD5 {
			t.Warnings = append(t.Warnings, fmt.Sprintf("row %d comes after the MD5 row, so the MD5 does not protect it", row))
		}
		h.Write(e)
		p := decodeEntry(e)
		if unknown := p.Flags &^ (FlagEncrypted | FlagReadOnly); unknown != 0 {
			t.Warnings = append(t.Warnings, fmt.Sprintf("partition %q has unknown flag bits 0x%08x", p.Name, unknown))
		}
		t.Partitions = append(t.Partitions, p)
	}
	if len(data) >= TableMaxLength {
		return nil, tableErr(-1, "", "no end row within %d rows", TableMaxLength/PartitionEntrySize)
	}
	return t, nil
}

func decodeEntry(e []byte) Partition {
	label := e[12:28]
	if i := bytes.IndexByte(label, 0); i >= 0 {
		label = label[:i]
	}
	return Partition{
		Type:    e[2],
		SubType: e[3],
		Offset:  binary.LittleEndian.Uint32(e[4:]),
		Size:    binary.LittleEndian.Uint32(e[8:]),
		Name:    strings.ToValidUTF8(string(label), "\uFFFD"),
		Flags:   binary.LittleEndian.Uint32(e[28:]),
	}
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}

// MarshalBinary encodes the table as gen_esp32part does: rows, the MD5 row,
// FF padding to TableMaxLength bytes. Labels longer than 16 bytes are cut
// (gen_esp32part does the same silently).
func (t *PartitionTable) MarshalBinary() ([]byte, error) {
	return t.Encode(true)
}

// Encode encodes the table, with or without the MD5 row.
func (t *PartitionTable) Encode(withMD5 bool) ([]byte, error) {
	out := make([]byte, 0, TableMaxLength)
	for _, p := range t.Partitions {
		var e [PartitionEntrySize]byte
		binary.LittleEndian.PutUint16(e[0:], partitionMagic)
		e[2], e[3] = p.Type, p.SubType
		binary.LittleEndian.PutUint32(e[4:], p.Offset)
		binary.LittleEndian.PutUint32(e[8:], p.Size)
		copy(e[12:28], p.Name)
		binary.LittleEndian.PutUint32(e[28:], p.Flags)
		out = append(out, e[:]...)
	}
	if withMD5 {
		sum := md5.Sum(out)
		out = append(out, 0xEB, 0xEB)
		out = append(out, bytes.Repeat([]byte{0xFF}, 14)...)
		out = append(out, sum[:]...)
	}
	if len(out) >= TableMaxLength {
		return nil, tableErr(-1, "", "%d partitions need %d bytes, more than the %d bytes a table may use", len(t.Partitions), len(out), TableMaxLength)
	}
	return append(out, bytes.Repeat([]byte{0xFF}, TableMaxLength-len(out))...), nil
}

// VerifyOptions are the facts the layout rules depend on.
type VerifyOptions struct {
	// TableOffset is where the table lives; partitions must start after its
	// sector. 0 means DefaultTableOffset.
	TableOffset uint32
	// FlashSize, when non-zero, must hold every partition.
	FlashSize uint32
	// SecureBootV1 requires app sizes aligned to 64 KB instead of 4 KB.
	SecureBootV1 bool
}

// Verify applies gen_esp32part's validation rules (§4.6): alignment,
// duplicate names, overlaps, placement after the table, otadata count and
// size, read-only rules, NVS minimum size, and the flash size when known.
// It returns the first problem as a *TableError.
func (t *PartitionTable) Verify(o VerifyOptions) error {
	tableOff := o.TableOffset
	if tableOff == 0 {
		tableOff = DefaultTableOffset
	}
	names := map[string]bool{}
	var otadata, teeOTA int
	for i, p := range t.Partitions {
		if err := verifyPartition(i, p, o); err != nil {
			return err
		}
		if names[p.Name] {
			return tableErr(i, p.Name, "partition names must be unique; %q appears twice", p.Name)
		}
		names[p.Name] = true
		if p.Type == TypeData && p.SubType == SubtypeDataOTA {
			otadata++
			if otadata > 1 {
				return tableErr(i, p.Name, "a second otadata (data/ota) partition; only one is allowed")
			}
			if p.Size != OTADataSize {
				return tableErr(i, p.Name, "otadata partition must be 0x2000 bytes, not 0x%x", p.Size)
			}
		}
		if p.Type == TypeData && p.SubType == SubtypeDataTeeOTA {
			teeOTA++
			if teeOTA > 1 {
				return tableErr(i, p.Name, "a second TEE otadata (data/tee_ota) partition; only one is allowed")
			}
			if p.Size != OTADataSize {
				return tableErr(i, p.Name, "TEE otadata partition must be 0x2000 bytes, not 0x%x", p.Size)
			}
		}
		if p.End() > 1<<32 {
			return tableErr(i, p.Name, "ends at 0x%x, beyond the 4 GB address space", p.End())
		}
		if o.FlashSize != 0 && p.End() > uint64(o.FlashSize) {
			return tableErr(i, p.Name, "ends at 0x%x but the flash is only 0x%x bytes (%s)", p.End(), o.FlashSize, SizeText(o.FlashSize))
		}
	}
	// Overlaps, in offset order as gen_esp32part checks them.
	idx := make([]int, len(t.Partitions))
	for i := range idx {
		idx[i] = i
	}
	sortStable(idx, func(a, b int) bool { return t.Partitions[a].Offset < t.Partitions[b].Offset })
	var last *Partition
	for _, i := range idx {
		p := t.Partitions[i]
		primary := isPrimaryBootloaderOrTable(p)
		if !primary && uint64(p.Offset) < uint64(tableOff)+TableSectorSize {
			return tableErr(i, p.Name, "starts at 0x%x, below 0x%x where the partition table sector ends", p.Offset, uint64(tableOff)+TableSectorSize)
		}
		if last != nil && uint64(p.Offset) < last.End() {
			return tableErr(i, p.Name, "at 0x%x overlaps %q (0x%x-0x%x)", p.Offset, last.Name, last.Offset, last.End()-1)
		}
		pp := t.Partitions[i]
		last = &pp
	}
	return nil
}

func isPrimaryBootloaderOrTable(p Partition) bool {
	return (p.Type == TypeBootloader || p.Type == TypePartitionTable) && p.SubType == subtypePrimary
}

func verifyPartition(i int, p Partition, o VerifyOptions) error {
	align := offsetAlignment(p.Type)
	if p.Offset%align != 0 {
		return tableErr(i, p.Name, "offset 0x%x is not aligned to 0x%x (%s partitions start on %s boundaries)", p.Offset, align, typeName(p.Type), SizeText(align))
	}
	if p.Type == TypeApp {
		sa := uint32(0x1000)
		if o.SecureBootV1 {
			sa = 0x10000
		}
		if p.Size%sa != 0 {
			return tableErr(i, p.Name, "size 0x%x is not a multiple of 0x%x", p.Size, sa)
		}
	}
	if p.Size == 0 {
		return tableErr(i, p.Name, "size is 0")
	}
	if p.Type == TypeData && (p.SubType == SubtypeDataOTA || p.SubType == SubtypeDataCoredmp) && p.Flags&FlagReadOnly != 0 {
		return tableErr(i, p.Name, "data/%s partitions are always read-write and cannot be readonly", subtypeName(p.Type, p.SubType))
	}
	if p.Type == TypeData && p.SubType == SubtypeDataNVS && p.Size < 0x3000 && p.Flags&FlagReadOnly == 0 {
		return tableErr(i, p.Name, "an NVS partition of 0x%x bytes must be flagged readonly (read/write NVS needs at least 0x3000)", p.Size)
	}
	return nil
}

// offsetAlignment is gen_esp32part's offset alignment per type.
func offsetAlignment(typ uint8) uint32 {
	if typ == TypeApp {
		return 0x10000
	}
	return 0x1000
}

func sortStable(idx []int, less func(a, b int) bool) {
	// insertion sort: tables have at most 95 rows
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && less(idx[j], idx[j-1]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
}

// nameWarnings are gen_esp32part's "mistake in partition table?" warnings.
func nameWarnings(p Partition) []string {
	var out []string
	if v, ok := typeByName[p.Name]; ok && v != p.Type {
		out = append(out, fmt.Sprintf("partition %q is named like the type %q but has type %s; mistake in the table?", p.Name, p.Name, typeName(p.Type)))
	}
	for _, subs := range subtypeNames {
		if _, ok := subs[p.Name]; !ok {
			continue
		}
		if own, ok := subtypeNames[p.Type][p.Name]; !ok || own != p.SubType {
			out = append(out, fmt.Sprintf("partition %q is named like a subtype but has type %s subtype %s; mistake in the table?", p.Name, typeName(p.Type), subtypeName(p.Type, p.SubType)))
		}
		break
	}
	return out
}

var typeByName = map[string]uint8{"app": TypeApp, "data": TypeData, "bootloader": TypeBootloader, "partition_table": TypePartitionTable}

// subtypeNames maps type → subtype name → value (constant data).
var subtypeNames = map[uint8]map[string]uint8{
	TypeBootloader:     {"primary": 0x00, "ota": 0x01, "recovery": 0x02},
	TypePartitionTable: {"primary": 0x00, "ota": 0x01},
	TypeApp: {"factory": 0x00, "test": 0x20, "tee_0": 0x30, "tee_1": 0x31,
		"ota_0": 0x10, "ota_1": 0x11, "ota_2": 0x12, "ota_3": 0x13, "ota_4": 0x14, "ota_5": 0x15, "ota_6": 0x16, "ota_7": 0x17,
		"ota_8": 0x18, "ota_9": 0x19, "ota_10": 0x1A, "ota_11": 0x1B, "ota_12": 0x1C, "ota_13": 0x1D, "ota_14": 0x1E, "ota_15": 0x1F},
	TypeData: {"ota": 0x00, "phy": 0x01, "nvs": 0x02, "coredump": 0x03, "nvs_keys": 0x04, "efuse": 0x05, "undefined": 0x06,
		"esphttpd": 0x80, "fat": 0x81, "spiffs": 0x82, "littlefs": 0x83, "tee_ota": 0x90},
}

func typeName(t uint8) string {
	for n, v := range typeByName {
		if v == t {
			return n
		}
	}
	return fmt.Sprintf("0x%02x", t)
}

func subtypeName(t, s uint8) string {
	for n, v := range subtypeNames[t] {
		if v == s {
			return n
		}
	}
	return fmt.Sprintf("0x%02x", s)
}

// SizeText renders a size as gen_esp32part's CSV does: NM or NK when exact, else hex.
func SizeText(n uint32) string {
	switch {
	case n != 0 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n != 0 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprintf("0x%x", n)
}
