package serialflash

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Request packet layout (§2.2): direction 00, opcode, u16 size, u32 checksum, data.

// encodeRequest builds a request packet (before SLIP framing).
func encodeRequest(op Opcode, data []byte, chk uint32) []byte {
	p := make([]byte, 8, 8+len(data))
	p[0], p[1] = 0x00, byte(op)
	binary.LittleEndian.PutUint16(p[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(p[4:], chk)
	return append(p, data...)
}

// checksum is the data checksum of §2.5: 0xEF XOR every byte.
func checksum(p []byte) uint32 {
	c := byte(0xEF)
	for _, b := range p {
		c ^= b
	}
	return uint32(c)
}

// response is one decoded reply frame (§2.3).
type response struct {
	op    Opcode
	value uint32
	data  []byte // output followed by the status bytes
}

// errNotResponse marks a frame that is not a reply (wrong direction, too
// short, size field disagreeing with the frame).
var errNotResponse = errors.New("not a response frame")

// parseResponse decodes a SLIP-decoded frame as a reply.
func parseResponse(frame []byte) (response, error) {
	if len(frame) < 8 || frame[0] != 0x01 {
		return response{}, errNotResponse
	}
	size := int(binary.LittleEndian.Uint16(frame[2:]))
	if size != len(frame)-8 {
		return response{}, fmt.Errorf("%w: size field %d, frame carries %d bytes", errNotResponse, size, len(frame)-8)
	}
	return response{op: Opcode(frame[1]), value: binary.LittleEndian.Uint32(frame[4:]), data: frame[8:]}, nil
}

// errShortResponse is a success status without the expected output.
var errShortResponse = errors.New("short response")

// status applies the rules of §2.4: the two status bytes sit right after
// the expected output (respLen bytes), whatever the status length of the
// ROM family; extra trailing bytes are ignored.
func (r response) status(respLen int) (out []byte, err error) {
	if len(r.data) < respLen+2 {
		if len(r.data) >= 2 && r.data[0] != 0 {
			return nil, &CommandError{Op: r.op, Status: r.data[0], ROMCode: r.data[1]}
		}
		return nil, fmt.Errorf("%v: %w: %d data bytes, want %d output bytes and a status", r.op, errShortResponse, len(r.data), respLen)
	}
	if st := r.data[respLen]; st != 0 {
		return nil, &CommandError{Op: r.op, Status: st, ROMCode: r.data[respLen+1]}
	}
	return r.data[:respLen], nil
}

// unsupportedShape reports whether a reply to another opcode is the ROM's
// "unsupported command" answer, which reuses the previous reply's opcode
// on the real ESP32 ROM (§2.7, §13).
func (r response) unsupportedShape() bool {
	return len(r.data) >= 2 && r.data[0] != 0 && r.data[1] == 0x05
}
