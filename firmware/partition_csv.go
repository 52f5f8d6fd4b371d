package firmware

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// CSVOptions are the facts gen_esp32part takes from its command line
// rather than from the CSV (§4.6).
type CSVOptions struct {
	// TableOffset is where the table will be flashed; automatic offsets start
	// one sector after it. 0 means DefaultTableOffset.
	TableOffset uint32
	// BootloaderOffset is the chip's primary bootloader offset (§2); needed
	// only by rows of type bootloader. Nil: such rows are an error.
	BootloaderOffset *uint32
	// RecoveryBootloaderOffset is needed only by bootloader/recovery rows.
	RecoveryBootloaderOffset *uint32
	// LookupEnv resolves $VAR and ${VAR} in the CSV; nil resolves nothing,
	// so any variable is an error.
	LookupEnv func(string) (string, bool)
}

// ParsePartitionCSV parses an ESP-IDF partition table CSV the way
// gen_esp32part does: names or numbers for type and subtype, K/M suffixes,
// empty offsets filled in with the type's alignment, negative sizes meaning
// "up to this address". Errors are *TableError with the line number. The
// result is not yet checked against the layout rules: call Verify.
func ParsePartitionCSV(data []byte, o CSVOptions) (*PartitionTable, error) {
	text, err := decodeCSVText(data)
	if err != nil {
		return nil, err
	}
	tableOff := o.TableOffset
	if tableOff == 0 {
		tableOff = DefaultTableOffset
	}
	type row struct {
		p         Partition
		line      int
		hasOffset bool
		size      int64 // negative: "up to this address"
	}
	var rows []row
	t := &PartitionTable{HasMD5: true, EndMarker: true}
	for i, raw := range strings.Split(text, "\n") {
		lineNo := i + 1
		line, err := expandVars(raw, o.LookupEnv)
		if err != nil {
			return nil, &TableError{Row: lineNo, Line: true, Reason: err.Error()}
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line+",,,,", ",")
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		fail := func(format string, args ...any) error {
			return &TableError{Row: lineNo, Line: true, Name: fields[0], Reason: fmt.Sprintf(format, args...)}
		}
		r := row{line: lineNo}
		r.p.Name = fields[0]
		if len(r.p.Name) > 16 {
			t.Warnings = append(t.Warnings, fmt.Sprintf("line %d: name %q is longer than 16 bytes and is cut to %q", lineNo, r.p.Name, truncateLabel(r.p.Name)))
			r.p.Name = truncateLabel(r.p.Name)
		}
		if fields[1] == "" {
			return nil, fail("the type field is empty (use app, data, bootloader, partition_table or a number)")
		}
		typ, err := parseCSVInt(fields[1], typeByName)
		if err != nil {
			return nil, fail("type: %v", err)
		}
		if typ < 0 || typ > 0xFE {
			return nil, fail("type %s is out of range (0x00-0xFE)", fields[1])
		}
		r.p.Type = uint8(typ)
		if fields[2] == "" {
			if r.p.Type == TypeApp {
				return nil, fail("an app partition needs a subtype (factory, ota_0…ota_15, test)")
			}
			r.p.SubType = 0x06 // data "undefined", as gen_esp32part does for any type
		} else {
			sub, err := parseCSVInt(fields[2], subtypeNames[r.p.Type])
			if err != nil {
				return nil, fail("subtype: %v", err)
			}
			if sub < 0 || sub > 0xFE {
				return nil, fail("subtype %s is out of range (0x00-0xFE)", fields[2])
			}
			r.p.SubType = uint8(sub)
		}
		// Offset: fixed by options for the primary bootloader, the recovery
		// bootloader and the primary table; otherwise from the CSV or automatic.
		switch {
		case r.p.Type == TypeBootloader && r.p.SubType == subtypePrimary:
			if o.BootloaderOffset == nil {
				return nil, fail("a primary bootloader row needs the chip's bootloader offset (give the chip or --bootloader-offset)")
			}
			r.p.Offset, r.hasOffset = *o.BootloaderOffset, true
		case r.p.Type == TypeBootloader && r.p.SubType == subtypeRecovery:
			if o.RecoveryBootloaderOffset == nil {
				return nil, fail("a recovery bootloader row needs the recovery bootloader offset")
			}
			r.p.Offset, r.hasOffset = *o.RecoveryBootloaderOffset, true
		case r.p.Type == TypePartitionTable && r.p.SubType == subtypePrimary:
			r.p.Offset, r.hasOffset = tableOff, true
		case fields[3] != "":
			off, err := parseCSVInt(fields[3], nil)
			if err != nil {
				return nil, fail("offset: %v", err)
			}
			if off < 0 || off > 0xFFFFFFFF {
				return nil, fail("offset %s is out of range", fields[3])
			}
			r.p.Offset, r.hasOffset = uint32(off), true
		}
		switch {
		case r.p.Type == TypeBootloader:
			if o.BootloaderOffset == nil {
				return nil, fail("a bootloader row's size is the gap up to the table, which needs the chip's bootloader offset")
			}
			if tableOff <= *o.BootloaderOffset {
				return nil, fail("the table offset 0x%x is not above the bootloader offset 0x%x", tableOff, *o.BootloaderOffset)
			}
			r.size = int64(tableOff - *o.BootloaderOffset)
		case r.p.Type == TypePartitionTable:
			r.size = TableSectorSize
		case fields[4] == "":
			return nil, fail("the size field is empty")
		default:
			sz, err := parseCSVInt(fields[4], nil)
			if err != nil {
				return nil, fail("size: %v", err)
			}
			if sz == 0 || sz > 0xFFFFFFFF || sz < -0xFFFFFFFF {
				return nil, fail("size %s is out of range", fields[4])
			}
			r.size = sz
		}
		for _, f := range strings.Split(fields[5], ":") {
			switch f {
			case "":
			case "encrypted":
				r.p.Flags |= FlagEncrypted
			case "readonly":
				r.p.Flags |= FlagReadOnly
			default:
				return nil, fail("unknown flag %q (known: encrypted, readonly; separate several with ':')", f)
			}
		}
		rows = append(rows, r)
	}
	// Fill in missing offsets and resolve negative sizes, in file order.
	lastEnd := uint64(tableOff) + TableSectorSize
	for i := range rows {
		r := &rows[i]
		fail := func(format string, args ...any) error {
			return &TableError{Row: r.line, Line: true, Name: r.p.Name, Reason: fmt.Sprintf(format, args...)}
		}
		if isPrimaryBootloaderOrTable(r.p) {
			r.p.Size = uint32(r.size)
			continue
		}
		if r.hasOffset && uint64(r.p.Offset) < lastEnd {
			if i == 0 {
				return nil, fail("partitions overlap: offset 0x%x is inside the partition table sector at 0x%x; use 0x%x or higher", r.p.Offset, tableOff, lastEnd)
			}
			return nil, fail("partitions overlap: offset 0x%x but the previous partition ends at 0x%x", r.p.Offset, lastEnd)
		}
		if !r.hasOffset {
			align := uint64(offsetAlignment(r.p.Type))
			lastEnd = (lastEnd + align - 1) / align * align
			if lastEnd > 0xFFFFFFFF {
				return nil, fail("no room: the automatic offset 0x%x is beyond 4 GB", lastEnd)
			}
			r.p.Offset = uint32(lastEnd)
		}
		size := r.size
		if size < 0 {
			size = -size - int64(r.p.Offset)
			if size <= 0 {
				return nil, fail("size %d means \"up to 0x%x\", but the partition starts at 0x%x", r.size, -r.size, r.p.Offset)
			}
		}
		if uint64(r.p.Offset)+uint64(size) > 1<<32 {
			return nil, fail("ends beyond 4 GB")
		}
		r.p.Size = uint32(size)
		lastEnd = uint64(r.p.Offset) + uint64(r.p.Size)
	}
	for _, r := range rows {
		t.Partitions = append(t.Partitions, r.p)
		t.Warnings = append(t.Warnings, nameWarnings(r.p)...)
	}
	if len(t.Partitions) == 0 {
		return nil, &TableError{Row: -1, Reason: "the CSV has no partition rows"}
	}
	return t, nil
}

// truncateLabel cuts s to 16 bytes without splitting a UTF-8 sequence.
func truncateLabel(s string) string {
	if len(s) <= 16 {
		return s
	}
	b := s[:16]
	for len(b) > 0 && !utf8.ValidString(b) {
		b = b[:len(b)-1]
	}
	return b
}

// decodeCSVText turns the file into text: UTF-8 (BOM optional) or UTF-16/32
// with a BOM, as gen_esp32part accepts.
func decodeCSVText(b []byte) (string, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}):
		b = b[3:]
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(b, []byte{0, 0, 0xFE, 0xFF}):
		le := b[0] == 0xFF
		b = b[4:]
		if len(b)%4 != 0 {
			return "", &TableError{Row: -1, Reason: "UTF-32 text with a length that is not a multiple of 4"}
		}
		var sb strings.Builder
		for i := 0; i < len(b); i += 4 {
			var r uint32
			if le {
				r = uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24
			} else {
				r = uint32(b[i+3]) | uint32(b[i+2])<<8 | uint32(b[i+1])<<16 | uint32(b[i])<<24
			}
			sb.WriteRune(rune(r))
		}
		return sb.String(), nil
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}), bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		le := b[0] == 0xFF
		b = b[2:]
		if len(b)%2 != 0 {
			return "", &TableError{Row: -1, Reason: "UTF-16 text with an odd length"}
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			if le {
				u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			} else {
				u[i] = uint16(b[2*i+1]) | uint16(b[2*i])<<8
			}
		}
		return string(utf16.Decode(u)), nil
	}
	if !utf8.Valid(b) {
		return "", &TableError{Row: -1, Reason: "the CSV is not UTF-8 text (is it a binary table that does not start with AA 50?)"}
	}
	return strings.ReplaceAll(string(b), "\r", ""), nil
}

// expandVars replaces $VAR and ${VAR}; an unknown variable is an error.
// A backslash before $ keeps it literal.
func expandVars(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || (i > 0 && s[i-1] == '\\') {
			b.WriteByte(c)
			continue
		}
		j, braced := i+1, false
		if j < len(s) && s[j] == '{' {
			braced, j = true, j+1
		}
		k := j
		for k < len(s) && (s[k] == '_' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z' || k > j && s[k] >= '0' && s[k] <= '9') {
			k++
		}
		if k == j || braced && (k >= len(s) || s[k] != '}') {
			b.WriteByte(c)
			continue
		}
		name := s[j:k]
		var val string
		ok := false
		if lookup != nil {
			val, ok = lookup(name)
		}
		if !ok {
			return "", fmt.Errorf("unknown variable $%s", name)
		}
		b.WriteString(val)
		if braced {
			k++
		}
		i = k - 1
	}
	return b.String(), nil
}

// parseCSVInt is gen_esp32part's parse_int: a K/M suffix (1024-based), then
// Python's int(x, 0) (0x/0o/0b prefixes, underscores, sign), else a keyword.
func parseCSVInt(v string, keywords map[string]uint8) (int64, error) {
	lower := strings.ToLower(v)
	if strings.HasSuffix(lower, "k") || strings.HasSuffix(lower, "m") {
		mult := int64(1 << 10)
		if strings.HasSuffix(lower, "m") {
			mult = 1 << 20
		}
		n, err := parseCSVInt(v[:len(v)-1], keywords)
		if err != nil {
			return 0, err
		}
		if n > (1<<40) || n < -(1<<40) {
			return 0, fmt.Errorf("%q is too large", v)
		}
		return n * mult, nil
	}
	if n, ok := pythonInt(v); ok {
		return n, nil
	}
	if len(keywords) == 0 {
		return 0, fmt.Errorf("%q is not a number", v)
	}
	if n, ok := keywords[lower]; ok {
		return int64(n), nil
	}
	names := make([]string, 0, len(keywords))
	for k := range keywords {
		names = append(names, k)
	}
	sortStrings(names)
	return 0, fmt.Errorf("%q is neither a number nor one of %s", v, strings.Join(names, ", "))
}

// pythonInt parses like Python's int(s, 0): no leading zeros on decimals.
func pythonInt(s string) (int64, bool) {
	t := strings.TrimLeft(s, "+-")
	if len(s)-len(t) > 1 || t == "" {
		return 0, false
	}
	if len(t) > 1 && t[0] == '0' {
		switch t[1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
		default:
			if strings.Trim(t, "0_") != "" {
				return 0, false
			}
		}
	}
	n, err := strconv.ParseInt(s, 0, 64)
	return n, err == nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// CSV renders the table as gen_esp32part's binary→CSV does: names for known
// types and subtypes, offsets in hex, sizes as NK/NM when exact.
func (t *PartitionTable) CSV() string {
	var b strings.Builder
	b.WriteString("# ESP-IDF Partition Table\n# Name, Type, SubType, Offset, Size, Flags\n")
	for _, p := range t.Partitions {
		fmt.Fprintf(&b, "%s,%s,%s,0x%x,%s,%s\n", p.Name, typeName(p.Type), subtypeName(p.Type, p.SubType),
			p.Offset, SizeText(p.Size), strings.Join(p.FlagNames(), ":"))
	}
	return b.String()
}

// Format renders the table for people: one aligned row per partition.
func (t *PartitionTable) Format() string {
	rows := [][]string{{"Name", "Type", "SubType", "Offset", "Size", "Flags"}}
	for _, p := range t.Partitions {
		rows = append(rows, []string{p.Name, typeName(p.Type), subtypeName(p.Type, p.SubType),
			fmt.Sprintf("0x%x", p.Offset), SizeText(p.Size), strings.Join(p.FlagNames(), ":")})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			line.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+2))
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}
