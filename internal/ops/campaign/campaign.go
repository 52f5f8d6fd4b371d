// Package campaign updates many boards at once, the way fleet services do
// it: a canary first, then the rest at most Parallel at a time, a stop when
// failures pass a threshold, and a board counted as updated only when it
// comes back announcing the new version.
//
// A campaign is a file (JSON) rewritten atomically at every state change,
// so an interrupted campaign (Ctrl-C, a crash) can be resumed: Resume
// retries only boards that failed, were not confirmed, or never started.
// Every upload attempt is one record in the audit log (internal/audit).
//
// The engine knows no protocol. Each board's protocol provides a Flasher
// (ArduinoOTA through espota here; ESPHome and serial plug in the same
// way), and a Presence says when boards go away and come back and what
// version they announce.
package campaign

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/espdeck/espdeck/internal/ops"
)

// State is where a board is in its life within a campaign.
type State string

// Board states. Queued → Preflight → Uploading → Rebooting → one of the
// final states.
const (
	Queued     State = "queued"
	Preflight  State = "preflight"
	Uploading  State = "uploading"
	Rebooting  State = "rebooting"
	Confirmed  State = "confirmed"   // came back announcing the target version
	Uploaded   State = "uploaded"    // image accepted; confirmation off or the board announces no version
	Failed     State = "failed"      // the upload (or its pre-flight) failed
	TimedOut   State = "timed-out"   // accepted the image but never came back in time
	RolledBack State = "rolled-back" // came back announcing another version than the image's
	Skipped    State = "skipped"     // not sent: already on the target version, unknown, or no image for its chip
)

// Final reports whether s ends a board's attempt.
func (s State) Final() bool {
	switch s {
	case Confirmed, Uploaded, Failed, TimedOut, RolledBack, Skipped:
		return true
	}
	return false
}

// Failure reports whether s counts against the abort threshold.
func (s State) Failure() bool { return s == Failed || s == TimedOut || s == RolledBack }

// Retry reports whether Resume sends to a board in state s again: failed,
// unconfirmed, interrupted in flight, or never started.
func (s State) Retry() bool { return !s.Final() || s.Failure() }

// Confirmation outcomes, as written to rows and audit records.
const (
	ConfirmConfirmed  = "confirmed"
	ConfirmRolledBack = "rolled-back"
	ConfirmTimedOut   = "timed-out"
	ConfirmNoVersion  = "no-version" // back, but it announces no version to compare
	ConfirmNotChecked = "not-checked"
	// ConfirmBootSlot: a serial board read back after the write; the slot
	// that boots next holds the image's version. Not a sighting of the
	// running app: the board ends Uploaded.
	ConfirmBootSlot = "boot-slot"
)

// Board is one target as the campaign knows it.
type Board struct {
	// ID is stable across address changes: the discovery ID, or
	// "manual/HOST:PORT" for a hand-named host.
	ID       string `json:"id"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`          // arduino-ota, esphome, serial
	Address  string `json:"address"`           // host:port or serial port
	MAC      string `json:"mac,omitempty"`     // where announced
	Chip     string `json:"chip,omitempty"`    // chip family name (esp32, esp32s3, esp8266); "" unknown
	Version  string `json:"version,omitempty"` // version announced when planned; "" unknown
	Project  string `json:"project,omitempty"` // project announced, where known
	// Auth says the board announced that it wants a password (ArduinoOTA
	// auth_upload=yes); informational.
	Auth bool `json:"auth,omitempty"`
}

// Image is one firmware image of a campaign; a campaign holds at most one
// per chip family.
type Image struct {
	Path    string `json:"path"`
	Chip    string `json:"chip"` // from the image header
	Version string `json:"version,omitempty"`
	Project string `json:"project,omitempty"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// Row is one board's line in the campaign: its state and what its last
// attempt learned.
type Row struct {
	Board Board `json:"board"`
	// Canary is true for the boards updated first, alone.
	Canary bool  `json:"canary,omitempty"`
	State  State `json:"state"`
	// Image is the SHA-256 of the image chosen for this board; "" when
	// none matches its chip.
	Image       string `json:"image,omitempty"`
	FromVersion string `json:"from_version,omitempty"`
	ToVersion   string `json:"to_version,omitempty"`
	// Running is what the board announced after its reboot.
	Running      string `json:"running,omitempty"`
	Attempts     int    `json:"attempts"`
	Protocol     string `json:"protocol_used,omitempty"`
	Auth         string `json:"auth,omitempty"`
	Done         int64  `json:"done"`
	Bytes        int64  `json:"bytes"`
	UploadMS     int64  `json:"upload_ms,omitempty"`
	ConfirmMS    int64  `json:"confirm_ms,omitempty"`
	Confirmation string `json:"confirmation,omitempty"`
	// Code is the machine word of the last error (or of the skip reason).
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
	Hint    string    `json:"hint,omitempty"`
	Updated time.Time `json:"updated"`
}

// Threshold says when the campaign stops: when more than Count boards
// failed, or, with Percent > 0, when the failed share of at least After
// finished boards exceeds Percent. A canary failure always stops it.
type Threshold struct {
	Count   int     `json:"count"`
	Percent float64 `json:"percent,omitempty"`
	After   int     `json:"after,omitempty"` // boards finished before Percent applies (default DefaultPercentAfter)
}

// DefaultPercentAfter is how many boards must have finished before a
// percentage threshold applies, so that one early failure of two boards
// (50 %) does not stop a fleet of fifty.
const DefaultPercentAfter = 5

// Exceeded reports whether failed of finished boards passes t.
func (t Threshold) Exceeded(failed, finished int) bool {
	if t.Percent > 0 {
		after := t.After
		if after <= 0 {
			after = DefaultPercentAfter
		}
		return finished >= after && float64(failed)*100 > t.Percent*float64(finished)
	}
	return failed > t.Count
}

func (t Threshold) String() string {
	if t.Percent > 0 {
		after := t.After
		if after <= 0 {
			after = DefaultPercentAfter
		}
		return fmt.Sprintf("more than %g%% failed (after %d boards)", t.Percent, after)
	}
	return fmt.Sprintf("more than %d failed", t.Count)
}

// Settings are the choices a campaign was started with; Resume keeps them.
type Settings struct {
	Canary    int       `json:"canary"`   // boards updated first, alone (default 1)
	Parallel  int       `json:"parallel"` // boards at a time after the canary (default DefaultParallel)
	Threshold Threshold `json:"threshold"`
	// Confirm bounds the wait for a board to come back after it accepted
	// the image; 0 skips confirmation.
	Confirm time.Duration `json:"confirm_ns"`
	// Outdated sends only to boards not already announcing the image's
	// version; SkipUnknown also skips boards whose version is unknown.
	Outdated    bool `json:"outdated,omitempty"`
	SkipUnknown bool `json:"skip_unknown,omitempty"`
}

// DefaultParallel is the number of boards updated at a time after the canary.
const DefaultParallel = 4

// DefaultConfirm is how long a board may take to reboot and re-announce
// itself: an ESP32 boots in about a second, joins Wi-Fi in a few, and mDNS
// needs a round or two to see it.
const DefaultConfirm = 60 * time.Second

func (s Settings) withDefaults() Settings {
	if s.Canary < 0 {
		s.Canary = 0
	}
	if s.Parallel <= 0 {
		s.Parallel = DefaultParallel
	}
	return s
}

// File is a campaign as saved: settings, images and one row per board.
type File struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	Settings Settings  `json:"settings"`
	Images   []Image   `json:"images"`
	Rows     []Row     `json:"rows"`
	// Stopped is set when the threshold (or a failed canary) stopped the
	// campaign; StopReason says why.
	Stopped     bool   `json:"stopped,omitempty"`
	StopReason  string `json:"stop_reason,omitempty"`
	Interrupted bool   `json:"interrupted,omitempty"`
	Finished    bool   `json:"finished,omitempty"`
	// Runs counts Run and Resume calls.
	Runs int `json:"runs"`
}

// Load reads a campaign file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{code: "campaign_unreadable", msg: fmt.Sprintf("cannot read the campaign file: %v", err),
			hint: "give the file 'campaign run --state FILE' wrote", err: err}
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, &Error{code: "campaign_invalid", msg: fmt.Sprintf("%s is not a campaign file: %v", path, err),
			hint: "give the file 'campaign run --state FILE' wrote; it is JSON", err: err}
	}
	if len(f.Rows) == 0 || f.ID == "" {
		return nil, &Error{code: "campaign_invalid", msg: fmt.Sprintf("%s holds no campaign (no id or no boards)", path),
			hint: "give the file 'campaign run --state FILE' wrote"}
	}
	for i, r := range f.Rows {
		if r.Board.ID == "" {
			return nil, &Error{code: "campaign_invalid", msg: fmt.Sprintf("%s: board %d has no id", path, i+1),
				hint: "the file was edited or damaged; start a new campaign"}
		}
	}
	return &f, nil
}

// Save writes f to path atomically (a temporary file renamed over it), so
// a crash mid-write leaves the previous version, never half a file.
func Save(path string, f *File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the campaign: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save the campaign: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save the campaign to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save the campaign to %s: %w", path, err)
	}
	return nil
}

// Summary counts rows by outcome.
type Summary struct {
	Total      int `json:"total"`
	Confirmed  int `json:"confirmed"`
	Uploaded   int `json:"uploaded"`
	Skipped    int `json:"skipped"`
	Failed     int `json:"failed"`
	TimedOut   int `json:"timed_out"`
	RolledBack int `json:"rolled_back"`
	Untouched  int `json:"untouched"` // never started (stopped or interrupted first)
	InFlight   int `json:"in_flight"`
}

// Failures is the count that the threshold looks at.
func (s Summary) Failures() int { return s.Failed + s.TimedOut + s.RolledBack }

// Summarize counts f's rows.
func (f *File) Summarize() Summary {
	s := Summary{Total: len(f.Rows)}
	for _, r := range f.Rows {
		switch r.State {
		case Confirmed:
			s.Confirmed++
		case Uploaded:
			s.Uploaded++
		case Skipped:
			s.Skipped++
		case Failed:
			s.Failed++
		case TimedOut:
			s.TimedOut++
		case RolledBack:
			s.RolledBack++
		case Queued:
			s.Untouched++
		default:
			s.InFlight++
		}
	}
	return s
}

// Outcome is the campaign's overall result, for exit codes.
type Outcome string

const (
	// OutcomeOK: every board confirmed, uploaded (confirmation off or not
	// possible) or skipped.
	OutcomeOK Outcome = "ok"
	// OutcomeSomeFailed: at least one board failed, timed out or rolled back.
	OutcomeSomeFailed Outcome = "some_failed"
	// OutcomeStopped: the threshold or a failed canary stopped the campaign.
	OutcomeStopped Outcome = "stopped"
	// OutcomeInterrupted: cancelled before the end.
	OutcomeInterrupted Outcome = "interrupted"
)

// Outcome says how the campaign ended.
func (f *File) Outcome() Outcome {
	s := f.Summarize()
	switch {
	case f.Interrupted:
		return OutcomeInterrupted
	case f.Stopped:
		return OutcomeStopped
	case s.Failures() > 0 || s.Untouched > 0 || s.InFlight > 0:
		return OutcomeSomeFailed
	}
	return OutcomeOK
}

// Error is a campaign-level error with a machine code and a next step.
type Error struct {
	code, msg, hint string
	err             error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// Class groups the word into ops's classes (ops.Class), which exit
// statuses follow: a campaign file that cannot be used and a campaign
// without boards are the caller's to fix.
func (e *Error) Class() string {
	switch e.code {
	case "campaign_invalid", "campaign_unreadable", "no_targets":
		return ops.CodeUsage
	}
	return e.code
}

// Code is the stable machine word.
func (e *Error) Code() string { return e.code }

// Hint is the next step for a person.
func (e *Error) Hint() string { return e.hint }
