package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.bug.st/serial"

	"github.com/espdeck/espdeck/internal/arduinoproto"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/symbolize"
)

// The pluggable monitor protocol (arduino-cli
// docs/pluggable-monitor-specification.md, version 1), implemented from the
// specification: commands on stdin, one JSON answer each on stdout, the
// port's bytes over a TCP connection the tool makes to the IDE.

// monitorBauds are the rates offered to the IDE; 74880 is the ESP8266 ROM's.
var monitorBauds = []string{"300", "1200", "2400", "4800", "9600", "19200", "38400", "57600", "74880",
	"115200", "230400", "460800", "500000", "921600", "1000000", "2000000"}

type monitorParam struct {
	Label    string   `json:"label"`
	Type     string   `json:"type"`
	Value    []string `json:"value"`
	Selected string   `json:"selected"`
}

type monitorDescription struct {
	Protocol string                  `json:"protocol"`
	Params   map[string]monitorParam `json:"configuration_parameters"`
}

type monitorMessage struct {
	EventType       string              `json:"eventType"`
	ProtocolVersion int                 `json:"protocolVersion,omitempty"`
	Error           bool                `json:"error,omitempty"`
	Message         string              `json:"message"`
	Description     *monitorDescription `json:"port_description,omitempty"`
}

// monitorSession is one conversation with the IDE. At most one port is open.
type monitorSession struct {
	open func(ctx context.Context, name string, baud int) (monitor.Port, error)
	dial func(ctx context.Context, addr string) (net.Conn, error)

	out *arduinoproto.Writer

	hello bool
	baud  string
	sym   *symbolize.Symbolizer // set by --elf: decoding can be turned on
	// decode adds decoded crash addresses under the board's lines.
	decode bool

	mu      sync.Mutex
	port    monitor.Port
	conn    net.Conn
	closing bool // CLOSE or QUIT asked: no port_closed event
	pumps   sync.WaitGroup
}

func newMonitorSession(out io.Writer) *monitorSession {
	return &monitorSession{
		open: monitor.OpenSerial,
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return d.DialContext(ctx, "tcp", addr)
		},
		out:  arduinoproto.NewWriter(out),
		baud: "115200",
	}
}

func (m *monitorSession) write(msg monitorMessage) { m.out.Write(msg) }

// serve answers commands from in until QUIT, the end of in or ctx.
func (m *monitorSession) serve(ctx context.Context, in io.Reader) error {
	defer m.closePort()
	return arduinoproto.Serve(ctx, in, func(line string) bool { return m.handle(ctx, line) })
}

func monitorOK(event string) monitorMessage { return monitorMessage{EventType: event, Message: "OK"} }
func monitorFail(event, msg string) monitorMessage {
	return monitorMessage{EventType: event, Error: true, Message: msg}
}

// handle runs one command and reports whether it was QUIT.
func (m *monitorSession) handle(ctx context.Context, line string) bool {
	word, rest, _ := strings.Cut(line, " ")
	cmd := strings.ToUpper(word)
	if !m.hello && cmd != "HELLO" && cmd != "QUIT" {
		m.write(monitorFail("command_error", "First command must be HELLO"))
		return false
	}
	switch cmd {
	case "HELLO":
		if _, _, ok := arduinoproto.ParseHello(line); !ok {
			m.write(monitorFail("command_error", `Invalid HELLO command: expected HELLO <PROTOCOL_VERSION> "<USER_AGENT>"`))
			return false
		}
		m.hello = true
		m.write(monitorMessage{EventType: "hello", ProtocolVersion: 1, Message: "OK"})
	case "DESCRIBE":
		params := map[string]monitorParam{
			"baudrate": {Label: "Baudrate", Type: "enum", Value: monitorBauds, Selected: m.baud},
		}
		if m.sym != nil {
			params["decode"] = monitorParam{Label: "Decode crash addresses", Type: "enum", Value: []string{"on", "off"}, Selected: decodeSetting(m.decoding())}
		}
		m.write(monitorMessage{EventType: "describe", Message: "OK", Description: &monitorDescription{Protocol: "serial", Params: params}})
	case "CONFIGURE":
		name, value, _ := strings.Cut(strings.TrimSpace(rest), " ")
		value = strings.TrimSpace(value)
		switch {
		case name == "decode" && m.sym != nil:
			if value != "on" && value != "off" {
				m.write(monitorFail("configure", "invalid value for parameter decode: "+value+" (on or off)"))
				return false
			}
			m.mu.Lock()
			m.decode = value == "on"
			m.mu.Unlock()
			m.write(monitorOK("configure"))
		case name == "decode":
			m.write(monitorFail("configure", "decode needs the application's ELF: start the monitor with --elf APP.elf"))
		case name != "baudrate":
			m.write(monitorFail("configure", "unknown parameter "+name+" (this monitor has baudrate, and decode when started with --elf)"))
		case !slices.Contains(monitorBauds, value):
			m.write(monitorFail("configure", "invalid value for parameter baudrate: "+value))
		default:
			m.baud = value
			if err := m.applyBaud(); err != nil {
				m.write(monitorFail("configure", "baudrate "+value+" is kept for the next OPEN: "+err.Error()))
				return false
			}
			m.write(monitorOK("configure"))
		}
	case "OPEN":
		addr, port, _ := strings.Cut(strings.TrimSpace(rest), " ")
		port = strings.TrimSpace(port)
		if addr == "" || port == "" {
			m.write(monitorFail("open", "usage: OPEN <CLIENT_TCPIP_ADDRESS> <BOARD_PORT>"))
			return false
		}
		if err := m.openPort(ctx, addr, port); err != nil {
			m.write(monitorFail("open", err.Error()))
			return false
		}
		m.write(monitorOK("open"))
	case "CLOSE":
		if !m.closePort() {
			m.write(monitorFail("close", "port already closed"))
			return false
		}
		m.write(monitorOK("close"))
	case "QUIT":
		m.closePort()
		m.write(monitorOK("quit"))
		return true
	default:
		m.write(monitorFail("command_error", "Unknown command "+word))
	}
	return false
}

// applyBaud changes the open port's rate, if a port is open.
func (m *monitorSession) applyBaud() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.port == nil {
		return nil
	}
	b, _ := strconv.Atoi(m.baud)
	sp, ok := m.port.(interface{ SetMode(*serial.Mode) error })
	if !ok {
		return errors.New("this port's rate cannot be changed while it is open")
	}
	return sp.SetMode(&serial.Mode{BaudRate: b, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
}

// openPort opens the board's port, connects to the IDE and starts copying
// bytes both ways, unchanged.
func (m *monitorSession) openPort(ctx context.Context, addr, name string) error {
	m.mu.Lock()
	busy := m.port != nil
	m.mu.Unlock()
	if busy {
		return errors.New("a port is already open; CLOSE it first")
	}
	baud, _ := strconv.Atoi(m.baud)
	p, err := m.open(ctx, name, baud)
	if err != nil {
		msg := err.Error()
		var oe *monitor.OpenError
		if errors.As(err, &oe) {
			msg += " (" + oe.Hint() + ")"
		}
		return errors.New(msg)
	}
	conn, err := m.dial(ctx, addr)
	if err != nil {
		p.Close()
		return fmt.Errorf("cannot connect to the IDE at %s: %w", addr, err)
	}
	m.mu.Lock()
	m.port, m.conn, m.closing = p, conn, false
	m.mu.Unlock()
	m.pumps.Add(2)
	go m.pump(func() error { // board → IDE
		buf := make([]byte, 4096)
		dec := &lineDecoder{parser: monitor.NewParser(m.sym)}
		for {
			n, err := p.Read(buf)
			if err != nil {
				return fmt.Errorf("serial port %s: %w", name, err)
			}
			if n == 0 {
				continue
			}
			out := buf[:n]
			if m.sym != nil && m.decoding() {
				out = dec.feed(out)
			}
			if _, err := conn.Write(out); err != nil {
				return errors.New("lost TCP/IP connection with the client")
			}
		}
	})
	go m.pump(func() error { // IDE → board
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if _, werr := p.Write(buf[:n]); werr != nil {
					return fmt.Errorf("serial port %s: %w", name, werr)
				}
			}
			if err != nil {
				return errors.New("lost TCP/IP connection with the client")
			}
		}
	})
	return nil
}

func (m *monitorSession) decoding() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decode
}

// decodeSetting is the decode parameter's value for b.
func decodeSetting(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// lineDecoder passes bytes through unchanged and, after each complete line
// with code addresses of the ELF in it (a Backtrace, a register dump),
// inserts the decoded frames as indented lines.
type lineDecoder struct {
	parser *monitor.Parser
	line   []byte
}

// maxDecodeLine bounds the line kept for parsing: longer lines are passed
// on undecoded.
const maxDecodeLine = 4096

func (d *lineDecoder) feed(p []byte) []byte {
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			out = append(out, p...)
			if len(d.line)+len(p) <= maxDecodeLine {
				d.line = append(d.line, p...)
			} else {
				d.line = d.line[:0]
			}
			break
		}
		out = append(out, p[:i+1]...)
		if len(d.line)+i <= maxDecodeLine {
			d.line = append(d.line, p[:i]...)
			l := d.parser.Parse(strings.TrimRight(string(d.line), "\r"), time.Now())
			for _, dc := range l.Decoded {
				for _, s := range dc.Lines() {
					out = append(out, "  "+s+"\r\n"...)
				}
			}
		}
		d.line = d.line[:0]
		p = p[i+1:]
	}
	return out
}

// pump runs one copy direction; the first to fail closes both ends and,
// unless CLOSE asked for it, tells the IDE with a port_closed event.
func (m *monitorSession) pump(copyLoop func() error) {
	defer m.pumps.Done()
	err := copyLoop()
	m.mu.Lock()
	asked := m.closing
	port, conn := m.port, m.conn
	m.port, m.conn = nil, nil
	if port != nil {
		m.closing = true // the other direction ends quietly
	}
	m.mu.Unlock()
	if port != nil {
		port.Close()
		conn.Close()
	}
	if !asked && port != nil {
		m.write(monitorMessage{EventType: "port_closed", Message: err.Error()})
	}
}

// closePort closes the open port and connection and waits for the copies
// to end. It reports whether a port was open.
func (m *monitorSession) closePort() bool {
	m.mu.Lock()
	port, conn := m.port, m.conn
	m.port, m.conn = nil, nil
	m.closing = true
	m.mu.Unlock()
	if port != nil {
		port.Close()
		conn.Close()
	}
	m.pumps.Wait()
	return port != nil
}

// runArduinoMonitor serves the pluggable monitor protocol until QUIT or
// the end of stdin.
func runArduinoMonitor(c *cli, args []string) int {
	fs, cm := c.newFlags("arduino monitor", arduinoUsage)
	elfPath := fs.String("elf", c.getenv("ESPDECK_ELF"), "decode crash addresses with this application `ELF` (CONFIGURE decode on|off; default on)")
	if _, err := parse(fs, args); err != nil {
		return c.usageExit(err, args)
	}
	logger, closeLog, err := c.logger(cm)
	if err != nil {
		fmt.Fprintln(c.stderr, "espdeck arduino monitor:", err)
		return exitUsage
	}
	defer closeLog()
	m := newMonitorSession(c.stdout)
	if *elfPath != "" {
		sym, err := symbolize.Open(*elfPath)
		if err != nil {
			// The IDE shows stderr to nobody; the monitor still works.
			logger.Warn("crash decoding off: cannot read the ELF", "elf", *elfPath, "err", err)
		} else {
			m.sym, m.decode = sym, true
		}
	}
	if err := m.serve(c.ctx, c.stdin); err != nil && c.ctx.Err() == nil {
		logger.Error("arduino monitor ended", "err", err)
		return exitInternal
	}
	return exitOK
}
