// Package slip is the SLIP framing used by the ESP ROM bootloader protocol
// (protocol-serial-rom.md §2.1): every packet travels as C0 … C0 with C0 and
// DB escaped as DB DC and DB DD.
//
// It is the only code the flasher (serialflash) and the simulated ROM
// (serialflash/romsim) share; it is pinned by test vectors and fuzzing so a
// bug here cannot hide behind both sides agreeing.
package slip

import "errors"

const (
	// End delimits frames.
	End = 0xC0
	// Esc starts an escape sequence.
	Esc = 0xDB
	// EscEnd after Esc stands for a payload C0.
	EscEnd = 0xDC
	// EscEsc after Esc stands for a payload DB.
	EscEsc = 0xDD
)

// ErrBadEscape reports a DB followed by something other than DC or DD; the
// frame it appeared in is dropped.
var ErrBadEscape = errors.New("slip: invalid escape sequence (DB not followed by DC or DD)")

// Encode appends the framed, escaped form of payload to dst and returns it.
func Encode(dst, payload []byte) []byte {
	dst = append(dst, End)
	for _, b := range payload {
		switch b {
		case End:
			dst = append(dst, Esc, EscEnd)
		case Esc:
			dst = append(dst, Esc, EscEsc)
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, End)
}

// maxNoise bounds how many out-of-frame bytes a Decoder keeps for
// diagnostics (boot logs, app output).
const maxNoise = 4096

// maxFrame bounds a frame's decoded size: requests carry at most 65535 data
// bytes plus an 8-byte header, so anything longer is line noise without an
// end delimiter and is dropped rather than buffered forever.
const maxFrame = 8 + 65535

// ErrFrameTooLong reports a frame that grew past any valid packet size.
var ErrFrameTooLong = errors.New("slip: frame longer than any valid packet")

// Decoder turns a byte stream into frames. Bytes seen outside frames are not
// part of the protocol (boot log, application output); the decoder keeps the
// most recent of them so a caller can show what was on the line.
// The zero value is ready to use. A Decoder is not safe for concurrent use.
type Decoder struct {
	inFrame bool
	esc     bool
	bad     error
	frame   []byte
	noise   []byte
}

// Feed decodes p and calls emit for every complete frame (err == nil) or for
// every frame dropped because of a protocol error (frame == nil). The frame
// slice is only valid during the call. Zero-length frames are skipped: a
// C0 C0 pair between frames is a close followed by an open.
func (d *Decoder) Feed(p []byte, emit func(frame []byte, err error)) {
	for _, b := range p {
		if !d.inFrame {
			if b == End {
				d.inFrame = true
				d.frame = d.frame[:0]
				d.esc, d.bad = false, nil
			} else {
				d.addNoise(b)
			}
			continue
		}
		if b == End {
			switch {
			case d.bad != nil:
				emit(nil, d.bad)
			case d.esc:
				emit(nil, ErrBadEscape)
			case len(d.frame) > 0:
				emit(d.frame, nil)
			default:
				// Empty frame: C0 C0. Stay in frame: the second C0 opened
				// a new one.
				continue
			}
			d.inFrame = false
			d.frame = d.frame[:0]
			d.esc, d.bad = false, nil
			continue
		}
		if d.bad != nil {
			continue
		}
		if d.esc {
			d.esc = false
			switch b {
			case EscEnd:
				b = End
			case EscEsc:
				b = Esc
			default:
				d.bad = ErrBadEscape
				continue
			}
		} else if b == Esc {
			d.esc = true
			continue
		}
		if len(d.frame) >= maxFrame {
			d.bad = ErrFrameTooLong
			continue
		}
		d.frame = append(d.frame, b)
	}
}

func (d *Decoder) addNoise(b byte) {
	if len(d.noise) >= maxNoise {
		copy(d.noise, d.noise[len(d.noise)-maxNoise/2:])
		d.noise = d.noise[:maxNoise/2]
	}
	d.noise = append(d.noise, b)
}

// Reset forgets any partial frame (after a baud change or a flush), keeping
// the collected noise.
func (d *Decoder) Reset() {
	d.inFrame, d.esc, d.bad = false, false, nil
	d.frame = d.frame[:0]
}

// Noise returns the out-of-frame bytes collected since the last call and
// forgets them.
func (d *Decoder) Noise() []byte {
	n := append([]byte(nil), d.noise...)
	d.noise = d.noise[:0]
	return n
}

// PeekNoise returns the collected out-of-frame bytes without forgetting them.
func (d *Decoder) PeekNoise() []byte {
	return append([]byte(nil), d.noise...)
}
