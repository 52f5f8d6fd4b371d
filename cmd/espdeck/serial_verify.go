package main

import (
	"crypto/md5"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/serialflash"
)

// serialVerify compares each region with the flash by SPI_FLASH_MD5
// (esptool's verify-flash); it writes nothing.
func serialVerify(c *cli, r *reporter, fl *serialflash.Flasher, regions []serialflash.Region, files []string, fields map[string]any) *failure {
	var out []map[string]any
	var differ []string
	for i, reg := range regions {
		r.stage("verify", fmt.Sprintf("comparing %s with flash at 0x%X…", files[i], reg.Addr))
		got, err := fl.FlashMD5(c.ctx, reg.Addr, uint32(len(reg.Data)))
		if err != nil {
			return serialFailure(c, err, "verifying "+files[i])
		}
		same := got == md5.Sum(reg.Data)
		out = append(out, map[string]any{"address": fmt.Sprintf("0x%X", reg.Addr), "file": files[i], "size": len(reg.Data), "same": same})
		if !same {
			differ = append(differ, fmt.Sprintf("%s at 0x%X", files[i], reg.Addr))
		}
	}
	fields["regions"] = out
	if len(differ) > 0 {
		return &failure{code: exitVerify, name: "verify_failed", message: "flash differs from " + strings.Join(differ, ", "),
			hint: "write the file(s) with espdeck serial write (only the sectors that differ are written)"}
	}
	r.say("flash holds all %d file(s)", len(regions))
	return nil
}

// addWriteResults adds what the writer did to each region's JSON object.
func addWriteResults(out []map[string]any, res serialflash.WriteResult) {
	for i, rr := range res.Regions {
		if i >= len(out) {
			break
		}
		out[i]["written_bytes"] = rr.Written
		out[i]["skipped_bytes"] = rr.Skipped
		out[i]["compressed_bytes"] = rr.Compressed
		out[i]["resumes"] = rr.Resumes
		out[i]["verify"] = rr.Verify
		out[i]["verified_range"] = fmt.Sprintf("0x%X-0x%X", rr.VerifiedStart, rr.VerifiedEnd)
		out[i]["erased_range"] = fmt.Sprintf("0x%X-0x%X", rr.EraseStart, rr.EraseEnd)
	}
}

// writeSummary says what the write skipped and how often it resumed.
func writeSummary(res serialflash.WriteResult) string {
	var parts []string
	if s := res.Skipped(); s > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes already on flash, not rewritten", s))
	}
	resumes := 0
	for _, r := range res.Regions {
		resumes += r.Resumes
	}
	if resumes > 0 {
		parts = append(parts, fmt.Sprintf("resumed %d time(s) after a failed block", resumes))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// didYouMeanSerial suggests the closest serial verb.
func didYouMeanSerial(word string) string {
	best, dist := "", 4
	for v := range serialVerbs {
		if d := editDistance(word, v); d < dist || (d == dist && v < best) {
			best, dist = v, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %q?", best)
}
