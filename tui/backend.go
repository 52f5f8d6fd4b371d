package tui

import (
	"context"
	"log/slog"
	"time"
)

// This file is the whole contract between the TUI and the rest of espdeck.
// The TUI never opens a socket or a port itself: cmd/espdeck adapts the real
// packages (discovery, internal/ops, the monitor) to these interfaces, and so
// does the demo (internal/demo runs simulators behind the real adapters);
// this package's tests use a fake in fake_test.go. Everything here is a plain value in the
// TUI's own words, so that the protocol packages can change without the
// screens noticing. This file only grows: existing names keep their meaning.

// Backend bundles what the TUI talks to. Devices, Flasher and Images are
// required; a nil Partitions, Serial or Monitor hides the screens and keys
// that need it.
type Backend struct {
	Devices    DeviceSource
	Flasher    Flasher
	Images     ImageInspector
	Partitions PartitionControl // serial boards only; nil: no partitions screen
	Serial     SerialInfo       // serial boards only; nil: detail shows discovery facts only
	Monitor    MonitorSource    // nil: no monitor screen
	Campaigns  CampaignRunner   // nil: a group flash runs as plain jobs only
	Server     ServerSource     // nil: no server pane (no pull server runs)
}

// Secret is a password held in memory. String and LogValue redact it so it
// can be passed around and logged without leaking; call Reveal to use it.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the password itself, for the code that sends it.
func (s Secret) Reveal() string { return string(s) }

// ---------------------------------------------------------------- devices

// Kind is how a device is reached.
type Kind int

const (
	KindUnknown    Kind = iota
	KindArduinoOTA      // _arduino._tcp, or a hand-added host
	KindESPHome         // _esphomelib._tcp
	KindSerial          // a USB serial port (or a pty in demo mode)
)

// String is the word shown in the KIND column.
func (k Kind) String() string {
	switch k {
	case KindArduinoOTA:
		return "ArduinoOTA"
	case KindESPHome:
		return "ESPHome"
	case KindSerial:
		return "serial"
	}
	return "unknown"
}

// Presence is how recently discovery heard from a device.
type Presence int

const (
	PresenceOnline  Presence = iota // its mDNS records are live (their TTL has not run out) / port present
	PresenceStale                   // a source that reports staleness says it has not been heard lately (the mDNS cache does not: it removes a board when its TTL runs out)
	PresenceOffline                 // expired; kept so its history stays visible
	// PresenceUnchecked is a hand-added host nothing has heard from yet:
	// typing an address proves nothing about a board being there. It
	// becomes PresenceOnline once the host answers (an upload's
	// invitation, or discovery).
	PresenceUnchecked
)

// SerialMode is what a serial board is running, when known.
type SerialMode int

const (
	SerialUnknown  SerialMode = iota
	SerialDownload            // in the ROM bootloader
	SerialApp                 // running its application
)

// Device is one sighting of a board by one discovery source: an mDNS
// answer, a hand-added host or a serial port. The TUI merges sightings with
// the same MAC into one row, so an adapter reports each source separately.
type Device struct {
	// ID is stable for this sighting across updates, e.g. "mdns:greenhouse-ctl.local"
	// or "usb:/dev/ttyUSB0". Remove events name the device by ID only.
	ID   string
	Name string // hostname or instance name; the port's product name for serial
	Kind Kind

	Address string // "host:port" for network devices
	Port    string // serial port path for serial devices

	MAC       string // "aa:bb:cc:dd:ee:ff" lower case when known; ties sightings together
	Board     string // board id from TXT ("esp32s3") or the USB bridge's guess
	Chip      string // chip name when known ("ESP32-S3")
	Interface string // network interface it was seen on ("wlan0")

	AuthRequired bool   // the device asks for a password
	AuthScheme   string // "MD5", "PBKDF2-SHA256" once learned; "" unknown
	// PasswordStored says the backend holds this device's password (from
	// the config file or the environment), so the TUI does not ask for it.
	PasswordStored bool

	Presence   Presence
	SerialMode SerialMode

	TXT       map[string]string // raw TXT records (network) or USB facts (VID/PID, serial number)
	FirstSeen time.Time
	LastSeen  time.Time
}

// DeviceEventKind says what happened to a device.
type DeviceEventKind int

const (
	DeviceAdded DeviceEventKind = iota
	DeviceUpdated
	DeviceRemoved
	// DeviceSourceStatus carries no device: Status says what discovery can
	// not see right now ("port 5353 is held by another program…"), or ""
	// when all is well again.
	DeviceSourceStatus
)

// DeviceEvent is one change in the set of known devices.
type DeviceEvent struct {
	Kind   DeviceEventKind
	Device Device
	Status string // DeviceSourceStatus only
}

// DeviceSource is discovery as the TUI sees it.
type DeviceSource interface {
	// Watch streams device events until ctx is done and then closes the
	// channel. The devices already known come first as DeviceAdded events.
	// It is called once per program run.
	Watch(ctx context.Context) <-chan DeviceEvent
	// AddHost adds a hand-entered network device ("host" or "host:port",
	// port 3232 by default). The device then appears through Watch; the
	// error says why the address is unusable.
	AddHost(ctx context.Context, addr string) error
	// Refresh asks discovery to query now. It may return before answers arrive.
	Refresh(ctx context.Context) error
}

// ---------------------------------------------------------------- images

// ImageFacts is what is known about an image file before sending it.
type ImageFacts struct {
	Path    string
	Summary string // one line, e.g. "greenhouse.bin · ESP32-S3 app · v2.7.1 · 1.21 MB · SHA-256 ok"
	Kind    string // "app", "bootloader", "partition table", "filesystem", "unknown"
	Chip    string // chip the image was built for ("ESP32-S3"); "" when not an app image
	Project string // app project name, when the image has an app description
	Version string // app version ("v2.7.1"), when known
	Size    int64
	// SHAOK is true when the image's appended SHA-256 matched; SHAKnown is
	// false when the image carries none.
	SHAOK, SHAKnown bool
}

// VerdictKind is the pre-flight outcome.
type VerdictKind int

const (
	VerdictOK        VerdictKind = iota // send it
	VerdictForceable                    // a check failed; the user may force it after a second confirmation
	VerdictRefused                      // a check failed that nobody may override (e.g. unsigned under a signing key)
)

// Verdict is the pre-flight decision for one image against one device.
type Verdict struct {
	Kind     VerdictKind
	Reason   string   // one line for Forceable/Refused: "built for ESP32-C3, this board is ESP32-S3"
	Warnings []string // checks that passed with a remark, or were skipped for lack of facts
}

// ImageInspector reads image files and runs the pre-flight checks.
type ImageInspector interface {
	// Inspect reads the file at path and checks it against target. An error
	// means the file cannot be used at all (missing, unreadable, not an image
	// and not a known raw kind); a bad fit is a Verdict, not an error.
	Inspect(ctx context.Context, path string, target Device) (ImageFacts, Verdict, error)
}

// ---------------------------------------------------------------- flashing

// Route is how an image goes to the board.
type Route int

const (
	RouteNetwork Route = iota // OTA upload to Device.Address
	RouteSerial               // ROM bootloader on Device.Port
)

// FlashRequest is one flash job.
type FlashRequest struct {
	Device   Device // the sighting to use: Address for RouteNetwork, Port for RouteSerial
	Route    Route
	File     string
	Password Secret // "" when none was asked for
	Force    bool   // the user confirmed a Forceable verdict
	// Address is the serial write address; 0 lets the backend choose (the
	// next OTA slot for an app image, or where the image kind belongs).
	Address uint32
}

// Progress is one progress report of a running job.
type Progress struct {
	// Stage is the step in progress: invite, auth, connect, transfer,
	// finalize (network); sync, erase, write, verify, reset (serial).
	Stage string
	Note  string  // detail for the stage, e.g. "PBKDF2" for auth, "0x10000" for write
	Done  int64   // bytes done in this stage (or overall; Total says of what)
	Total int64   // 0 when unknown
	Rate  float64 // bytes per second; 0 lets the TUI compute it
}

// FlashResult is how a job ended.
type FlashResult struct {
	Error      string // "" on success, else the error sentence ("the device never connected back")
	Hint       string // what to do next ("allow inbound TCP on port 41234 or use --host-port")
	AuthFailed bool   // wrong or missing password: the UI asks for it again
	Canceled   bool   // the context was cancelled (quit or cancel key)
	// Code is the failure's stable machine word, the same the command line
	// puts in its --json result ("auth_failed", "port_busy", …).
	Code     string
	Bytes    int64  // image bytes sent
	Version  string // app version written, when known
	Duration time.Duration
	// Warnings are things to know that did not change the job's outcome
	// (the audit record that could not be written); the log shows them.
	Warnings []string
}

// OK reports whether the job succeeded.
func (r FlashResult) OK() bool { return r.Error == "" && !r.Canceled }

// Flasher runs flash jobs. Flash blocks until the job ends and is called on
// its own goroutine, several at once for a group flash. progress is called on
// the worker goroutine; it never blocks (the TUI throttles and may drop
// reports). Cancelling ctx must end the job promptly with Canceled set.
type Flasher interface {
	Flash(ctx context.Context, req FlashRequest, progress func(Progress)) FlashResult
}

// ---------------------------------------------------------------- serial boards

// ChipInfo is what the ROM bootloader told about a serial board.
type ChipInfo struct {
	Chip      string // "ESP32-S3"
	Revision  string // "v0.2"
	MAC       string
	FlashID   string // "0x164020"
	FlashSize int64  // bytes
	Crystal   string // "40 MHz"
	Features  []string

	SecureBoot      bool
	FlashEncryption bool
	SecureDownload  bool
}

// SerialInfo reads facts from a serial board (through the ROM bootloader).
type SerialInfo interface {
	ChipInfo(ctx context.Context, dev Device) (ChipInfo, error)
}

// Partition is one row of the partition table, with the app found in it.
type Partition struct {
	Name    string
	Type    string // "app", "data"
	SubType string // "ota_0", "factory", "nvs", "ota", "spiffs"
	Offset  uint32
	Size    uint32

	// For app partitions: the image found in the slot ("" when empty).
	AppProject string
	AppVersion string
	AppDate    string // build date as the image has it ("2026-11-21")
	// State is the OTA state from otadata for this slot: "valid", "invalid",
	// "new", "pending verify", "aborted", "undefined", or "empty" / "" when
	// no image or not an OTA slot.
	State string
	// SwitchQuestion and MarkInvalidQuestion are the confirmation sentences
	// for making this app boot next and for marking its OTA entry invalid,
	// computed by the backend with the same function as the command line's
	// (what is written, what boots afterwards and why). When the action
	// would be refused, the Question is "" and the Refused text says why.
	SwitchQuestion, SwitchRefused           string
	MarkInvalidQuestion, MarkInvalidRefused string
}

// PartitionState is a serial board's partitions and its boot decision.
type PartitionState struct {
	TableOffset uint32
	Partitions  []Partition
	// OTAData describes the otadata sectors in one line
	// ("seq 7 (copy 1 ✓, copy 0 ✓)", "erased").
	OTAData string
	Running string // name of the running app partition; "" when unknown
	// BootsNext names the partition the bootloader will start next, and
	// BootsNextWhy says why ("seq 7, state VALID", "otadata erased: first OTA slot").
	BootsNext    string
	BootsNextWhy string
	// EraseQuestion is the confirmation sentence for erasing otadata, or
	// "" with EraseRefused saying why it would be refused.
	EraseQuestion, EraseRefused string
}

// Slot returns the partition called name.
func (s PartitionState) Slot(name string) (Partition, bool) {
	for _, p := range s.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

// PartitionControl reads and changes a serial board's boot decision. Each
// change returns the state read back from the board after the write. None of
// them touches an app slot's contents.
type PartitionControl interface {
	ReadPartitions(ctx context.Context, dev Device) (PartitionState, error)
	// SwitchBoot makes slot (an OTA app partition name) boot next.
	SwitchBoot(ctx context.Context, dev Device, slot string) (PartitionState, error)
	// EraseOTAData erases otadata, so the bootloader falls back to factory
	// (or the first OTA slot).
	EraseOTAData(ctx context.Context, dev Device) (PartitionState, error)
	// MarkInvalid marks slot's OTA entry invalid so it is not booted again.
	MarkInvalid(ctx context.Context, dev Device, slot string) (PartitionState, error)
}

// ---------------------------------------------------------------- monitor

// Level is a log line's ESP-IDF level letter: 'E', 'W', 'I', 'D', 'V', or 0
// for a line without one.
type Level byte

// Frame is one decoded backtrace frame.
type Frame struct {
	PC       uint32
	Function string // "" when no ELF was given or the address is unknown
	File     string
	Line     int
}

// LogLine is one line from a board's serial output.
type LogLine struct {
	Time  time.Time
	Level Level
	Tag   string
	Text  string // the message without level and tag; the whole line when Level is 0
	// Backtrace holds the decoded frames when this line is a crash
	// backtrace ("Backtrace: 0x400d... ").
	Backtrace []Frame
}

// MonitorSource reads a serial board's output.
type MonitorSource interface {
	// Monitor opens dev's port and sends lines until ctx is done or the port
	// goes away, then closes the channel. The error is for failing to open.
	Monitor(ctx context.Context, dev Device) (<-chan LogLine, error)
	// ResetIntoApp resets the board into its application.
	ResetIntoApp(ctx context.Context, dev Device) error
}

// ---------------------------------------------------------------- campaigns

// CampaignRequest runs a group flash as a campaign: a canary first, alone,
// then the rest a few at a time, stopping when more than MaxFailures
// boards failed, and a board counts as updated only when it comes back on
// the new version.
type CampaignRequest struct {
	// Boards are the jobs of the group flash, one per board, with the
	// passwords already asked for; the campaign's image is their File.
	Boards []FlashRequest
	// Canary is how many boards go first, alone (0: the campaign's default).
	Canary int
	// Parallel is how many boards are in flight at once after the canary
	// (0: the campaign's default).
	Parallel int
	// MaxFailures stops the campaign when more than this many boards failed.
	MaxFailures int
}

// CampaignRow is one board's line in a campaign.
type CampaignRow struct {
	DeviceID string
	Name     string
	Canary   bool
	// State is the campaign's word: queued, preflight, uploading,
	// rebooting, confirmed, uploaded, failed, timed-out, rolled-back, skipped.
	State       string
	Done, Total int64  // bytes, while uploading
	From, To    string // versions: announced before, the image's
	Running     string // what the board announced after its reboot
	// Confirmation is how the reboot was checked: confirmed, rolled-back,
	// timed-out, no-version, not-checked; "" before.
	Confirmation string
	Attempts     int
	// NeedsPassword: the last attempt failed for a wrong or missing
	// password (an ESPHome board does not say beforehand that it wants
	// one); a resume asks for it first.
	NeedsPassword bool
	Code          string // machine word of the failure or skip reason
	Message       string // what happened, in a sentence
	Hint          string // what to do next
}

// Failed reports whether the row counts against the abort threshold (and
// is sent again by a resume).
func (r CampaignRow) Failed() bool {
	return r.State == "failed" || r.State == "timed-out" || r.State == "rolled-back"
}

// CampaignSummary counts a campaign's rows by outcome.
type CampaignSummary struct {
	Total, Confirmed, Uploaded, Skipped, Failed, TimedOut, RolledBack, Untouched, InFlight int
}

// CampaignView is a campaign as the campaign screen shows it.
type CampaignView struct {
	ID        string
	Image     string // the image's file name and version
	Threshold string // "more than 0 failed"
	Canary    int
	Parallel  int
	Confirm   time.Duration // how long a board may take to come back (0: not checked)
	Rows      []CampaignRow
	Summary   CampaignSummary
	Running   bool
	// StopReason says why the threshold or the canary stopped it ("" when not).
	StopReason  string
	Interrupted bool
	// File is where the campaign is saved, for 'espdeck campaign status'
	// and 'resume' ("" when it lives in this run only).
	File string
	// Warnings are what went wrong beside the boards: a campaign file or
	// an audit record that could not be written. They only grow.
	Warnings []string
}

// Retryable is how many boards a resume would send to again.
func (v CampaignView) Retryable() int {
	n := 0
	for _, r := range v.Rows {
		if r.Failed() || (!v.Running && (r.State == "queued" || r.State == "preflight" || r.State == "uploading" || r.State == "rebooting")) {
			n++
		}
	}
	return n
}

// CampaignRunner runs campaigns. update is called from the campaign's
// goroutines, one call at a time, with the whole view after every change;
// the last call has Running false. It must not block.
type CampaignRunner interface {
	// StartCampaign plans the campaign and starts it; it returns once it
	// runs (the error says why it could not be planned).
	StartCampaign(ctx context.Context, req CampaignRequest, update func(CampaignView)) error
	// ResumeCampaign sends again to the boards of campaign id that failed,
	// were not confirmed, were interrupted or never started. passwords
	// (by device ID) replace the ones the campaign was started with.
	ResumeCampaign(ctx context.Context, id string, passwords map[string]Secret, update func(CampaignView)) error
}

// ---------------------------------------------------------------- pull server

// ServedImage is one file the pull server publishes.
type ServedImage struct {
	Name    string
	Version string
	Size    int64
	Refused string // why the signing policy refuses to serve it; "" when served
}

// Download is one client's download from the pull server.
type Download struct {
	Client   string // address of its first request
	MAC      string // the board's MAC header, when it sent one (its own word)
	Image    string
	Size     int64   // bytes in the image
	Bytes    int64   // body bytes sent, counting repeats
	Covered  int64   // distinct bytes of the image sent
	Ranges   int     // Range requests seen
	Rate     float64 // bytes per second since its first request
	Done     bool    // the session ended
	Complete bool    // the client got every byte
}

// ServerState is a running pull server as the server pane shows it.
type ServerState struct {
	Dir  string
	URLs []string // base URLs boards fetch from, LAN addresses first
	// CAFingerprint is the SHA-256 of the bench CA boards must trust; ""
	// for plain HTTP.
	CAFingerprint string
	Images        []ServedImage
	Problems      map[string]string // file name -> why it is not published
	Downloads     []Download        // finished ones first, then those in progress
}

// ServerSource is a running pull server (espdeck serve in the TUI).
type ServerSource interface {
	// ServerState is the server as it is now; it is cheap and safe to call
	// from any goroutine.
	ServerState() ServerState
}
