package espota

import (
	"context"
	"log/slog"
	"time"
)

// Default device ports.
const (
	DefaultPortESP32   = 3232
	DefaultPortESP8266 = 8266
)

// Defaults for Options; a zero field means the default.
const (
	DefaultInviteTimeout   = 10 * time.Second
	DefaultAuthTimeout     = 10 * time.Second
	DefaultConnectTimeout  = 10 * time.Second
	DefaultStallTimeout    = 10 * time.Second
	DefaultFinalizeTimeout = 30 * time.Second
)

// Target is the device to upload to.
type Target struct {
	Host string // IP address or host name (IPv4; ArduinoOTA devices are IPv4 only)
	Port int    // device UDP port; 0 means DefaultPortESP32 (use 8266 for ESP8266)
}

// Options tune an upload. The zero value is a usable default.
type Options struct {
	// Password is the OTA password; empty means none. It never appears in
	// logs, errors or progress.
	Password Secret
	// AskPassword, when set, is called if the device asks for a password
	// and Password is empty (e.g. a no-echo terminal prompt). The device
	// waits for the answer. Nil means: fail with ErrAuthFailed.
	AskPassword func(ctx context.Context) (Secret, error)
	// MD5Secret answers a PBKDF2 challenge with MD5hex(password) as the
	// stored secret right away instead of trying SHA256hex(password) first
	// (espota.py -m; for sketches calling setPasswordHash with an MD5 hash).
	MD5Secret bool
	// Filesystem uploads a filesystem image (command 100) instead of an
	// application (command 0). Filesystem images are not checked.
	Filesystem bool
	// HostIP is the local address to listen on for the device's connection
	// back. Default: the local address that routes to the device.
	HostIP string
	// HostPort is the local TCP port for the connection back; 0 picks a
	// free one. Fix it to open a single port in a firewall.
	HostPort int
	// InviteTimeout bounds the invitation phase, all retries included
	// (default 10 s).
	InviteTimeout time.Duration
	// AuthTimeout bounds the wait for the reply to the authentication
	// datagram (default 10 s; the PBKDF2 scheme takes the device a while).
	AuthTimeout time.Duration
	// ConnectTimeout bounds the wait for the device's connection back
	// (default 10 s).
	ConnectTimeout time.Duration
	// StallTimeout is how long the device may take no data before the
	// upload fails (default 10 s). It is tied to progress, not to the
	// length of the upload.
	StallTimeout time.Duration
	// FinalizeTimeout bounds the wait for the device's verdict after the
	// device has taken the last byte (default 30 s). It is an absolute
	// deadline: bytes the device sends meanwhile do not extend it.
	FinalizeTimeout time.Duration
	// Force sends an application image whose first byte is not 0xE9.
	Force bool
	// OnProgress receives progress events, in order, on a goroutine of its
	// own so that a slow callback never blocks the transfer (transfer
	// events may then be coalesced). Completion is the return value of
	// Upload, never an event. May be nil.
	OnProgress func(Progress)
	// Logger receives debug and info records; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.InviteTimeout, DefaultInviteTimeout)
	def(&o.AuthTimeout, DefaultAuthTimeout)
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.StallTimeout, DefaultStallTimeout)
	def(&o.FinalizeTimeout, DefaultFinalizeTimeout)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Stage is a phase of an upload.
type Stage string

// Stages in the order an upload goes through them.
const (
	StageInvite   Stage = "invite"
	StageAuth     Stage = "auth"
	StageConnect  Stage = "connect"
	StageTransfer Stage = "transfer"
	StageFinalize Stage = "finalize"
)

// Progress is one progress event.
type Progress struct {
	Stage   Stage
	Done    int64   // bytes handed to the device so far (transfer, finalize)
	Total   int64   // image size
	Rate    float64 // bytes per second over the transfer so far
	Attempt int     // invitation attempt (1-based) during invite
	Addr    string  // invite/auth: the device's address; connect: where we listen
}

// Result describes a successful upload.
type Result struct {
	AuthScheme  string        // SchemeNone, SchemeMD5, SchemePBKDF2SHA256 or SchemePBKDF2MD5
	Bytes       int64         // bytes sent (the image size)
	Duration    time.Duration // whole upload, invitation to the device's OK
	Transfer    time.Duration // data phase only
	Device      string        // device UDP address used
	HostAddr    string        // where we listened for the connection back
	Invitations int           // invitations sent (more than 1 means retries)
}
