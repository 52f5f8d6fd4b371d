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

// noteDir makes or finds lockDir and returns it, or "" when it is not
// safe to use: the directory is shared by all users and espdeck often
// runs as root, so a name another user planted (a symlink to /etc, a
// file) is left alone rather than followed. A directory made here is
// world-writable and sticky, like /tmp: anyone leaves a note, nobody
// removes another's. (The sticky bit is os.ModeSticky; 0o1000 in a Go
// FileMode is not it.)
func noteDir() string {
	dir := lockDir()
	if err := os.Mkdir(dir, 0o700); err == nil {
		// Mkdir's mode passes through the umask; set it in full.
		if os.Chmod(dir, os.ModeSticky|0o777) != nil {
			return ""
		}
		return dir
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}

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
	if noteDir() != "" {
		p := notePath(target)
		os.Remove(p) // a stale note of a process that died
		// O_EXCL: the directory is shared by all users, so a name that
		// reappeared since the Remove (another user's file or symlink)
		// is never written through; the note is then just missing.
		if nf, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err == nil {
			_, werr := fmt.Fprintf(nf, "%s, PID %d\n", owner, os.Getpid())
			if cerr := nf.Close(); werr == nil && cerr == nil {
				l.note = p
			} else {
				os.Remove(p)
			}
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
