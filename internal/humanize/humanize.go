// Package humanize renders byte counts and rates for people, the same way
// on the command line and in the TUI (1024-based, as flash sizes are).
package humanize

import "fmt"

// Bytes renders a byte count: "512 B", "219.8 KiB", "1.21 MiB".
func Bytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Rate renders bytes per second: "900 B/s", "412 KiB/s", "1.3 MiB/s".
func Rate(bps float64) string {
	switch {
	case bps >= 1<<20:
		return fmt.Sprintf("%.1f MiB/s", bps/(1<<20))
	case bps >= 1<<10:
		return fmt.Sprintf("%.0f KiB/s", bps/(1<<10))
	}
	return fmt.Sprintf("%.0f B/s", bps)
}
