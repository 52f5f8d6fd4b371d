package main

import (
	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
)

// recordAttempt appends one update record to the audit log: path, else
// the default one beside the campaigns. The update already happened (or
// failed); a log that cannot be written is a warning, never a failure.
func (c *cli) recordAttempt(r *reporter, path string, a ops.Attempt) {
	if path == "" {
		dir, err := c.stateDir()
		if err != nil {
			r.warn("no audit record of this update: " + err.Error() + " (name the log with --audit FILE)")
			return
		}
		path = dir.AuditLog()
	}
	if err := ops.RecordAttempt(c.ctx, path, a); err != nil {
		r.warn("no audit record of this update: " + err.Error())
	}
}

// authLabel names an ESPHome session's protection as campaigns do.
func authLabel(u esphomeota.Result) string {
	if u.AuthScheme == "" && !u.Encrypted {
		return ""
	}
	return campaign.AuthLabel(u.AuthScheme, u.Encrypted)
}
