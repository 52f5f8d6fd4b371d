// Package otasim is a simulated ArduinoOTA device for tests and demos.
//
// It follows the device state machines of docs/protocol-network-ota.md
// (§2.2–2.7 for the ESP32 core, §3.1 for the ESP8266 core), not any
// particular client: the ESP32 flavour says OK before checking the image
// size and gives up on a silent host after its receive timeout; the ESP8266
// flavour checks the size first and reports "ERR: …" over UDP. Both
// authentication schemes are modelled (legacy MD5 digest, and the PBKDF2
// challenge of arduino-esp32 ≥ 3.3.1 with a SHA-256 or an MD5 stored
// secret), and faults can be injected through Config.Faults.
//
// A Device binds 127.0.0.1 only and connects back only to loopback
// addresses. It never imports the espota client, so a bug shared by both
// cannot make their tests pass.
package otasim

import (
	"context"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Flavour selects which Arduino core the device behaves like.
type Flavour int

const (
	// ESP32 is arduino-esp32: port 3232, OK before Update.begin.
	ESP32 Flavour = iota
	// ESP8266 is esp8266/Arduino: port 8266, Update.begin before OK,
	// "ERR: …" over UDP, replies to the invitation's source port.
	ESP8266
)

func (f Flavour) String() string {
	if f == ESP8266 {
		return "esp8266"
	}
	return "esp32"
}

// Scheme is the authentication scheme used when a password is set.
type Scheme int

const (
	// SchemeMD5 is the legacy digest (ESP8266; ESP32 ≤ 3.3.0): 32-hex nonce.
	SchemeMD5 Scheme = iota
	// SchemePBKDF2 is the ESP32 ≥ 3.3.1 challenge: 64-hex nonce,
	// PBKDF2-HMAC-SHA256 over the stored secret. ESP32 only.
	SchemePBKDF2
)

func (s Scheme) String() string {
	if s == SchemePBKDF2 {
		return "pbkdf2"
	}
	return "md5"
}

// Default slot sizes (the default 4 MB partition table's app and SPIFFS).
const (
	DefaultAppSlot = 0x140000
	DefaultFSSlot  = 0x160000
)

// Faults are injected failures. The zero value injects none.
type Faults struct {
	// IgnoreInvitations drops the first N valid invitations silently
	// (a lost datagram, as far as the uploader can tell).
	IgnoreInvitations int
	// NeverConnect makes the device skip the connection back after OK (as
	// when the host firewall blocks it).
	NeverConnect bool
	// CloseAfter closes the data connection once this many bytes arrived
	// (0: off).
	CloseAfter int64
	// ReadRate limits how fast the device takes data, in bytes per second
	// (0: unlimited).
	ReadRate int
	// StallAfter makes the device stop reading (without closing) once this
	// many bytes arrived, until the host gives up (0: off).
	StallAfter int64
	// ConnectAfter, when not nil, holds the connection back until the
	// channel is closed (a device slow to connect; lets a test put another
	// connection first in the host's queue).
	ConnectAfter <-chan struct{}
	// ReplyDelay delays every reply, UDP and TCP, by this much (models a
	// network round trip).
	ReplyDelay time.Duration
	// MD5Failure makes the final MD5 check fail.
	MD5Failure bool
	// ErrorText is sent instead of OK at the end of the transfer (as a
	// failing Update.end would, with the flavour's line ending).
	ErrorText string
	// InviteReply, when set, is the UDP reply to every invitation instead
	// of the normal handling (e.g. "ERR: ERROR[15]: Update already running\n").
	InviteReply string
	// EndlessCounts makes the device, once all data is in, send byte
	// counts for ever instead of its verdict (a firmware stuck in its
	// receive loop), until the host closes the connection or the device is
	// closed.
	EndlessCounts bool
	// Flood makes the device, once all data is in, send this many bytes of
	// text without a newline instead of its verdict, then stay silent with
	// the connection open until the host closes it (0: off).
	Flood int64
}

// Config describes a simulated device.
type Config struct {
	Name    string // for logs and demo listings; optional
	Flavour Flavour
	// Password set in the sketch; empty means none.
	Password string
	// Scheme is the authentication scheme (ESP32 only; ESP8266 is always MD5).
	Scheme Scheme
	// MD5Secret, with SchemePBKDF2, stores MD5hex(password) as the secret,
	// like a ≥ 3.3.1 sketch calling setPasswordHash with an MD5 hash.
	MD5Secret bool
	// AppSlot and FSSlot are the sizes of the OTA app slot and the
	// filesystem partition (0: DefaultAppSlot, DefaultFSSlot).
	AppSlot, FSSlot int64
	// ReceiveTimeout is the ESP32's data wait (_ota_timeout, default 1 s).
	// A longer one makes tests on a loaded machine robust.
	ReceiveTimeout time.Duration
	// OKDelay is the ESP8266's pause before sending OK (default 1 s).
	OKDelay time.Duration
	Faults  Faults
	Logger  *slog.Logger // nil discards
	// Reboot, when set, restarts the device after an accepted app image
	// (see reboot.go); nil keeps it running, as before.
	Reboot *Reboot
}

// State is how an update session ended.
type State string

const (
	StateSuccess     State = "success"      // all bytes, MD5 matched, OK sent
	StateBeginFailed State = "begin-failed" // image does not fit / bad size
	StateNoConnect   State = "no-connect"   // never connected back (fault or refused)
	StateAborted     State = "aborted"      // connection lost or host stalled
	StateFailed      State = "failed"       // device sent an error text
)

// Session records one update attempt that got past authentication.
type Session struct {
	Command    int    // 0 app, 100 filesystem
	Size       int64  // announced size
	MD5        string // announced MD5
	AuthScheme string // "none", "md5", "pbkdf2"
	Host       string // where the device connected back (ip:port)
	Received   []byte // bytes written to the "flash" (kept for the last 2 sessions)
	State      State
	Error      string // text the device sent on failure (without line ending)
}

// Stats counts datagrams handled.
type Stats struct {
	Invitations  int // valid invitations seen (including ignored ones)
	Ignored      int // invitations dropped by the IgnoreInvitations fault
	Swallowed    int // datagrams that reset WAITAUTH without a reply
	AuthFailures int // "Authentication Failed" replies
}

// stallFor bounds the StallAfter fault; maxESP8266Stalls bounds how many
// one-second waits the ESP8266 flavour sits through.
const (
	stallFor         = 30 * time.Second
	maxESP8266Stalls = 30
)

// misbehaveFor bounds the EndlessCounts and Flood faults, so a device left
// running recovers on its own even if the host never hangs up.
const misbehaveFor = 2 * time.Minute

// deviceWindow is the receive buffer of the simulated device's socket.
const deviceWindow = 8 << 10

// maxSessions bounds the recorded history so a device can run for days;
// only the last keepReceived sessions keep their bytes.
const (
	maxSessions  = 16
	keepReceived = 2
)

// Device is a simulated board. Create it with New, start it with Start.
type Device struct {
	cfg Config
	log *slog.Logger

	udp  *net.UDPConn
	stop context.CancelFunc
	done chan struct{}

	mu       sync.Mutex
	sessions []Session
	stats    Stats
	changed  chan struct{} // closed and replaced on every recorded change
	started  time.Time
	version  string // running version after a reboot (reboot.go)
	down     bool   // rebooting or gone: nothing is answered
}

// New checks cfg and returns a device that is not yet listening.
func New(cfg Config) (*Device, error) {
	if cfg.Flavour != ESP32 && cfg.Flavour != ESP8266 {
		return nil, fmt.Errorf("otasim: unknown flavour %d", cfg.Flavour)
	}
	if cfg.Flavour == ESP8266 && cfg.Scheme != SchemeMD5 {
		return nil, errors.New("otasim: the ESP8266 core only has the MD5 scheme")
	}
	if cfg.AppSlot <= 0 {
		cfg.AppSlot = DefaultAppSlot
	}
	if cfg.FSSlot <= 0 {
		cfg.FSSlot = DefaultFSSlot
	}
	if cfg.ReceiveTimeout <= 0 {
		cfg.ReceiveTimeout = time.Second
	}
	if cfg.OKDelay <= 0 {
		cfg.OKDelay = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name != "" {
		log = log.With("device", cfg.Name)
	}
	return &Device{cfg: cfg, log: log, changed: make(chan struct{})}, nil
}

// Start binds 127.0.0.1 on an ephemeral UDP port and serves until ctx ends
// or Close is called.
func (d *Device) Start(ctx context.Context) error {
	if d.udp != nil {
		return errors.New("otasim: already started")
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("otasim: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d.udp, d.stop, d.done, d.started = udp, cancel, make(chan struct{}), time.Now()
	context.AfterFunc(ctx, func() { udp.Close() })
	go d.serve(ctx)
	d.log.Info("simulated OTA device listening", "addr", udp.LocalAddr().String(), "flavour", d.cfg.Flavour.String())
	return nil
}

// Close stops the device and waits until its goroutines ended.
func (d *Device) Close() error {
	if d.stop == nil {
		return nil
	}
	d.stop()
	<-d.done
	return nil
}

// Addr is the device's UDP address (valid after Start).
func (d *Device) Addr() netip.AddrPort {
	return d.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Config returns the configuration in effect (defaults filled in).
func (d *Device) Config() Config { return d.cfg }

// Sessions returns a copy of the recorded sessions, oldest first (at most
// the last 16; only the last 2 keep their received bytes).
func (d *Device) Sessions() []Session {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Session, len(d.sessions))
	copy(out, d.sessions)
	return out
}

// Stats returns the datagram counters.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// WaitSessions blocks until at least n sessions have ended and returns them.
func (d *Device) WaitSessions(ctx context.Context, n int) ([]Session, error) {
	for {
		d.mu.Lock()
		if len(d.sessions) >= n {
			out := make([]Session, len(d.sessions))
			copy(out, d.sessions)
			d.mu.Unlock()
			return out, nil
		}
		ch := d.changed
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("otasim: waiting for %d sessions: %w", n, ctx.Err())
		case <-ch:
		}
	}
}

func (d *Device) record(s Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sessions = append(d.sessions, s)
	if len(d.sessions) > maxSessions {
		d.sessions = d.sessions[len(d.sessions)-maxSessions:]
	}
	// Keep the received bytes of the last few sessions only, so a demo
	// device left running does not grow without bound.
	for i := 0; i < len(d.sessions)-keepReceived; i++ {
		d.sessions[i].Received = nil
	}
	close(d.changed)
	d.changed = make(chan struct{})
	d.log.Info("update session ended", "state", string(s.State), "bytes", len(s.Received), "error", s.Error)
}

func (d *Device) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// otaState is the device's UDP state (§2.2).
type otaState int

const (
	stateIdle otaState = iota
	stateWaitAuth
)

// pending is the invitation being handled.
type pending struct {
	inv    invitation
	from   *net.UDPAddr // source of the invitation
	nonce  string
	scheme string
}

func (d *Device) serve(ctx context.Context) {
	defer close(d.done)
	defer d.udp.Close()
	state := stateIdle
	invitations := 0
	var cur pending
	buf := make([]byte, 1460)
	for ctx.Err() == nil {
		n, from, err := d.udp.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !from.IP.IsLoopback() {
			// Loopback only: never talk to, or connect to, anything else.
			continue
		}
		if d.isDown() {
			// Rebooting: the datagram is lost, as on a board.
			state = stateIdle
			continue
		}
		msg := buf[:n]
		switch state {
		case stateIdle:
			inv, ok := parseInvitation(msg)
			if !ok {
				continue
			}
			d.count(func(s *Stats) { s.Invitations++ })
			invitations++
			if invitations <= d.cfg.Faults.IgnoreInvitations {
				d.count(func(s *Stats) { s.Ignored++ })
				d.log.Debug("ignoring invitation (fault)")
				continue
			}
			if d.cfg.Faults.InviteReply != "" {
				d.reply(ctx, from, d.cfg.Faults.InviteReply)
				continue
			}
			cur = pending{inv: inv, from: from, scheme: "none"}
			if d.cfg.Password == "" {
				d.runUpdate(ctx, cur, from)
				continue
			}
			cur.nonce = d.nonce()
			cur.scheme = d.cfg.Scheme.String()
			d.reply(ctx, from, "AUTH "+cur.nonce)
			state = stateWaitAuth
		case stateWaitAuth:
			state = stateIdle
			replyTo := from
			if d.cfg.Flavour == ESP8266 {
				replyTo = cur.from // all replies go to the invitation's source
			}
			cnonce, response, ok := parseAuth(msg)
			if !ok || !d.authLengthsOK(cnonce, response) {
				// A retransmitted invitation, another uploader or a malformed
				// datagram: back to IDLE without a word (§2.2).
				d.count(func(s *Stats) { s.Swallowed++ })
				continue
			}
			if !d.checkAuth(cur.nonce, cnonce, response) {
				d.count(func(s *Stats) { s.AuthFailures++ })
				d.reply(ctx, replyTo, "Authentication Failed")
				continue
			}
			host := from
			if d.cfg.Flavour == ESP8266 {
				host = cur.from
			}
			d.runUpdate(ctx, cur, host)
		}
	}
}

// runUpdate is the RUNUPDATE state: begin, OK, connect back, receive.
// It runs synchronously, as on the device (nothing else is answered).
func (d *Device) runUpdate(ctx context.Context, p pending, host *net.UDPAddr) {
	s := Session{Command: p.inv.cmd, Size: p.inv.size, MD5: p.inv.md5, AuthScheme: p.scheme}
	slot := d.cfg.AppSlot
	if p.inv.cmd == 100 {
		slot = d.cfg.FSSlot
	}
	beginErr := ""
	switch {
	case p.inv.size <= 0:
		beginErr = "Bad Size Given"
	case p.inv.size > slot:
		beginErr = "Not Enough Space"
	}
	replyTo := host
	if d.cfg.Flavour == ESP8266 {
		replyTo = p.from
		if beginErr != "" {
			code := 4
			if p.inv.size <= 0 {
				code = 5
			}
			s.State, s.Error = StateBeginFailed, fmt.Sprintf("ERROR[%d]: %s", code, beginErr)
			d.reply(ctx, replyTo, "ERR: "+s.Error+"\n")
			d.record(s)
			return
		}
		d.reply(ctx, replyTo, "OK")
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return
		}
	} else {
		// ESP32 says OK first and only then finds out whether the image fits.
		d.reply(ctx, replyTo, "OK")
		if beginErr != "" {
			s.State, s.Error = StateBeginFailed, beginErr
			d.record(s)
			return
		}
	}
	if d.cfg.Faults.NeverConnect {
		s.State = StateNoConnect
		d.record(s)
		return
	}
	if hold := d.cfg.Faults.ConnectAfter; hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return
		}
	}
	addr := net.JoinHostPort(host.IP.String(), strconv.Itoa(p.inv.port))
	s.Host = addr
	// A small receive buffer models the device's TCP window (lwIP: about
	// four segments), so a host that overruns the device is held back by
	// flow control as on a real board.
	dialer := net.Dialer{Timeout: 3 * time.Second, Control: smallReceiveBuffer}
	conn, err := dialer.DialContext(ctx, "tcp4", addr)
	if err != nil {
		s.State, s.Error = StateNoConnect, err.Error()
		d.record(s)
		return
	}
	stopClose := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopClose()
	if d.cfg.Flavour == ESP8266 {
		conn.(*net.TCPConn).SetNoDelay(true)
	}
	d.receive(ctx, conn.(*net.TCPConn), p.inv, &s)
	d.record(s)
	d.afterAccepted(ctx, s)
}

// receive is the data phase (§2.7 step 4–6, §3.1).
func (d *Device) receive(ctx context.Context, conn *net.TCPConn, inv invitation, s *Session) {
	w := newDelayedWriter(conn, d.cfg.Faults.ReplyDelay)
	defer func() {
		w.close()
		conn.Close()
	}()
	esp8266 := d.cfg.Flavour == ESP8266
	readMax := 1460
	if esp8266 {
		readMax = 16 << 10 // "all available bytes"
	}
	buf := make([]byte, readMax)
	start := time.Now()
	retries, stalls := 0, 0
	lastCount := ""
	f := d.cfg.Faults
	for int64(len(s.Received)) < inv.size {
		if ctx.Err() != nil {
			s.State = StateAborted
			return
		}
		if f.StallAfter > 0 && int64(len(s.Received)) >= f.StallAfter {
			// A hung device: stop reading without closing, for a bounded time
			// so a demo device recovers on its own.
			sleepCtx(ctx, stallFor)
			s.State = StateAborted
			return
		}
		limit := readMax
		if f.ReadRate > 0 {
			limit = max(1, min(readMax, f.ReadRate/20))
			due := start.Add(time.Duration(float64(len(s.Received)) / float64(f.ReadRate) * float64(time.Second)))
			if sleepCtx(ctx, time.Until(due)) != nil {
				s.State = StateAborted
				return
			}
		}
		conn.SetReadDeadline(time.Now().Add(d.cfg.ReceiveTimeout))
		n, err := conn.Read(buf[:limit])
		if n == 0 && err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				if esp8266 && stalls < maxESP8266Stalls {
					// The ESP8266 flags the stall and keeps reading while
					// the connection is open (bounded here so a vanished
					// host cannot hold the simulator forever).
					stalls++
					d.log.Debug("receive stalled (ESP8266 keeps waiting)")
					continue
				}
				if len(s.Received) > 0 && retries < 3 {
					retries++
					w.write(lastCount)
					continue
				}
			}
			s.State = StateAborted
			return
		}
		retries = 0
		chunk := buf[:n]
		if f.CloseAfter > 0 && int64(len(s.Received)+n) >= f.CloseAfter {
			chunk = chunk[:f.CloseAfter-int64(len(s.Received))]
			s.Received = append(s.Received, chunk...)
			s.State = StateAborted
			return
		}
		if msg := d.write(inv, s, chunk); msg != "" {
			s.State, s.Error = StateFailed, msg
			w.write(msg + d.lineEnd())
			return
		}
		lastCount = strconv.Itoa(n)
		w.write(lastCount)
	}
	if f.EndlessCounts || f.Flood > 0 {
		w.flush()
		s.State = StateAborted
		s.Error = d.misbehave(ctx, conn)
		return
	}
	// Update.end(): all bytes are in; check the MD5.
	sum := md5.Sum(s.Received)
	got := hex.EncodeToString(sum[:])
	want := strings.ToLower(inv.md5)
	switch {
	case f.MD5Failure || got != want:
		if f.MD5Failure {
			got = strings.Repeat("0", 32)
		}
		s.State = StateFailed
		if esp8266 {
			s.Error = fmt.Sprintf("ERROR[7]: MD5 verification failed: expected: %s, calculated: %s", want, got)
		} else {
			s.Error = "MD5 Check Failed"
		}
		w.write(s.Error + d.lineEnd())
	case f.ErrorText != "":
		s.State, s.Error = StateFailed, f.ErrorText
		w.write(s.Error + d.lineEnd())
	default:
		s.State = StateSuccess
		if esp8266 {
			// The pause keeps the last count and OK in separate segments.
			w.flush()
			if sleepCtx(ctx, d.cfg.OKDelay) != nil {
				s.State = StateAborted
				return
			}
		}
		w.write("OK")
	}
}

// misbehave runs the EndlessCounts or Flood fault on conn until the host
// closes it, ctx ends or misbehaveFor passes, and says what it sent.
func (d *Device) misbehave(ctx context.Context, conn *net.TCPConn) string {
	stop := time.Now().Add(misbehaveFor)
	var sent int64
	var chunk []byte
	if d.cfg.Faults.EndlessCounts {
		chunk = []byte(strings.Repeat("1460", 1024))
	} else {
		chunk = []byte(strings.Repeat("Update failed: ", 4096))
	}
	for ctx.Err() == nil && time.Now().Before(stop) {
		b := chunk
		if f := d.cfg.Faults.Flood; f > 0 {
			if sent >= f {
				break
			}
			b = b[:min(int64(len(b)), f-sent)]
		}
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Write(b)
		sent += int64(n)
		if err != nil {
			return fmt.Sprintf("sent %d bytes after the data until the host stopped reading (%v)", sent, err)
		}
	}
	// The flood is out: wait, silent, for the host to give up.
	conn.SetReadDeadline(stop)
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	return fmt.Sprintf("sent %d bytes after the data", sent)
}

// write is the Updater: it checks the magic byte when the first flash
// sector is flushed (or at the end for a shorter image).
func (d *Device) write(inv invitation, s *Session, chunk []byte) string {
	before := int64(len(s.Received))
	s.Received = append(s.Received, chunk...)
	after := int64(len(s.Received))
	const sector = 4096
	if inv.cmd == 0 && before < sector && (after >= sector || after == inv.size) && s.Received[0] != 0xE9 {
		if d.cfg.Flavour == ESP8266 && s.Received[0] == 0x1F {
			return "" // gzip image, inflated by eboot
		}
		s.Received = s.Received[:before]
		if d.cfg.Flavour == ESP8266 {
			return "ERROR[10]: Magic byte is not 0xE9"
		}
		return "Wrong Magic Byte"
	}
	return ""
}

func (d *Device) lineEnd() string {
	if d.cfg.Flavour == ESP8266 {
		return "\n"
	}
	return "\r\n"
}

// reply sends a UDP reply after the configured delay.
func (d *Device) reply(ctx context.Context, to *net.UDPAddr, text string) {
	if sleepCtx(ctx, d.cfg.Faults.ReplyDelay) != nil {
		return
	}
	if _, err := d.udp.WriteToUDP([]byte(text), to); err != nil {
		d.log.Debug("reply failed", "err", err)
	}
}

// nonce makes a challenge: MD5hex(micros) for the legacy scheme, 64 hex
// for PBKDF2.
func (d *Device) nonce() string {
	if d.cfg.Flavour == ESP32 && d.cfg.Scheme == SchemePBKDF2 {
		b := make([]byte, 32)
		rand.Read(b)
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])
	}
	micros := time.Since(d.started).Microseconds()
	sum := md5.Sum([]byte(strconv.FormatInt(micros, 10)))
	return hex.EncodeToString(sum[:])
}

// authLengthsOK: a cnonce or response of the wrong length is dropped
// without a reply (§2.2).
func (d *Device) authLengthsOK(cnonce, response string) bool {
	want := 32
	if d.cfg.Scheme == SchemePBKDF2 {
		want = 64
	}
	return len(cnonce) == want && len(response) == want
}

// checkAuth verifies the host's response as the device does (§2.5, §2.6).
func (d *Device) checkAuth(nonce, cnonce, response string) bool {
	pw := []byte(d.cfg.Password)
	md5Of := func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
	shaOf := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	if d.cfg.Scheme == SchemeMD5 {
		return md5Of([]byte(md5Of(pw)+":"+nonce+":"+cnonce)) == response
	}
	secret := shaOf(pw)
	if d.cfg.MD5Secret {
		secret = md5Of(pw)
	}
	k, err := pbkdf2.Key(sha256.New, secret, []byte(nonce+":"+cnonce), 10000, 32)
	if err != nil {
		return false
	}
	return shaOf([]byte(hex.EncodeToString(k)+":"+nonce+":"+cnonce)) == response
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
