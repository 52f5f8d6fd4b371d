// Package tuibackend adapts espdeck's real packages — discovery, espota,
// serialflash, the firmware checks in internal/ops and the monitor — to the
// small interfaces the TUI declares (tui.Backend). The TUI never opens a
// socket or a port; everything it does goes through here.
package tuibackend

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

// Config is what the composition root decides for the backend.
type Config struct {
	// Watcher is the running discovery (its Watch is called by the TUI
	// through DeviceSource). Required.
	Watcher *discovery.Watcher
	// Policy is the pre-flight policy (signing keys from the config file).
	Policy ops.Policy
	// HostIP and HostPort fix the OTA connect-back listener (0: automatic).
	HostIP   string
	HostPort int
	// OTATimeouts shortens or lengthens the OTA phases (zero: espota's defaults).
	InviteTimeout, ConnectTimeout time.Duration
	// Serial tunes every ROM-loader connection (Baud; OnProgress and Logger
	// are set per job).
	Serial serialflash.Options
	// OpenSerialPort opens a port for the ROM loader (nil:
	// serialflash.OpenPort). The demo forwards DTR/RTS of its pty to the
	// simulated board through it.
	OpenSerialPort func(ctx context.Context, name string) (serialflash.Port, error)
	// OpenMonitorPort opens a port for the monitor (nil: monitor.OpenSerial).
	OpenMonitorPort monitor.OpenFunc
	// Password returns a stored OTA password for a device (from the config
	// file's password_env/password_file, or ESPDECK_PASSWORD), so that the
	// TUI does not ask for it. Nil: always ask.
	Password func(dev tui.Device) (string, bool)
	// APIKey returns the API encryption key of an ESPHome device (base64),
	// so that its OTA session is encrypted. Nil or false: no key.
	APIKey func(dev tui.Device) (string, bool)
	// CampaignConfirm is how long a campaign waits for a board to come
	// back on the new version (0: campaign.DefaultConfirm; negative: do
	// not wait, boards end as uploaded). The demo's boards are static and
	// never re-announce themselves, so the demo does not wait.
	CampaignConfirm time.Duration
	// AuditLog is the audit log every finished update is appended to, one
	// record per board attempt, as the command line writes them ("": no
	// log). A log that cannot be written is a warning, never a failure.
	AuditLog string
	// CampaignDir is the folder of campaign files: a campaign is saved to
	// CampaignDir/ID.json at every change, where 'espdeck campaign status'
	// and 'resume' read it ("": campaigns live in memory only).
	CampaignDir string
	// ELF is the application ELF for backtrace decoding in the monitor ("" none).
	ELF string
	// MonitorBaud is the application's console rate (default 115200).
	MonitorBaud int
	// Logger receives what the backend does (nil: discard). It must not
	// write to the terminal the TUI draws on.
	Logger *slog.Logger
}

// Backend holds the state the adapters share: what was learned about each
// device (the auth scheme after an upload, chip facts from the ROM) is fed
// back into the device stream, and serial ports are used by one job at a time.
type Backend struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	learned map[string]learnedFacts     // by tui.Device.ID
	updates chan tui.Device             // facts learned by jobs, re-announced as updates
	ports   map[string]*sync.Mutex      // serial port path -> exclusive use
	latest  map[string]tui.Device       // last device sent to the TUI, by ID
	mons    map[string]*monitor.Monitor // running monitors by port path
	raw     map[string]discovery.Device // last discovery sighting, by ID (campaign boards)
	// roster follows discovery's sightings, so that a campaign confirms
	// a board's reboot by what it announces.
	roster    *campaign.Roster
	campaigns map[string]*runningCampaign // by campaign ID
	// running counts the campaign runs in progress, so that Wait can let
	// them save their files and audit records before the program exits.
	running sync.WaitGroup
	// waiting is set (under mu) once Wait began: no campaign run starts
	// after it, so running.Add never races running.Wait.
	waiting bool
	// interrupted holds the files of the campaigns whose last run was
	// interrupted, by campaign ID.
	interrupted map[string]string
}

type learnedFacts struct {
	authScheme string
	// authRequired: an upload found that the device asks for a password
	// (ESPHome does not advertise it).
	authRequired bool
	chip         string
	mac          string
	flashSize    uint32              // serial boards: detected flash size
	parts        *ops.PartitionState // serial boards: the last partition state read
	answered     time.Time           // when the device last answered an upload's invitation
}

// New returns a Backend for cfg.
func New(cfg Config) *Backend {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MonitorBaud == 0 {
		cfg.MonitorBaud = 115200
	}
	return &Backend{
		cfg:     cfg,
		log:     log,
		learned: map[string]learnedFacts{},
		updates: make(chan tui.Device, 16),
		ports:   map[string]*sync.Mutex{},
		latest:  map[string]tui.Device{},
		raw:     map[string]discovery.Device{},
		roster:  campaign.NewRoster(),

		campaigns:   map[string]*runningCampaign{},
		interrupted: map[string]string{},
	}
}

// Wait waits until every campaign run of b has ended — its file saved and
// its audit records written — or ctx ends. Cancelling the context the
// campaigns were started with ends them promptly. It returns the files of
// the campaigns left interrupted, which 'espdeck campaign resume' goes on
// with.
func (b *Backend) Wait(ctx context.Context) ([]string, error) {
	b.mu.Lock()
	b.waiting = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		b.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var files []string
	for _, f := range b.interrupted {
		files = append(files, f)
	}
	slices.Sort(files)
	return files, nil
}

// TUI returns the interfaces the TUI needs, all backed by b.
func (b *Backend) TUI() tui.Backend {
	return tui.Backend{
		Devices:    devices{b},
		Flasher:    flasher{b},
		Images:     images{b},
		Partitions: partitions{b},
		Serial:     serialInfo{b},
		Monitor:    monitors{b},
		Campaigns:  campaigns{b},
	}
}

// lockPort takes exclusive use of a serial port until the returned func is
// called, or fails when ctx ends first.
func (b *Backend) lockPort(ctx context.Context, path string) (func(), error) {
	b.mu.Lock()
	m, ok := b.ports[path]
	if !ok {
		m = &sync.Mutex{}
		b.ports[path] = m
	}
	b.mu.Unlock()
	for {
		if m.TryLock() {
			return m.Unlock, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// learn records facts about a device and re-announces it with them.
func (b *Backend) learn(id string, update func(*learnedFacts)) {
	b.mu.Lock()
	f := b.learned[id]
	update(&f)
	b.learned[id] = f
	d, known := b.latest[id]
	b.mu.Unlock()
	if !known {
		return
	}
	select {
	case b.updates <- b.decorate(d):
	default: // the TUI will see the facts with the next discovery update
	}
}

// decorate adds learned facts to a device.
func (b *Backend) decorate(d tui.Device) tui.Device {
	b.mu.Lock()
	f, ok := b.learned[d.ID]
	b.mu.Unlock()
	if !ok {
		return d
	}
	if f.authScheme != "" {
		d.AuthScheme = f.authScheme
	}
	if f.authRequired {
		d.AuthRequired = true
	}
	if f.chip != "" {
		d.Chip = f.chip
	}
	if f.mac != "" && d.MAC == "" {
		d.MAC = f.mac
	}
	if !f.answered.IsZero() && d.Presence == tui.PresenceUnchecked {
		d.Presence, d.LastSeen = tui.PresenceOnline, f.answered
	}
	return d
}
