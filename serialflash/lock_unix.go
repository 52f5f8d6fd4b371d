//go:build unix

package serialflash

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// PortLock is one process's claim on a serial port. Two claims exclude
// each other even for root, where TIOCEXCL does not stop a second open:
// the device itself is flock'ed (as pyserial's exclusive mode, and so
// esptool, does it), and a lock file next to it names the holder.
type PortLock struct {
	dev  int
	note string
}

// lockDir holds the holder notes, one per port; shared by all users.
func lockDir() string { return filepath.Join(os.TempDir(), "espdeck-port-owners") }

func notePath(target string) string {
	return filepath.Join(lockDir(), strings.ReplaceAll(strings.TrimPrefix(target, "/"), "/", "_")+".owner")
}

// LockPort claims name for owner (e.g. "espdeck monitor"). It fails with
// ErrPortBusy, naming the holder, when another process holds the port.
// Release the claim with Unlock.
func LockPort(name, owner string) (*PortLock, error) {
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		return nil, classifyOpenError(name, err)
	}
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, classifyOpenError(name, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(notePath(target)); rerr == nil && len(b) > 0 {
				holder = strings.TrimSpace(string(b))
			} else if hs := portHolders(name); len(hs) > 0 {
				holder = strings.Join(hs, ", ")
			}
			return nil, withHint(&BusyError{Port: name, holder: holder},
				"wait for it to finish, or stop it (Ctrl-C in its terminal, or kill the PID), then try again")
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	l := &PortLock{dev: fd}
	if err := os.MkdirAll(lockDir(), 0o1777); err == nil {
		os.Chmod(lockDir(), 0o1777)
		p := notePath(target)
		os.Remove(p) // a stale note of a process that died
		if err := os.WriteFile(p, fmt.Appendf(nil, "%s, PID %d\n", owner, os.Getpid()), 0o644); err == nil {
			l.note = p
		}
	}
	return l, nil
}

// Unlock releases the claim.
func (l *PortLock) Unlock() {
	if l == nil || l.dev < 0 {
		return
	}
	if l.note != "" {
		os.Remove(l.note)
	}
	unix.Close(l.dev) // closing the descriptor drops the flock
	l.dev = -1
}
