package esphomeota

import (
	"log/slog"
	"time"
)

// Default OTA ports by platform (ota: - platform: esphome port:).
const (
	DefaultPortESP32   = 3232
	DefaultPortESP8266 = 8266
	DefaultPortRP2040  = 2040
	DefaultPortBK72xx  = 8892
)

// Defaults for Options; a zero field means the default.
const (
	// DefaultConnectTimeout matches ESPHome's uploader (20 s to connect).
	DefaultConnectTimeout = 20 * time.Second
	// DefaultHandshakeTimeout matches the device's handshake watchdog: it
	// drops a client that has not finished the handshake within 20 s.
	DefaultHandshakeTimeout = 20 * time.Second
	// DefaultDataTimeout is longer than the device's own data inactivity
	// timeout (105 s), so that the device's verdict arrives before ours.
	DefaultDataTimeout = 120 * time.Second
	// DefaultWindow is the number of unacknowledged 8 KiB blocks in flight
	// (protocol version 2).
	DefaultWindow = 3
	// DefaultRetries is how many times a lost connection is retried.
	DefaultRetries = 2
	// DefaultRetryDelay is the pause before a retry (as ESPHome's uploader).
	DefaultRetryDelay = 5 * time.Second
)

// Target is the device to upload to.
type Target struct {
	Host string // IP address or host name
	Port int    // OTA TCP port; 0 means DefaultPortESP32
}

// Options tune an upload. The zero value is a usable default: an app
// image, gzip when the device offers it, no password, no encryption.
type Options struct {
	// Password is the OTA password (ota: password:); empty means none. It
	// never appears in logs, errors or progress.
	Password Secret
	// APIKey is the device's API encryption key (api: encryption: key:),
	// base64 of 32 bytes. When set, the session must be encrypted: a device
	// that does not offer encryption is refused, never downgraded.
	APIKey Secret
	// Type is what to replace: TypeApp (default), or — only with
	// AllowRisky — TypePartitionTable or TypeBootloader.
	Type OTAType
	// AllowRisky must be true to send a partition table or a bootloader:
	// a failed write there can leave the device unable to boot. The caller
	// confirms this with the user first.
	AllowRisky bool
	// NoCompression sends the image uncompressed even when the device
	// offers gzip.
	NoCompression bool
	// NoSHA256 leaves the SHA-256 feature bit unset (to talk to firmware
	// that predates it, or to test what current firmware says about it).
	NoSHA256 bool
	// Window is the number of unacknowledged 8 KiB blocks in flight with
	// protocol version 2 (default 3; 1 is ESPHome's own stop-and-wait).
	Window int
	// ConnectTimeout bounds the TCP connect (default 20 s).
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds everything from connecting to the device's
	// AUTH_OK, Noise handshake included (default 20 s).
	HandshakeTimeout time.Duration
	// DataTimeout is how long the device may stay silent, and take no
	// data, after the handshake (default 120 s, above the device's 105 s).
	DataTimeout time.Duration
	// Retries is how many more connections are tried after a network
	// error before the last block was acknowledged (default 2; negative
	// means none). A failure after that is never retried: the device may
	// already have committed the image.
	Retries int
	// RetryDelay is the pause before each retry (default 5 s).
	RetryDelay time.Duration
	// OnProgress receives progress events, in order, on a goroutine of its
	// own so a slow callback never blocks the transfer (transfer events
	// may then be coalesced). Completion is Upload's return value. May be nil.
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
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&o.DataTimeout, DefaultDataTimeout)
	def(&o.RetryDelay, DefaultRetryDelay)
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Stage is a phase of an upload.
type Stage string

// Stages in the order an upload goes through them.
const (
	StageConnect   Stage = "connect"
	StageHandshake Stage = "handshake"
	StageAuth      Stage = "auth"
	StagePrepare   Stage = "prepare"
	StageTransfer  Stage = "transfer"
	StageFinalize  Stage = "finalize"
)

// Progress is one progress event.
type Progress struct {
	Stage   Stage
	Done    int64   // bytes the device has acknowledged (v2) or taken (v1)
	Total   int64   // bytes on the wire (the compressed size with gzip)
	Rate    float64 // bytes per second over the transfer so far
	Attempt int     // connection attempt, 1-based
	Addr    string  // the device's address
	// Session describes what was negotiated, from the auth stage on.
	Session Session
}

// Auth schemes in Result.AuthScheme.
const (
	SchemeNone   = "none"
	SchemeSHA256 = "sha256"
	SchemeMD5    = "md5"
)

// Session is what the device and we agreed on.
type Session struct {
	Version    int    // protocol version, 1 or 2
	Extended   bool   // extended protocol (FEATURE_FLAGS reply)
	Flags      byte   // server flags (extended protocol)
	AuthScheme string // SchemeNone, SchemeSHA256 or SchemeMD5
	Encrypted  bool   // Noise session
	Gzip       bool   // the image went compressed
}

// Result describes a successful upload.
type Result struct {
	Session
	Type       OTAType
	ImageBytes int64         // the image's size
	Bytes      int64         // bytes of payload sent (the gzip size with gzip)
	Duration   time.Duration // whole upload, first connect to the device's verdict
	Transfer   time.Duration // data phase only
	Device     string        // device address used
	Attempts   int           // connections made (more than 1 means retries)
	// EndAckSent is false when the device's final verdict arrived but our
	// closing acknowledgement could not be written (harmless: the device
	// tolerates its absence).
	EndAckSent bool
}
