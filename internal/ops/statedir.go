package ops

import "path/filepath"

// StateDir is the folder where espdeck keeps what it writes about its own
// work: the audit log and the campaign files. The command line and the TUI
// take it from DefaultStateDir, so both write to the same log and a
// campaign started in one can be resumed from the other.
type StateDir string

// DefaultStateDir is $XDG_STATE_HOME/espdeck, else ~/.local/state/espdeck.
// getenv is read instead of the process environment so that tests stay
// hermetic.
func DefaultStateDir(getenv func(string) string) (StateDir, error) {
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return StateDir(filepath.Join(d, "espdeck")), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", newError(CodeUsage, "neither XDG_STATE_HOME nor HOME is set, so espdeck has no state folder",
			"set XDG_STATE_HOME (or HOME) to the folder espdeck may write to")
	}
	return StateDir(filepath.Join(home, ".local", "state", "espdeck")), nil
}

// AuditLog is the audit log: one JSON record per line.
func (d StateDir) AuditLog() string { return filepath.Join(string(d), "audit.jsonl") }

// Campaigns is the folder of the campaign files.
func (d StateDir) Campaigns() string { return filepath.Join(string(d), "campaigns") }

// Campaign is the file of campaign id.
func (d StateDir) Campaign(id string) string { return filepath.Join(d.Campaigns(), id+".json") }
