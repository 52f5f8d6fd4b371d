package firmware

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOTADataCRCVectors(t *testing.T) {
	for seq, want := range map[uint32]uint32{1: 0x4743989A, 2: 0x55F63774, 3: 0xED4A5011, 4: 0x709D68A8} {
		require.Equal(t, want, OTADataCRC(seq), "seq %d", seq)
		var b [4]byte
		b[0] = byte(seq)
		require.NotEqual(t, crc32.ChecksumIEEE(b[:]), OTADataCRC(seq), "must not be the standard CRC-32")
	}
	ff := "ffffffffffffffffffffffffffffffffffffffff"
	for _, v := range []struct {
		seq   uint32
		state OTAState
		hex   string
	}{
		{1, OTAStateUndefined, "01000000" + ff + "ffffffff" + "9a984347"},
		{1, OTAStateValid, "01000000" + ff + "02000000" + "9a984347"},
		{2, OTAStateNew, "02000000" + ff + "00000000" + "7437f655"},
	} {
		e := NewOTAEntry(v.seq, v.state)
		require.Equal(t, v.hex, hex.EncodeToString(e.Encode()))
		back, err := DecodeOTAEntry(e.Encode())
		require.NoError(t, err)
		require.Equal(t, e, back)
		require.True(t, back.CRCOK())
	}
}

func otadata(c0, c1 OTAEntry) OTAData { return OTAData{Copies: [2]OTAEntry{c0, c1}} }

func empty() OTAEntry {
	var b [32]byte
	for i := range b {
		b[i] = 0xFF
	}
	e, _ := DecodeOTAEntry(b[:])
	return e
}

func badCRC(e OTAEntry) OTAEntry { e.CRC ^= 1; return e }

func TestSelectBootSpecVectors(t *testing.T) {
	l := BootLayout{AppCount: 2, HasFactory: true}
	d := otadata(NewOTAEntry(1, OTAStateValid), NewOTAEntry(2, OTAStateNew))
	dec := SelectBoot(d, l, BootOptions{Rollback: true})
	require.Equal(t, BootOTA, dec.Kind)
	require.Equal(t, 1, dec.Slot)
	require.Equal(t, 1, dec.Copy)
	require.True(t, dec.MarkPending, "a rollback bootloader marks the new copy pending verify")

	d = otadata(NewOTAEntry(1, OTAStateValid), NewOTAEntry(2, OTAStateAborted))
	dec = SelectBoot(d, l, BootOptions{})
	require.Equal(t, BootOTA, dec.Kind)
	require.Equal(t, 0, dec.Slot)
	require.Equal(t, 0, dec.Copy)
	require.Contains(t, dec.Reason, "copy 1 is aborted")

	d = otadata(empty(), empty())
	require.Equal(t, BootFactory, SelectBoot(d, l, BootOptions{}).Kind)
	dec = SelectBoot(d, BootLayout{AppCount: 2}, BootOptions{})
	require.Equal(t, BootOTA, dec.Kind)
	require.Equal(t, 0, dec.Slot)
	require.True(t, dec.WritesFirstEntry)
}

// TestSelectBootEveryStateCombination checks the bootloader's choice for
// every pair of states, sequence orders, CRC validity and rollback setting
// against the rules of §5.3/§5.4 written out independently here.
func TestSelectBootEveryStateCombination(t *testing.T) {
	states := []OTAState{OTAStateNew, OTAStatePendingVerify, OTAStateValid, OTAStateInvalid, OTAStateAborted, OTAStateUndefined}
	type copySpec struct {
		empty, badCRC bool
		seq           uint32
		state         OTAState
	}
	var specs []copySpec
	specs = append(specs, copySpec{empty: true})
	for _, st := range states {
		for _, seq := range []uint32{3, 4} {
			specs = append(specs, copySpec{seq: seq, state: st})
		}
		specs = append(specs, copySpec{seq: 5, state: st, badCRC: true})
	}
	build := func(s copySpec) OTAEntry {
		if s.empty {
			return empty()
		}
		e := NewOTAEntry(s.seq, s.state)
		if s.badCRC {
			e = badCRC(e)
		}
		return e
	}
	selectable := func(s copySpec, rollback bool) bool {
		if s.empty || s.badCRC {
			return false
		}
		switch s.state {
		case OTAStateInvalid, OTAStateAborted:
			return false
		case OTAStatePendingVerify:
			return !rollback
		}
		return true
	}
	n := 0
	for _, a := range specs {
		for _, b := range specs {
			for _, rollback := range []bool{false, true} {
				for _, factory := range []bool{false, true} {
					name := fmt.Sprintf("%+v/%+v/rollback=%v/factory=%v", a, b, rollback, factory)
					dec := SelectBoot(otadata(build(a), build(b)), BootLayout{AppCount: 3, HasFactory: factory}, BootOptions{Rollback: rollback})
					sa, sb := selectable(a, rollback), selectable(b, rollback)
					switch {
					case sa && (!sb || a.seq >= b.seq):
						require.Equal(t, BootOTA, dec.Kind, name)
						require.Equal(t, 0, dec.Copy, name)
						require.Equal(t, int(a.seq-1)%3, dec.Slot, name)
					case sb:
						require.Equal(t, BootOTA, dec.Kind, name)
						require.Equal(t, 1, dec.Copy, name)
						require.Equal(t, int(b.seq-1)%3, dec.Slot, name)
					case factory:
						require.Equal(t, BootFactory, dec.Kind, name)
						require.Equal(t, -1, dec.Copy, name)
					default:
						require.Equal(t, BootOTA, dec.Kind, name)
						require.Equal(t, 0, dec.Slot, name, "no factory: ota_0")
						require.Equal(t, -1, dec.Copy, name)
					}
					require.NotEmpty(t, dec.Reason)
					n++
				}
			}
		}
	}
	require.Greater(t, n, 1000)
}

func TestSelectBootNoSlots(t *testing.T) {
	d := otadata(NewOTAEntry(1, OTAStateValid), empty())
	require.Equal(t, BootFactory, SelectBoot(d, BootLayout{HasFactory: true}, BootOptions{}).Kind)
	require.Equal(t, BootNone, SelectBoot(d, BootLayout{}, BootOptions{}).Kind)
}

func TestPlanSwitchSpecExamples(t *testing.T) {
	// app_count 2: active seq 1 (slot 0) → slot 1: seq 2 into copy 1.
	p, err := PlanSwitch(otadata(NewOTAEntry(1, OTAStateValid), empty()), 2, 1, OTAStateNew)
	require.NoError(t, err)
	require.Equal(t, 1, p.Copy)
	require.Equal(t, NewOTAEntry(2, OTAStateNew), p.Entry)
	// Active seq 2 (slot 1) → slot 0: seq 3 into copy 0.
	p, err = PlanSwitch(otadata(NewOTAEntry(1, OTAStateValid), NewOTAEntry(2, OTAStateValid)), 2, 0, OTAStateUndefined)
	require.NoError(t, err)
	require.Equal(t, 0, p.Copy)
	require.Equal(t, uint32(3), p.Entry.Seq)
	// app_count 8: active seq 5 (slot 4) → slot 7: seq 8.
	p, err = PlanSwitch(otadata(NewOTAEntry(5, OTAStateValid), NewOTAEntry(4, OTAStateValid)), 8, 7, OTAStateNew)
	require.NoError(t, err)
	require.Equal(t, 1, p.Copy)
	require.Equal(t, uint32(8), p.Entry.Seq)
	// Already selected: rewrite the same copy's state, keep seq.
	p, err = PlanSwitch(otadata(NewOTAEntry(3, OTAStateValid), NewOTAEntry(2, OTAStateInvalid)), 2, 0, OTAStateNew)
	require.NoError(t, err)
	require.Equal(t, 0, p.Copy)
	require.Equal(t, NewOTAEntry(3, OTAStateNew), p.Entry)
	// Nothing valid: copy 0, seq k+1.
	p, err = PlanSwitch(otadata(empty(), badCRC(NewOTAEntry(7, OTAStateValid))), 4, 2, OTAStateUndefined)
	require.NoError(t, err)
	require.Equal(t, 0, p.Copy)
	require.Equal(t, uint32(3), p.Entry.Seq)

	_, err = PlanSwitch(otadata(empty(), empty()), 2, 2, OTAStateNew)
	require.Error(t, err)
	_, err = PlanSwitch(otadata(NewOTAEntry(0xFFFFFFFE, OTAStateValid), empty()), 2, 0, OTAStateNew)
	require.ErrorContains(t, err, "erase otadata")
}

// TestPlanSwitchThenSelect: for many starting points, the plan makes the
// bootloader pick the requested slot and never touches the active copy
// unless it already selected that slot.
func TestPlanSwitchThenSelect(t *testing.T) {
	for n := 1; n <= 5; n++ {
		for s0 := uint32(1); s0 < 12; s0++ {
			for s1 := uint32(0); s1 < 12; s1++ {
				c1 := empty()
				if s1 > 0 {
					c1 = NewOTAEntry(s1, OTAStateValid)
				}
				d := otadata(NewOTAEntry(s0, OTAStateValid), c1)
				act := d.Active()
				for k := 0; k < n; k++ {
					p, err := PlanSwitch(d, n, k, OTAStateUndefined)
					require.NoError(t, err)
					after := d
					after.Copies[p.Copy] = p.Entry
					dec := SelectBoot(after, BootLayout{AppCount: n}, BootOptions{})
					require.Equal(t, k, dec.Slot, "n=%d seq %d/%d → slot %d", n, s0, s1, k)
					if d.Copies[act].Slot(n) != k {
						require.NotEqual(t, act, p.Copy, "the active copy stays intact")
						require.Greater(t, p.Entry.Seq, d.Copies[act].Seq)
					}
				}
			}
		}
	}
}

func TestSlotStatesAndLastInvalid(t *testing.T) {
	d := otadata(NewOTAEntry(3, OTAStateAborted), NewOTAEntry(2, OTAStateInvalid))
	require.Equal(t, map[int]OTAState{0: OTAStateAborted, 1: OTAStateInvalid}, d.SlotStates(2))
	require.Equal(t, 1, d.LastInvalid(), "of two, the smaller sequence")
	d = otadata(NewOTAEntry(1, OTAStateValid), badCRC(NewOTAEntry(2, OTAStateInvalid)))
	require.Equal(t, map[int]OTAState{0: OTAStateValid}, d.SlotStates(2))
	require.Equal(t, -1, d.LastInvalid())
}

func TestParseOTAData(t *testing.T) {
	d := otadata(NewOTAEntry(1, OTAStateValid), NewOTAEntry(2, OTAStateNew))
	raw := d.Encode()
	require.Len(t, raw, OTADataSize)
	require.True(t, bytes.Equal(bytes.Repeat([]byte{0xFF}, OTASectorSize-32), raw[32:OTASectorSize]))
	back, err := ParseOTAData(raw)
	require.NoError(t, err)
	require.Equal(t, d, back)
	_, err = ParseOTAData(raw[:OTASectorSize])
	require.ErrorIs(t, err, ErrShortOTAData)
	require.Equal(t, "pending verify", OTAStatePendingVerify.String())
	require.Contains(t, OTAState(9).String(), "unknown")
}

func FuzzParseOTAData(f *testing.F) {
	f.Add(otadata(NewOTAEntry(1, OTAStateValid), NewOTAEntry(2, OTAStateNew)).Encode())
	f.Add(bytes.Repeat([]byte{0xFF}, OTADataSize))
	f.Add(make([]byte, OTASectorSize+32))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseOTAData(data)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Copies[0].Encode(), data[:32]) || !bytes.Equal(d.Copies[1].Encode(), data[OTASectorSize:OTASectorSize+32]) {
			t.Fatal("decode/encode is not the identity")
		}
		for n := 0; n <= 3; n++ {
			for _, rb := range []bool{false, true} {
				dec := SelectBoot(d, BootLayout{AppCount: n, HasFactory: n%2 == 0}, BootOptions{Rollback: rb})
				if dec.Kind == BootOTA && (dec.Slot < 0 || dec.Slot >= max(n, 1)) {
					t.Fatalf("slot %d out of range for %d slots", dec.Slot, n)
				}
			}
			if n > 0 {
				for k := 0; k < n; k++ {
					p, err := PlanSwitch(d, n, k, OTAStateNew)
					if err != nil {
						continue
					}
					after := d
					after.Copies[p.Copy] = p.Entry
					if got := SelectBoot(after, BootLayout{AppCount: n}, BootOptions{}); got.Slot != k {
						t.Fatalf("switch to %d boots %d", k, got.Slot)
					}
				}
			}
		}
	})
}

// A copy with sequence 0 (CRC-valid: crc32 of 0 is FFFFFFFF) is active.
// Switching away must not plan sequence 0 again: the bootloader's uint32
// (0-1) % 3 is 0, not 2.
func TestPlanSwitchNeverWritesSequenceZero(t *testing.T) {
	d := otadata(OTAEntry{Seq: OTASeqEmpty, State: OTAStateUndefined, CRC: 0xFFFFFFFF, Label: [20]byte{}}, NewOTAEntry(0, OTAStateUndefined))
	for n := 1; n <= 4; n++ {
		for k := 0; k < n; k++ {
			p, err := PlanSwitch(d, n, k, OTAStateNew)
			require.NoError(t, err)
			after := d
			after.Copies[p.Copy] = p.Entry
			require.Equal(t, k, SelectBoot(after, BootLayout{AppCount: n}, BootOptions{}).Slot, "n=%d k=%d seq=%d", n, k, p.Entry.Seq)
		}
	}
}
