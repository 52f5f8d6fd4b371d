package firmware

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// otadata layout (flash-formats.md §5.1).
const (
	// OTAEntrySize is the size of one otadata copy.
	OTAEntrySize = 32
	// OTASectorSize separates the two copies.
	OTASectorSize = 0x1000
	// OTASeqEmpty is the sequence number of an erased copy.
	OTASeqEmpty = 0xFFFFFFFF
)

// OTAState is an otadata copy's ota_state (§5.5).
type OTAState uint32

// The states ESP-IDF defines.
const (
	OTAStateNew           OTAState = 0x0
	OTAStatePendingVerify OTAState = 0x1
	OTAStateValid         OTAState = 0x2
	OTAStateInvalid       OTAState = 0x3
	OTAStateAborted       OTAState = 0x4
	OTAStateUndefined     OTAState = 0xFFFFFFFF
)

// String is the state as people read it ("pending verify").
func (s OTAState) String() string {
	switch s {
	case OTAStateNew:
		return "new"
	case OTAStatePendingVerify:
		return "pending verify"
	case OTAStateValid:
		return "valid"
	case OTAStateInvalid:
		return "invalid"
	case OTAStateAborted:
		return "aborted"
	case OTAStateUndefined:
		return "undefined"
	}
	return fmt.Sprintf("unknown state 0x%08x", uint32(s))
}

// Selectable reports whether the bootloader may pick a copy in this state
// (INVALID and ABORTED never are).
func (s OTAState) Selectable() bool { return s != OTAStateInvalid && s != OTAStateAborted }

// OTAEntry is one otadata copy (esp_ota_select_entry_t).
type OTAEntry struct {
	Seq   uint32   // 1-based; OTASeqEmpty when erased
	Label [20]byte // unused by ESP-IDF, normally FF
	State OTAState
	CRC   uint32 // as stored
}

// OTADataCRC is the CRC the bootloader expects for seq (§5.2): CRC-32 over
// the 4 little-endian bytes with the register starting at 0, not the
// standard CRC-32.
func OTADataCRC(seq uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], seq)
	return crc32.Update(0xFFFFFFFF, crc32.IEEETable, b[:])
}

// NewOTAEntry returns a copy for seq and state with a correct CRC and an FF label.
func NewOTAEntry(seq uint32, state OTAState) OTAEntry {
	e := OTAEntry{Seq: seq, State: state, CRC: OTADataCRC(seq)}
	for i := range e.Label {
		e.Label[i] = 0xFF
	}
	return e
}

// DecodeOTAEntry decodes the first 32 bytes of b.
func DecodeOTAEntry(b []byte) (OTAEntry, error) {
	if len(b) < OTAEntrySize {
		return OTAEntry{}, fmt.Errorf("otadata entry: %d bytes, need %d", len(b), OTAEntrySize)
	}
	var e OTAEntry
	e.Seq = binary.LittleEndian.Uint32(b[0:])
	copy(e.Label[:], b[4:24])
	e.State = OTAState(binary.LittleEndian.Uint32(b[24:]))
	e.CRC = binary.LittleEndian.Uint32(b[28:])
	return e, nil
}

// Encode returns the 32 bytes of the copy as stored.
func (e OTAEntry) Encode() []byte {
	b := make([]byte, OTAEntrySize)
	binary.LittleEndian.PutUint32(b[0:], e.Seq)
	copy(b[4:24], e.Label[:])
	binary.LittleEndian.PutUint32(b[24:], uint32(e.State))
	binary.LittleEndian.PutUint32(b[28:], e.CRC)
	return b
}

// EncodeSector returns a whole flash sector holding the copy followed by
// FF, which is what a writer puts in the erased sector.
func (e OTAEntry) EncodeSector() []byte {
	b := make([]byte, OTASectorSize)
	for i := range b {
		b[i] = 0xFF
	}
	copy(b, e.Encode())
	return b
}

// Empty reports an erased copy (sequence FFFFFFFF).
func (e OTAEntry) Empty() bool { return e.Seq == OTASeqEmpty }

// CRCOK reports whether the stored CRC matches the sequence number.
func (e OTAEntry) CRCOK() bool { return e.CRC == OTADataCRC(e.Seq) }

// Invalid is the bootloader's "invalid" test (§5.3): erased, or marked
// INVALID or ABORTED. A copy can be neither Invalid nor Valid (bad CRC).
func (e OTAEntry) Invalid() bool { return e.Empty() || !e.State.Selectable() }

// Valid is the bootloader's "valid" test: not invalid and the CRC matches.
func (e OTAEntry) Valid() bool { return !e.Invalid() && e.CRCOK() }

// Slot is the OTA slot this copy selects among appCount slots:
// (seq − 1) mod appCount. It returns -1 when appCount is 0.
func (e OTAEntry) Slot(appCount int) int {
	if appCount <= 0 {
		return -1
	}
	return int((uint64(e.Seq) + 0xFFFFFFFF) % (1 << 32) % uint64(appCount))
}

// OTAData is both copies of the otadata partition.
type OTAData struct {
	Copies [2]OTAEntry
}

// ErrShortOTAData is returned for otadata shorter than its second copy.
var ErrShortOTAData = errors.New("otadata is too short")

// ParseOTAData decodes the otadata partition: copy 0 at offset 0, copy 1
// at offset 0x1000. data must reach at least the end of copy 1.
func ParseOTAData(data []byte) (OTAData, error) {
	if len(data) < OTASectorSize+OTAEntrySize {
		return OTAData{}, fmt.Errorf("%w: %d bytes, need at least 0x%x (two sectors, one copy each)", ErrShortOTAData, len(data), OTASectorSize+OTAEntrySize)
	}
	var d OTAData
	d.Copies[0], _ = DecodeOTAEntry(data)
	d.Copies[1], _ = DecodeOTAEntry(data[OTASectorSize:])
	return d, nil
}

// Encode returns the whole 0x2000-byte partition as a writer leaves it.
func (d OTAData) Encode() []byte {
	return append(d.Copies[0].EncodeSector(), d.Copies[1].EncodeSector()...)
}

// Active returns the copy the bootloader takes (§5.4 step 2): of the valid
// copies the one with the larger sequence (copy 0 on a tie); -1 when none
// is valid.
func (d OTAData) Active() int {
	v0, v1 := d.Copies[0].Valid(), d.Copies[1].Valid()
	switch {
	case v0 && v1:
		if d.Copies[1].Seq > d.Copies[0].Seq {
			return 1
		}
		return 0
	case v0:
		return 0
	case v1:
		return 1
	}
	return -1
}

// AfterRollbackCheck returns the copies as a rollback-enabled bootloader
// sees them after its first step: every PENDING_VERIFY copy (an app that
// booted and never confirmed itself) becomes ABORTED.
func (d OTAData) AfterRollbackCheck() OTAData {
	for i := range d.Copies {
		if d.Copies[i].State == OTAStatePendingVerify && !d.Copies[i].Empty() {
			d.Copies[i].State = OTAStateAborted
		}
	}
	return d
}

// BootKind says what kind of partition the bootloader starts.
type BootKind int

const (
	// BootNone: nothing bootable (no factory and no OTA slots).
	BootNone BootKind = iota
	// BootFactory: the factory app.
	BootFactory
	// BootOTA: OTA slot BootDecision.Slot.
	BootOTA
)

// BootLayout is what the bootloader knows from the partition table.
type BootLayout struct {
	AppCount   int  // number of OTA app partitions
	HasFactory bool // a factory app exists
}

// BootOptions are bootloader build options that change the decision.
type BootOptions struct {
	// Rollback is CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE: PENDING_VERIFY
	// copies are aborted before selection and NEW ones become PENDING_VERIFY.
	Rollback bool
}

// BootDecision is which app the bootloader starts and why.
type BootDecision struct {
	Kind BootKind
	Slot int // OTA slot for BootOTA, else -1
	// Copy is the otadata copy that decided (0 or 1), or -1 when otadata
	// did not (erased, invalid, no OTA slots).
	Copy int
	// Reason says why, in words.
	Reason string
	// Aborted lists copies a rollback-enabled bootloader will rewrite from
	// PENDING_VERIFY to ABORTED on this boot.
	Aborted []int
	// MarkPending is true when the chosen copy is NEW and a rollback-enabled
	// bootloader will rewrite it as PENDING_VERIFY (the app must then
	// confirm itself or the next reset rolls back).
	MarkPending bool
	// WritesFirstEntry is true when, with no factory app and otadata empty
	// or corrupt, the bootloader will write otadata[0] = {seq Slot+1, VALID}
	// once the slot loads.
	WritesFirstEntry bool
}

// SelectBoot computes the bootloader's choice (§5.4) from otadata and the
// table layout. It does not model load failures of the chosen image.
func SelectBoot(d OTAData, l BootLayout, o BootOptions) BootDecision {
	dec := BootDecision{Slot: -1, Copy: -1}
	if o.Rollback {
		for i, c := range d.Copies {
			if c.State == OTAStatePendingVerify && !c.Empty() {
				dec.Aborted = append(dec.Aborted, i)
			}
		}
		d = d.AfterRollbackCheck()
	}
	fallback := func(why string) BootDecision {
		switch {
		case l.HasFactory:
			dec.Kind, dec.Reason = BootFactory, why+": the bootloader starts the factory app"
		case l.AppCount > 0:
			dec.Kind, dec.Slot, dec.Reason = BootOTA, 0, why+" and there is no factory app: the bootloader tries ota_0"
		default:
			dec.Kind, dec.Reason = BootNone, why+", and the table has no factory app and no OTA slots: nothing to boot"
		}
		return dec
	}
	c0, c1 := d.Copies[0], d.Copies[1]
	if l.AppCount == 0 {
		return fallback("the table has no OTA slots")
	}
	if c0.Invalid() && c1.Invalid() {
		why := "both otadata copies are empty or marked invalid/aborted"
		if c0.Empty() && c1.Empty() {
			why = "otadata is erased"
		}
		dec = fallback(why)
		if !l.HasFactory && (c0.Empty() || !c0.CRCOK()) && (c1.Empty() || !c1.CRCOK()) {
			dec.WritesFirstEntry = true
			dec.Reason += ", then writes otadata copy 0 (seq 1, valid) once it loads"
		}
		return dec
	}
	act := d.Active()
	if act < 0 {
		dec = fallback("no otadata copy has a matching CRC")
		if !l.HasFactory {
			dec.Reason = "no otadata copy has a matching CRC and there is no factory app: the bootloader tries every app partition, ota_0 first"
		}
		return dec
	}
	c := d.Copies[act]
	dec.Kind, dec.Copy, dec.Slot = BootOTA, act, c.Slot(l.AppCount)
	other := d.Copies[1-act]
	switch {
	case other.Valid():
		dec.Reason = fmt.Sprintf("otadata copy %d has the higher sequence (%d over %d), state %s", act, c.Seq, other.Seq, c.State)
	case other.Empty():
		dec.Reason = fmt.Sprintf("otadata copy %d (seq %d, state %s) is the only one written", act, c.Seq, c.State)
	case !other.State.Selectable():
		dec.Reason = fmt.Sprintf("otadata copy %d (seq %d, state %s) is the only valid one; copy %d is %s", act, c.Seq, c.State, 1-act, other.State)
	default:
		dec.Reason = fmt.Sprintf("otadata copy %d (seq %d, state %s) is the only valid one; copy %d has a bad CRC", act, c.Seq, c.State, 1-act)
	}
	for _, a := range dec.Aborted {
		if a == 1-act {
			dec.Reason += fmt.Sprintf(" (copy %d was pending verify and is rolled back)", a)
		}
	}
	if o.Rollback && c.State == OTAStateNew {
		dec.MarkPending = true
		dec.Reason += "; it is new, so the app must confirm itself on this boot or the next reset rolls back"
	}
	return dec
}

// SwitchPlan is the otadata write that makes an OTA slot boot next (§5.6).
type SwitchPlan struct {
	Copy  int      // the copy to rewrite (its sector is erased and rewritten)
	Entry OTAEntry // the new contents of that copy
}

// PlanSwitch computes how to make OTA slot k (0-based) boot next, as ESP-IDF's
// esp_ota_set_boot_partition does: rewrite the active copy's state when it
// already selects k, else write the next sequence number that maps to k into
// the other copy, so a power cut leaves the old selection intact. state is
// NEW (rollback builds) or UNDEFINED.
func PlanSwitch(d OTAData, appCount, k int, state OTAState) (SwitchPlan, error) {
	if appCount <= 0 {
		return SwitchPlan{}, errors.New("the partition table has no OTA slots")
	}
	if k < 0 || k >= appCount {
		return SwitchPlan{}, fmt.Errorf("ota_%d cannot be selected: the table has %d OTA slots and the bootloader maps sequence numbers only to ota_0…ota_%d (number the OTA partitions without gaps)", k, appCount, appCount-1)
	}
	act := d.Active()
	if act < 0 {
		e := NewOTAEntry(uint32(k+1), state)
		e.Label = d.Copies[0].Label // ESP-IDF rewrites the struct it read
		return SwitchPlan{Copy: 0, Entry: e}, nil
	}
	a := d.Copies[act]
	if a.Slot(appCount) == k {
		e := NewOTAEntry(a.Seq, state)
		e.Label = a.Label
		return SwitchPlan{Copy: act, Entry: e}, nil
	}
	// The smallest seq above the active one that maps to slot k. Never 0:
	// the bootloader computes (seq-1) % appCount in uint32, and 0-1 wraps to
	// 0xFFFFFFFF, which maps to another slot than k for most slot counts.
	n := uint64(appCount)
	seq := uint64((k + 1) % appCount)
	if seq == 0 {
		seq = n
	}
	if seq <= uint64(a.Seq) {
		seq += ((uint64(a.Seq)-seq)/n + 1) * n
	}
	if seq >= OTASeqEmpty {
		return SwitchPlan{}, fmt.Errorf("the sequence number would reach 0x%x, which reads as erased; erase otadata first (espdeck slot erase-otadata) and switch again", seq)
	}
	target := 1 - act
	e := NewOTAEntry(uint32(seq), state)
	e.Label = d.Copies[target].Label // as read, normally FF
	return SwitchPlan{Copy: target, Entry: e}, nil
}

// SlotStates returns each OTA slot's state for display (§5.8): the state
// of a CRC-valid copy whose sequence maps to the slot (copy 0 checked
// first); slots no copy maps to are absent.
func (d OTAData) SlotStates(appCount int) map[int]OTAState {
	out := map[int]OTAState{}
	for _, c := range d.Copies {
		if c.Empty() || !c.CRCOK() || appCount <= 0 {
			continue
		}
		s := c.Slot(appCount)
		if _, ok := out[s]; !ok {
			out[s] = c.State
		}
	}
	return out
}

// LastInvalid returns the copy ESP-IDF reports as the last invalid
// partition (§5.8): CRC valid, not erased, INVALID or ABORTED; of two the
// one with the smaller sequence. -1 when none.
func (d OTAData) LastInvalid() int {
	best := -1
	for i, c := range d.Copies {
		if c.Empty() || !c.CRCOK() || c.State.Selectable() {
			continue
		}
		if best < 0 || c.Seq < d.Copies[best].Seq {
			best = i
		}
	}
	return best
}
