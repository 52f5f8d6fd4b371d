package ops

import (
	"context"
	"testing"

	"github.com/espdeck/espdeck/firmware"
)

// countingFlash counts what a reader asks of the flash: bytes and the ROM
// commands they cost (READ_FLASH_SLOW moves 64 bytes per round trip, which
// is what dominates over a real serial link).
type countingFlash struct {
	FlashIO
	bytes, romCmds int64
}

func (c *countingFlash) ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error) {
	c.bytes += int64(size)
	c.romCmds += int64(size+63) / 64
	return c.FlashIO.ReadFlash(ctx, addr, size)
}

// BenchmarkSlotInspection compares, side by side, three ways to learn what
// the app slots hold: our default header walk, our full image check, and
// the baseline of reading every app partition whole (esptool read_flash of
// each slot, then image_info). MB/s is app-slot bytes covered per second;
// rom_cmds/op is the number of 64-byte ROM reads, the cost on a real link
// (about 2 ms each at 921600 Bd).
func BenchmarkSlotInspection(b *testing.B) {
	flash, err := DemoFlash(firmware.ChipESP32)
	if err != nil {
		b.Fatal(err)
	}
	tab, _ := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	var slotBytes int64
	for _, p := range tab.Partitions {
		if p.IsApp() {
			slotBytes += int64(p.Size)
		}
	}
	ctx := context.Background()
	run := func(b *testing.B, fn func(io FlashIO) error) {
		cf := &countingFlash{FlashIO: FileFlash(flash)}
		b.SetBytes(slotBytes)
		b.ResetTimer()
		for range b.N {
			if err := fn(cf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cf.romCmds)/float64(b.N), "rom_cmds/op")
		b.ReportMetric(float64(cf.bytes)/float64(b.N), "read_bytes/op")
	}
	b.Run("ours-header", func(b *testing.B) {
		run(b, func(io FlashIO) error {
			_, err := ReadPartitionState(ctx, io, 0, ReadOptions{Chip: firmware.ChipESP32})
			return err
		})
	})
	b.Run("ours-full", func(b *testing.B) {
		run(b, func(io FlashIO) error {
			_, err := ReadPartitionState(ctx, io, 0, ReadOptions{Chip: firmware.ChipESP32, FullCheck: true})
			return err
		})
	})
	b.Run("baseline-read-whole-slots", func(b *testing.B) {
		run(b, func(io FlashIO) error {
			for _, p := range tab.Partitions {
				if !p.IsApp() {
					continue
				}
				data, err := io.ReadFlash(ctx, p.Offset, p.Size)
				if err != nil {
					return err
				}
				if im, err := firmware.ParseImage(data); err == nil {
					_ = im.Verify()
				}
			}
			return nil
		})
	})
}
