package ops

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/firmware"
)

// SlotChange describes a planned otadata write before it happens, for the
// confirmation question.
type SlotChange struct {
	// Action is "switch", "erase-otadata" or "mark".
	Action string
	// Writes says what will be written, as a verb phrase:
	// "write otadata copy 1 at 0xe000: seq 4, state new".
	Writes string
	// BootsNext names the app that will boot after the change, and Why.
	BootsNext string
	Why       string
	// Warnings are checks that --force overrode.
	Warnings []string
	// BootsNextImage is what was found in that app ("" when not known).
	BootsNextImage string
	// NoChange is true when nothing needed writing (Writes says why).
	NoChange bool

	// The write itself: erase both copies, or write entry into copy copyIdx.
	erase   bool
	copyIdx int
	entry   firmware.OTAEntry
}

// ChangeOptions tune the write use cases.
type ChangeOptions struct {
	// Chip is the board's chip (images for another chip are invalid).
	Chip firmware.Chip
	// Force goes on despite an invalid target image (a warning is recorded).
	Force bool
	// State is the ota_state a switch writes. 0 (NEW) is a valid state, so
	// the choice is made by StateSet: when false, NEW is written if the
	// board's firmware uses rollback states, else UNDEFINED — what
	// ESP-IDF's own esp_ota_set_boot_partition writes.
	State    firmware.OTAState
	StateSet bool
	// Confirm is asked after the plan is known and before anything is
	// written; false aborts with ErrDeclined. Nil means yes.
	Confirm func(SlotChange) bool
	// TargetVerified says the caller has just written the target slot and
	// verified it (MD5 or read-back) after checking the image: a switch
	// then checks only the slot's header instead of reading the whole
	// image again, which takes about a second per 100 KB over the ROM.
	TargetVerified bool
}

func (o ChangeOptions) confirm(c SlotChange) error {
	if o.Confirm != nil && !o.Confirm(c) {
		return ErrDeclined
	}
	return nil
}

// Question is the confirmation sentence for the change, the same for the
// command line and the TUI: what is written, what boots afterwards and why,
// and what --force overrode.
func (c SlotChange) Question() string {
	after := c.BootsNext
	if after == "" {
		after = "nothing"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "This will %s", c.Writes)
	if c.Action == "erase-otadata" {
		b.WriteString("; rollback state is lost")
	}
	fmt.Fprintf(&b, ".\n  Afterwards the board boots %s (%s)", after, c.Why)
	if c.BootsNextImage != "" {
		fmt.Fprintf(&b, ": %s", c.BootsNextImage)
	}
	b.WriteString(".")
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "\n  Warning: %s", w)
	}
	return b.String()
}

// PlanSwitch works out, without writing, what SwitchBootSlot would do to
// make target boot next on a board in state st. The target's image is
// judged as st read it: SwitchBootSlot reads it completely first.
func PlanSwitch(st *PartitionState, target string, o ChangeOptions) (SlotChange, error) {
	if st.OTAData == nil {
		return SlotChange{}, fmt.Errorf("switch to %s: %w; the bootloader always starts the factory app", target, ErrNoOTAData)
	}
	row, ok := st.Row(target)
	if !ok || row.App == nil {
		return SlotChange{}, fmt.Errorf("switch to %q: %w: the app partitions are %s", target, ErrUnknownPartition, appNames(st))
	}
	if row.TypeID == firmware.TypeApp && row.SubTypeID == firmware.SubtypeFactory {
		return PlanErase(st, o)
	}
	if row.OTASlot < 0 {
		return SlotChange{}, fmt.Errorf("switch to %q: %w: it is an app partition but not an OTA slot (ota_0…ota_15); the bootloader only selects OTA slots and factory", target, ErrUnknownPartition)
	}
	change := SlotChange{Action: "switch", erase: false, copyIdx: -1}
	if err := checkTable(st, o, &change); err != nil {
		return change, err
	}
	if !row.App.Valid {
		ierr := &SlotImageError{Slot: target, Problem: row.App.Problem}
		if !o.Force || row.App.Empty {
			return change, ierr
		}
		change.Warnings = append(change.Warnings, ierr.Error()+" (switching anyway: --force)")
	}
	if st.BootsNext == target && st.Decision.Copy >= 0 && !o.StateSet {
		// Already chosen by a valid entry: rewriting it would only reset
		// its state (and make a rollback build ask the app to confirm again).
		change.Writes, change.BootsNext, change.Why = "nothing: "+target+" already boots next", target, st.BootsNextWhy
		change.BootsNextImage = imageWords(row.App)
		change.NoChange = true
		return change, nil
	}
	state := o.State
	if !o.StateSet {
		state = firmware.OTAStateUndefined
		for _, c := range st.OTAData.Raw.Copies {
			if !c.Empty() && c.CRCOK() && c.State != firmware.OTAStateUndefined {
				state = firmware.OTAStateNew
			}
		}
	}
	plan, err := firmware.PlanSwitch(st.OTAData.Raw, st.OTAData.Layout.AppCount, row.OTASlot, state)
	if err != nil {
		return change, fmt.Errorf("switch to %s: %w", target, err)
	}
	after := st.OTAData.Raw
	after.Copies[plan.Copy] = plan.Entry
	predicted := firmware.SelectBoot(after, st.OTAData.Layout, firmware.BootOptions{Rollback: st.Rollback || state == firmware.OTAStateNew})
	change.copyIdx, change.entry = plan.Copy, plan.Entry
	change.Writes = fmt.Sprintf("write otadata copy %d at 0x%x: seq %d, state %s", plan.Copy, st.OTAData.Copies[plan.Copy].Offset, plan.Entry.Seq, plan.Entry.State)
	change.BootsNext, change.Why = st.decisionTarget(predicted), predicted.Reason
	change.BootsNextImage = imageWords(row.App)
	if change.BootsNext != target {
		return change, fmt.Errorf("switch to %s: the planned write would boot %q instead (%s); nothing was written", target, change.BootsNext, predicted.Reason)
	}
	if err := guardOTAWrite(st, st.OTAData.Copies[plan.Copy].Offset, firmware.OTASectorSize); err != nil {
		return change, err
	}
	return change, nil
}

// SwitchBootSlot makes the app partition called target boot next
// (flash-formats.md §5.6). It refuses when the slot does not hold a valid
// app for the chip (the image is read completely and checked) unless
// Force; writes only the otadata copy the plan names (the other copy is
// never touched, so a power cut leaves the old choice); reads the copy back
// and recomputes the boot decision before returning the new state.
// target "factory" erases otadata instead, as ESP-IDF does, after checking
// the factory image the same way.
func SwitchBootSlot(ctx context.Context, io FlashIO, tableOffset uint32, target string, o ChangeOptions) (*PartitionState, SlotChange, error) {
	ro := ReadOptions{Chip: o.Chip, FullCheckSlots: []string{target}}
	if o.TargetVerified {
		ro.FullCheckSlots = nil
	}
	st, err := ReadPartitionState(ctx, io, tableOffset, ro)
	if err != nil {
		return nil, SlotChange{}, err
	}
	change, err := PlanSwitch(st, target, o)
	if err != nil || change.NoChange {
		return st, change, err
	}
	if err := o.confirm(change); err != nil {
		return st, change, err
	}
	if err := apply(ctx, io, st, change); err != nil {
		return st, change, err
	}
	if st.BootsNext != target {
		return st, change, fmt.Errorf("switch to %s: %w: after the write the bootloader would start %q (%s)", target, ErrReadBack, st.BootsNext, st.BootsNextWhy)
	}
	return st, change, nil
}

// PlanErase works out, without writing, what EraseOtadata would do: the
// app the bootloader falls back to must hold a valid image (Force
// overrides an invalid one, never an erased one).
func PlanErase(st *PartitionState, o ChangeOptions) (SlotChange, error) {
	if st.OTAData == nil {
		return SlotChange{}, fmt.Errorf("erase otadata: %w", ErrNoOTAData)
	}
	change := SlotChange{Action: "erase-otadata", erase: true, copyIdx: -1}
	if err := checkTable(st, o, &change); err != nil {
		return change, err
	}
	var blank firmware.OTAData
	blank.Copies[0], _ = firmware.DecodeOTAEntry(bytes.Repeat([]byte{0xFF}, 32))
	blank.Copies[1] = blank.Copies[0]
	predicted := firmware.SelectBoot(blank, st.OTAData.Layout, firmware.BootOptions{})
	change.Writes = fmt.Sprintf("erase otadata %q at 0x%x (0x%x bytes, both copies)", st.OTAData.Name, st.OTAData.Offset, firmware.OTADataSize)
	change.BootsNext, change.Why = st.decisionTarget(predicted), predicted.Reason
	if err := judgeNext(st, change.BootsNext, o, &change, "erasing otadata"); err != nil {
		return change, err
	}
	if err := guardOTAWrite(st, st.OTAData.Offset, firmware.OTADataSize); err != nil {
		return change, err
	}
	return change, nil
}

// EraseOtadata erases both otadata sectors: the bootloader then starts the
// factory app, or ota_0 when there is none (§5.7). Rollback state is lost.
// The app it falls back to is read completely and checked first.
func EraseOtadata(ctx context.Context, io FlashIO, tableOffset uint32, o ChangeOptions) (*PartitionState, SlotChange, error) {
	st, err := ReadPartitionState(ctx, io, tableOffset, ReadOptions{Chip: o.Chip})
	if err != nil {
		return nil, SlotChange{}, err
	}
	if err := st.fullCheckFallback(ctx, io, o.Chip); err != nil {
		return st, SlotChange{}, err
	}
	change, err := PlanErase(st, o)
	if err != nil {
		return st, change, err
	}
	if err := o.confirm(change); err != nil {
		return st, change, err
	}
	if err := apply(ctx, io, st, change); err != nil {
		return st, change, err
	}
	return st, change, nil
}

// fullCheckFallback reads the app the bootloader would start with otadata
// erased completely and records what was found in its row.
func (s *PartitionState) fullCheckFallback(ctx context.Context, io FlashIO, chip firmware.Chip) error {
	if s.OTAData == nil {
		return nil
	}
	var blank firmware.OTAData
	blank.Copies[0] = firmware.OTAEntry{Seq: firmware.OTASeqEmpty, State: firmware.OTAStateUndefined}
	blank.Copies[1] = blank.Copies[0]
	return s.fullCheck(ctx, io, s.decisionTarget(firmware.SelectBoot(blank, s.OTAData.Layout, firmware.BootOptions{})), chip)
}

// fullCheck reads the app partition called name completely and records
// what was found in its row.
func (s *PartitionState) fullCheck(ctx context.Context, io FlashIO, name string, chip firmware.Chip) error {
	p, ok := s.Table.Find(name)
	if !ok || !p.IsApp() {
		return nil
	}
	img, err := readSlotImage(ctx, io, p, chip, true)
	if err != nil {
		return err
	}
	for i := range s.Rows {
		if s.Rows[i].Name == name {
			s.Rows[i].App = &img
		}
	}
	return nil
}

// imageWords names an app for a question: what it is, not how deeply it
// was checked (the question must read the same whether a front end read
// the slot's header or the whole image).
func imageWords(img *SlotImage) string {
	if img.Empty || !img.Valid {
		return img.Summary
	}
	var parts []string
	for _, p := range []string{img.Project, img.Version, strings.TrimSpace(img.Date + " " + img.Time)} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(append(parts, fmt.Sprintf("%d bytes", img.Length)), " · ")
}

// judgeNext refuses a change after which the board would start an app
// that is not there or not valid; Force overrides an invalid image (with a
// warning the question shows), never an erased slot or nothing at all.
func judgeNext(st *PartitionState, next string, o ChangeOptions, change *SlotChange, doing string) error {
	if next == "" {
		if o.Force {
			change.Warnings = append(change.Warnings, "nothing would be left to boot (--force)")
			return nil
		}
		return Errorf(CodeRefused, "pass --force only if you mean to leave the board without a bootable app", "%s: nothing would be left to boot (%s)", doing, change.Why)
	}
	row, ok := st.Row(next)
	if !ok || row.App == nil {
		return nil
	}
	change.BootsNextImage = imageWords(row.App)
	if row.App.Valid {
		return nil
	}
	ierr := &SlotImageError{Slot: next, Problem: row.App.Problem}
	if !o.Force || row.App.Empty {
		return fmt.Errorf("%s would make the board boot %s: %w", doing, next, ierr)
	}
	change.Warnings = append(change.Warnings, fmt.Sprintf("%s, which boots next, is not a valid app: %s (going on: --force)", next, row.App.Problem))
	return nil
}

// MarkRunning sets the state of the otadata entry of the app that booted
// last (the "running" slot) to VALID or INVALID, keeping its sequence, as an
// app's esp_ota_mark_app_valid_cancel_rollback / _invalid_rollback do.
func MarkRunning(ctx context.Context, io FlashIO, tableOffset uint32, state firmware.OTAState, o ChangeOptions) (*PartitionState, SlotChange, error) {
	return MarkSlot(ctx, io, tableOffset, "", state, o)
}

// PlanMark works out, without writing, what MarkSlot would do.
func PlanMark(st *PartitionState, slot string, state firmware.OTAState, o ChangeOptions) (SlotChange, error) {
	if state != firmware.OTAStateValid && state != firmware.OTAStateInvalid {
		return SlotChange{}, Errorf(CodeUsage, "give --valid or --invalid", "mark: state %s: only valid or invalid can be set", state)
	}
	if st.OTAData == nil {
		return SlotChange{}, fmt.Errorf("mark: %w", ErrNoOTAData)
	}
	change := SlotChange{Action: "mark", copyIdx: -1}
	if err := checkTable(st, o, &change); err != nil {
		return change, err
	}
	if slot == "" {
		slot = st.Running
	}
	row, ok := st.Row(slot)
	if !ok || row.OTASlot < 0 {
		return change, fmt.Errorf("mark %s: %w: otadata selects %s, which is not an OTA slot (otadata %s)", state, ErrNothingToMark, orNone(slot), st.OTAData.Summary)
	}
	// The entry for the slot: the CRC-valid copy that maps to it, the newer one if both do.
	idx := -1
	for i, c := range st.OTAData.Raw.Copies {
		if c.Empty() || !c.CRCOK() || c.Slot(st.OTAData.Layout.AppCount) != row.OTASlot {
			continue
		}
		if idx < 0 || c.Seq > st.OTAData.Raw.Copies[idx].Seq {
			idx = i
		}
	}
	if idx < 0 {
		return change, fmt.Errorf("mark %s %s: %w (otadata %s)", slot, state, ErrNothingToMark, st.OTAData.Summary)
	}
	old := st.OTAData.Raw.Copies[idx]
	e := firmware.NewOTAEntry(old.Seq, state)
	e.Label = old.Label
	after := st.OTAData.Raw
	after.Copies[idx] = e
	predicted := firmware.SelectBoot(after, st.OTAData.Layout, firmware.BootOptions{Rollback: true})
	change.copyIdx, change.entry = idx, e
	change.Writes = fmt.Sprintf("rewrite otadata copy %d at 0x%x: seq %d, state %s → %s", idx, st.OTAData.Copies[idx].Offset, old.Seq, old.State, state)
	change.BootsNext, change.Why = st.decisionTarget(predicted), predicted.Reason
	if err := judgeNext(st, change.BootsNext, o, &change, fmt.Sprintf("marking %s %s", slot, state)); err != nil {
		return change, err
	}
	if err := guardOTAWrite(st, st.OTAData.Copies[idx].Offset, firmware.OTASectorSize); err != nil {
		return change, err
	}
	return change, nil
}

// MarkSlot sets the state of the otadata entry that selects the OTA
// partition called slot ("" = the running one) to VALID or INVALID.
func MarkSlot(ctx context.Context, io FlashIO, tableOffset uint32, slot string, state firmware.OTAState, o ChangeOptions) (*PartitionState, SlotChange, error) {
	st, err := ReadPartitionState(ctx, io, tableOffset, ReadOptions{Chip: o.Chip})
	if err != nil {
		return nil, SlotChange{}, err
	}
	change, err := PlanMark(st, slot, state, o)
	if err == nil && change.BootsNext != "" && change.BootsNext != st.BootsNext {
		// Another app would boot: read it whole before saying it is valid.
		if err := st.fullCheck(ctx, io, change.BootsNext, o.Chip); err != nil {
			return st, change, err
		}
		change, err = PlanMark(st, slot, state, o)
	}
	if err != nil {
		return st, change, err
	}
	if err := o.confirm(change); err != nil {
		return st, change, err
	}
	if err := apply(ctx, io, st, change); err != nil {
		return st, change, err
	}
	return st, change, nil
}

// apply carries out a planned change and reads it back.
func apply(ctx context.Context, io FlashIO, st *PartitionState, change SlotChange) error {
	if change.erase {
		return eraseOTAData(ctx, io, st)
	}
	if change.copyIdx < 0 {
		return fmt.Errorf("internal error: a %s plan without a write", change.Action)
	}
	return writeOTACopy(ctx, io, st, change.copyIdx, change.entry)
}

func eraseOTAData(ctx context.Context, io FlashIO, st *PartitionState) error {
	if err := guardOTAWrite(st, st.OTAData.Offset, firmware.OTADataSize); err != nil {
		return err
	}
	if err := io.EraseRegion(ctx, st.OTAData.Offset, firmware.OTADataSize); err != nil {
		return fmt.Errorf("erase otadata at 0x%x: %w", st.OTAData.Offset, err)
	}
	got, err := readOTAData(ctx, io, st.OTAData.Offset)
	if err != nil {
		return err
	}
	if !got.Copies[0].Empty() || !got.Copies[1].Empty() {
		return fmt.Errorf("erase otadata: %w: the copies still read seq %#x and %#x", ErrReadBack, got.Copies[0].Seq, got.Copies[1].Seq)
	}
	st.applyOTAData(got)
	return nil
}

// checkTable refuses slot writes on a board whose table fails validation.
// Force goes on with a warning; the per-write guard still confines every
// write to otadata's real extent and away from every app partition.
func checkTable(st *PartitionState, o ChangeOptions, change *SlotChange) error {
	if st.OTAData != nil && st.OTAData.Size != firmware.OTADataSize {
		// Both copies are needed and the second lives 0x1000 in: nothing
		// about such a table can be trusted, and --force does not change that.
		return &Error{code: CodeSlotWriteRefuse, err: fmt.Errorf("%w: otadata %q at 0x%x is 0x%x bytes, not 0x2000 (two 4 KiB copies); its second copy would lie at 0x%x, outside it",
			ErrSlotWriteRefused, st.OTAData.Name, st.OTAData.Offset, st.OTAData.Size, st.OTAData.Offset+firmware.OTASectorSize),
			hint: "fix the partition table (otadata is 0x2000 bytes) and flash it at the table offset; --force cannot override this"}
	}
	if st.tableErr == nil {
		return nil
	}
	if o.Force {
		change.Warnings = append(change.Warnings, "the partition table fails validation: "+st.TableProblem+" (going on: --force; no write may leave otadata or touch an app partition)")
		return nil
	}
	return &Error{code: CodeSlotWriteRefuse, err: fmt.Errorf("%w: the partition table at 0x%x fails validation: %s", ErrSlotWriteRefused, st.TableOffset, st.TableProblem),
		hint: "fix the partition table and flash it at the table offset; --force goes on only where no write can touch an app partition"}
}

// BackupPartition reads the whole partition called name (any type).
func BackupPartition(ctx context.Context, io FlashIO, tableOffset uint32, name string) ([]byte, firmware.Partition, error) {
	if tableOffset == 0 {
		tableOffset = firmware.DefaultTableOffset
	}
	raw, err := io.ReadFlash(ctx, tableOffset, firmware.TableMaxLength)
	if err != nil {
		return nil, firmware.Partition{}, fmt.Errorf("read the partition table at 0x%x: %w", tableOffset, err)
	}
	tab, err := firmware.ParsePartitionTable(raw)
	if err != nil {
		return nil, firmware.Partition{}, fmt.Errorf("partition table at 0x%x: %w", tableOffset, err)
	}
	p, ok := tab.Find(name)
	if !ok {
		var names []string
		for _, q := range tab.Partitions {
			names = append(names, q.Name)
		}
		return nil, firmware.Partition{}, fmt.Errorf("backup %q: %w: the table has %v", name, ErrUnknownPartition, names)
	}
	data, err := io.ReadFlash(ctx, p.Offset, p.Size)
	if err != nil {
		return nil, p, fmt.Errorf("read %s (0x%x bytes at 0x%x): %w", p.Name, p.Size, p.Offset, err)
	}
	if len(data) != int(p.Size) {
		return nil, p, fmt.Errorf("read %s: got %d bytes, expected %d", p.Name, len(data), p.Size)
	}
	return data, p, nil
}

// guardOTAWrite refuses any write outside the otadata partition's real
// extent (its size as the table gives it), below the end of the table's
// sector, or overlapping any app partition, whatever the table says and
// whatever --force: these use cases never touch an app slot.
func guardOTAWrite(st *PartitionState, addr, size uint32) error {
	refuse := func(why string, args ...any) error {
		return &Error{code: CodeSlotWriteRefuse, err: fmt.Errorf("%w: 0x%x bytes at 0x%x: %s", ErrSlotWriteRefused, size, addr, fmt.Sprintf(why, args...)),
			hint: "fix the partition table (otadata is two 4 KiB sectors, 0x2000 bytes, and overlaps nothing) and flash it; nothing was written"}
	}
	if st.OTAData == nil || st.Table == nil {
		return refuse("there is no otadata partition")
	}
	end := uint64(addr) + uint64(size)
	otaEnd := uint64(st.OTAData.Offset) + uint64(st.OTAData.Size)
	if addr < st.OTAData.Offset || end > otaEnd {
		return refuse("it would reach outside otadata %q (0x%x-0x%x)", st.OTAData.Name, st.OTAData.Offset, otaEnd-1)
	}
	if uint64(addr) < uint64(st.TableOffset)+firmware.TableSectorSize {
		return refuse("it would touch the bootloader or the partition table")
	}
	for _, p := range st.Table.Partitions {
		if p.IsApp() && uint64(addr) < p.End() && uint64(p.Offset) < end {
			return refuse("it would overlap app partition %q (0x%x-0x%x)", p.Name, p.Offset, p.End()-1)
		}
	}
	return nil
}

// writeOTACopy erases copy idx's sector, writes e followed by FF, reads
// the copy back and recomputes the state from both copies as read.
func writeOTACopy(ctx context.Context, io FlashIO, st *PartitionState, idx int, e firmware.OTAEntry) error {
	addr := st.OTAData.Offset + uint32(idx)*firmware.OTASectorSize
	sector := e.EncodeSector()
	if err := guardOTAWrite(st, addr, uint32(len(sector))); err != nil {
		return err
	}
	if err := io.WriteFlash(ctx, addr, sector); err != nil {
		return fmt.Errorf("write otadata copy %d at 0x%x: %w", idx, addr, err)
	}
	got, err := readOTAData(ctx, io, st.OTAData.Offset)
	if err != nil {
		return err
	}
	if got.Copies[idx] != e {
		return fmt.Errorf("otadata copy %d at 0x%x: %w: wrote seq %d state %s, read seq %d state %s", idx, addr, ErrReadBack,
			e.Seq, e.State, got.Copies[idx].Seq, got.Copies[idx].State)
	}
	st.applyOTAData(got)
	return nil
}

func readOTAData(ctx context.Context, io FlashIO, off uint32) (firmware.OTAData, error) {
	var d firmware.OTAData
	for i := range d.Copies {
		addr := off + uint32(i)*firmware.OTASectorSize
		b, err := io.ReadFlash(ctx, addr, firmware.OTAEntrySize)
		if err != nil {
			return d, fmt.Errorf("read back otadata copy %d at 0x%x: %w", i, addr, err)
		}
		if d.Copies[i], err = firmware.DecodeOTAEntry(b); err != nil {
			return d, fmt.Errorf("read back otadata copy %d: %w", i, err)
		}
	}
	return d, nil
}

func appNames(st *PartitionState) string {
	var names []string
	for _, r := range st.Rows {
		if r.App != nil {
			names = append(names, r.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return fmt.Sprint(names)
}

func orNone(s string) string {
	if s == "" {
		return "no app"
	}
	return s
}
