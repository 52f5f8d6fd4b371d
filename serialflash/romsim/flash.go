package romsim

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/espdeck/espdeck/firmware"
)

const sectorSize = 0x1000

// writeOp is an open FLASH_BEGIN or FLASH_DEFL_BEGIN.
type writeOp struct {
	compressed bool
	offset     uint32
	size       uint32 // bytes erased (uncompressed size for DEFL)
	blocks     uint32
	blockSize  uint32
	seq        uint32
	written    uint32 // uncompressed bytes inflated so far (DEFL)
	// fill is how many bytes of the current 32 KiB window the inflater
	// has put into the ROM's output buffer (DEFL).
	fill uint32
	// flushed says the end-of-stream write of the buffer happened.
	flushed bool
}

// inflateWindow is the ROM's inflate output buffer (§13.1): FLASH_DEFL
// output reaches the flash only in whole windows of this size, counted
// from the region start.
const inflateWindow = 0x8000

// staleRAM is what the ROM's inflate buffer holds before the first
// compressed write after power-on: RAM left-overs, never FF, so that a
// test sees every byte the window writes beyond the data.
func staleRAM() []byte {
	b := make([]byte, inflateWindow)
	x := uint32(0x3FFE0000)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x>>24) &^ 0x01 // never FF: an FF would hide damage
	}
	return b
}

// esp8266Erased models the ESP8266 ROM's erase-size bug (§3.3.5): asked to
// erase m sectors from a start that leaves head sectors to the next 64 KB
// block, it erases 2m sectors when m ≤ head and m+head otherwise.
func esp8266Erased(offset, eraseSize uint32) uint32 {
	m := (eraseSize + sectorSize - 1) / sectorSize
	head := 16 - (offset/sectorSize)%16
	if m <= head {
		return 2 * m * sectorSize
	}
	return (m + head) * sectorSize
}

func (s *session) begin(op byte, data []byte) {
	r := s.r
	if len(data) != 16 && !(len(data) == 20 && r.p.Begin20) {
		s.reply(op, 0, nil, errInvalidFormat)
		return
	}
	size := binary.LittleEndian.Uint32(data)
	blocks := binary.LittleEndian.Uint32(data[4:])
	blockSize := binary.LittleEndian.Uint32(data[8:])
	offset := binary.LittleEndian.Uint32(data[12:])
	s.stopInflater()
	r.mu.Lock()
	if r.p.Chip == firmware.ChipESP8266 {
		r.attached = true // FLASH_BEGIN attaches the flash on ESP8266
	}
	if !r.attached {
		r.mu.Unlock()
		s.reply(op, 0, nil, errFailed)
		return
	}
	erase := size
	if r.p.Chip == firmware.ChipESP8266 && size > 0 {
		erase = esp8266Erased(offset, size)
	}
	limit := min(r.chipSize, uint32(len(r.flash)))
	if uint64(offset)+uint64(size) > uint64(limit) {
		r.mu.Unlock()
		s.reply(op, 0, nil, errFailed)
		return
	}
	start := offset &^ (sectorSize - 1)
	end := min(uint64(offset)+uint64(erase), uint64(len(r.flash)))
	sectors := 0
	if size > 0 {
		for a := uint64(start); a < end; a += sectorSize {
			copy(r.flash[a:min(a+sectorSize, uint64(len(r.flash)))], ff[:])
			sectors++
		}
	}
	r.wr = &writeOp{compressed: op == opFlashDeflBegin, offset: offset, size: size, blocks: blocks, blockSize: blockSize}
	r.mu.Unlock()
	s.busy(time.Duration(sectors) * r.cfg.EraseSectorTime)
	s.reply(op, 0, nil, 0)
}

var ff = bytes.Repeat([]byte{0xFF}, sectorSize)

// busy models time the ROM spends on the flash chip before replying.
func (s *session) busy(d time.Duration) {
	if d > 0 {
		s.catchUp()
		s.vt = s.vt.Add(d)
		s.sleepUntil(s.vt)
	}
}

func checksum(p []byte) uint32 {
	c := byte(0xEF)
	for _, b := range p {
		c ^= b
	}
	return uint32(c)
}

func (s *session) data(op byte, chk uint32, data []byte) {
	r := s.r
	r.mu.Lock()
	wr := r.wr
	r.dataN++
	n := r.dataN
	f := r.faults
	r.mu.Unlock()
	if wr == nil || wr.compressed != (op == opFlashDeflData) || len(data) < 16 {
		s.reply(op, 0, nil, errInvalidFormat)
		return
	}
	blen := binary.LittleEndian.Uint32(data)
	seq := binary.LittleEndian.Uint32(data[4:])
	block := data[16:]
	if uint32(len(block)) != blen || blen > wr.blockSize {
		s.reply(op, 0, nil, errInvalidFormat)
		return
	}
	if checksum(block) != chk || f.CorruptChecksumNth == n {
		s.reply(op, 0, nil, errChecksum)
		return
	}
	if f.ErrorDataNth == n && f.ErrorCode != 0 {
		s.reply(op, 0, nil, f.ErrorCode)
		return
	}
	if seq != wr.seq || seq >= wr.blocks {
		s.reply(op, 0, nil, errInvalidFormat)
		return
	}
	wr.seq++
	if f.FailFlashDataNth == n || (f.FailFlashDataFromNth > 0 && n >= f.FailFlashDataFromNth) {
		s.reply(op, 0, nil, errFlashWrite)
		return
	}
	if !wr.compressed {
		addr := wr.offset + seq*wr.blockSize
		if code := s.program(addr, block); code != 0 {
			s.reply(op, 0, nil, code)
			return
		}
		s.reply(op, 0, nil, 0)
		return
	}
	if s.inf == nil {
		s.inf = newInflater()
	}
	produced, done, err := s.inf.feed(block, wr.seq == wr.blocks)
	if code := s.window(wr, produced, done && err == nil); code != 0 {
		s.reply(op, 0, nil, code)
		return
	}
	switch {
	case errors.Is(err, zlib.ErrChecksum):
		s.reply(op, 0, nil, errAdler)
	case err != nil:
		s.reply(op, 0, nil, errDeflate)
	default:
		_ = done
		s.reply(op, 0, nil, 0)
	}
}

// window moves inflated bytes into the ROM's 32 KiB output buffer and
// writes the buffer to flash the way the ESP32 ROM was observed to do it
// (§13.1): each window whole when it fills, at region start + k·32 KiB,
// and at the end of the stream the buffer once more, whole, at the next
// window position — stale bytes included, even when the data ended on a
// window boundary. The ROM does not check the inflated size against the
// size FLASH_DEFL_BEGIN declared, nor read window writes back.
func (s *session) window(wr *writeOp, produced []byte, ended bool) byte {
	r := s.r
	for len(produced) > 0 {
		n := copy(r.inflateBuf[wr.fill:], produced)
		produced = produced[n:]
		wr.fill += uint32(n)
		wr.written += uint32(n)
		if wr.fill == inflateWindow {
			if code := s.programWindow(wr.offset + wr.written - inflateWindow); code != 0 {
				return code
			}
			wr.fill = 0
		}
	}
	if ended && !wr.flushed {
		wr.flushed = true
		return s.programWindow(wr.offset + wr.written - wr.fill)
	}
	return 0
}

// programWindow writes the whole output buffer at addr with NOR semantics
// and no read-back check; bytes past the end of the flash are dropped.
func (s *session) programWindow(addr uint32) byte {
	r := s.r
	r.mu.Lock()
	limit := uint64(min(r.chipSize, uint32(len(r.flash))))
	if uint64(addr) >= limit {
		r.mu.Unlock()
		return 0
	}
	n := min(uint64(inflateWindow), limit-uint64(addr))
	for i := range n {
		r.flash[uint64(addr)+i] &= r.inflateBuf[i]
	}
	r.mu.Unlock()
	s.busy(time.Duration(n) * r.cfg.ProgramByteTime)
	return 0
}

// program writes p at addr with NOR semantics (bits only go from 1 to 0)
// and checks the result as the ROM does (error 08 on mismatch).
func (s *session) program(addr uint32, p []byte) byte {
	r := s.r
	r.mu.Lock()
	if uint64(addr)+uint64(len(p)) > uint64(len(r.flash)) {
		r.mu.Unlock()
		return errFailed
	}
	ok := true
	for i, b := range p {
		r.flash[int(addr)+i] &= b
		if r.flash[int(addr)+i] != b {
			ok = false
		}
	}
	r.mu.Unlock()
	s.busy(time.Duration(len(p)) * r.cfg.ProgramByteTime)
	if !ok {
		return errFlashWrite
	}
	return 0
}

func (s *session) end(op byte, data []byte) {
	r := s.r
	if len(data) < 4 {
		s.reply(op, 0, nil, errInvalidFormat)
		return
	}
	flag := binary.LittleEndian.Uint32(data)
	s.reply(op, 0, nil, 0)
	s.stopInflater()
	r.mu.Lock()
	r.wr = nil
	if flag == 1 {
		r.st = stateApp // leave the loader: the app runs
		r.mu.Unlock()
		if len(r.cfg.AppLog) > 0 {
			s.send(r.cfg.AppLog)
		}
		return
	}
	r.st = stateReset
	r.dtr, r.rts = true, false
	r.bootAt = time.Now()
	r.mu.Unlock()
}

func (s *session) md5(data []byte) {
	r := s.r
	if len(data) != 16 {
		s.reply(opSPIFlashMD5, 0, nil, errInvalidFormat)
		return
	}
	addr := binary.LittleEndian.Uint32(data)
	size := binary.LittleEndian.Uint32(data[4:])
	r.mu.Lock()
	if !r.attached {
		r.mu.Unlock()
		s.reply(opSPIFlashMD5, 0, nil, errFailed)
		return
	}
	if uint64(addr)+uint64(size) > uint64(min(r.chipSize, uint32(len(r.flash)))) {
		r.mu.Unlock()
		s.reply(opSPIFlashMD5, 0, nil, errFailed)
		return
	}
	sum := md5.Sum(r.flash[addr : addr+size])
	wrong := r.faults.WrongMD5
	r.mu.Unlock()
	if wrong {
		sum[0] ^= 0xFF
	}
	out := make([]byte, 32)
	hex.Encode(out, sum[:])
	// Reading takes time too: model it as programming speed / 8.
	s.busy(time.Duration(size) * r.cfg.ProgramByteTime / 8)
	s.reply(opSPIFlashMD5, 0, out, 0)
}

func (s *session) readSlow(data []byte) {
	r := s.r
	if len(data) < 8 {
		s.reply(opReadFlashSlow, 0, nil, errInvalidFormat)
		return
	}
	addr := binary.LittleEndian.Uint32(data)
	n := binary.LittleEndian.Uint32(data[4:])
	if n > 64 {
		s.reply(opReadFlashSlow, 0, nil, errReadLength)
		return
	}
	out := make([]byte, 64)
	r.mu.Lock()
	if !r.attached || uint64(addr)+uint64(n) > uint64(min(r.chipSize, uint32(len(r.flash)))) {
		r.mu.Unlock()
		s.reply(opReadFlashSlow, 0, nil, errFailed)
		return
	}
	copy(out, r.flash[addr:addr+n])
	r.mu.Unlock()
	s.reply(opReadFlashSlow, 0, out, 0)
}

// inflater decompresses one zlib stream fed piece by piece, as the ROM's
// own inflater does: a goroutine runs the decompressor and blocks for input
// whenever it has consumed everything sent so far.
type inflater struct {
	pieces chan []byte
	need   chan struct{}
	done   chan error
	quit   chan struct{}
	exited chan struct{}
	mu     sync.Mutex
	out    []byte
	wants  bool
	result error
	ended  bool
}

// source is the decompressor's input: it hands out the bytes of the pieces
// and asks for the next one when they run out.
type source struct {
	f   *inflater
	cur []byte
}

func (s *source) fill() error {
	for len(s.cur) == 0 {
		select {
		case s.f.need <- struct{}{}:
		case <-s.f.quit:
			return io.ErrUnexpectedEOF
		}
		select {
		case p := <-s.f.pieces:
			s.cur = p
		case <-s.f.quit:
			return io.ErrUnexpectedEOF
		}
	}
	return nil
}

func (s *source) Read(p []byte) (int, error) {
	if err := s.fill(); err != nil {
		return 0, err
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

func (s *source) ReadByte() (byte, error) {
	if err := s.fill(); err != nil {
		return 0, err
	}
	b := s.cur[0]
	s.cur = s.cur[1:]
	return b, nil
}

func newInflater() *inflater {
	f := &inflater{pieces: make(chan []byte), need: make(chan struct{}), done: make(chan error, 1),
		quit: make(chan struct{}), exited: make(chan struct{})}
	go f.run()
	return f
}

func (f *inflater) run() {
	defer close(f.exited)
	zr, err := zlib.NewReader(&source{f: f})
	if err != nil {
		f.done <- err
		return
	}
	buf := make([]byte, 4096)
	for {
		n, err := zr.Read(buf)
		if n > 0 {
			f.mu.Lock()
			f.out = append(f.out, buf[:n]...)
			f.mu.Unlock()
		}
		if err == io.EOF {
			f.done <- nil
			return
		}
		if err != nil {
			f.done <- err
			return
		}
	}
}

// wait blocks until the decompressor wants input or has finished.
func (f *inflater) wait() {
	if f.ended {
		return
	}
	select {
	case <-f.need:
		f.wants = true
	case err := <-f.done:
		f.ended, f.result = true, err
	}
}

// feed hands piece to the decompressor and returns the output it produced
// so far. done is true once the stream ended (err says how).
func (f *inflater) feed(piece []byte, last bool) (produced []byte, done bool, err error) {
	if !f.wants {
		f.wait()
	}
	if f.ended {
		if f.result == nil {
			return nil, true, errors.New("data after the end of the zlib stream")
		}
		return nil, true, f.result
	}
	f.wants = false
	f.pieces <- piece
	f.wait()
	f.mu.Lock()
	produced, f.out = f.out, nil
	f.mu.Unlock()
	return produced, f.ended, f.result
}

// close stops the decompressor goroutine and waits for it.
func (f *inflater) close() {
	close(f.quit)
	<-f.exited
}

func (s *session) stopInflater() {
	if s.inf != nil {
		s.inf.close()
		s.inf = nil
	}
}
