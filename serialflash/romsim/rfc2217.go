package romsim

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// RFC 2217 (Telnet Com Port Control Option) as a serial server speaks it:
// data over Telnet with IAC doubled, and the client's SET-BAUDRATE and
// SET-CONTROL (DTR/RTS) subnegotiations applied to the simulated chip, so a
// client resets the chip and changes the rate through the protocol.
const (
	iac, sb, se, will, wont, do, dont = 0xFF, 0xFA, 0xF0, 0xFB, 0xFC, 0xFD, 0xFE
	comPortOption                     = 44
)

// StartRFC2217 starts a simulated ROM for cfg.Chip behind an RFC 2217
// server on addr (loopback only; "" = 127.0.0.1 on a free port): connect
// with rfc2217://ADDR. Connections are served one at a time; the flash
// persists. The rate the client sets is the host rate (a mismatch with
// the ROM's garbles bytes, as on a wire) and DTR/RTS drive the board's
// auto-reset circuit.
func StartRFC2217(ctx context.Context, cfg Config, addr string) (listenAddr string, rom *ROM, stop func(), err error) {
	p, err := ProfileFor(cfg.Chip)
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := listenLoopback(addr)
	if err != nil {
		return "", nil, nil, err
	}
	var hostBaud atomic.Int64
	hostBaud.Store(115200)
	cfg.HostBaud = func() int { return int(hostBaud.Load()) }
	rom = New(p, cfg)
	stop = serveOneAtATime(ctx, ln, rom, func(c net.Conn) io.ReadWriter {
		hostBaud.Store(115200)
		return &telnetConn{c: c, rom: rom, baud: &hostBaud}
	})
	return ln.Addr().String(), rom, stop, nil
}

// telnetConn is the server side of one RFC 2217 session.
type telnetConn struct {
	c    net.Conn
	rom  *ROM
	baud *atomic.Int64
	wmu  sync.Mutex
	// parser state (only the Serve reader goroutine reads)
	st       int
	verb     byte
	sub      []byte
	dtr, rts bool
	buf      [4096]byte
}

func (t *telnetConn) Read(p []byte) (int, error) {
	for {
		n, err := t.c.Read(t.buf[:min(len(p), len(t.buf))])
		out := 0
		for _, b := range t.buf[:n] {
			if t.feed(b) {
				p[out] = b
				out++
			}
		}
		if out > 0 || err != nil {
			if err == nil || out > 0 {
				return out, nil
			}
			return 0, err
		}
	}
}

// feed runs the Telnet parser on b and reports whether b is payload.
func (t *telnetConn) feed(b byte) bool {
	switch t.st {
	case 0:
		if b == iac {
			t.st = 1
			return false
		}
		return true
	case 1:
		switch b {
		case iac:
			t.st = 0
			return true
		case sb:
			t.sub, t.st = t.sub[:0], 3
		case will, wont, do, dont:
			t.verb, t.st = b, 2
		default:
			t.st = 0
		}
	case 2:
		t.negotiate(t.verb, b)
		t.st = 0
	case 3:
		if b == iac {
			t.st = 4
		} else if len(t.sub) < 64 {
			t.sub = append(t.sub, b)
		}
	case 4:
		if b == se {
			t.subneg(t.sub)
			t.st = 0
		} else {
			t.sub = append(t.sub, b)
			t.st = 3
		}
	}
	return false
}

// negotiate agrees to binary, suppress-go-ahead and the com port option.
func (t *telnetConn) negotiate(verb, opt byte) {
	ok := opt == 0 || opt == 3 || opt == comPortOption
	switch verb {
	case will:
		if ok {
			t.send([]byte{iac, do, opt})
		} else {
			t.send([]byte{iac, dont, opt})
		}
	case do:
		if ok {
			t.send([]byte{iac, will, opt})
		} else {
			t.send([]byte{iac, wont, opt})
		}
	}
}

// subneg applies a com port command and acknowledges it (server codes are
// the client's plus 100).
func (t *telnetConn) subneg(s []byte) {
	if len(s) < 2 || s[0] != comPortOption {
		return
	}
	cmd, arg := s[1], s[2:]
	switch {
	case cmd == 1 && len(arg) == 4:
		if v := binary.BigEndian.Uint32(arg); v > 0 {
			t.baud.Store(int64(v))
		}
	case cmd == 5 && len(arg) == 1:
		switch arg[0] {
		case 8, 9:
			t.dtr = arg[0] == 8
		case 11, 12:
			t.rts = arg[0] == 11
		}
		t.rom.SetLines(t.dtr, t.rts)
	}
	ack := []byte{iac, sb, comPortOption, cmd + 100}
	for _, b := range arg {
		ack = append(ack, b)
		if b == iac {
			ack = append(ack, iac)
		}
	}
	t.send(append(ack, iac, se))
}

func (t *telnetConn) send(b []byte) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.c.Write(b)
}

// Write escapes IAC in the ROM's output.
func (t *telnetConn) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p)+8)
	for _, b := range p {
		out = append(out, b)
		if b == iac {
			out = append(out, iac)
		}
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if _, err := t.c.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

var _ io.ReadWriter = (*telnetConn)(nil)
