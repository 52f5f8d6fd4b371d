package serialflash

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/espdeck/espdeck/firmware"
)

// romBlock is the ROM's FLASH_DATA block size (§3.4).
const romBlock = 0x400

const sector = 0x1000

// Region is data to write at a flash address.
type Region struct {
	Addr uint32
	Data []byte
}

// perMB scales a timeout by size (1,000,000-byte megabytes), never below
// the command timeout (§3.5).
func (f *Flasher) perMB(rate time.Duration, n uint64) time.Duration {
	return max(f.opts.CommandTimeout, time.Duration(float64(rate)*float64(n)/1e6))
}

// begin sends FLASH_BEGIN or FLASH_DEFL_BEGIN. The 20-byte form (with the
// "encrypted" word) goes to S2 and later ROMs; ESP32 and ESP8266 take 16.
func (f *Flasher) begin(ctx context.Context, op Opcode, size, blocks, blockSize, offset uint32, timeout time.Duration) error {
	n := 16
	if f.chip != firmware.ChipESP32 && f.chip != firmware.ChipESP8266 {
		n = 20
	}
	d := make([]byte, n)
	binary.LittleEndian.PutUint32(d, size)
	binary.LittleEndian.PutUint32(d[4:], blocks)
	binary.LittleEndian.PutUint32(d[8:], blockSize)
	binary.LittleEndian.PutUint32(d[12:], offset)
	_, _, err := f.c.command(ctx, op, d, 0, 0, timeout)
	return err
}

// esp8266EraseSize corrects the erase size for the ESP8266 ROM's bug
// (§3.3.5, esptool get_erase_size).
func esp8266EraseSize(offset, size uint32) uint32 {
	n := (size + sector - 1) / sector
	start := offset / sector
	head := min(16-start%16, n)
	if n < 2*head {
		return (n + 1) / 2 * sector
	}
	return (n - head) * sector
}

func (f *Flasher) canDeflate() bool {
	return f.regs.deflate && !f.sdm && !f.opts.NoCompress && f.opts.Compress != CompressNever
}
func (f *Flasher) canMD5() bool  { return f.regs.md5 && !f.sdm }
func (f *Flasher) canRead() bool { return f.regs.readSlow && !f.sdm }

// FlashSize returns the size used for bounds checks: the detected size, or
// Options.FlashSize when given.
func (f *Flasher) FlashSize() uint32 {
	if f.opts.FlashSize != 0 {
		return f.opts.FlashSize
	}
	return f.info.FlashSize
}

// prepare aligns a region for the ROM (§5.1 steps 3–4): the start moves
// down to a sector boundary with FF in front, the length is padded with
// FF to a multiple of 4.
func prepare(r Region) Region {
	over := r.Addr % sector
	data := r.Data
	if over != 0 {
		data = append(bytes.Repeat([]byte{0xFF}, int(over)), data...)
	}
	if pad := len(data) % 4; pad != 0 {
		data = append(data[:len(data):len(data)], bytes.Repeat([]byte{0xFF}, 4-pad)...)
	}
	return Region{Addr: r.Addr - over, Data: data}
}

// opError adds what was being done and a hint to a transfer error.
func (f *Flasher) opError(what string, err error) error {
	switch {
	case errors.Is(err, ErrTimeout):
		hint := "the chip stopped answering: check the cable and power"
		if f.baud > 115200 {
			hint = fmt.Sprintf("the chip stopped answering at %d Bd: try a lower --baud (115200 always works on cheap CH340/CP2102 adapters), a shorter cable, or a powered hub", f.baud)
		}
		return withHint(fmt.Errorf("%s: %w", what, err), hint)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// FlashMD5 returns the MD5 of flash [addr, addr+size) computed by the ROM.
func (f *Flasher) FlashMD5(ctx context.Context, addr, size uint32) ([16]byte, error) {
	var sum [16]byte
	if !f.canMD5() {
		return sum, withHint(fmt.Errorf("flash MD5: %w", ErrUnsupported), "this ROM (ESP8266, or Secure Download Mode) has no SPI_FLASH_MD5")
	}
	d := make([]byte, 16)
	binary.LittleEndian.PutUint32(d, addr)
	binary.LittleEndian.PutUint32(d[4:], size)
	_, out, err := f.c.command(ctx, OpSPIFlashMD5, d, 0, 32, f.perMB(f.opts.MD5TimeoutPerMB, uint64(size)))
	if err != nil {
		return sum, f.opError(fmt.Sprintf("MD5 of 0x%X..0x%X", addr, addr+size), err)
	}
	if _, err := hex.Decode(sum[:], out); err != nil {
		return sum, fmt.Errorf("MD5 of 0x%X..0x%X: the ROM's reply is not hex: %q", addr, addr+size, out)
	}
	return sum, nil
}

// ReadFlash reads size bytes from addr with READ_FLASH_SLOW (64 bytes per
// round trip; about 5 KB/s at 115200 Bd).
func (f *Flasher) ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error) {
	if fsz := f.FlashSize(); fsz != 0 && uint64(addr)+uint64(size) > uint64(fsz) {
		return nil, withHint(fmt.Errorf("read 0x%X bytes at 0x%X: %w", size, addr, ErrTooBig), fmt.Sprintf("the flash is %d bytes", fsz))
	}
	return f.readFlash(ctx, addr, size, "read", 1, 1)
}

func (f *Flasher) readFlash(ctx context.Context, addr, size uint32, stage string, idx, total int) ([]byte, error) {
	if !f.canRead() {
		return nil, withHint(fmt.Errorf("read flash: %w", ErrUnsupported),
			"this ROM (ESP8266, or Secure Download Mode) cannot read flash; esptool needs its stub loader for that")
	}
	out := make([]byte, 0, size)
	start := time.Now()
	last := time.Time{}
	for off := uint32(0); off < size; off += 64 {
		n := min(64, size-off)
		d := make([]byte, 8)
		binary.LittleEndian.PutUint32(d, addr+off)
		binary.LittleEndian.PutUint32(d[4:], n)
		_, chunk, err := f.c.command(ctx, OpReadFlashSlow, d, 0, 64, f.opts.CommandTimeout)
		if err != nil {
			return nil, f.opError(fmt.Sprintf("read 0x%X", addr+off), err)
		}
		out = append(out, chunk[:n]...)
		if now := time.Now(); now.Sub(last) > 50*time.Millisecond || off+n >= size {
			last = now
			f.progress(Progress{Stage: stage, Addr: addr, Region: idx, Regions: total, Done: int64(off + n), Total: int64(size),
				Rate: float64(off+n) / max(now.Sub(start).Seconds(), 1e-9)})
		}
	}
	return out, nil
}

// EraseRegion erases [addr, addr+size); both must be multiples of 4096.
// The ROM erases on FLASH_BEGIN; nothing else is sent.
func (f *Flasher) EraseRegion(ctx context.Context, addr, size uint32) error {
	if addr%sector != 0 || size%sector != 0 || size == 0 {
		return withHint(fmt.Errorf("erase 0x%X+0x%X: %w", addr, size, ErrBadArgument), "address and size must be non-zero multiples of 4096 (0x1000)")
	}
	if fs := f.FlashSize(); fs != 0 && uint64(addr)+uint64(size) > uint64(fs) {
		return withHint(fmt.Errorf("erase 0x%X+0x%X: %w", addr, size, ErrTooBig), fmt.Sprintf("the flash is %d bytes", fs))
	}
	start := time.Now()
	f.progress(Progress{Stage: "erase", Addr: addr, Region: 1, Regions: 1, Total: int64(size)})
	eraseSize := size
	if f.chip == firmware.ChipESP8266 {
		eraseSize = esp8266EraseSize(addr, size)
	}
	blocks := (size + romBlock - 1) / romBlock
	if err := f.begin(ctx, OpFlashBegin, eraseSize, blocks, romBlock, addr, f.perMB(f.opts.EraseTimeoutPerMB, uint64(size))); err != nil {
		return f.opError(fmt.Sprintf("erase 0x%X..0x%X", addr, addr+size), err)
	}
	f.progress(Progress{Stage: "erase", Addr: addr, Region: 1, Regions: 1, Done: int64(size), Total: int64(size),
		Rate: float64(size) / max(time.Since(start).Seconds(), 1e-9)})
	return nil
}

// EraseAll erases the whole detected flash with one FLASH_BEGIN (the ROM
// has no chip-erase command; §5.2 marks this path as not observed on real
// chips).
func (f *Flasher) EraseAll(ctx context.Context) error {
	size := f.FlashSize()
	if size == 0 {
		return withHint(fmt.Errorf("erase all: %w: flash size unknown", ErrBadArgument), "give the flash size explicitly")
	}
	return f.EraseRegion(ctx, 0, size)
}

// HardReset resets the chip into the app by pulsing EN (RTS). Without
// modem lines (pty, socket://) it asks the ROM to run the app instead
// (FLASH_BEGIN(0,0) then FLASH_END(1), §5.2), which is as close as a
// line-less port can get.
func (f *Flasher) HardReset(ctx context.Context) error {
	f.progress(Progress{Stage: "reset"})
	if f.chip == firmware.ChipESP32S3 && !f.sdm {
		// Clear the forced-download bit so the chip boots the app (§4.10).
		f.writeReg(ctx, 0x6000812C, 0, 1)
	}
	if !f.noDTR {
		err := hardReset(ctx, f.port, false)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNoModemLines) {
			return fmt.Errorf("hard reset: %w", err)
		}
		f.noDTR = true
	}
	if err := f.begin(ctx, OpFlashBegin, 0, 0, romBlock, 0, f.opts.CommandTimeout); err != nil {
		return fmt.Errorf("run the app: %w", err)
	}
	d := []byte{1, 0, 0, 0}
	if err := f.c.write(ctx, encodeRequest(OpFlashEnd, d, 0)); err != nil {
		return fmt.Errorf("run the app: %w", err)
	}
	// The ROM may leave the loader before its reply is out; wait briefly.
	f.c.readFrame(ctx, 200*time.Millisecond)
	f.notice("this port has no modem lines: the ROM was told to run the app instead of a hard reset")
	return nil
}
