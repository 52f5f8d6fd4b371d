package serialflash

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/espdeck/espdeck/firmware"
)

// Compression chooses when a write may use the ROM's compressed download
// (FLASH_DEFL_*).
type Compression int

const (
	// CompressSafe (the default) compresses a region only when every byte
	// outside it provably stays as it was: the ROM writes inflated data in
	// whole 32 KiB windows from the region start, stale bytes included,
	// and rewrites its buffer once more at the end of the stream
	// (protocol-serial-rom.md §13.1). The data is therefore padded with FF
	// to the next window boundary plus one more window, so every byte the
	// ROM writes past the data is FF, which leaves NOR flash as it was.
	// Regions smaller than MinCompressed, and regions whose padding would
	// reach past the end of the flash, go uncompressed.
	CompressSafe Compression = iota
	// CompressNever always writes uncompressed (FLASH_BEGIN/FLASH_DATA).
	CompressNever
)

// inflateWindow is the ROM's inflate output window (§13.1).
const inflateWindow = 0x8000

// MinCompressed is the smallest region the safe policy compresses. Small
// structures (otadata entries, partition tables, one-sector slot
// commands) always go uncompressed: compression saves them little time
// and they sit next to data that must survive.
const MinCompressed = 16 << 10

// RegionResult says what one region's write did.
type RegionResult struct {
	// Addr and Size are the region as asked.
	Addr, Size uint32
	// EraseStart and EraseEnd bound the sectors the write may have erased
	// ([EraseStart, EraseEnd), 4 KiB aligned). Nothing outside changed.
	EraseStart, EraseEnd uint32
	// Written counts region bytes sent to the chip (once per attempt that
	// succeeded); Skipped counts bytes the flash already held (diff).
	Written, Skipped uint32
	// Compressed counts the bytes of Written sent with FLASH_DEFL.
	Compressed uint32
	// Resumes counts how often the write continued after a failed block.
	Resumes int
	// Verify is how the region was checked: "md5" (SPI_FLASH_MD5),
	// "read-back" (READ_FLASH_SLOW) or "rom-block-check" (the ROM's own
	// per-block check only; nothing could be read back).
	Verify string
	// VerifiedStart and VerifiedEnd bound what Verify covered.
	VerifiedStart, VerifiedEnd uint32
}

// WriteResult says what a multi-region write did.
type WriteResult struct {
	Regions []RegionResult
}

// Skipped sums the bytes the flash already held.
func (w WriteResult) Skipped() uint64 {
	var n uint64
	for _, r := range w.Regions {
		n += uint64(r.Skipped)
	}
	return n
}

// span is a byte range [lo, hi) within a prepared region's data.
type span struct{ lo, hi uint32 }

// WriteFlash erases, writes and verifies each region; see Write.
func (f *Flasher) WriteFlash(ctx context.Context, regions []Region) error {
	_, err := f.Write(ctx, regions)
	return err
}

// Write erases, writes and verifies each region and reports what it did.
//
// Only sectors whose content differs are written where the ROM has
// SPI_FLASH_MD5 (unless Options.NoDiff). Compression follows
// Options.Compress. A block that fails after its retries (a bad status, a
// lost reply) does not end the write: the link is re-synced, the sectors
// already holding the right bytes are found by MD5, and the write resumes
// from the first wrong one, up to Options.MaxResumes times per region.
// Each region is verified as a whole afterwards.
func (f *Flasher) Write(ctx context.Context, regions []Region) (WriteResult, error) {
	var res WriteResult
	size := f.FlashSize()
	for _, r := range regions {
		if len(r.Data) == 0 {
			return res, fmt.Errorf("write at 0x%X: %w: empty data", r.Addr, ErrBadArgument)
		}
		if size != 0 && uint64(r.Addr)+uint64(len(r.Data)) > uint64(size) {
			return res, withHint(fmt.Errorf("write %d bytes at 0x%X: %w (flash is %d bytes)", len(r.Data), r.Addr, ErrTooBig, size),
				"check the address and the file; the detected flash is smaller than the write")
		}
	}
	for i, r := range regions {
		rr, err := f.writeRegion(ctx, r, i+1, len(regions))
		res.Regions = append(res.Regions, rr)
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("write at 0x%X: %w", r.Addr, ctx.Err())
			}
			return res, err
		}
	}
	return res, nil
}

func (f *Flasher) writeRegion(ctx context.Context, orig Region, idx, total int) (RegionResult, error) {
	r := prepare(orig)
	n := uint32(len(r.Data))
	rr := RegionResult{Addr: orig.Addr, Size: uint32(len(orig.Data)), EraseStart: r.Addr,
		EraseEnd: (r.Addr + n + sector - 1) &^ (sector - 1)}
	todo := []span{{0, n}}
	if !f.opts.NoDiff && f.canMD5() {
		var t []span
		err := f.recovering(ctx, &rr, func() (err error) {
			t, err = f.changedSpans(ctx, r, idx, total)
			return err
		})
		if err != nil {
			return rr, err
		}
		todo = t
		written := uint32(0)
		for _, s := range todo {
			written += s.hi - s.lo
		}
		rr.Skipped = n - written
		if rr.Skipped > 0 {
			f.opts.Logger.Debug("flash already holds part of the region", "addr", r.Addr, "skipped", rr.Skipped)
		}
	}
	for _, s := range todo {
		if err := f.writeSpanResuming(ctx, r, s, &rr, idx, total); err != nil {
			return rr, err
		}
	}
	if err := f.recovering(ctx, &rr, func() error { return f.verify(ctx, r, &rr, idx, total) }); err != nil {
		return rr, err
	}
	return rr, nil
}

// recovering runs fn and, when it fails in a way a re-sync may cure (a
// lost reply, a failure status), re-syncs and runs it again, counting
// against the region's resumes.
func (f *Flasher) recovering(ctx context.Context, rr *RegionResult, fn func() error) error {
	for {
		err := fn()
		if err == nil || ctx.Err() != nil || !resumable(err) || rr.Resumes >= f.maxResumes() {
			return err
		}
		rr.Resumes++
		if rerr := f.resync(ctx, err); rerr != nil {
			return fmt.Errorf("%w; then re-syncing failed: %w", err, rerr)
		}
		f.notice("%s; re-synced, trying again", Message(err))
	}
}

// changedSpans compares the flash with the region by SPI_FLASH_MD5: the
// whole region first (a re-flash of the same image costs one command),
// then sector by sector, and returns the runs of differing sectors.
func (f *Flasher) changedSpans(ctx context.Context, r Region, idx, total int) ([]span, error) {
	n := uint32(len(r.Data))
	f.progress(Progress{Stage: "compare", Addr: r.Addr, Region: idx, Regions: total, Total: int64(n)})
	got, err := f.FlashMD5(ctx, r.Addr, n)
	if err != nil {
		return nil, err
	}
	if got == md5.Sum(r.Data) {
		f.progress(Progress{Stage: "compare", Addr: r.Addr, Region: idx, Regions: total, Done: int64(n), Total: int64(n)})
		return nil, nil
	}
	if got == md5.Sum(bytes.Repeat([]byte{0xFF}, int(n))) {
		// Erased flash (a new chip, an erased slot): every sector that is
		// not all FF in the data differs; no need to ask sector by sector.
		return []span{{0, n}}, nil
	}
	var out []span
	for lo := uint32(0); lo < n; lo += sector {
		hi := min(lo+sector, n)
		same, err := f.holds(ctx, r, lo, hi)
		if err != nil {
			return nil, err
		}
		if !same {
			if k := len(out); k > 0 && out[k-1].hi == lo {
				out[k-1].hi = hi
			} else {
				out = append(out, span{lo, hi})
			}
		}
		f.progress(Progress{Stage: "compare", Addr: r.Addr, Region: idx, Regions: total, Done: int64(hi), Total: int64(n)})
	}
	return out, nil
}

// holds reports whether the flash at r.Addr+[lo, hi) holds r.Data[lo:hi].
func (f *Flasher) holds(ctx context.Context, r Region, lo, hi uint32) (bool, error) {
	got, err := f.FlashMD5(ctx, r.Addr+lo, hi-lo)
	if err != nil {
		return false, err
	}
	return got == md5.Sum(r.Data[lo:hi]), nil
}

// writeFailure is a block that failed after its retries.
type writeFailure struct {
	// acked is how many bytes of the span the ROM acknowledged (for an
	// uncompressed write: each block was programmed and checked).
	acked uint32
	err   error
}

func (e *writeFailure) Error() string { return e.err.Error() }
func (e *writeFailure) Unwrap() error { return e.err }

// resumable reports whether a failure may be cured by re-syncing and
// writing again: a lost or late reply, or a failure status.
func resumable(err error) bool {
	var ce *CommandError
	return errors.Is(err, ErrTimeout) || errors.As(err, &ce)
}

// writeSpanResuming writes r.Data[s.lo:s.hi] and resumes after failures.
func (f *Flasher) writeSpanResuming(ctx context.Context, r Region, s span, rr *RegionResult, idx, total int) error {
	lo := s.lo
	erased := false // the rest of the span is known to hold only FF
	for {
		err := f.writeSpan(ctx, r, span{lo, s.hi}, erased, rr, idx, total)
		if err == nil {
			return nil
		}
		var wf *writeFailure
		if ctx.Err() != nil || !errors.As(err, &wf) || !resumable(err) || rr.Resumes >= f.maxResumes() {
			return f.regionState(r, lo, s.hi, err, rr)
		}
		rr.Resumes++
		if rerr := f.resync(ctx, err); rerr != nil {
			return f.regionState(r, lo, s.hi, fmt.Errorf("%w; then re-syncing failed: %w", err, rerr), rr)
		}
		next, cerr := f.firstWrong(ctx, r, span{lo, s.hi}, wf.acked)
		if cerr != nil {
			return f.regionState(r, lo, s.hi, fmt.Errorf("%w; then finding where to continue failed: %w", err, cerr), rr)
		}
		f.notice("writing 0x%X..0x%X failed (%v); 0x%X..0x%X holds the right bytes, resuming at 0x%X (resume %d of at most %d)",
			r.Addr+lo, r.Addr+s.hi, Message(err), r.Addr+s.lo, r.Addr+next, r.Addr+next, rr.Resumes, f.maxResumes())
		if next >= s.hi {
			return nil
		}
		lo = next
		// The failed attempt erased the whole span and the ROM writes
		// compressed data only in whole windows, so the rest is usually
		// still erased: one MD5 shows it, and the resumed write need not
		// erase it again (see writeSpan).
		erased = false
		if f.canMD5() {
			if got, err := f.FlashMD5(ctx, r.Addr+lo, s.hi-lo); err == nil && got == md5.Sum(bytes.Repeat([]byte{0xFF}, int(s.hi-lo))) {
				erased = true
			}
		}
	}
}

func (f *Flasher) maxResumes() int {
	if f.opts.MaxResumes < 0 {
		return 0
	}
	if f.opts.MaxResumes == 0 {
		return 3
	}
	return f.opts.MaxResumes
}

// regionState wraps a final write failure with what the region holds now.
func (f *Flasher) regionState(r Region, lo, hi uint32, err error, rr *RegionResult) error {
	state := fmt.Sprintf("0x%X..0x%X not written", r.Addr+lo, r.Addr+hi-1)
	if lo > 0 {
		how := "written and verified"
		if !f.canMD5() {
			how = "written (each block checked by the ROM)"
		}
		state = fmt.Sprintf("0x%X..0x%X %s; 0x%X..0x%X not written", r.Addr, r.Addr+lo-1, how, r.Addr+lo, r.Addr+hi-1)
	}
	if rr.Resumes > 0 {
		state += fmt.Sprintf(", after %d resumes", rr.Resumes)
	}
	return fmt.Errorf("%w (region 0x%X: %s)", err, r.Addr, state)
}

// resync gets the ROM listening again after a failed block: a SYNC at the
// current rate (the ROM did not reset, so its UART is still there), and
// only when that fails a reconnect at 115200 (resetting where the port
// has lines) and a lower rate.
func (f *Flasher) resync(ctx context.Context, cause error) error {
	f.c.drain(ctx, 50*time.Millisecond, 500*time.Millisecond)
	if ok, err := f.syncAtThisRate(ctx); ok || err != nil {
		return err
	}
	if f.baud <= 115200 {
		if err := f.connect(ctx); err != nil {
			return err
		}
		f.attached = false
		return f.attach(ctx)
	}
	lower := 115200
	if steps := stepDown(f.baud); len(steps) > 1 {
		lower = steps[1]
	}
	f.notice("the link failed at %d Bd (%v); stepping down: back to 115200, then %d Bd", f.baud, Message(cause), lower)
	if err := f.reconnect(ctx); err != nil {
		return err
	}
	if lower > 115200 {
		if err := f.tryBaud(ctx, lower); err != nil {
			f.notice("no answer at %d Bd either; writing at 115200", lower)
			return f.reconnect(ctx)
		}
	}
	return nil
}

// firstWrong finds where to continue a failed span: the end of the
// longest prefix (in whole sectors) the flash already holds, found by
// bisection with SPI_FLASH_MD5. Without MD5 it trusts the ROM's per-block
// acknowledgements (each FLASH_DATA block is programmed and checked
// before the ROM answers).
func (f *Flasher) firstWrong(ctx context.Context, r Region, s span, acked uint32) (uint32, error) {
	if !f.canMD5() {
		return min(s.lo+acked&^(sector-1), s.hi), nil
	}
	// First guess: what the ROM acknowledged (for a compressed write, the
	// whole windows it flushed); one MD5 confirms it.
	// (A compressed stream's padding can inflate past the span: clamp.)
	if guess := min(s.lo+acked&^(sector-1), s.hi); guess > s.lo {
		if ok, err := f.holds(ctx, r, s.lo, guess); err != nil {
			return 0, err
		} else if ok {
			return guess, nil
		}
	}
	sectors := (s.hi - s.lo + sector - 1) / sector
	end := func(k uint32) uint32 { return min(s.lo+k*sector, s.hi) }
	// The first good sectors hold the right bytes, the first bad do not.
	good, bad := uint32(0), sectors
	if ok, err := f.holds(ctx, r, s.lo, s.hi); err != nil {
		return 0, err
	} else if ok {
		return s.hi, nil
	}
	for bad-good > 1 {
		mid := (good + bad) / 2
		ok, err := f.holds(ctx, r, s.lo, end(mid))
		if err != nil {
			return 0, err
		}
		if ok {
			good = mid
		} else {
			bad = mid
		}
	}
	return end(good), nil
}

// safeStream returns what to compress for data at addr so that no byte
// outside the region changes (see CompressSafe), or nil when the region
// must go uncompressed.
func (f *Flasher) safeStream(addr uint32, data []byte) []byte {
	if !f.canDeflate() {
		return nil
	}
	if f.opts.unsafeAlwaysCompress {
		return data
	}
	n := uint32(len(data))
	if n < MinCompressed {
		return nil
	}
	padded := (n+inflateWindow-1)/inflateWindow*inflateWindow + inflateWindow
	if limit := f.paramSize; limit == 0 || uint64(addr)+uint64(padded) > uint64(limit) {
		return nil
	}
	out := make([]byte, padded)
	copy(out, data)
	copy(out[n:], bytes.Repeat([]byte{0xFF}, int(padded-n)))
	return out
}

// writeSpan erases and writes r.Data[s.lo:s.hi] at r.Addr+s.lo (s.lo is
// sector aligned): compressed when safeStream allows, else uncompressed.
//
// erased says the flash under the span already holds only FF (checked by
// MD5). A compressed write then declares a single block, so the ROM
// erases only the first sector again: it writes inflated windows past the
// declared size anyway (§13.1), and onto erased flash they land as they
// are. The region's MD5 verify checks the result as always.
func (f *Flasher) writeSpan(ctx context.Context, r Region, s span, erased bool, rr *RegionResult, idx, total int) error {
	addr := r.Addr + s.lo
	data := r.Data[s.lo:s.hi]
	n := uint32(len(data))
	start := time.Now()
	pr := func(stage string, done, tot int64, t0 time.Time) {
		rate := 0.0
		if el := time.Since(t0).Seconds(); el > 0 {
			rate = float64(done) / el
		}
		f.progress(Progress{Stage: stage, Addr: addr, Region: idx, Regions: total, Done: done, Total: tot, Rate: rate})
	}
	var payload []byte
	compressed := false
	stream := data
	if st := f.safeStream(addr, data); st != nil {
		var zb bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&zb, zlib.BestCompression)
		zw.Write(st)
		zw.Close()
		if zb.Len() < len(data) {
			payload, compressed, stream = zb.Bytes(), true, st
		}
	}
	if !compressed {
		payload = data
	}
	blocks := (uint32(len(payload)) + romBlock - 1) / romBlock
	// Erase (the ROM erases the whole range when it gets BEGIN).
	pr("erase", 0, int64(n), start)
	eraseTimeout := f.perMB(f.opts.EraseTimeoutPerMB, uint64(n))
	var err error
	if compressed {
		// Declare the real data only, so only its sectors are erased;
		// the FF padding past it leaves the flash as it was.
		rounded := (n + romBlock - 1) / romBlock * romBlock
		if erased {
			rounded = romBlock
		}
		err = f.begin(ctx, OpFlashDeflBegin, rounded, blocks, romBlock, addr, eraseTimeout)
	} else {
		eraseSize := n
		if f.chip == firmware.ChipESP8266 {
			eraseSize = esp8266EraseSize(addr, n)
		}
		err = f.begin(ctx, OpFlashBegin, eraseSize, blocks, romBlock, addr, eraseTimeout)
	}
	if err != nil {
		return &writeFailure{err: f.opError(fmt.Sprintf("erase 0x%X..0x%X", addr, addr+n), err)}
	}
	pr("erase", int64(n), int64(n), start)
	wstart := time.Now()
	op := OpFlashData
	if compressed {
		op = OpFlashDeflData
	}
	ratio := float64(len(stream)) / float64(len(payload))
	for seq := uint32(0); seq < blocks; seq++ {
		lo := seq * romBlock
		hi := min(lo+romBlock, uint32(len(payload)))
		block := payload[lo:hi]
		if !compressed && len(block) < romBlock {
			block = append(block[:len(block):len(block)], bytes.Repeat([]byte{0xFF}, romBlock-len(block))...)
		}
		timeout := f.opts.CommandTimeout
		if compressed {
			// The ROM inflates and writes before answering: allow for
			// the uncompressed size this piece may expand to (twice the
			// average ratio, as data compresses unevenly).
			timeout = f.perMB(f.opts.EraseTimeoutPerMB, uint64(float64(len(block))*ratio*2))
		}
		pkt := make([]byte, 16+len(block))
		binary.LittleEndian.PutUint32(pkt, uint32(len(block)))
		binary.LittleEndian.PutUint32(pkt[4:], seq)
		copy(pkt[16:], block)
		var err error
		for try := range 3 {
			_, _, err = f.c.command(ctx, op, pkt, checksum(block), 0, timeout)
			var ce *CommandError
			if err == nil || !(errors.As(err, &ce) && ce.ROMCode == 0x07) || try == 2 {
				break
			}
			f.opts.Logger.Debug("block checksum error, sending again", "seq", seq)
		}
		if err != nil {
			acked := lo
			if compressed {
				acked = flushedWindows(payload[:lo])
			}
			return &writeFailure{acked: acked, err: f.opError(fmt.Sprintf("write block %d of %d at 0x%X", seq+1, blocks, addr), err)}
		}
		done := int64(min(uint64(float64(hi)*ratio), uint64(n)))
		if seq == blocks-1 {
			done = int64(n)
		}
		pr("write", done, int64(n), wstart)
	}
	rr.Written += n
	if compressed {
		rr.Compressed += n
	}
	return nil
}

// flushedWindows is how many bytes the ROM has written after receiving
// the compressed prefix z: it inflates as data arrives and writes whole
// 32 KiB windows (§13.1).
func flushedWindows(z []byte) uint32 {
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return 0
	}
	n, _ := io.Copy(io.Discard, zr)
	return uint32(n) &^ (inflateWindow - 1)
}

func (f *Flasher) verify(ctx context.Context, r Region, rr *RegionResult, idx, total int) error {
	n := uint32(len(r.Data))
	vstart := time.Now()
	f.progress(Progress{Stage: "verify", Addr: r.Addr, Region: idx, Regions: total, Done: 0, Total: int64(n)})
	want := md5.Sum(r.Data)
	var got [16]byte
	switch {
	case f.canMD5():
		g, err := f.FlashMD5(ctx, r.Addr, n)
		if err != nil {
			return err
		}
		got = g
		rr.Verify = "md5"
	case f.canRead():
		back, err := f.readFlash(ctx, r.Addr, n, "verify", idx, total)
		if err != nil {
			return err
		}
		got = md5.Sum(back)
		rr.Verify = "read-back"
	default:
		rr.Verify = "rom-block-check"
		rr.VerifiedStart, rr.VerifiedEnd = r.Addr, r.Addr+n
		f.notice("the %v ROM cannot read flash back; 0x%X..0x%X was checked only by the ROM's per-block write check", f.chip, r.Addr, r.Addr+n)
		return nil
	}
	if got != want {
		hint := "write again at a lower --baud (e.g. 115200); check the board's power supply (a powered hub, a short cable) and the flash chip"
		if got == md5.Sum(bytes.Repeat([]byte{0xFF}, int(n))) {
			hint = "the written region reads back empty (all FF): the flash did not take the data — check power and the flash chip, or flash encryption/write protection"
		}
		return withHint(fmt.Errorf("verify 0x%X..0x%X: %w (MD5 of flash %x, of data %x)", r.Addr, r.Addr+n, ErrVerify, got, want), hint)
	}
	rr.VerifiedStart, rr.VerifiedEnd = r.Addr, r.Addr+n
	el := time.Since(vstart).Seconds()
	f.progress(Progress{Stage: "verify", Addr: r.Addr, Region: idx, Regions: total, Done: int64(n), Total: int64(n), Rate: float64(n) / max(el, 1e-9)})
	return nil
}
