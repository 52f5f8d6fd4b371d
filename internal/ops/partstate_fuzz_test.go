package ops

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/espdeck/espdeck/firmware"
)

// FuzzReadPartitionState feeds arbitrary flash contents (a table at 0x8000,
// otadata and app headers wherever the table points) through the board
// reader and the switch planner: nothing may panic, and whatever the reader
// reports must be self-consistent.
func FuzzReadPartitionState(f *testing.F) {
	flash, err := DemoFlash(firmware.ChipESP32)
	if err != nil {
		f.Fatal(err)
	}
	// Seeds: the demo table + otadata, and the demo ota_0 image head.
	f.Add(flash[0x8000:0x8C00], flash[0xD000:0xD020], flash[0x110000:0x110400])
	f.Add(flash[0x8000:0x8C00], firmware.NewOTAEntry(7, firmware.OTAStatePendingVerify).Encode(), []byte{0xE9, 0x10})
	f.Fuzz(func(t *testing.T, table, otadata, app []byte) {
		img := sparseFlash{0x8000: table, 0xD000: otadata, 0x10000: app, 0x110000: app, 0x210000: app}
		ctx := context.Background()
		st, err := ReadPartitionState(ctx, img, 0, ReadOptions{Chip: firmware.ChipESP32})
		if err != nil {
			return
		}
		for _, r := range st.Rows {
			if r.App != nil && r.App.Valid && r.App.Length > int(r.Size) {
				t.Fatalf("%s: valid image of %d bytes in a %d-byte slot", r.Name, r.App.Length, r.Size)
			}
			if r.BootsNext && r.Name != st.BootsNext {
				t.Fatalf("row %s marked boots-next but the state says %s", r.Name, st.BootsNext)
			}
		}
		if st.OTAData != nil && st.OTAData.Layout.AppCount > 0 {
			for k := 0; k < st.OTAData.Layout.AppCount; k++ {
				p, err := firmware.PlanSwitch(st.OTAData.Raw, st.OTAData.Layout.AppCount, k, firmware.OTAStateNew)
				if err != nil {
					continue
				}
				if p.Copy < 0 || p.Copy > 1 {
					t.Fatalf("plan writes copy %d", p.Copy)
				}
			}
		}
	})
}

// sparseFlash is read-only flash made of a few regions; the rest reads FF.
type sparseFlash map[uint32][]byte

func (s sparseFlash) ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error) {
	if size > 1<<20 {
		return nil, errors.New("read too large for the fuzz flash")
	}
	out := bytes.Repeat([]byte{0xFF}, int(size))
	for off, data := range s {
		for i, b := range data {
			a := uint64(off) + uint64(i)
			if a >= uint64(addr) && a < uint64(addr)+uint64(size) {
				out[a-uint64(addr)] = b
			}
		}
	}
	return out, nil
}

func (s sparseFlash) WriteFlash(context.Context, uint32, []byte) error  { return ErrReadOnly }
func (s sparseFlash) EraseRegion(context.Context, uint32, uint32) error { return ErrReadOnly }
