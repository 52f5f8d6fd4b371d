package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"runtime"
	"strings"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/espdeck/espdeck/serialflash"
)

// Port is what the monitor needs from a serial port. go.bug.st/serial's Port
// satisfies it; tests wrap one to forward DTR/RTS to a simulator.
type Port interface {
	io.ReadWriteCloser
	SetDTR(bool) error
	SetRTS(bool) error
}

// OpenFunc opens a port by name at a baud rate, ready to read with a short
// timeout (a read that times out returns 0, nil).
type OpenFunc func(ctx context.Context, name string, baud int) (Port, error)

// Errors an OpenError or a reset can wrap; callers branch on them with
// errors.Is (the CLI maps them to exit codes).
var (
	ErrPortNotFound   = errors.New("serial port not found")
	ErrPermission     = errors.New("permission denied")
	ErrPortBusy       = errors.New("serial port busy")
	ErrNoModemControl = errors.New("this port has no modem control lines")
	ErrReleased       = errors.New("the monitor has released the port")
)

// OpenError is a failure to open a port, with the hint a person needs.
type OpenError struct {
	Port  string
	Kind  error // one of the Err… sentinels above, or nil
	Cause error
}

func (e *OpenError) Error() string {
	what := "open serial port " + e.Port
	var held interface{ Holder() string }
	if e.Kind == ErrPortBusy && errors.As(e.Cause, &held) && held.Holder() != "" {
		return what + ": " + e.Kind.Error() + ", held by " + held.Holder()
	}
	if e.Kind != nil {
		return what + ": " + e.Kind.Error()
	}
	return fmt.Sprintf("%s: %v", what, e.Cause)
}

func (e *OpenError) Unwrap() []error { return []error{e.Kind, e.Cause} }

// Hint says what to do next.
func (e *OpenError) Hint() string {
	switch e.Kind {
	case ErrPortNotFound:
		return "check the cable (charge-only USB cables have no data lines) and that the board is plugged in; 'espdeck list' shows the serial ports"
	case ErrPermission:
		if runtime.GOOS == "linux" {
			return "add yourself to the group that owns the port (usually dialout: sudo usermod -aG dialout $USER; uucp on Arch), then log out and back in"
		}
		return "give your user access to the port (on macOS use the /dev/cu.* device)"
	case ErrPortBusy:
		return "another program has the port open (a second monitor, the Arduino IDE's serial monitor, screen, ModemManager); close it and try again"
	}
	return "check that " + e.Port + " is a serial port and the board is connected"
}

// OpenSerial opens name with go.bug.st/serial: 8N1 at baud, modem lines left
// as they are (never InitialStatusBits: pseudo-terminals refuse them), input
// flushed (bytes from before we opened are stale), 50 ms read timeout.
//
// A name of the form socket://HOST:PORT connects to a TCP serial server
// (ser2net, esp-link, espdeck sim serial --tcp) instead; such a port has no
// modem lines and its baud rate is the server's business.
func OpenSerial(ctx context.Context, name string, baud int) (Port, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open serial port %s: %w", name, err)
	}
	if addr, ok := strings.CutPrefix(name, "socket://"); ok {
		return openSocket(ctx, name, addr)
	}
	// One owner per port, also as root where TIOCEXCL does not keep a
	// second open out: a flash started beside the monitor is told who
	// holds the port. Other lock failures (no such port) are the open's
	// to report, with its hints.
	lock, err := serialflash.LockPort(name, "espdeck monitor")
	if errors.Is(err, serialflash.ErrPortBusy) {
		return nil, &OpenError{Port: name, Kind: ErrPortBusy, Cause: err}
	}
	sp, err := serial.Open(name, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		lock.Unlock()
		return nil, classifyOpenError(name, err)
	}
	p := lockedPort{Port: sp, lock: lock}
	if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
		p.Close()
		return nil, &OpenError{Port: name, Cause: fmt.Errorf("set read timeout: %w", err)}
	}
	if err := p.ResetInputBuffer(); err != nil {
		p.Close()
		return nil, &OpenError{Port: name, Cause: fmt.Errorf("flush input: %w", err)}
	}
	return p, nil
}

// lockedPort releases the port's claim when it is closed (a monitor that
// lends its port to a flash closes it first).
type lockedPort struct {
	serial.Port
	lock *serialflash.PortLock
}

func (p lockedPort) Close() error {
	err := p.Port.Close()
	p.lock.Unlock()
	return err
}

func classifyOpenError(name string, err error) error {
	oe := &OpenError{Port: name, Cause: err}
	var pe *serial.PortError
	switch {
	case errors.As(err, &pe) && pe.Code() == serial.PortBusy, errors.Is(err, syscall.EBUSY):
		oe.Kind = ErrPortBusy
	case errors.As(err, &pe) && pe.Code() == serial.PermissionDenied, errors.Is(err, fs.ErrPermission):
		oe.Kind = ErrPermission
	case errors.As(err, &pe) && pe.Code() == serial.PortNotFound, errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		oe.Kind = ErrPortNotFound
	}
	return oe
}

// socketPort is a TCP connection standing in for a serial port.
type socketPort struct {
	net.Conn
	name string
}

func openSocket(ctx context.Context, name, addr string) (Port, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		oe := &OpenError{Port: name, Cause: err}
		if errors.Is(err, syscall.ECONNREFUSED) {
			oe.Kind = ErrPortNotFound
		}
		return nil, oe
	}
	return &socketPort{Conn: conn, name: name}, nil
}

// Read waits at most 50 ms, like the serial ports: a timeout is (0, nil).
func (p *socketPort) Read(b []byte) (int, error) {
	if err := p.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		return 0, err
	}
	n, err := p.Conn.Read(b)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return n, nil
	}
	return n, err
}

func (p *socketPort) SetDTR(bool) error { return p.noLines() }
func (p *socketPort) SetRTS(bool) error { return p.noLines() }

func (p *socketPort) noLines() error {
	return fmt.Errorf("%w: %s is a TCP connection (RFC 2217 is not supported); press the board's RESET (EN) button instead", ErrNoModemControl, p.name)
}

// modemError turns the error of SetDTR/SetRTS into one that says what to do
// when the port cannot drive the lines (pseudo-terminals, some adapters).
func modemError(err error) error {
	if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("%w; press the board's RESET (EN) button instead", ErrNoModemControl)
	}
	return err
}
