package romsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// StartPTY starts a simulated ROM for cfg.Chip on a fresh pseudo-terminal
// and returns the path to open as a serial port (e.g. /dev/pts/7). The ROM
// reads the rate the host sets on the port (TCGETS2 on the master) for
// pacing and to garble bytes when the two sides disagree. A pty carries no
// DTR/RTS: a test forwards them with rom.SetLines; demo code calls
// rom.Reset. stop ends the simulator and closes the pty; it is idempotent.
func StartPTY(ctx context.Context, cfg Config) (path string, rom *ROM, stop func(), err error) {
	p, err := ProfileFor(cfg.Chip)
	if err != nil {
		return "", nil, nil, err
	}
	master, slave, err := pty.Open()
	if err != nil {
		return "", nil, nil, fmt.Errorf("romsim: open a pseudo-terminal: %w", err)
	}
	// Raw mode at 115200 before anyone opens the port, so the banner is
	// not echoed back or line-edited.
	if err := rawMode(slave); err != nil {
		master.Close()
		slave.Close()
		return "", nil, nil, err
	}
	if cfg.HostBaud == nil {
		cfg.HostBaud = func() int { return ptyBaud(master) }
	}
	rom = New(p, cfg)
	ctx, cancel := context.WithCancel(ctx)
	name := slave.Name()
	var rw io.ReadWriter = master
	if cfg.ResetOnOpen {
		// Without our own slave descriptor the master reads EIO while no
		// host has the port open; the first bytes after that mark a new
		// session.
		slave.Close()
		slave = nil
		// closed: no host has the port open yet, so the first one to open
		// it starts a session too.
		rw = &sessionMaster{f: master, ctx: ctx, onOpen: func() { rom.Reset(true) }, onHangUp: cfg.onHangUp, closed: true}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rom.Serve(ctx, rw)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			master.Close()
			wg.Wait()
			if slave != nil {
				slave.Close()
			}
		})
	}
	return name, rom, stop, nil
}

// sessionMaster reads a pty master whose slave is only open while a host
// uses it: EIO means "no host"; data after EIO means a host opened the
// port, which resets the chip like a board's auto-reset circuit would.
// A host that closes and reopens the port before the simulator reads the
// EIO stays in the same session (the slave's reopen clears the hang-up).
type sessionMaster struct {
	f        *os.File
	ctx      context.Context
	onOpen   func()
	onHangUp func() // may be nil
	closed   bool
}

func (m *sessionMaster) Read(p []byte) (int, error) {
	for {
		n, err := m.f.Read(p)
		if err != nil && errors.Is(err, syscall.EIO) {
			if !m.closed && m.onHangUp != nil {
				m.onHangUp()
			}
			m.closed = true
			select {
			case <-m.ctx.Done():
				return 0, m.ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		if n > 0 && m.closed {
			m.closed = false
			m.onOpen()
			// The chip is resetting: what the host sent meanwhile is lost,
			// as on a real board.
			continue
		}
		return n, err
	}
}

func (m *sessionMaster) Write(p []byte) (int, error) { return m.f.Write(p) }

func rawMode(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ierr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
		t.Cflag |= unix.CS8 | unix.B115200
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("romsim: raw mode on the pty: %w", err)
	}
	return nil
}

// ptyBaud reads the output speed the host configured on the pty (the master
// sees the slave's termios); 0 when it cannot tell.
func ptyBaud(master *os.File) int {
	rc, err := master.SyscallConn()
	if err != nil {
		return 0
	}
	baud := 0
	rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS2)
		if err == nil {
			baud = int(t.Ospeed)
		}
	})
	return baud
}
