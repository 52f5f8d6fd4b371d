//go:build unix

package tui

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user + system). On a
// shared, loaded machine it measures the work of a frame where wall time
// measures the queue for the CPU.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
