package serialflash

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/espdeck/espdeck/serialflash/slip"
)

// streamPort is a byte source for fuzzing the reply matcher: reads hand
// out a fixed stream in small pieces, then fail with errDrained, so a
// matcher that needs more than the stream ends at once instead of at a
// wall-clock deadline (a 5 ms window failed on a loaded machine: 90 reads
// of 3 bytes took longer). Writes are discarded.
type streamPort struct {
	data  []byte
	piece int
}

func (p *streamPort) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, errDrained
	}
	n := min(len(b), p.piece, len(p.data))
	copy(b, p.data[:n])
	p.data = p.data[n:]
	return n, nil
}

// errDrained is the end of a streamPort's bytes.
var errDrained = errors.New("the test stream is drained")

func (p *streamPort) Write(b []byte) (int, error)        { return len(b), nil }
func (p *streamPort) SetReadTimeout(time.Duration) error { return nil }
func (p *streamPort) SetBaudRate(int) error              { return nil }
func (p *streamPort) SetDTR(bool) error                  { return ErrNoModemLines }
func (p *streamPort) SetRTS(bool) error                  { return ErrNoModemLines }
func (p *streamPort) ResetInputBuffer() error            { return nil }
func (p *streamPort) Close() error                       { return io.EOF }

// The reply matcher (SLIP decoding, frame parsing, matching by opcode,
// the ESP32's unsupported-command shape) on a stream of noise around the
// real reply: it never panics, always ends, and finds the reply whenever
// the noise cannot form a frame (holds no C0).
func FuzzReplyMatcher(f *testing.F) {
	f.Add([]byte("ets Jul 29 2019 12:21:46\r\nrst:0x1 (POWERON_RESET),boot:0x3\r\n"), []byte{}, uint8(0x13), uint16(7))
	f.Add([]byte{0xC0, 0x01, 0x02}, []byte{0xDB, 0xC0, 0xC0}, uint8(0x0A), uint16(1))
	f.Add(bytes.Repeat([]byte{0x55}, 300), []byte("I (1234) app: hello\r\n"), uint8(0x03), uint16(64))
	f.Add([]byte{0xC0, 0x01, 0x0A, 0x02, 0x00, 0, 0, 0, 0, 0x01, 0x05, 0xC0}, []byte{}, uint8(0x13), uint16(3))
	f.Fuzz(func(t *testing.T, before, after []byte, op uint8, piece uint16) {
		if op == 0 {
			op = 0x0A
		}
		value := uint32(0x12345678)
		reply := make([]byte, 8, 12)
		reply[0], reply[1] = 1, op
		binary.LittleEndian.PutUint16(reply[2:], 4)
		binary.LittleEndian.PutUint32(reply[4:], value)
		reply = append(reply, 0, 0, 0, 0)
		stream := append(append(append([]byte(nil), before...), slip.Encode(nil, reply)...), after...)
		port := &streamPort{data: stream, piece: int(piece%97) + 1}
		c := newConn(port, slog.New(slog.DiscardHandler))
		// The deadline only guards against a hang: the stream's end is
		// errDrained, not a clock.
		r, err := c.exchange(context.Background(), Opcode(op), nil, 0, time.Minute)
		if bytes.IndexByte(before, 0xC0) >= 0 {
			// Noise with frame delimiters may form frames of its own; the
			// matcher must end either way with a reply, a status or a timeout.
			var ce *CommandError
			if err != nil && !errors.Is(err, ErrTimeout) && !errors.Is(err, errDrained) && !errors.As(err, &ce) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("reply not found behind %d bytes of noise: %v", len(before), err)
		}
		if r.op != Opcode(op) || r.value != value {
			t.Fatalf("matched the wrong frame: op %v value %#x", r.op, r.value)
		}
	})
}
