package serialflash

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Telnet and RFC 2217 (Telnet Com Port Control Option) codes.
const (
	telIAC  = 0xFF
	telDONT = 0xFE
	telDO   = 0xFD
	telWONT = 0xFC
	telWILL = 0xFB
	telSB   = 0xFA
	telSE   = 0xF0

	telBinary  = 0
	telSGA     = 3
	telComPort = 44

	cpSetBaud     = 1
	cpSetDataSize = 2
	cpSetParity   = 3
	cpSetStopSize = 4
	cpSetControl  = 5
	cpPurgeData   = 12

	ctlDTROn  = 8
	ctlDTROff = 9
	ctlRTSOn  = 11
	ctlRTSOff = 12
)

// rfc2217Port is a serial port behind an RFC 2217 server (ser2net,
// esptool's esp_rfc2217_server, a networked console server): data over
// Telnet, with the baud rate and DTR/RTS set through the protocol.
type rfc2217Port struct {
	c       net.Conn
	timeout time.Duration
	// in is decoded payload not yet handed to Read.
	in  []byte
	raw []byte
	// parse state of the Telnet stream
	state int
	sb    []byte
	wmu   sync.Mutex
}

const (
	tsData = iota
	tsIAC
	tsOpt // after WILL/WONT/DO/DONT: the option byte follows
	tsSB
	tsSBIAC
)

func openRFC2217(ctx context.Context, hostport string) (Port, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", hostport)
	if err != nil {
		return nil, withHint(fmt.Errorf("connect to rfc2217://%s: %w", hostport, ErrPortNotFound),
			"check that the RFC 2217 server (ser2net, esp_rfc2217_server) is running and listening on that address")
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true) // the ROM answers byte by byte (§13)
	}
	p := &rfc2217Port{c: c, timeout: 100 * time.Millisecond, raw: make([]byte, 4096)}
	// Offer binary transfer both ways and the Com Port option; set the
	// line to 115200 8N1 as a serial port opens.
	hello := []byte{telIAC, telWILL, telBinary, telIAC, telDO, telBinary, telIAC, telWILL, telSGA, telIAC, telDO, telSGA,
		telIAC, telWILL, telComPort}
	if err := p.send(hello); err != nil {
		c.Close()
		return nil, fmt.Errorf("rfc2217://%s: %w", hostport, err)
	}
	for _, sub := range [][]byte{baudSub(115200), {cpSetDataSize, 8}, {cpSetParity, 1}, {cpSetStopSize, 1}} {
		if err := p.subneg(sub); err != nil {
			c.Close()
			return nil, fmt.Errorf("rfc2217://%s: %w", hostport, err)
		}
	}
	return p, nil
}

func baudSub(baud int) []byte {
	b := []byte{cpSetBaud, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(baud))
	return b
}

func (p *rfc2217Port) send(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := p.c.Write(b)
	return err
}

// subneg sends IAC SB COM-PORT-OPTION data IAC SE, doubling IAC in data.
func (p *rfc2217Port) subneg(data []byte) error {
	out := []byte{telIAC, telSB, telComPort}
	for _, b := range data {
		out = append(out, b)
		if b == telIAC {
			out = append(out, telIAC)
		}
	}
	return p.send(append(out, telIAC, telSE))
}

// Read returns payload bytes; Telnet commands are answered or dropped. It
// waits at most the read timeout and then returns (0, nil) like a serial
// port.
func (p *rfc2217Port) Read(b []byte) (int, error) {
	deadline := time.Now().Add(p.timeout)
	for len(p.in) == 0 {
		p.c.SetReadDeadline(deadline)
		n, err := p.c.Read(p.raw)
		p.decode(p.raw[:n])
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			break
		}
		if err != nil {
			if len(p.in) > 0 {
				break
			}
			return 0, err
		}
	}
	n := copy(b, p.in)
	p.in = p.in[n:]
	return n, nil
}

func (p *rfc2217Port) decode(raw []byte) {
	for _, c := range raw {
		switch p.state {
		case tsData:
			if c == telIAC {
				p.state = tsIAC
			} else {
				p.in = append(p.in, c)
			}
		case tsIAC:
			switch c {
			case telIAC:
				p.in = append(p.in, telIAC)
				p.state = tsData
			case telSB:
				p.sb = p.sb[:0]
				p.state = tsSB
			case telWILL, telWONT, telDO, telDONT:
				p.state = tsOpt
				p.sb = append(p.sb[:0], c) // the verb, for tsOpt
			default:
				p.state = tsData
			}
		case tsOpt:
			p.answer(p.sb[0], c)
			p.state = tsData
		case tsSB:
			if c == telIAC {
				p.state = tsSBIAC
			} else if len(p.sb) < 64 {
				p.sb = append(p.sb, c)
			}
		case tsSBIAC:
			if c == telSE {
				p.state = tsData // server notifications (line/modem state) are not needed
			} else {
				// IAC IAC is an escaped 0xFF; the same bound as tsSB,
				// or a peer sending IAC x pairs grows sb forever.
				if len(p.sb) < 64 {
					p.sb = append(p.sb, c)
				}
				p.state = tsSB
			}
		}
	}
}

// answer refuses options we did not offer; offered ones need no reply.
func (p *rfc2217Port) answer(verb, opt byte) {
	offered := opt == telBinary || opt == telSGA || opt == telComPort
	switch {
	case verb == telDO && !offered:
		p.send([]byte{telIAC, telWONT, opt})
	case verb == telWILL && !offered:
		p.send([]byte{telIAC, telDONT, opt})
	}
}

func (p *rfc2217Port) Write(b []byte) (int, error) {
	out := make([]byte, 0, len(b)+8)
	for _, c := range b {
		out = append(out, c)
		if c == telIAC {
			out = append(out, telIAC)
		}
	}
	if err := p.send(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *rfc2217Port) SetReadTimeout(d time.Duration) error { p.timeout = d; return nil }
func (p *rfc2217Port) SetBaudRate(baud int) error           { return p.subneg(baudSub(baud)) }
func (p *rfc2217Port) SetDTR(on bool) error {
	v := byte(ctlDTROff)
	if on {
		v = ctlDTROn
	}
	return p.subneg([]byte{cpSetControl, v})
}
func (p *rfc2217Port) SetRTS(on bool) error {
	v := byte(ctlRTSOff)
	if on {
		v = ctlRTSOn
	}
	return p.subneg([]byte{cpSetControl, v})
}
func (p *rfc2217Port) ResetInputBuffer() error {
	p.subneg([]byte{cpPurgeData, 1})
	p.in = p.in[:0]
	return nil
}
func (p *rfc2217Port) Close() error { return p.c.Close() }
