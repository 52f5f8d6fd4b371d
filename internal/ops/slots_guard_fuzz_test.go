package ops

import (
	"bytes"
	"context"
	"testing"

	"github.com/espdeck/espdeck/firmware"
)

// FuzzSlotWritesStayInOtadata builds random partition tables (overlapping,
// misaligned, short otadata, entries past the flash) and otadata states,
// then runs every slot command with --force: no erase or write may touch an
// app partition or leave otadata's real extent, whatever the table says.
func FuzzSlotWritesStayInOtadata(f *testing.F) {
	f.Add([]byte{0, 0x10, 0x0F, 1, 1, 0x0F, 0x01, 0, 0x11, 0x01, 0, 0x12, 0x01}, uint32(1), uint32(2), byte(2))
	f.Add([]byte{1, 0x0D, 0x02, 0, 0x10, 0x10, 0, 0x20, 0x10}, uint32(1), uint32(0xFFFFFFFF), byte(0))
	f.Add([]byte{1, 0x0E, 0x03, 0, 0x0E, 0x10, 0, 0x11, 0x10, 2, 0x09, 0x04}, uint32(5), uint32(6), byte(1))
	f.Fuzz(func(t *testing.T, spec []byte, seq0, seq1 uint32, state byte) {
		tab := &firmware.PartitionTable{}
		otaN := 0
		for i := 0; i+3 <= len(spec) && len(tab.Partitions) < 8; i += 3 {
			kind, off, size := spec[i]%3, uint32(spec[i+1])<<12, uint32(spec[i+2])<<12
			if size == 0 {
				size = 0x1000
			}
			p := firmware.Partition{Offset: off, Size: size}
			switch kind {
			case 0:
				p.Type, p.SubType = firmware.TypeApp, byte(0x10+otaN%16)
				if spec[i+2]&0x80 != 0 {
					p.SubType = firmware.SubtypeFactory
				}
				otaN++
			case 1:
				p.Type, p.SubType = firmware.TypeData, firmware.SubtypeDataOTA
			default:
				p.Type, p.SubType = firmware.TypeData, firmware.SubtypeDataNVS
			}
			p.Name = string(rune('a'+len(tab.Partitions))) + "_" + p.SubTypeName()
			tab.Partitions = append(tab.Partitions, p)
		}
		bin, err := tab.MarshalBinary()
		if err != nil {
			return
		}
		flash := bytes.Repeat([]byte{0xFF}, 1<<20)
		copy(flash[0x8000:], bin)
		if otaP, ok := tab.OTAData(); ok && otaP.End() <= uint64(len(flash)) && !overlapsTable(otaP) {
			st := firmware.OTAState(state % 6)
			if state%6 == 5 {
				st = firmware.OTAStateUndefined
			}
			e0, e1 := firmware.NewOTAEntry(seq0, st), firmware.NewOTAEntry(seq1, firmware.OTAStateValid)
			copy(flash[otaP.Offset:], e0.Encode())
			if otaP.Offset+0x1000+32 <= uint32(len(flash)) {
				copy(flash[otaP.Offset+0x1000:], e1.Encode())
			}
		}
		for _, p := range tab.Partitions {
			if p.IsApp() && p.Offset+0x3000 <= uint32(len(flash)) && !overlapsTable(p) {
				copy(flash[p.Offset:], DemoAppImage(firmware.ChipESP32, "f", "1", 0x2000))
			}
		}
		m := newMemFlash(flash)
		ctx := context.Background()
		o := ChangeOptions{Chip: firmware.ChipESP32, Force: true, StateSet: state&0x80 != 0, State: firmware.OTAStateNew}
		for _, p := range tab.Partitions {
			if p.IsApp() {
				_, _, _ = SwitchBootSlot(ctx, m, 0, p.Name, o)
				_, _, _ = MarkSlot(ctx, m, 0, p.Name, firmware.OTAStateInvalid, o)
			}
		}
		_, _, _ = MarkSlot(ctx, m, 0, "", firmware.OTAStateValid, o)
		_, _, _ = EraseOtadata(ctx, m, 0, o)
		otaP, hasOTA := tab.OTAData()
		for _, w := range append(append([][2]uint32{}, m.writes...), m.erases...) {
			end := uint64(w[0]) + uint64(w[1])
			if !hasOTA || w[0] < otaP.Offset || end > otaP.End() {
				t.Fatalf("write 0x%x+0x%x outside otadata %+v (table %+v)", w[0], w[1], otaP, tab.Partitions)
			}
			for _, p := range tab.Partitions {
				if p.IsApp() && uint64(w[0]) < p.End() && uint64(p.Offset) < end {
					t.Fatalf("write 0x%x+0x%x overlaps app %s 0x%x+0x%x", w[0], w[1], p.Name, p.Offset, p.Size)
				}
			}
			if w[0] < 0x9000 {
				t.Fatalf("write 0x%x+0x%x touches the table or bootloader", w[0], w[1])
			}
		}
	})
}

func overlapsTable(p firmware.Partition) bool {
	return uint64(p.Offset) < 0x9000 && p.End() > 0x8000
}
