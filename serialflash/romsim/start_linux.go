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
	"unsafe"

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
	closeOpens := func() {}
	var rw io.ReadWriter = master
	if cfg.ResetOnOpen {
		// Without our own slave descriptor the master reads EIO while no
		// host has the port open; the first bytes after that mark a new
		// session.
		slave.Close()
		slave = nil
		// Each open of the slave is a new session, even when the host
		// reopens before the master has read the EIO of the close (which
		// the reopen clears): inotify reports every open.
		opens, err := watchOpens(name)
		if err != nil {
			master.Close()
			cancel()
			return "", nil, nil, err
		}
		// closed: no host has the port open yet, so the first one to open
		// it starts a session too.
		sm := &sessionMaster{f: master, ctx: ctx, opens: opens, onOpen: func() { rom.Reset(true) }, onHangUp: cfg.onHangUp, closed: true}
		rw = sm
		closeOpens = func() { unix.Close(opens) }
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
			closeOpens()
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
	opens    int // non-blocking inotify descriptor watching the slave for opens
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
		if n > 0 && (m.opened() || m.closed) {
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

// opened reports whether the slave was opened since the last call. The
// host's open completes before its first write, so the event is queued
// before the bytes it sends reach the master.
func (m *sessionMaster) opened() bool {
	buf := make([]byte, 4096)
	seen := false
	for {
		n, err := unix.Read(m.opens, buf)
		if n <= 0 || err != nil {
			return seen
		}
		for i := 0; i+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[i]))
			if ev.Mask&unix.IN_OPEN != 0 {
				seen = true
			}
			i += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// watchOpens returns a non-blocking inotify descriptor that reports
// every open of path.
func watchOpens(path string) (int, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("romsim: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_OPEN); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("romsim: watch %s for opens: %w", path, err)
	}
	return fd, nil
}

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
