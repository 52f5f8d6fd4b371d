package main

import (
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
)

// serialVerify renders ops.VerifyRegions (esptool's verify-flash); it
// writes nothing.
func serialVerify(c *cli, r *reporter, fl *serialflash.Flasher, info serialflash.ChipInfo, regions []ops.Region, fields map[string]any) *failure {
	r.stage("verify", fmt.Sprintf("comparing %d file(s) with the flash…", len(regions)))
	res, err := ops.VerifyRegions(c.ctx, fl, info, regions)
	fields["regions"] = res
	if err != nil {
		return failureOf(c, err, "")
	}
	r.say("flash holds all %d file(s)", len(regions))
	return nil
}

// writeSummary says what the write skipped and how often it resumed.
func writeSummary(res ops.WriteResult) string {
	var parts []string
	if s := res.Skipped(); s > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes already on flash, not rewritten", s))
	}
	if n := res.Resumes(); n > 0 {
		parts = append(parts, fmt.Sprintf("resumed %d time(s) after a failed block", n))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// didYouMeanSerial suggests the closest serial verb.
func didYouMeanSerial(word string) string {
	best := closestKey(word, serialVerbs)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %q?", best)
}
