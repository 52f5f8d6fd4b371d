package ops

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/firmware"
)

// FlashIO is the flash access the partition use cases need. The serial
// ROM client provides it through SerialFlashIO; tests use an in-memory
// flash with NOR semantics.
type FlashIO interface {
	// ReadFlash returns size bytes from addr.
	ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error)
	// WriteFlash erases the sectors under [addr, addr+len(data)), writes
	// data and verifies it.
	WriteFlash(ctx context.Context, addr uint32, data []byte) error
	// EraseRegion erases [addr, addr+size); both are sector aligned.
	EraseRegion(ctx context.Context, addr, size uint32) error
}

// FlashSizer is implemented by a FlashIO that knows its flash size; the
// table is then checked for entries past the end of the flash.
type FlashSizer interface {
	FlashSize() uint32
}

// Sentinels callers branch on with errors.Is. Each answers Code() and
// Hint(), so a wrapped one classifies the whole error.
var (
	// ErrNoOTAData: the table has no otadata partition, so there is no boot
	// slot to switch (the board always boots its factory app).
	ErrNoOTAData error = newError(CodeNoOTAData, "the partition table has no otadata partition",
		"espdeck partitions show --port … shows the table; a board without otadata always boots its factory app")
	// ErrUnknownPartition: no partition of that name, or not the kind asked for.
	ErrUnknownPartition error = newError(CodeUnknownPart, "no such partition", "espdeck partitions show --port … lists the partitions")
	// ErrInvalidSlotImage: the target slot does not hold a bootable app.
	ErrInvalidSlotImage error = newError(CodeInvalidSlot, "the slot does not hold a valid app image",
		"write a working app to the slot first, or choose another one")
	// ErrDeclined: the confirmation was answered no.
	ErrDeclined error = newError(CodeNotConfirmed, "nothing was written: the change was not confirmed",
		"run it on a terminal to answer the question, or pass --yes")
	// ErrReadBack: what was read back after a write differs from what was
	// written, or the boot decision did not change as planned.
	ErrReadBack error = newError(CodeVerify, "otadata read back differs from what was written",
		"the flash did not keep what was written; run the command again, and check the board's power and wiring")
	// ErrNothingToMark: otadata selects no OTA slot, so there is no entry to mark.
	ErrNothingToMark error = newError(CodeNoOTAData, "otadata has no entry for the running slot",
		"espdeck partitions show --port … shows what otadata holds")
	// ErrSlotWriteRefused: a slot command's write was refused because the
	// partition table cannot be trusted or the write would leave otadata.
	ErrSlotWriteRefused error = newError(CodeSlotWriteRefuse, "slot write refused",
		"fix the partition table (espdeck partitions show --port … names the problem) and flash it at the table offset; nothing was written")
	// ErrNoFreeSlot: no OTA slot is free for a new app: every one runs or
	// boots next.
	ErrNoFreeSlot error = newError(CodeNoFreeSlot, "no OTA slot is free for the new app",
		"give a write address explicitly (espdeck serial write ADDR FILE), or switch the boot slot first (espdeck slot switch)")
)

// SlotImageError is a target slot whose image cannot boot.
type SlotImageError struct {
	Slot    string // partition name
	Problem string // what is wrong
}

func (e *SlotImageError) Error() string {
	return fmt.Sprintf("%s does not hold a valid app image: %s", e.Slot, e.Problem)
}

// Is makes errors.Is(err, ErrInvalidSlotImage) work.
func (e *SlotImageError) Is(target error) bool { return target == ErrInvalidSlotImage }

// Code is the stable machine word.
func (e *SlotImageError) Code() string { return CodeInvalidSlot }

// Hint is the next step.
func (e *SlotImageError) Hint() string {
	return "write a working app to " + e.Slot + " first (espdeck serial write), or switch to another slot; --force switches anyway"
}

// SlotImage is what was found at the start of an app partition.
type SlotImage struct {
	Empty   bool   `json:"empty"`             // the slot is erased (FF)
	Valid   bool   `json:"valid"`             // a bootable app for this chip, as far as it was checked
	Problem string `json:"problem,omitempty"` // why it is not valid
	// Checked is "header" (header, segment table, size and chip) or "full"
	// (every byte read: checksum and SHA-256 too).
	Checked       string `json:"checked"`
	Chip          string `json:"chip,omitempty"`
	Project       string `json:"project,omitempty"`
	Version       string `json:"version,omitempty"`
	Date          string `json:"date,omitempty"`
	Time          string `json:"time,omitempty"`
	IDFVersion    string `json:"idf_version,omitempty"`
	SecureVersion uint32 `json:"secure_version"`
	Length        int    `json:"length,omitempty"` // image length in bytes
	Summary       string `json:"summary"`          // one line for lists
}

// PartitionRow is one partition with what was found in it.
type PartitionRow struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	SubType   string   `json:"subtype"`
	TypeID    uint8    `json:"type_id"`
	SubTypeID uint8    `json:"subtype_id"`
	Offset    uint32   `json:"offset"`
	Size      uint32   `json:"size"`
	Flags     []string `json:"flags,omitempty"`
	// OTASlot is the OTA slot index for ota_N partitions, else -1.
	OTASlot int `json:"ota_slot"`
	// App is the image found in an app partition; nil for data partitions.
	App *SlotImage `json:"app,omitempty"`
	// OTAState is the state otadata records for this OTA slot ("valid",
	// "pending verify", …); "" when no copy selects it.
	OTAState string `json:"ota_state,omitempty"`
	// Running: otadata says this app booted last. BootsNext: the bootloader
	// starts this app at the next reset.
	Running   bool `json:"running"`
	BootsNext bool `json:"boots_next"`
}

// OTACopy is one otadata copy as read from the board.
type OTACopy struct {
	Index  int    `json:"index"`
	Offset uint32 `json:"offset"` // flash address of the copy
	Empty  bool   `json:"empty"`
	Seq    uint32 `json:"seq"`
	State  string `json:"state"`
	// StateValue is the raw ota_state.
	StateValue firmware.OTAState `json:"state_value"`
	CRC        uint32            `json:"crc"`
	CRCOK      bool              `json:"crc_ok"`
	// Valid is the bootloader's test: written, CRC ok, not invalid/aborted.
	Valid bool `json:"valid"`
	// Slot is the OTA slot the sequence selects (-1 when empty), and
	// Partition its name when the table has it.
	Slot      int    `json:"slot"`
	Partition string `json:"partition,omitempty"`
}

// PartitionState is a board's partitions and boot decision, everything the
// CLI and the TUI's partition view show.
type PartitionState struct {
	TableOffset uint32                   `json:"table_offset"`
	Table       *firmware.PartitionTable `json:"-"`
	Rows        []PartitionRow           `json:"partitions"`
	Warnings    []string                 `json:"warnings,omitempty"`
	// TableProblem says why the table fails validation (overlap, otadata
	// size, alignment, entries past the flash); "" when it passes. Every
	// slot write is refused while it is set.
	TableProblem string `json:"table_problem,omitempty"`
	tableErr     error
	// OTAData is nil when the table has no otadata partition.
	OTAData *OTADataState `json:"otadata,omitempty"`
	// Rollback is true when the board's firmware uses app rollback, as
	// inferred from the states otadata holds (only rollback builds write
	// NEW, PENDING_VERIFY, INVALID or ABORTED).
	Rollback bool `json:"rollback"`
	// Running names the app otadata says booted last ("" unknown) and why.
	// It is otadata's view: a board whose chosen app failed to load and
	// fell back to another is not visible over the ROM loader.
	Running    string `json:"running,omitempty"`
	RunningWhy string `json:"running_why,omitempty"`
	// BootsNext names the app the bootloader starts at the next reset ("" none).
	BootsNext    string `json:"boots_next,omitempty"`
	BootsNextWhy string `json:"boots_next_why"`
	// Decision is the bootloader's choice in detail.
	Decision firmware.BootDecision `json:"-"`
}

// OTADataState is the otadata partition as read.
type OTADataState struct {
	Name    string              `json:"name"`
	Offset  uint32              `json:"offset"`
	Size    uint32              `json:"size"`
	Copies  [2]OTACopy          `json:"copies"`
	Raw     firmware.OTAData    `json:"-"`
	Summary string              `json:"summary"` // one line: "seq 3 in copy 0 (ok), copy 1 empty"
	Layout  firmware.BootLayout `json:"-"`
}

// Row returns the row called name.
func (s *PartitionState) Row(name string) (PartitionRow, bool) {
	for _, r := range s.Rows {
		if r.Name == name {
			return r, true
		}
	}
	return PartitionRow{}, false
}

// ReadOptions tune ReadPartitionState.
type ReadOptions struct {
	// Chip is the board's chip; images for another chip are flagged.
	// firmware.ChipUnknown skips that check.
	Chip firmware.Chip
	// FullCheck reads every app image completely to check its checksum
	// and SHA-256 (slow over the ROM loader: about a second per 100 KB).
	// Without it only headers, segment tables and sizes are checked.
	FullCheck bool
	// FullCheckSlots lists partitions to check fully even without FullCheck.
	FullCheckSlots []string
}

// ReadPartitionState reads the partition table at tableOffset (0: 0x8000),
// both otadata copies and the start of every app partition, and works out
// which app boots next and why. It only reads.
func ReadPartitionState(ctx context.Context, io FlashIO, tableOffset uint32, o ReadOptions) (*PartitionState, error) {
	if tableOffset == 0 {
		tableOffset = firmware.DefaultTableOffset
	}
	raw, err := io.ReadFlash(ctx, tableOffset, firmware.TableMaxLength)
	if err != nil {
		return nil, fmt.Errorf("read the partition table at 0x%x: %w", tableOffset, err)
	}
	tab, err := firmware.ParsePartitionTable(raw)
	if err != nil {
		return nil, fmt.Errorf("partition table at 0x%x: %w", tableOffset, err)
	}
	st := &PartitionState{TableOffset: tableOffset, Table: tab, Warnings: append([]string(nil), tab.Warnings...)}
	vo := firmware.VerifyOptions{TableOffset: tableOffset}
	if fs, ok := io.(FlashSizer); ok {
		vo.FlashSize = fs.FlashSize()
	}
	if err := tab.Verify(vo); err != nil {
		st.tableErr, st.TableProblem = err, err.Error()
		st.Warnings = append(st.Warnings, err.Error())
	}
	if n := tab.OTAAppCount(); n > 0 {
		slots := tab.OTASlots()
		for k := 0; k < n; k++ {
			if _, ok := slots[k]; !ok {
				st.Warnings = append(st.Warnings, fmt.Sprintf("the OTA slots are not numbered ota_0…ota_%d without gaps: the bootloader counts %d slots and maps sequence numbers to ota_0…ota_%d, so a missing ota_%d can be selected and higher ones never are", n-1, n, n-1, k))
				break
			}
		}
	}
	for _, p := range tab.Partitions {
		row := PartitionRow{Name: p.Name, Type: p.TypeName(), SubType: p.SubTypeName(), TypeID: p.Type, SubTypeID: p.SubType,
			Offset: p.Offset, Size: p.Size, Flags: p.FlagNames(), OTASlot: -1}
		if s, ok := p.OTASlot(); ok {
			row.OTASlot = s
		}
		if p.IsApp() {
			full := o.FullCheck
			for _, n := range o.FullCheckSlots {
				full = full || n == p.Name
			}
			img, err := readSlotImage(ctx, io, p, o.Chip, full)
			if err != nil {
				return nil, err
			}
			row.App = &img
		}
		st.Rows = append(st.Rows, row)
	}
	if otaP, ok := tab.OTAData(); ok {
		b0, err := io.ReadFlash(ctx, otaP.Offset, firmware.OTAEntrySize)
		if err != nil {
			return nil, fmt.Errorf("read otadata copy 0 at 0x%x: %w", otaP.Offset, err)
		}
		b1, err := io.ReadFlash(ctx, otaP.Offset+firmware.OTASectorSize, firmware.OTAEntrySize)
		if err != nil {
			return nil, fmt.Errorf("read otadata copy 1 at 0x%x: %w", otaP.Offset+firmware.OTASectorSize, err)
		}
		var d firmware.OTAData
		d.Copies[0], _ = firmware.DecodeOTAEntry(b0)
		d.Copies[1], _ = firmware.DecodeOTAEntry(b1)
		st.OTAData = &OTADataState{Name: otaP.Name, Offset: otaP.Offset, Size: otaP.Size}
		st.applyOTAData(d)
	} else {
		st.applyNoOTAData()
	}
	return st, nil
}

// layout is what the bootloader knows from the table.
func (s *PartitionState) layout() firmware.BootLayout {
	_, hasFactory := s.Table.Factory()
	return firmware.BootLayout{AppCount: s.Table.OTAAppCount(), HasFactory: hasFactory}
}

// slotName names OTA slot k, or says it is missing.
func (s *PartitionState) slotName(k int) (string, bool) {
	if p, ok := s.Table.OTASlots()[k]; ok {
		return p.Name, true
	}
	return fmt.Sprintf("ota_%d (not in the table)", k), false
}

// decisionTarget names the partition a decision starts.
func (s *PartitionState) decisionTarget(d firmware.BootDecision) string {
	switch d.Kind {
	case firmware.BootFactory:
		p, _ := s.Table.Factory()
		return p.Name
	case firmware.BootOTA:
		n, _ := s.slotName(d.Slot)
		return n
	}
	return ""
}

func (s *PartitionState) applyNoOTAData() {
	l := s.layout()
	for i := range s.Rows {
		s.Rows[i].Running, s.Rows[i].BootsNext, s.Rows[i].OTAState = false, false, ""
	}
	if l.HasFactory {
		p, _ := s.Table.Factory()
		s.BootsNext, s.Running = p.Name, p.Name
		s.BootsNextWhy = "the table has no otadata partition: the bootloader always starts the factory app"
		s.RunningWhy = s.BootsNextWhy
	} else if slots := s.Table.OTASlots(); len(slots) > 0 {
		s.BootsNext = slots[0].Name
		s.BootsNextWhy = "the table has no otadata partition and no factory app: the bootloader starts ota_0"
	} else {
		s.BootsNextWhy = "the table has no app partition: nothing to boot"
	}
	s.Decision = firmware.BootDecision{Kind: firmware.BootFactory, Slot: -1, Copy: -1, Reason: s.BootsNextWhy}
	s.markRows()
}

// inferRollback: only rollback-enabled firmware writes these states.
func inferRollback(d firmware.OTAData) bool {
	for _, c := range d.Copies {
		if c.Empty() || !c.CRCOK() {
			continue
		}
		switch c.State {
		case firmware.OTAStateNew, firmware.OTAStatePendingVerify, firmware.OTAStateInvalid, firmware.OTAStateAborted:
			return true
		}
	}
	return false
}

// applyOTAData recomputes everything that depends on otadata.
func (s *PartitionState) applyOTAData(d firmware.OTAData) {
	l := s.layout()
	od := s.OTAData
	od.Raw, od.Layout = d, l
	for i, c := range d.Copies {
		oc := OTACopy{Index: i, Offset: od.Offset + uint32(i)*firmware.OTASectorSize, Empty: c.Empty(), Seq: c.Seq,
			State: c.State.String(), StateValue: c.State, CRC: c.CRC, CRCOK: c.CRCOK(), Valid: c.Valid(), Slot: -1}
		if !c.Empty() && l.AppCount > 0 {
			oc.Slot = c.Slot(l.AppCount)
			oc.Partition, _ = s.slotName(oc.Slot)
		}
		od.Copies[i] = oc
	}
	od.Summary = otaSummary(od.Copies)
	s.Rollback = inferRollback(d)
	s.Decision = firmware.SelectBoot(d, l, firmware.BootOptions{Rollback: s.Rollback})
	s.BootsNext = s.decisionTarget(s.Decision)
	s.BootsNextWhy = s.Decision.Reason
	if s.Decision.Kind == firmware.BootOTA {
		if _, ok := s.slotName(s.Decision.Slot); !ok {
			s.BootsNextWhy += fmt.Sprintf("; the table has no ota_%d, so the bootloader falls back to another app", s.Decision.Slot)
		}
	}
	// What booted last: a NEW copy has not booted yet under rollback; a
	// PENDING_VERIFY copy is the app that booted and has not confirmed.
	last := d
	fresh := -1 // a NEW copy, left out of "what booted last"
	if s.Rollback {
		for i := range last.Copies {
			if last.Copies[i].State == firmware.OTAStateNew && !last.Copies[i].Empty() {
				last.Copies[i].State = firmware.OTAStateInvalid
				fresh = i
			}
		}
	}
	run := firmware.SelectBoot(last, l, firmware.BootOptions{})
	s.Running, s.RunningWhy = s.decisionTarget(run), run.Reason
	if fresh >= 0 && run.Copy >= 0 {
		// run.Reason would call the NEW copy "invalid": say what it is.
		c := d.Copies[run.Copy]
		s.RunningWhy = fmt.Sprintf("otadata copy %d (seq %d, state %s) is the newest entry that has booted; copy %d is new and first boots at the next reset",
			run.Copy, c.Seq, c.State, fresh)
	}
	if run.Copy < 0 && !(d.Copies[0].Empty() && d.Copies[1].Empty()) && l.AppCount > 0 {
		// Entries exist but none records a boot (e.g. the running entry was
		// just marked invalid): otadata no longer says what ran.
		s.Running, s.RunningWhy = "", "otadata holds no entry for the app that booted last"
	}
	states := d.SlotStates(l.AppCount)
	for i := range s.Rows {
		r := &s.Rows[i]
		r.OTAState = ""
		if r.OTASlot >= 0 {
			if st, ok := states[r.OTASlot]; ok {
				r.OTAState = st.String()
			}
		}
	}
	s.markRows()
}

func (s *PartitionState) markRows() {
	for i := range s.Rows {
		r := &s.Rows[i]
		r.Running = r.App != nil && r.Name == s.Running
		r.BootsNext = r.App != nil && r.Name == s.BootsNext
	}
}

func otaSummary(c [2]OTACopy) string {
	if c[0].Empty && c[1].Empty {
		return "erased (both copies empty)"
	}
	var parts []string
	for _, x := range c {
		switch {
		case x.Empty:
			parts = append(parts, fmt.Sprintf("copy %d empty", x.Index))
		case !x.CRCOK:
			parts = append(parts, fmt.Sprintf("copy %d seq %d CRC BAD", x.Index, x.Seq))
		default:
			parts = append(parts, fmt.Sprintf("copy %d seq %d %s", x.Index, x.Seq, x.State))
		}
	}
	return strings.Join(parts, ", ")
}

// readSlotImage looks at the image at the start of an app partition. It
// reads the first sector and then only the segment headers, unless full is
// set, in which case it reads the whole image and checks its checksum and
// SHA-256 with the firmware parser.
func readSlotImage(ctx context.Context, io FlashIO, p firmware.Partition, chip firmware.Chip, full bool) (SlotImage, error) {
	img := SlotImage{Checked: "header"}
	first := min(p.Size, 0x1000)
	head, err := io.ReadFlash(ctx, p.Offset, first)
	if err != nil {
		return img, fmt.Errorf("read the start of %s at 0x%x: %w", p.Name, p.Offset, err)
	}
	bad := func(format string, args ...any) (SlotImage, error) {
		img.Valid, img.Problem = false, fmt.Sprintf(format, args...)
		img.Summary = "invalid: " + img.Problem
		if img.Version != "" {
			img.Summary = img.Version + " · " + img.Summary
		}
		return img, nil
	}
	if len(head) < 32 || bytes.Equal(head[:32], bytes.Repeat([]byte{0xFF}, 32)) {
		img.Empty, img.Summary, img.Problem = true, "empty (erased)", "the slot is erased"
		return img, nil
	}
	if head[0] != firmware.ImageMagic {
		return bad("no app image (first byte 0x%02x, an image starts with 0xe9)", head[0])
	}
	d, hasDesc := firmware.ParseAppDesc(head[0x20:])
	if hasDesc {
		img.Project, img.Version, img.Date, img.Time, img.IDFVersion, img.SecureVersion = d.ProjectName, d.Version, d.Date, d.Time, d.IDFVersion, d.SecureVersion
	}
	// Walk the segment table with small reads to find the image length.
	esp32 := chip != firmware.ChipESP8266 && head[23] <= 1
	pos := uint64(8)
	hashAppended := false
	if esp32 {
		id := binary.LittleEndian.Uint16(head[12:])
		c, known := firmware.ChipByID(id)
		if !known {
			return bad("unknown chip ID 0x%04x in the image header", id)
		}
		img.Chip = c.String()
		if chip != firmware.ChipUnknown && c != chip {
			return bad("built for %s, this board is %s", c, chip)
		}
		hashAppended = head[23] == 1
		pos = 24
	} else {
		img.Chip = firmware.ChipESP8266.String()
	}
	nseg := int(head[1])
	if nseg == 0 || nseg > 16 {
		return bad("%d segments in the header (1 to 16 are possible)", nseg)
	}
	for i := 0; i < nseg; i++ {
		if pos+8 > uint64(p.Size) {
			return bad("segment %d runs past the end of the %s partition", i, p.Name)
		}
		var sh []byte
		if pos+8 <= uint64(len(head)) {
			sh = head[pos : pos+8]
		} else {
			sh, err = io.ReadFlash(ctx, p.Offset+uint32(pos), 8)
			if err != nil {
				return img, fmt.Errorf("read segment %d header of %s: %w", i, p.Name, err)
			}
		}
		n := binary.LittleEndian.Uint32(sh[4:])
		if n >= 16<<20 {
			return bad("segment %d claims %d bytes", i, n)
		}
		pos += 8 + uint64(n)
	}
	pos += 15 - pos%16
	pos++
	if hashAppended {
		pos += 32
	}
	if pos > uint64(p.Size) {
		return bad("the image (%d bytes) is larger than the %s partition (%d bytes)", pos, p.Name, p.Size)
	}
	img.Length = int(pos)
	if esp32 && !hasDesc {
		return bad("no app description at offset 0x20 (a bootloader or a non-ESP-IDF image?)")
	}
	if full {
		img.Checked = "full"
		data, err := io.ReadFlash(ctx, p.Offset, uint32(pos))
		if err != nil {
			return img, fmt.Errorf("read the image in %s: %w", p.Name, err)
		}
		im, err := firmware.ParseImage(data)
		if err != nil {
			return bad("%v", err)
		}
		if err := im.Verify(); err != nil {
			return bad("%v", err)
		}
		if err := im.CheckChip(chip); err != nil {
			return bad("%v", err)
		}
	}
	img.Valid = true
	parts := []string{}
	if img.Project != "" {
		parts = append(parts, img.Project)
	}
	if img.Version != "" {
		parts = append(parts, img.Version)
	}
	if img.Date != "" {
		parts = append(parts, strings.TrimSpace(img.Date+" "+img.Time))
	}
	parts = append(parts, fmt.Sprintf("%d bytes", img.Length))
	if full {
		parts = append(parts, "checksum+SHA ok")
	}
	img.Summary = strings.Join(parts, " · ")
	return img, nil
}

// ErrReadOnly is returned by the FlashIO of a file.
var ErrReadOnly error = newError(CodeUsage, "read-only flash image", "a flash dump is shown, never changed; pass --port to change a board")

// FileFlash is a FlashIO over a flash dump or merged image held in memory
// (`espdeck partitions show dump.bin`). Reads past the end return FF, as
// erased flash would; writes fail with ErrReadOnly.
type FileFlash []byte

// ReadFlash returns size bytes at addr, FF beyond the data.
func (f FileFlash) ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := bytes.Repeat([]byte{0xFF}, int(size))
	if uint64(addr) < uint64(len(f)) {
		copy(out, f[addr:])
	}
	return out, nil
}

// WriteFlash fails: a file is shown, never changed.
func (f FileFlash) WriteFlash(context.Context, uint32, []byte) error { return ErrReadOnly }

// EraseRegion fails: a file is shown, never changed.
func (f FileFlash) EraseRegion(context.Context, uint32, uint32) error { return ErrReadOnly }
