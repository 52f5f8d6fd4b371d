package ops

import (
	"bytes"
	"context"
	"fmt"

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
	// NoChange is true when nothing needed writing (Writes says why).
	NoChange bool
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

// SwitchBootSlot makes the OTA app partition called target boot next
// (flash-formats.md §5.6). It refuses when the slot does not hold a valid
// app for the chip (the image is read completely and checked) unless
// Force; writes only the otadata copy the plan names (the other copy is
// never touched, so a power cut leaves the old choice); reads the copy back
// and recomputes the boot decision before returning the new state.
// target "factory" erases otadata instead, as ESP-IDF does.
func SwitchBootSlot(ctx context.Context, io FlashIO, tableOffset uint32, target string, o ChangeOptions) (*PartitionState, SlotChange, error) {
	ro := ReadOptions{Chip: o.Chip, FullCheckSlots: []string{target}}
	if o.TargetVerified {
		ro.FullCheckSlots = nil
	}
	st, err := ReadPartitionState(ctx, io, tableOffset, ro)
	if err != nil {
		return nil, SlotChange{}, err
	}
	if st.OTAData == nil {
		return st, SlotChange{}, fmt.Errorf("switch to %s: %w; the bootloader always starts the factory app", target, ErrNoOTAData)
	}
	row, ok := st.Row(target)
	if !ok || row.App == nil {
		return st, SlotChange{}, fmt.Errorf("switch to %q: %w: the app partitions are %s", target, ErrUnknownPartition, appNames(st))
	}
	if row.TypeID == firmware.TypeApp && row.SubTypeID == firmware.SubtypeFactory {
		return EraseOtadata(ctx, io, tableOffset, o)
	}
	if row.OTASlot < 0 {
		return st, SlotChange{}, fmt.Errorf("switch to %q: %w: it is an app partition but not an OTA slot (ota_0…ota_15); the bootloader only selects OTA slots and factory", target, ErrUnknownPartition)
	}
	change := SlotChange{Action: "switch"}
	if !row.App.Valid {
		ierr := &SlotImageError{Slot: target, Problem: row.App.Problem}
		if !o.Force || row.App.Empty {
			return st, change, ierr
		}
		change.Warnings = append(change.Warnings, ierr.Error()+" (switching anyway: --force)")
	}
	if st.BootsNext == target && st.Decision.Copy >= 0 && !o.StateSet {
		// Already chosen by a valid entry: rewriting it would only reset
		// its state (and make a rollback build ask the app to confirm again).
		change.Writes, change.BootsNext, change.Why = "nothing: "+target+" already boots next", target, st.BootsNextWhy
		change.NoChange = true
		return st, change, nil
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
		return st, change, fmt.Errorf("switch to %s: %w", target, err)
	}
	after := st.OTAData.Raw
	after.Copies[plan.Copy] = plan.Entry
	predicted := firmware.SelectBoot(after, st.OTAData.Layout, firmware.BootOptions{Rollback: st.Rollback || state == firmware.OTAStateNew})
	change.Writes = fmt.Sprintf("write otadata copy %d at 0x%x: seq %d, state %s", plan.Copy, st.OTAData.Copies[plan.Copy].Offset, plan.Entry.Seq, plan.Entry.State)
	change.BootsNext, change.Why = st.decisionTarget(predicted), predicted.Reason
	if change.BootsNext != target {
		return st, change, fmt.Errorf("switch to %s: the planned write would boot %q instead (%s); nothing was written", target, change.BootsNext, predicted.Reason)
	}
	if err := o.confirm(change); err != nil {
		return st, change, err
	}
	if err := writeOTACopy(ctx, io, st, plan.Copy, plan.Entry); err != nil {
		return st, change, err
	}
	if st.BootsNext != target {
		return st, change, fmt.Errorf("switch to %s: %w: after the write the bootloader would start %q (%s)", target, ErrReadBack, st.BootsNext, st.BootsNextWhy)
	}
	return st, change, nil
}

// EraseOtadata erases both otadata sectors: the bootloader then starts the
// factory app, or ota_0 when there is none (§5.7). Rollback state is lost.
func EraseOtadata(ctx context.Context, io FlashIO, tableOffset uint32, o ChangeOptions) (*PartitionState, SlotChange, error) {
	st, err := ReadPartitionState(ctx, io, tableOffset, ReadOptions{Chip: o.Chip})
	if err != nil {
		return nil, SlotChange{}, err
	}
	if st.OTAData == nil {
		return st, SlotChange{}, fmt.Errorf("erase otadata: %w", ErrNoOTAData)
	}
	var blank firmware.OTAData
	blank.Copies[0], _ = firmware.DecodeOTAEntry(bytes.Repeat([]byte{0xFF}, 32))
	blank.Copies[1] = blank.Copies[0]
	predicted := firmware.SelectBoot(blank, st.OTAData.Layout, firmware.BootOptions{})
	change := SlotChange{Action: "erase-otadata",
		Writes:    fmt.Sprintf("erase otadata %q at 0x%x (0x%x bytes, both copies)", st.OTAData.Name, st.OTAData.Offset, firmware.OTADataSize),
		BootsNext: st.decisionTarget(predicted), Why: predicted.Reason}
	if err := o.confirm(change); err != nil {
		return st, change, err
	}
	if err := guardOTAWrite(st, st.OTAData.Offset, firmware.OTADataSize); err != nil {
		return st, change, err
	}
	if err := io.EraseRegion(ctx, st.OTAData.Offset, firmware.OTADataSize); err != nil {
		return st, change, fmt.Errorf("erase otadata at 0x%x: %w", st.OTAData.Offset, err)
	}
	got, err := readOTAData(ctx, io, st.OTAData.Offset)
	if err != nil {
		return st, change, err
	}
	if !got.Copies[0].Empty() || !got.Copies[1].Empty() || got != blank {
		return st, change, fmt.Errorf("erase otadata: %w: the copies still read seq %#x and %#x", ErrReadBack, got.Copies[0].Seq, got.Copies[1].Seq)
	}
	st.applyOTAData(got)
	return st, change, nil
}

// MarkRunning sets the state of the otadata entry of the app that booted
// last (the "running" slot) to VALID or INVALID, keeping its sequence, as an
// app's esp_ota_mark_app_valid_cancel_rollback / _invalid_rollback do.
func MarkRunning(ctx context.Context, io FlashIO, tableOffset uint32, state firmware.OTAState, o ChangeOptions) (*PartitionState, SlotChange, error) {
	return MarkSlot(ctx, io, tableOffset, "", state, o)
}

// MarkSlot sets the state of the otadata entry that selects the OTA
// partition called slot ("" = the running one) to VALID or INVALID.
func MarkSlot(ctx context.Context, io FlashIO, tableOffset uint32, slot string, state firmware.OTAState, o ChangeOptions) (*PartitionState, SlotChange, error) {
	if state != firmware.OTAStateValid && state != firmware.OTAStateInvalid {
		return nil, SlotChange{}, fmt.Errorf("mark: state %s: only valid or invalid can be set", state)
	}
	st, err := ReadPartitionState(ctx, io, tableOffset, ReadOptions{Chip: o.Chip})
	if err != nil {
		return nil, SlotChange{}, err
	}
	if st.OTAData == nil {
		return st, SlotChange{}, fmt.Errorf("mark: %w", ErrNoOTAData)
	}
	if slot == "" {
		slot = st.Running
	}
	row, ok := st.Row(slot)
	if !ok || row.OTASlot < 0 {
		return st, SlotChange{}, fmt.Errorf("mark %s: %w: otadata selects %s, which is not an OTA slot (otadata %s)", state, ErrNothingToMark, orNone(st.Running), st.OTAData.Summary)
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
		return st, SlotChange{}, fmt.Errorf("mark %s %s: %w (otadata %s)", slot, state, ErrNothingToMark, st.OTAData.Summary)
	}
	old := st.OTAData.Raw.Copies[idx]
	e := firmware.NewOTAEntry(old.Seq, state)
	e.Label = old.Label
	after := st.OTAData.Raw
	after.Copies[idx] = e
	predicted := firmware.SelectBoot(after, st.OTAData.Layout, firmware.BootOptions{Rollback: true})
	change := SlotChange{Action: "mark",
		Writes:    fmt.Sprintf("rewrite otadata copy %d at 0x%x: seq %d, state %s → %s", idx, st.OTAData.Copies[idx].Offset, old.Seq, old.State, state),
		BootsNext: st.decisionTarget(predicted), Why: predicted.Reason}
	if predicted.Kind == firmware.BootNone && !o.Force {
		return st, change, fmt.Errorf("mark %s invalid: nothing would be left to boot (%s); --force marks it anyway", slot, predicted.Reason)
	}
	if err := o.confirm(change); err != nil {
		return st, change, err
	}
	if err := writeOTACopy(ctx, io, st, idx, e); err != nil {
		return st, change, err
	}
	return st, change, nil
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

// guardOTAWrite refuses any write outside the otadata partition: these use
// cases never touch an app slot, whatever a bug upstream computes.
func guardOTAWrite(st *PartitionState, addr, size uint32) error {
	if st.OTAData == nil || addr < st.OTAData.Offset || uint64(addr)+uint64(size) > uint64(st.OTAData.Offset)+firmware.OTADataSize {
		return fmt.Errorf("internal error: refusing to write 0x%x bytes at 0x%x outside otadata", size, addr)
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
