package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/espdeck/espdeck/internal/audit"
)

const auditUsage = `Usage:
  espdeck audit [--board NAME] [--mac MAC] [--address HOST:PORT] [--campaign ID]
                [--result ok|failed|CODE] [--kind update|download] [--since D|TIME] [--json]

Lists what espdeck wrote to boards (and what its firmware server handed
out), oldest first, from the audit log: one record per attempt with who,
where, which image (SHA-256), from and to which version, the outcome and
whether the board came back on the new version. The log never holds a
password or key.

Examples:
  espdeck audit --mac 24:6f:28:aa:bb:cc          everything ever written to this board
  espdeck audit --since 24h --result failed      what failed today
  espdeck audit --campaign 20261202-101500-a1b2c3 --json`

func runAudit(c *cli, args []string) int {
	flags, cm := c.newFlags("audit", auditUsage)
	var flt audit.Filter
	var path, since, campaignID string
	flags.StringVar(&path, "file", "", "the audit log `FILE` (default $XDG_STATE_HOME/espdeck/audit.jsonl)")
	flags.StringVar(&path, "audit", "", "same as --file")
	flags.StringVar(&flt.Board, "board", "", "only the board named `NAME`")
	flags.StringVar(&flt.MAC, "mac", "", "only the board with this `MAC` (any separators)")
	flags.StringVar(&flt.Address, "address", "", "only this `HOST:PORT` or serial port")
	flags.StringVar(&flt.Kind, "kind", "", "update or download")
	flags.StringVar(&flt.Result, "result", "", "ok, failed, or an error code")
	flags.StringVar(&since, "since", "", "only records newer than `D` ago (24h) or since an RFC 3339 time")
	flags.StringVar(&campaignID, "campaign", "", "only the campaign with this `ID`")
	pos, err := parse(flags, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	r := c.reporter(cm, "")
	usage := func(msg, hint string) int {
		return r.finish(&failure{code: exitUsage, name: "usage", message: msg, hint: hint}, nil)
	}
	if len(pos) > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", pos[0]), "run 'espdeck audit --help'")
	}
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil && d > 0 {
			flt.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, since); err == nil {
			flt.Since = t
		} else {
			return usage(fmt.Sprintf("--since %q is neither a duration nor an RFC 3339 time", since), "examples: --since 24h, --since 2026-12-01T00:00:00Z")
		}
	}
	if path == "" {
		dir, err := c.stateDir()
		if err != nil {
			return usage(err.Error(), "name the log with --file FILE")
		}
		path = dir.AuditLog()
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		r.say("No audit log at %s yet: nothing has been written to a board.", path)
		return r.finish(nil, map[string]any{"count": 0, "file": path})
	}
	if err != nil {
		return usage(fmt.Sprintf("cannot read the audit log: %v", err), "name the log with --file FILE")
	}
	defer f.Close()
	recs, skipped, err := audit.Read(f, flt)
	if err != nil {
		return usage(err.Error(), "the log may be damaged; every intact line is still read up to the damage")
	}
	if campaignID != "" {
		kept := recs[:0]
		for _, rec := range recs {
			if rec.Campaign == campaignID {
				kept = append(kept, rec)
			}
		}
		recs = kept
	}
	for _, rec := range recs {
		r.event("record", map[string]any{"record": rec})
	}
	if !cm.json {
		w := c.stdout
		fmt.Fprintf(w, "%-20s %-14s %-17s %-12s %-16s %-16s %-13s %s\n", "TIME", "BOARD", "MAC", "PROTOCOL", "VERSION", "RESULT", "CONFIRMATION", "IMAGE")
		for _, rec := range recs {
			v := ""
			if rec.ToVersion != "" || rec.FromVersion != "" {
				v = cmpOr(rec.FromVersion, "?") + " → " + cmpOr(rec.ToVersion, "?")
			}
			img := rec.Image
			if len(rec.ImageSHA256) >= 12 {
				img += " " + rec.ImageSHA256[:12]
			}
			fmt.Fprintf(w, "%-20s %-14s %-17s %-12s %s %-16s %-13s %s\n", rec.Time.Local().Format(time.DateTime),
				cmpOr(rec.Board, rec.Address), rec.MAC, cmpOr(rec.Protocol, rec.Kind), padRight(v, 16), rec.Result, rec.Confirmation, strings.TrimSpace(img))
		}
		if skipped > 0 {
			fmt.Fprintf(c.stderr, "warning: %d line(s) of %s are not records and were skipped\n", skipped, path)
		}
	}
	return r.finish(nil, map[string]any{"count": len(recs), "skipped_lines": skipped, "file": path})
}

// padRight pads s with spaces to n characters (not bytes: "→" is one).
func padRight(s string, n int) string {
	if k := utf8.RuneCountInString(s); k < n {
		return s + strings.Repeat(" ", n-k)
	}
	return s
}
