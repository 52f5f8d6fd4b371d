package serialflash

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Port is the link to the chip: a serial device or a TCP socket. Read
// returns (0, nil) when the read timeout passes without data.
type Port interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadTimeout(d time.Duration) error
	SetBaudRate(baud int) error
	// SetDTR and SetRTS drive the modem lines (true = asserted = pin low);
	// they fail with an error wrapping ErrNoModemLines where none exist.
	SetDTR(on bool) error
	SetRTS(on bool) error
	ResetInputBuffer() error
	Close() error
}

// OpenPort opens name at 115200 Bd: a device path (/dev/ttyUSB0, COM3),
// socket://HOST:PORT for a raw TCP serial server or emulator, or
// rfc2217://HOST:PORT for an RFC 2217 server (baud rate and DTR/RTS
// through the protocol). Errors wrap
// ErrPortNotFound, ErrPermission or ErrPortBusy with the next step.
func OpenPort(ctx context.Context, name string) (Port, error) {
	return OpenPortAs(ctx, name, "espdeck")
}

// OpenPortAs is OpenPort that claims a local port for owner (e.g. "espdeck
// serial write") for as long as it is open; a second claim fails with
// ErrPortBusy naming this owner and PID.
func OpenPortAs(ctx context.Context, name, owner string) (Port, error) {
	if rest, ok := strings.CutPrefix(name, "socket://"); ok {
		return openSocket(ctx, rest)
	}
	if rest, ok := strings.CutPrefix(name, "rfc2217://"); ok {
		return openRFC2217(ctx, rest)
	}
	lock, err := LockPort(name, owner)
	if err != nil {
		return nil, err
	}
	// Never set Mode.InitialStatusBits: opening fails on ports without
	// modem lines (ptys); lines are set after opening instead.
	p, err := serial.Open(name, &serial.Mode{BaudRate: 115200, DataBits: 8})
	if err != nil {
		lock.Unlock()
		return nil, classifyOpenError(name, err)
	}
	sp := &serialPort{p: p, lock: lock}
	// Bytes sent while the port was closed arrive after the next open.
	p.ResetInputBuffer()
	return sp, nil
}

func classifyOpenError(name string, err error) error {
	var pe *serial.PortError
	switch {
	case errors.As(err, &pe) && pe.Code() == serial.PortNotFound, errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOENT):
		return withHint(fmt.Errorf("open %s: %w", name, ErrPortNotFound), portListHint())
	case errors.As(err, &pe) && pe.Code() == serial.PermissionDenied, errors.Is(err, syscall.EACCES), errors.Is(err, fs.ErrPermission):
		return withHint(fmt.Errorf("open %s: %w", name, ErrPermission), permissionHint(name))
	case errors.As(err, &pe) && pe.Code() == serial.PortBusy, errors.Is(err, syscall.EBUSY):
		return withHint(fmt.Errorf("open %s: %w", name, ErrPortBusy), busyHint(name))
	}
	return withHint(fmt.Errorf("open %s: %w", name, err), "check that this is a serial port (see 'espdeck list')")
}

func portListHint() string {
	ports, err := ListPorts()
	if err != nil || len(ports) == 0 {
		return "no serial ports are present: plug the board in (a data cable, not a charge-only one) and check 'dmesg' for its driver"
	}
	var names []string
	for _, p := range ports {
		names = append(names, p.Name)
	}
	return "pass one of the ports present with --port: " + strings.Join(names, ", ") + " ('espdeck list' shows which look like ESP boards)"
}

// PortInfo describes a serial port found on this computer.
type PortInfo struct {
	Name    string
	USB     bool
	VID     string // lower-case hex, e.g. "303a"
	PID     string
	Product string
	// Serial is the USB serial number ("" when the device has none).
	Serial string
	// LikelyESP says the USB ids belong to a bridge or chip used on ESP boards.
	LikelyESP bool
}

// espUSBIDs are VID:PID pairs of USB-UART bridges found on ESP boards and
// of Espressif's own USB peripherals.
var espUSBIDs = map[string]string{
	"10c4:ea60": "CP210x", "1a86:7523": "CH340", "1a86:55d4": "CH9102", "0403:6001": "FT232R",
	"0403:6010": "FT2232", "0403:6015": "FT231X", "303a:1001": "USB-Serial/JTAG", "303a:0002": "ESP32-S2/S3 USB-OTG",
	"1a86:55d3": "CH343", "067b:2303": "PL2303",
}

// ListPorts lists serial ports with their USB ids where known.
func ListPorts() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	var out []PortInfo
	for _, p := range list {
		pi := PortInfo{Name: p.Name, USB: p.IsUSB, VID: strings.ToLower(p.VID), PID: strings.ToLower(p.PID), Product: p.Product, Serial: p.SerialNumber}
		_, pi.LikelyESP = espUSBIDs[pi.VID+":"+pi.PID]
		out = append(out, pi)
	}
	return out, nil
}

// usbID returns the VID:PID of port name, or "".
func usbID(name string) string {
	target, _ := filepath.EvalSymlinks(name)
	ports, err := ListPorts()
	if err != nil {
		return ""
	}
	for _, p := range ports {
		if p.Name == name || p.Name == target {
			if p.VID != "" {
				return p.VID + ":" + p.PID
			}
		}
	}
	return ""
}

// serialPort adapts go.bug.st/serial.
type serialPort struct {
	p    serial.Port
	lock *PortLock
}

func (s *serialPort) Read(b []byte) (int, error)           { return s.p.Read(b) }
func (s *serialPort) Write(b []byte) (int, error)          { return s.p.Write(b) }
func (s *serialPort) SetReadTimeout(d time.Duration) error { return s.p.SetReadTimeout(d) }
func (s *serialPort) ResetInputBuffer() error              { return s.p.ResetInputBuffer() }
func (s *serialPort) Close() error {
	err := s.p.Close()
	s.lock.Unlock()
	return err
}
func (s *serialPort) SetBaudRate(baud int) error {
	if err := s.p.SetMode(&serial.Mode{BaudRate: baud, DataBits: 8}); err != nil {
		return fmt.Errorf("set %d Bd: %w", baud, err)
	}
	return nil
}
func (s *serialPort) SetDTR(on bool) error { return modemErr("DTR", s.p.SetDTR(on)) }
func (s *serialPort) SetRTS(on bool) error { return modemErr("RTS", s.p.SetRTS(on)) }

// modemErr maps ENOTTY/EINVAL (pty, RFC2217 bridges, some USB ROM
// interfaces) to ErrNoModemLines.
func modemErr(line string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("set %s: %w", line, ErrNoModemLines)
	}
	return fmt.Errorf("set %s: %w", line, err)
}

// socketPort is a raw TCP connection (esptool's socket://).
type socketPort struct {
	c       net.Conn
	timeout time.Duration
}

func openSocket(ctx context.Context, hostport string) (Port, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", hostport)
	if err != nil {
		return nil, withHint(fmt.Errorf("connect to socket://%s: %w", hostport, ErrPortNotFound),
			"check that the serial server or emulator is running and listening on that address")
	}
	// The ROM answers byte by byte; Nagle plus delayed ACKs would add ~40 ms
	// to every reply (§13).
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &socketPort{c: c, timeout: 100 * time.Millisecond}, nil
}

func (s *socketPort) Read(b []byte) (int, error) {
	s.c.SetReadDeadline(time.Now().Add(s.timeout))
	n, err := s.c.Read(b)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return n, nil
	}
	return n, err
}
func (s *socketPort) Write(b []byte) (int, error) {
	s.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.c.Write(b)
}
func (s *socketPort) SetReadTimeout(d time.Duration) error { s.timeout = d; return nil }
func (s *socketPort) SetBaudRate(int) error                { return nil } // the server owns the wire rate
func (s *socketPort) SetDTR(bool) error {
	return fmt.Errorf("set DTR on a socket: %w", ErrNoModemLines)
}
func (s *socketPort) SetRTS(bool) error {
	return fmt.Errorf("set RTS on a socket: %w", ErrNoModemLines)
}
func (s *socketPort) Close() error { return s.c.Close() }
func (s *socketPort) ResetInputBuffer() error {
	buf := make([]byte, 4096)
	for range 64 {
		s.c.SetReadDeadline(time.Now().Add(time.Millisecond))
		n, err := s.c.Read(buf)
		if n == 0 || err != nil {
			return nil
		}
	}
	return nil
}
