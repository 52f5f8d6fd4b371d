package ops

import (
	"context"

	"github.com/espdeck/espdeck/serialflash"
)

// SerialFlashIO adapts a ROM-loader connection to FlashIO, so the slot use
// cases run against a real board (or the ROM simulator over a pty).
func SerialFlashIO(f *serialflash.Flasher) FlashIO { return serialIO{f} }

type serialIO struct{ f *serialflash.Flasher }

func (s serialIO) ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error) {
	return s.f.ReadFlash(ctx, addr, size)
}

// WriteFlash erases, writes and verifies one region.
func (s serialIO) WriteFlash(ctx context.Context, addr uint32, data []byte) error {
	return s.f.WriteFlash(ctx, []serialflash.Region{{Addr: addr, Data: data}})
}

func (s serialIO) EraseRegion(ctx context.Context, addr, size uint32) error {
	return s.f.EraseRegion(ctx, addr, size)
}

// FlashSize is the size the ROM detected (0 when unknown).
func (s serialIO) FlashSize() uint32 { return s.f.FlashSize() }
