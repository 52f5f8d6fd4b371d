package tui

import (
	"fmt"
	"strings"
)

// exitReport is what is printed after the program exits: one line per job
// that quitting cancelled, naming the board, the stage it reached and what
// that leaves on the board. Nothing when no job was cut short.
func exitReport(jobs []*job) []string {
	var out []string
	for _, j := range jobs {
		if !j.cutByQuit && !j.running() { // jobs cancelled earlier with c are not news
			continue
		}
		stage := j.stage
		if stage == "" {
			stage = "not started"
		}
		if j.total > 0 && j.stage != "" {
			stage += fmt.Sprintf(" %.0f%%", j.stagePercent()*100)
		}
		out = append(out, fmt.Sprintf("espdeck: cancelled %s at %s: %s", j.name, stage, boardAfterCancel(j)))
	}
	return out
}

// boardAfterCancel says what a cancelled job leaves on the board, from the
// route and the last stage reached.
func boardAfterCancel(j *job) string {
	if j.req.Route == RouteNetwork {
		switch j.stage {
		case "", "invite", "auth", "connect":
			return "nothing was written; it runs what it ran before"
		case "transfer":
			return "its update slot is partly written and will not be booted; the app it ran before still boots"
		default: // finalize
			return "the upload ended during the final check: it may reboot into the new image or keep the old one; look at it before flashing again"
		}
	}
	where := "the image's address"
	if a := j.note; strings.HasPrefix(a, "0x") {
		where = a
	}
	switch j.stage {
	case "", "sync":
		return "nothing was written; it may still be in the ROM bootloader, so reset it to run its app"
	case "erase", "write":
		return "flash at " + where + " is partly erased or written and does not hold a bootable image; if that is the slot that boots, the board will not start until it is flashed again (over serial, it still works)"
	case "verify":
		return "the image was written but not verified; flash again to be sure"
	default: // reset
		return "the image was written and verified; reset the board to run it"
	}
}
