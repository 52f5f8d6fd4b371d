// Package esphomesim is a simulated ESPHome device serving the native OTA
// protocol, for tests and demos.
//
// It follows the device's state machine of docs/protocol-esphome-ota.md
// (§3–§5, §7) and ESPHome's ota_esphome.cpp, not any client: protocol
// versions 1 and 2, the legacy and the extended feature reply, SHA-256 or
// MD5 authentication (current firmware refuses a client without SHA-256),
// Noise_NNpsk0 encryption keyed by the API key (optionally required), the
// OTA types it allows, gzip acceptance (it inflates and checks), an erase
// delay, a per-byte write delay, a small receive window, an error code at
// a named step, a stall and a dropped connection. It records what it
// received, serves one client at a time, binds loopback only, and after a
// successful update comes back with a new firmware version.
//
// It never imports the esphomeota client, so a bug shared by both cannot
// make their tests pass.
package esphomesim

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/flynn/noise"
)

// Scheme is the authentication scheme used when a password is set.
type Scheme int

const (
	// SchemeSHA256 is current firmware: SHA-256 only; a client that does
	// not offer it gets 0x82 and the connection closes.
	SchemeSHA256 Scheme = iota
	// SchemeMD5 is older firmware: an MD5 challenge whatever the client offers.
	SchemeMD5
)

func (s Scheme) String() string {
	if s == SchemeMD5 {
		return "md5"
	}
	return "sha256"
}

// Step names a point of the session where an error can be injected.
type Step string

// Steps in session order.
const (
	StepMagic    Step = "magic"    // instead of 00 VV
	StepFeatures Step = "features" // instead of the feature reply
	StepAuth     Step = "auth"     // instead of AUTH_OK
	StepPrepare  Step = "prepare"  // instead of UPDATE_PREPARE_OK
	StepMD5      Step = "md5"      // instead of BIN_MD5_OK
	StepData     Step = "data"     // after FaultAfter bytes of data
	StepReceive  Step = "receive"  // instead of RECEIVE_OK
	StepEnd      Step = "end"      // instead of UPDATE_END_OK
)

// Platforms the simulator models.
const (
	PlatformESP32   = "ESP32"
	PlatformESP8266 = "ESP8266"
)

// Device timeouts (ota_esphome.cpp; the data timeout as of #19041).
const (
	DefaultHandshakeTimeout = 20 * time.Second
	DefaultDataTimeout      = 105 * time.Second
	DefaultSlot             = 0x180000
)

// Config describes a simulated device. The zero value is an ESP32 on
// protocol version 2 with the extended protocol, no password, no
// encryption, app updates only.
type Config struct {
	Name     string // mDNS-style name, for logs and listings
	Platform string // PlatformESP32 (default) or PlatformESP8266
	Board    string // e.g. esp32dev, d1_mini
	// Version is the OTA protocol version, 1 or 2 (default 2).
	Version byte
	// Legacy is firmware that predates the extended protocol: it ignores
	// client bit 0x04 and answers 0x40 or 0x46.
	Legacy bool
	// Gzip accepts gzip-compressed images (ESP8266 firmware does).
	Gzip bool
	// PartitionAccess allows partition-table and bootloader updates.
	PartitionAccess bool
	// Password is the OTA password; empty means none.
	Password string
	Scheme   Scheme
	// APIKey is the base64 API encryption key; empty means the device
	// does not offer encryption.
	APIKey string
	// RequireEncryption answers 0x94 to a client that does not offer Noise.
	RequireEncryption bool
	// SlotSize is the largest payload accepted (default DefaultSlot).
	SlotSize int
	// EraseDelay is how long preparing the flash takes.
	EraseDelay time.Duration
	// ByteDelay is how long writing one byte takes.
	ByteDelay time.Duration
	// EndDelay is how long ending the update takes (MD5, signature and
	// image checks, switching the boot partition).
	EndDelay time.Duration
	// ReceiveWindow sets the socket receive buffer (an ESP's lwIP window
	// is 5744 bytes); 0 leaves the system default.
	ReceiveWindow int
	// FaultStep and FaultCode send FaultCode instead of the step's reply
	// and close. At StepData the code goes after FaultAfter data bytes.
	FaultStep  Step
	FaultCode  byte
	FaultAfter int
	// StallAfter stops reading (without closing) after this many data
	// bytes, until the client gives up or the data timeout (0: off).
	StallAfter int
	// DropAfter closes the connection without a word after this many data
	// bytes (0: off).
	DropAfter int
	// DropAfterAll closes the connection, silently, after every byte was
	// received and acknowledged but before RECEIVE_OK.
	DropAfterAll bool
	// FaultSessions limits the faults above to the first N sessions (0: all).
	FaultSessions int
	// FirmwareVersion is the running ESPHome version; NextVersion, when
	// set, is the version after a successful update.
	FirmwareVersion string
	NextVersion     string
	// RebootDelay, when set, makes the device reboot after a successful
	// update: its port is closed for this long, then it listens again on
	// the same address with the new version.
	RebootDelay time.Duration
	// OnAnnounce, when set, is told what mDNS would say around a reboot:
	// up false when the port closes, up true with the running version when
	// it listens again. Tests feed a discovery roster from it.
	OnAnnounce func(up bool, version string)
	// HandshakeTimeout and DataTimeout are the device's watchdogs.
	HandshakeTimeout time.Duration
	DataTimeout      time.Duration
	// Port to bind on 127.0.0.1 (0: any free one).
	Port   int
	Logger *slog.Logger
}

// Record is what one session did.
type Record struct {
	Remote    string
	Features  byte // the client's feature byte
	Extended  bool
	Encrypted bool
	Auth      string // "none", "sha256" or "md5"
	Type      byte
	Size      int    // announced payload size
	MD5       string // announced MD5
	Received  int    // payload bytes received
	Gzip      bool   // the payload was gzip and was inflated
	Image     []byte // the image as it would be written (inflated)
	Outcome   byte   // 0x45 on success, else the error byte sent (0: none)
	Step      Step   // where the session ended
	EndAck    bool   // the client sent the final 00
	Err       string // why the session ended, for the log
}

// Device is a running simulated device.
type Device struct {
	cfg      Config
	log      *slog.Logger
	psk      []byte
	ln       net.Listener
	mu       sync.Mutex
	records  []Record
	version  string
	updates  int
	sessions int
	notify   chan struct{}
	closed   chan struct{}
	wg       sync.WaitGroup
	conn     net.Conn
	lc       net.ListenConfig
	addr     *net.TCPAddr // stays the same across reboots
	reboots  int
}

// Reboots is the number of reboots after successful updates (RebootDelay).
func (d *Device) Reboots() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reboots
}

// reboot closes the port for RebootDelay and listens again on the same
// address. It returns the new listener, or nil when the device closed.
func (d *Device) reboot(ln net.Listener) net.Listener {
	ln.Close()
	if d.cfg.OnAnnounce != nil {
		d.cfg.OnAnnounce(false, "")
	}
	t := time.NewTimer(d.cfg.RebootDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.closed:
		return nil
	}
	for range 50 { // the old socket may linger a moment
		nl, err := d.lc.Listen(context.Background(), "tcp4", d.addr.String())
		if err == nil {
			d.mu.Lock()
			select {
			case <-d.closed:
				d.mu.Unlock()
				nl.Close()
				return nil
			default:
			}
			d.ln = nl
			d.reboots++
			version := d.version
			d.mu.Unlock()
			if d.cfg.OnAnnounce != nil {
				d.cfg.OnAnnounce(true, version)
			}
			return nl
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-d.closed:
			return nil
		}
	}
	d.log.Warn("could not listen again after the reboot", "addr", d.addr.String())
	return nil
}

// New checks cfg and returns a device that is not listening yet.
func New(cfg Config) (*Device, error) {
	if cfg.Version == 0 {
		cfg.Version = 2
	}
	if cfg.Version != 1 && cfg.Version != 2 {
		return nil, fmt.Errorf("esphomesim: version %d, want 1 or 2", cfg.Version)
	}
	if cfg.Platform == "" {
		cfg.Platform = PlatformESP32
	}
	if cfg.SlotSize == 0 {
		cfg.SlotSize = DefaultSlot
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.DataTimeout == 0 {
		cfg.DataTimeout = DefaultDataTimeout
	}
	if cfg.FirmwareVersion == "" {
		cfg.FirmwareVersion = "2026.11.0"
	}
	d := &Device{cfg: cfg, log: cfg.Logger, version: cfg.FirmwareVersion,
		notify: make(chan struct{}), closed: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if cfg.APIKey != "" {
		k, err := base64.StdEncoding.DecodeString(cfg.APIKey)
		if err != nil || len(k) != 32 {
			return nil, errors.New("esphomesim: APIKey must be base64 of 32 bytes")
		}
		d.psk = k
	}
	if cfg.RequireEncryption && d.psk == nil {
		return nil, errors.New("esphomesim: RequireEncryption needs an APIKey")
	}
	return d, nil
}

// Start binds 127.0.0.1 and serves clients one at a time until ctx ends
// or Close is called.
func (d *Device) Start(ctx context.Context) error {
	lc := net.ListenConfig{}
	if w := d.cfg.ReceiveWindow; w > 0 {
		lc.Control = func(_, _ string, c syscall.RawConn) error { return setReceiveBuffer(c, w) }
	}
	ln, err := lc.Listen(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", d.cfg.Port))
	if err != nil {
		return err
	}
	d.ln, d.lc, d.addr = ln, lc, ln.Addr().(*net.TCPAddr)
	d.wg.Add(1)
	go d.serve(ln)
	stop := context.AfterFunc(ctx, func() { d.Close() })
	go func() { <-d.closed; stop() }()
	return nil
}

// Addr is where the device listens.
func (d *Device) Addr() *net.TCPAddr { return d.addr }

// Config returns the device's configuration, defaults filled in.
func (d *Device) Config() Config { return d.cfg }

// Close stops the device and waits for its goroutines.
func (d *Device) Close() error {
	d.mu.Lock()
	select {
	case <-d.closed:
		d.mu.Unlock()
		d.wg.Wait()
		return nil
	default:
	}
	close(d.closed)
	if d.conn != nil {
		d.conn.Close()
	}
	ln := d.ln
	d.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	d.wg.Wait()
	return err
}

// FirmwareVersion is the version the device runs now (NextVersion after
// a successful update, when set).
func (d *Device) FirmwareVersion() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// Updates is the number of successful updates.
func (d *Device) Updates() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.updates
}

// Records returns every finished session so far.
func (d *Device) Records() []Record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Record(nil), d.records...)
}

// WaitRecords waits until at least n sessions have finished and returns
// them all.
func (d *Device) WaitRecords(ctx context.Context, n int) ([]Record, error) {
	for {
		d.mu.Lock()
		if len(d.records) >= n {
			r := append([]Record(nil), d.records...)
			d.mu.Unlock()
			return r, nil
		}
		ch := d.notify
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return d.Records(), ctx.Err()
		case <-d.closed:
			return d.Records(), errors.New("esphomesim: device closed")
		}
	}
}

func (d *Device) serve(ln net.Listener) {
	defer d.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		select {
		case <-d.closed:
			d.mu.Unlock()
			c.Close()
			return
		default:
		}
		d.conn = c
		d.sessions++
		faults := d.cfg.FaultSessions == 0 || d.sessions <= d.cfg.FaultSessions
		d.mu.Unlock()
		rec := d.Serve(c, faults)
		d.mu.Lock()
		d.conn = nil
		d.records = append(d.records, rec)
		if rec.Outcome == respEndOK {
			d.updates++
			if d.cfg.NextVersion != "" {
				d.version = d.cfg.NextVersion
			}
		}
		close(d.notify)
		d.notify = make(chan struct{})
		d.mu.Unlock()
		if rec.Outcome == respEndOK && d.cfg.RebootDelay > 0 {
			if ln = d.reboot(ln); ln == nil {
				return
			}
		}
	}
}

// Wire constants, from the device's side (docs/protocol-esphome-ota.md §2).
var magicBytes = []byte{0x6C, 0x26, 0xF7, 0x5C, 0x45}

const (
	respOK           = 0x00
	respAuthMD5      = 0x01
	respAuthSHA256   = 0x02
	respHeaderOK     = 0x40
	respAuthOK       = 0x41
	respPrepareOK    = 0x42
	respMD5OK        = 0x43
	respReceiveOK    = 0x44
	respEndOK        = 0x45
	respCompression  = 0x46
	respChunkOK      = 0x47
	respFeatureFlags = 0x48

	errMagic        = 0x80
	errAuthInvalid  = 0x82
	errESP8266Space = 0x88
	errESP32Space   = 0x89
	errMD5Mismatch  = 0x8B
	errUnsupported  = 0x8E
	errEncryption   = 0x94
	errUnknown      = 0xFF

	clientGzip     = 0x01
	clientSHA256   = 0x02
	clientExtended = 0x04
	clientNoise    = 0x08

	serverGzip      = 0x01
	serverPartition = 0x02
	serverNoise     = 0x04

	blockSize  = 8192
	bufferSize = 1024 // the device's data buffer: a frame's ciphertext must fit
	macSize    = 16
)

// session is one client connection.
type session struct {
	d      *Device
	cfg    Config
	c      net.Conn
	br     *bufio.Reader
	rec    Record
	faults bool
	send   *noise.CipherState
	recv   *noise.CipherState
}

// failure ends a session; code is the byte to send (0: none).
type failure struct {
	step Step
	code byte
	why  string
}

func (f *failure) Error() string { return f.why }

// Serve runs one session on c (faults enabled or not) and closes c. It is
// exported for fuzzing the request parser with in-memory connections.
func (d *Device) Serve(c net.Conn, faults bool) Record {
	s := &session{d: d, cfg: d.cfg, c: c, br: bufio.NewReaderSize(c, 2048), faults: faults}
	s.rec.Remote = c.RemoteAddr().String()
	s.rec.Auth = "none"
	defer c.Close()
	err := s.run()
	var f *failure
	if errors.As(err, &f) {
		s.rec.Step = f.step
		s.rec.Err = f.why
		if f.code != 0 {
			s.rec.Outcome = f.code
			s.out(f.code)
		}
	} else if err != nil {
		s.rec.Err = err.Error()
	}
	d.log.Info("session ended", "device", d.cfg.Name, "step", s.rec.Step, "outcome", fmt.Sprintf("0x%02X", s.rec.Outcome), "err", s.rec.Err)
	return s.rec
}

func (s *session) fault(step Step) *failure {
	if s.faults && s.cfg.FaultStep == step && step != StepData {
		return &failure{step, s.cfg.FaultCode, "injected fault at " + string(step)}
	}
	return nil
}

func (s *session) fail(step Step, code byte, why string, args ...any) error {
	return &failure{step, code, fmt.Sprintf(why, args...)}
}

func (s *session) run() error {
	cfg := s.cfg
	s.c.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	s.rec.Step = StepMagic
	var m [5]byte
	if _, err := io.ReadFull(s.br, m[:]); err != nil {
		return s.fail(StepMagic, 0, "read magic: %v", err)
	}
	if !bytes.Equal(m[:], magicBytes) {
		return s.fail(StepMagic, errMagic, "bad magic % X", m)
	}
	if f := s.fault(StepMagic); f != nil {
		return f
	}
	s.raw(respOK, cfg.Version)

	s.rec.Step = StepFeatures
	feat, err := s.br.ReadByte()
	if err != nil {
		return s.fail(StepFeatures, 0, "read features: %v", err)
	}
	s.rec.Features = feat
	s.rec.Extended = feat&clientExtended != 0 && !cfg.Legacy
	wantsNoise := s.rec.Extended && feat&clientNoise != 0 && s.d.psk != nil
	if cfg.RequireEncryption && !wantsNoise {
		return s.fail(StepFeatures, errEncryption, "encryption required, client features 0x%02X", feat)
	}
	if f := s.fault(StepFeatures); f != nil {
		return f
	}
	gz := cfg.Gzip && feat&clientGzip != 0
	var reply []byte
	if s.rec.Extended {
		flags := byte(0)
		if gz {
			flags |= serverGzip
		}
		if cfg.PartitionAccess {
			flags |= serverPartition
		}
		if s.d.psk != nil {
			flags |= serverNoise
		}
		reply = []byte{respFeatureFlags, flags}
	} else if gz {
		reply = []byte{respCompression}
	} else {
		reply = []byte{respHeaderOK}
	}
	s.raw(reply...)

	if wantsNoise {
		if err := s.handshake(feat, reply[1]); err != nil {
			return err
		}
		s.rec.Encrypted = true
	}

	s.rec.Step = StepAuth
	if cfg.Password != "" && !s.rec.Encrypted {
		if err := s.auth(feat); err != nil {
			return err
		}
	}
	if f := s.fault(StepAuth); f != nil {
		return f
	}
	s.out(respAuthOK)
	return s.data()
}

// auth runs the challenge of the configured scheme.
func (s *session) auth(feat byte) error {
	var h func() hash.Hash
	code := byte(respAuthMD5)
	s.rec.Auth = "md5"
	if s.cfg.Scheme == SchemeSHA256 {
		if feat&clientSHA256 == 0 {
			return s.fail(StepAuth, errAuthInvalid, "SHA256 required")
		}
		h, code, s.rec.Auth = sha256.New, respAuthSHA256, "sha256"
	} else {
		h = md5.New
	}
	var seed [8]byte
	rand.Read(seed[:])
	d := h()
	d.Write(seed[:])
	nonce := hex.EncodeToString(d.Sum(nil))
	s.raw(append([]byte{code}, nonce...)...)
	n := len(nonce)
	buf := make([]byte, 2*n)
	if _, err := io.ReadFull(s.br, buf); err != nil {
		return s.fail(StepAuth, 0, "read auth: %v", err)
	}
	cnonce, resp := buf[:n], buf[n:]
	d = h()
	d.Write([]byte(s.cfg.Password))
	d.Write([]byte(nonce))
	d.Write(cnonce)
	if !bytes.Equal([]byte(hex.EncodeToString(d.Sum(nil))), bytes.ToLower(resp)) {
		return s.fail(StepAuth, errAuthInvalid, "password mismatch")
	}
	return nil
}

// handshake runs Noise_NNpsk0 as the responder.
func (s *session) handshake(feat, flags byte) error {
	prologue := append([]byte("NoiseOTAInit"), magicBytes...)
	prologue = append(prologue, respOK, s.cfg.Version, feat, respFeatureFlags, flags)
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256),
		Random:                rand.Reader,
		Pattern:               noise.HandshakeNN,
		Initiator:             false,
		Prologue:              prologue,
		PresharedKey:          s.d.psk,
		PresharedKeyPlacement: 0,
	})
	if err != nil {
		return s.fail(StepFeatures, 0, "handshake init: %v", err)
	}
	p, err := s.frame(1, 1+256)
	if err != nil {
		return s.fail(StepFeatures, 0, "read handshake frame: %v", err)
	}
	if p[0] != 0 {
		return s.fail(StepFeatures, 0, "bad handshake error byte %d", p[0])
	}
	if _, _, _, err := hs.ReadMessage(nil, p[1:]); err != nil {
		s.c.Write(frame(append([]byte{1}, "Handshake MAC failure"...)))
		return s.fail(StepFeatures, 0, "handshake read: %v", err)
	}
	msg2, c1, c2, err := hs.WriteMessage(nil, nil)
	if err != nil || c1 == nil {
		return s.fail(StepFeatures, 0, "handshake write: %v", err)
	}
	s.c.Write(frame(append([]byte{0}, msg2...)))
	// Responder: c1 is the initiator's sending direction.
	s.recv, s.send = c1, c2
	return nil
}

// data is the blocking data phase of ota_esphome.cpp.
func (s *session) data() error {
	cfg := s.cfg
	s.c.SetDeadline(time.Time{})
	s.rec.Step = StepPrepare
	typ := byte(0)
	if s.rec.Extended {
		b, err := s.control(1)
		if err != nil {
			return s.fail(StepPrepare, 0, "read OTA type: %v", err)
		}
		typ = b[0]
	}
	s.rec.Type = typ
	b, err := s.control(4)
	if err != nil {
		return s.fail(StepPrepare, 0, "read size: %v", err)
	}
	size := int(binary.BigEndian.Uint32(b))
	s.rec.Size = size
	if typ != 0 && (!cfg.PartitionAccess || typ > 2) {
		return s.fail(StepPrepare, errUnsupported, "OTA type 0x%02X", typ)
	}
	if f := s.fault(StepPrepare); f != nil {
		return f
	}
	if size > cfg.SlotSize || size == 0 {
		code := byte(errESP32Space)
		if cfg.Platform == PlatformESP8266 {
			code = errESP8266Space
		}
		return s.fail(StepPrepare, code, "size %d does not fit %d", size, cfg.SlotSize)
	}
	if !s.sleep(cfg.EraseDelay) {
		return s.fail(StepPrepare, 0, "closed while erasing")
	}
	s.out(respPrepareOK)

	s.rec.Step = StepMD5
	b, err = s.control(32)
	if err != nil {
		return s.fail(StepMD5, 0, "read MD5: %v", err)
	}
	s.rec.MD5 = string(b)
	if f := s.fault(StepMD5); f != nil {
		return f
	}
	s.out(respMD5OK)

	s.rec.Step = StepData
	payload := make([]byte, 0, size)
	acked := 0
	buf := make([]byte, bufferSize)
	for len(payload) < size {
		got := len(payload)
		if s.faults && cfg.StallAfter > 0 && got >= cfg.StallAfter {
			// Stop reading; the real device gives up after its data timeout.
			if !s.sleep(cfg.DataTimeout) {
				return s.fail(StepData, 0, "stalled; closed")
			}
			return s.fail(StepData, errUnknown, "stalled; data timeout")
		}
		if s.faults && cfg.DropAfter > 0 && got >= cfg.DropAfter {
			return s.drop(StepData, "dropped after %d bytes", got)
		}
		if s.faults && cfg.FaultStep == StepData && got >= cfg.FaultAfter && got > 0 {
			return s.fail(StepData, cfg.FaultCode, "injected fault after %d bytes", got)
		}
		s.c.SetReadDeadline(time.Now().Add(cfg.DataTimeout))
		want := min(size-got, bufferSize)
		var chunk []byte
		if s.recv == nil {
			n, err := s.br.Read(buf[:want])
			if err != nil {
				return s.fail(StepData, errUnknown, "read data at %d: %v", got, err)
			}
			chunk = buf[:n]
		} else {
			p, err := s.frame(macSize+1, min(want+macSize, bufferSize))
			if err != nil {
				return s.fail(StepData, errUnknown, "read data frame at %d: %v", got, err)
			}
			if chunk, err = s.recv.Decrypt(nil, nil, p); err != nil {
				return s.fail(StepData, errUnknown, "decrypt data: %v", err)
			}
		}
		if !s.sleep(time.Duration(len(chunk)) * cfg.ByteDelay) {
			return s.fail(StepData, 0, "closed while writing")
		}
		payload = append(payload, chunk...)
		s.rec.Received = len(payload)
		if cfg.Version >= 2 {
			for acked+blockSize <= len(payload) || (len(payload) == size && acked < size) {
				s.out(respChunkOK)
				acked += blockSize
			}
		}
	}
	if s.faults && cfg.DropAfterAll {
		return s.drop(StepReceive, "dropped after all %d bytes", len(payload))
	}
	s.rec.Step = StepReceive
	if f := s.fault(StepReceive); f != nil {
		return f
	}
	s.out(respReceiveOK)

	s.rec.Step = StepEnd
	if !s.sleep(cfg.EndDelay) {
		return s.fail(StepEnd, 0, "closed while ending the update")
	}
	sum := md5.Sum(payload)
	if hex.EncodeToString(sum[:]) != string(bytes.ToLower([]byte(s.rec.MD5))) {
		return s.fail(StepEnd, errMD5Mismatch, "MD5 mismatch")
	}
	image := payload
	if len(payload) >= 2 && payload[0] == 0x1F && payload[1] == 0x8B {
		if !cfg.Gzip {
			return s.fail(StepEnd, errUnknown, "gzip image on a device without gzip")
		}
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err == nil {
			image, err = io.ReadAll(io.LimitReader(zr, int64(cfg.SlotSize)+1))
		}
		if err != nil || len(image) > cfg.SlotSize {
			return s.fail(StepEnd, errUnknown, "inflate: %v", err)
		}
		s.rec.Gzip = true
	}
	s.rec.Image = image
	if f := s.fault(StepEnd); f != nil {
		return f
	}
	s.rec.Outcome = respEndOK
	s.out(respEndOK)
	// The end ack is optional.
	s.c.SetReadDeadline(time.Now().Add(cfg.HandshakeTimeout))
	if ack, err := s.control(1); err == nil && ack[0] == respOK {
		s.rec.EndAck = true
	}
	return nil
}

// drop closes the connection without sending anything (RST).
func (s *session) drop(step Step, why string, args ...any) error {
	if tc, ok := s.c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	return s.fail(step, 0, why, args...)
}

// sleep waits d, or returns false when the device closes.
func (s *session) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.d.closed:
		return false
	}
}

// raw writes plaintext bytes.
func (s *session) raw(b ...byte) { s.c.Write(b) }

// out writes one response byte: plain, or as one encrypted frame.
func (s *session) out(b byte) {
	if s.send == nil {
		s.raw(b)
		return
	}
	ct, err := s.send.Encrypt(nil, nil, []byte{b})
	if err != nil {
		return
	}
	s.c.Write(frame(ct))
}

// control reads one protocol value of exactly n bytes: plain, or one
// encrypted frame whose ciphertext is exactly n+16 bytes.
func (s *session) control(n int) ([]byte, error) {
	if s.recv == nil {
		b := make([]byte, n)
		_, err := io.ReadFull(s.br, b)
		return b, err
	}
	p, err := s.frame(n+macSize, n+macSize)
	if err != nil {
		return nil, err
	}
	return s.recv.Decrypt(nil, nil, p)
}

// frame reads one frame with a payload of minLen to maxLen bytes.
func (s *session) frame(minLen, maxLen int) ([]byte, error) {
	var h [3]byte
	if _, err := io.ReadFull(s.br, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[1:]))
	if h[0] != 0x01 || n < minLen || n > maxLen {
		return nil, fmt.Errorf("bad frame 0x%02X, %d bytes (want %d..%d)", h[0], n, minLen, maxLen)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(s.br, b)
	return b, err
}

// frame wraps payload as 01 ‖ u16 length ‖ payload.
func frame(payload []byte) []byte {
	out := []byte{0x01, byte(len(payload) >> 8), byte(len(payload))}
	return append(out, payload...)
}
