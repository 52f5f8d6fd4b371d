//go:build unix

package serialflash

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

func permissionHint(name string) string {
	group := "dialout"
	if _, err := os.Stat("/etc/arch-release"); err == nil {
		group = "uucp"
	}
	if fi, err := os.Stat(name); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if g := groupName(st.Gid); g != "" {
				group = g
			}
		}
	}
	return fmt.Sprintf("add yourself to the %s group: sudo usermod -aG %s $USER, then log out and in again", group, group)
}

// groupName looks gid up in /etc/group.
func groupName(gid uint32) string {
	b, err := os.ReadFile("/etc/group")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == fmt.Sprint(gid) {
			return f[0]
		}
	}
	return ""
}

// busyHint names the processes holding the port where /proc tells.
func busyHint(name string) string {
	holders := portHolders(name)
	if len(holders) == 0 {
		return "another program has it open (a serial monitor, the Arduino IDE, ModemManager): close it and try again"
	}
	return "it is held by " + strings.Join(holders, ", ") + ": close that program (or kill the process) and try again"
}

// portHolders lists "name (pid N)" for processes with name open (Linux).
func portHolders(name string) []string {
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		return nil
	}
	procs, _ := os.ReadDir("/proc")
	var out []string
	for _, p := range procs {
		pid := p.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", pid, "fd"))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", pid, "fd", fd.Name())); err == nil && l == target {
				comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
				out = append(out, fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), pid))
				break
			}
		}
		if len(out) >= 5 {
			break
		}
	}
	return out
}
