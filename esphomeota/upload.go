package esphomeota

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// progressEvery throttles transfer progress events.
const progressEvery = 100 * time.Millisecond

// drainWait bounds the wait for the device's last words after our write
// failed: its error byte, if it sent one, is already on the way.
const drainWait = time.Second

// Upload sends image to the ESPHome device at target and returns once the
// device has confirmed the update (UPDATE_END_OK). Any other outcome is an
// error: an *Error wrapping one of the sentinels (ErrUnreachable, ErrAuth,
// ErrRefused, ErrTransfer, ErrDevice, ErrVerify, ErrInput), or an error
// wrapping ctx.Err() when ctx ends first. Every socket is closed and every
// goroutine has ended when Upload returns.
func Upload(ctx context.Context, target Target, image []byte, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if target.Port == 0 {
		target.Port = DefaultPortESP32
	}
	u := &uploader{opts: opts, log: opts.Logger, image: image, start: time.Now(),
		addr: net.JoinHostPort(target.Host, strconv.Itoa(target.Port))}
	if err := u.check(); err != nil {
		return Result{}, err
	}
	u.pump = newPump(opts.OnProgress)
	defer u.pump.close()

	for attempt := 1; ; attempt++ {
		res, err := u.attempt(ctx, attempt)
		if err == nil {
			res.Attempts = attempt
			res.Duration = time.Since(u.start)
			return res, nil
		}
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("upload to %s cancelled: %w", u.addr, ctx.Err())
		}
		var e *Error
		retry := errors.As(err, &e) && (e.Kind == ErrUnreachable || e.Kind == ErrTransfer) && !e.Committed
		if !retry || attempt > opts.Retries {
			return Result{}, err
		}
		u.log.Info("retrying after a network error", "attempt", attempt+1, "err", err.Error())
		select {
		case <-time.After(opts.RetryDelay):
		case <-ctx.Done():
			return Result{}, fmt.Errorf("upload to %s cancelled: %w", u.addr, ctx.Err())
		}
	}
}

type uploader struct {
	opts  Options
	log   *slog.Logger
	image []byte
	psk   []byte
	addr  string
	start time.Time
	pump  *pump
	gz    []byte // the gzip payload, made once when a device first offers gzip
}

// check refuses unusable options before any connection.
func (u *uploader) check() error {
	if len(u.image) == 0 {
		return &Error{Kind: ErrInput, Word: "empty_image", Msg: "the image is empty", Next: "check the build output"}
	}
	if uint64(len(u.image)) > 0xFFFFFFFF {
		return &Error{Kind: ErrInput, Word: "image_too_big", Msg: "the image is larger than 4 GiB", Next: "check the file"}
	}
	switch u.opts.Type {
	case TypeApp:
	case TypePartitionTable, TypeBootloader:
		if !u.opts.AllowRisky {
			return &Error{Kind: ErrRefused, Word: "risky_type_not_confirmed",
				Msg:  fmt.Sprintf("a %s update was not confirmed", u.opts.Type),
				Next: "a failed " + u.opts.Type.String() + " write can leave the device unable to boot; confirm explicitly to go on"}
		}
	default:
		return &Error{Kind: ErrInput, Word: "bad_ota_type", Msg: fmt.Sprintf("unknown %s", u.opts.Type), Next: "use app, partition table or bootloader"}
	}
	if u.opts.APIKey != "" {
		psk, err := ParseAPIKey(u.opts.APIKey)
		if err != nil {
			return &Error{Kind: ErrInput, Word: "bad_api_key", Msg: err.Error(),
				Next: "copy the key from the device's api: encryption: key: setting"}
		}
		u.psk = psk
	}
	return nil
}

// session is one connection's worth of protocol state.
type session struct {
	u       *uploader
	conn    net.Conn
	br      *bufio.Reader
	noise   *noiseSession
	stage   Stage
	info    Session
	attempt int
	sent    bool // our features were sent: a 0x82 can be explained
}

func (u *uploader) attempt(ctx context.Context, attempt int) (res Result, err error) {
	s := &session{u: u, stage: StageConnect, attempt: attempt}
	u.pump.send(Progress{Stage: StageConnect, Attempt: attempt, Addr: u.addr})
	d := net.Dialer{Timeout: u.opts.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, &Error{Kind: ErrUnreachable, Stage: StageConnect, Word: "unreachable",
			Msg:   "cannot connect to " + u.addr,
			Next:  "check that the device is on the network and that the OTA port is right (ESP32 3232, ESP8266 8266, RP2040 2040, BK72xx 8892)",
			Cause: err}
	}
	s.conn = conn
	s.br = bufio.NewReaderSize(conn, 512)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	res, err = s.run()
	if err != nil && ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	res.Device = u.addr
	return res, err
}

// run is the protocol, start to finish, on one connection.
func (s *session) run() (Result, error) {
	u, o := s.u, s.u.opts
	s.conn.SetDeadline(time.Now().Add(o.HandshakeTimeout))
	s.stage = StageHandshake
	if err := s.write(magic[:]); err != nil {
		return Result{}, err
	}
	b, err := s.readByte()
	if err != nil {
		return Result{}, err
	}
	if b != respOK {
		return Result{}, s.unexpected(b, "an OK to the greeting")
	}
	version, err := s.readByte()
	if err != nil {
		return Result{}, err
	}
	if version != 1 && version != 2 {
		return Result{}, &Error{Kind: ErrDevice, Stage: s.stage, Word: "unsupported_version",
			Msg:  fmt.Sprintf("the device speaks OTA protocol version %d; espdeck knows 1 and 2", version),
			Next: "update espdeck, or flash over USB"}
	}
	s.info.Version = int(version)

	features := byte(featGzip | featExtended)
	if !o.NoSHA256 {
		features |= featSHA256
	}
	if u.psk != nil {
		features |= featNoise
	}
	if o.NoCompression {
		features &^= featGzip
	}
	if err := s.write([]byte{features}); err != nil {
		return Result{}, err
	}
	s.sent = true
	b, err = s.readByte()
	if err != nil {
		return Result{}, err
	}
	switch b {
	case respFeatureFlags:
		s.info.Extended = true
		if s.info.Flags, err = s.readByte(); err != nil {
			return Result{}, err
		}
	case respSupportsCompression:
		s.info.Flags = serverGzip
	case respHeaderOK:
	default:
		return Result{}, s.unexpected(b, "the feature reply")
	}
	u.log.Debug("negotiated", "version", version, "extended", s.info.Extended, "server_flags", s.info.Flags)

	if u.psk != nil {
		if !s.info.Extended || s.info.Flags&serverNoise == 0 {
			return Result{}, &Error{Kind: ErrRefused, Stage: s.stage, Word: "encryption_not_offered",
				Msg:  "an API key was given but the device does not offer an encrypted OTA session; nothing was sent",
				Next: "the device runs firmware without OTA encryption (ESPHome before 2026.9, or encryption off): update it, or upload without --api-key-* if you accept a plaintext session"}
		}
		if err := s.noiseHandshake(features); err != nil {
			return Result{}, err
		}
		s.info.Encrypted = true
	}
	if o.Type != TypeApp {
		if !s.info.Extended || s.info.Flags&serverPartitionAccess == 0 {
			return Result{}, &Error{Kind: ErrRefused, Stage: s.stage, Word: "partition_access_not_allowed",
				Msg:  fmt.Sprintf("the device does not allow %s updates; nothing was sent", o.Type),
				Next: "set allow_partition_access: true under the device's ota: platform: esphome and update its app first"}
		}
	}

	if err := s.auth(); err != nil {
		return Result{}, err
	}
	u.pump.send(Progress{Stage: StagePrepare, Attempt: s.attempt, Addr: u.addr, Session: s.info})

	payload := u.image
	if s.info.Flags&serverGzip != 0 && !o.NoCompression && features&featGzip != 0 {
		if u.gz == nil {
			u.gz = gzipBest(u.image)
		}
		payload = u.gz
		s.info.Gzip = true
		u.log.Info("compressed", "from", len(u.image), "to", len(payload))
	}

	// After the handshake the device's own timeouts are the data ones:
	// each step may take up to DataTimeout (erasing takes seconds).
	s.stage = StagePrepare
	step := func() { s.conn.SetDeadline(time.Now().Add(o.DataTimeout)) }
	if s.info.Extended {
		step()
		if err := s.control([]byte{byte(o.Type)}); err != nil {
			return Result{}, err
		}
	}
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(payload)))
	step()
	if err := s.control(size[:]); err != nil {
		return Result{}, err
	}
	step()
	if err := s.expect(respPrepareOK, "UPDATE_PREPARE_OK"); err != nil {
		return Result{}, err
	}
	sum := md5.Sum(payload)
	step()
	if err := s.control([]byte(hex.EncodeToString(sum[:]))); err != nil {
		return Result{}, err
	}
	step()
	if err := s.expect(respMD5OK, "BIN_MD5_OK"); err != nil {
		return Result{}, err
	}
	s.conn.SetDeadline(time.Time{})

	s.stage = StageTransfer
	t0 := time.Now()
	if err := s.transfer(payload); err != nil {
		return Result{}, err
	}
	res := Result{Session: s.info, Type: o.Type, ImageBytes: int64(len(u.image)), Bytes: int64(len(payload)),
		Transfer: time.Since(t0)}
	s.conn.SetWriteDeadline(time.Now().Add(o.HandshakeTimeout))
	res.EndAckSent = s.control([]byte{respOK}) == nil
	return res, nil
}

// auth answers the device's authentication request, if any, and waits for
// AUTH_OK.
func (s *session) auth() error {
	s.stage = StageAuth
	b, err := s.readByte()
	if err != nil {
		return err
	}
	var h func() hash.Hash
	var n int
	switch {
	case b == respAuthOK:
		s.info.AuthScheme = SchemeNone
		return nil
	case b == respRequestAuthSHA256 && s.noise == nil:
		h, n, s.info.AuthScheme = sha256.New, 64, SchemeSHA256
	case b == respRequestAuthMD5 && s.noise == nil:
		h, n, s.info.AuthScheme = md5.New, 32, SchemeMD5
	default:
		return s.unexpected(b, "AUTH_OK or an authentication request")
	}
	s.u.pump.send(Progress{Stage: StageAuth, Attempt: s.attempt, Addr: s.u.addr, Session: s.info})
	nonce := make([]byte, n)
	if _, err := io.ReadFull(s.br, nonce); err != nil {
		return s.netErr(err, "reading the authentication nonce")
	}
	if err := checkNonce(nonce); err != nil {
		return &Error{Kind: ErrDevice, Stage: s.stage, Word: "protocol_error", Msg: "the device sent a malformed authentication nonce",
			Next: "this is not a protocol espdeck knows; check the port", Cause: err}
	}
	if s.u.opts.Password == "" {
		return &Error{Kind: ErrAuth, Stage: s.stage, Word: "password_required",
			Msg:  "the device asks for an OTA password and none was given",
			Next: "give the ota: password: of the device's YAML with --password-env, --password-file or --esphome-config"}
	}
	cnonce := make([]byte, n/2)
	rand.Read(cnonce)
	chex := hex.EncodeToString(cnonce)
	resp := authResponse(h, s.u.opts.Password, nonce, []byte(chex))
	if err := s.write(append([]byte(chex), resp...)); err != nil {
		return err
	}
	b, err = s.readByte()
	if err != nil {
		return err
	}
	if b != respAuthOK {
		return s.unexpected(b, "AUTH_OK")
	}
	return nil
}

// authResponse is hex(H(password ‖ nonce ‖ cnonce)).
func authResponse(h func() hash.Hash, pw Secret, nonce, cnonce []byte) []byte {
	d := h()
	d.Write([]byte(pw.reveal()))
	d.Write(nonce)
	d.Write(cnonce)
	return []byte(hex.EncodeToString(d.Sum(nil)))
}

// checkNonce accepts lowercase or uppercase hex ASCII only.
func checkNonce(b []byte) error {
	for i, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return fmt.Errorf("byte %d is 0x%02X, not a hex digit", i, c)
		}
	}
	return nil
}

// noiseHandshake runs Noise_NNpsk0 as the initiator on this connection.
func (s *session) noiseHandshake(features byte) error {
	s.stage = StageHandshake
	hs, err := newInitiator(s.u.psk, noisePrologue(byte(s.info.Version), features, s.info.Flags), nil)
	if err != nil {
		return &Error{Kind: ErrInput, Stage: s.stage, Word: "bad_api_key", Msg: "cannot start the encrypted session", Cause: err}
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return &Error{Kind: ErrInput, Stage: s.stage, Word: "noise_failed", Msg: "cannot start the encrypted session", Cause: err}
	}
	if err := s.write(appendFrame(nil, append([]byte{0}, msg1...))); err != nil {
		return err
	}
	first, err := s.br.ReadByte()
	if err != nil {
		return s.handshakeClosed(err)
	}
	if first != frameIndicator {
		// A device error byte instead of a frame.
		return s.unexpected(first, "the encrypted handshake's answer")
	}
	var h [frameHeaderSize]byte
	h[0] = first
	if _, err := io.ReadFull(s.br, h[1:]); err != nil {
		return s.handshakeClosed(err)
	}
	payload, err := readFrameBody(s.br, h, maxHandshakeFrame)
	if err != nil {
		return s.handshakeClosed(err)
	}
	if payload[0] != 0 {
		reason := string(payload[1:])
		if reason == "Handshake MAC failure" {
			return wrongKey(s.stage, "the device says: Handshake MAC failure")
		}
		return &Error{Kind: ErrAuth, Stage: s.stage, Word: "noise_rejected",
			Msg:  fmt.Sprintf("the device rejected the encrypted handshake: %q", printable(reason)),
			Next: "check the API key; if it is right, restart the device and retry"}
	}
	_, c1, c2, err := hs.ReadMessage(nil, payload[1:])
	if err != nil {
		return wrongKey(s.stage, "the device's handshake answer does not verify with this key")
	}
	if c1 == nil || c2 == nil {
		return &Error{Kind: ErrDevice, Stage: s.stage, Word: "protocol_error", Msg: "the encrypted handshake did not complete in two messages"}
	}
	s.noise = &noiseSession{send: c1, recv: c2}
	return nil
}

func wrongKey(stage Stage, why string) error {
	return &Error{Kind: ErrAuth, Stage: stage, Word: "wrong_api_key",
		Msg:  "the API key is wrong (" + why + ")",
		Next: "use the key from the device's api: encryption: key: (base64, 44 characters)"}
}

func (s *session) handshakeClosed(err error) error {
	var fe *frameError
	if errors.As(err, &fe) {
		return &Error{Kind: ErrDevice, Stage: s.stage, Word: "protocol_error", Msg: "malformed encrypted handshake frame from the device", Cause: err}
	}
	if closedByPeer(err) {
		return &Error{Kind: ErrAuth, Stage: s.stage, Word: "noise_rejected",
			Msg:  "the device closed the connection during the encrypted handshake",
			Next: "check the API key (a wrong key is the usual cause)"}
	}
	return s.netErr(err, "during the encrypted handshake")
}

// transfer sends payload in 8 KiB blocks, keeping at most Window blocks
// unacknowledged on protocol version 2, and waits for RECEIVE_OK and
// UPDATE_END_OK.
func (s *session) transfer(payload []byte) error {
	o := s.u.opts
	total := len(payload)
	blocks := (total + blockSize - 1) / blockSize
	if tc, ok := s.conn.(*net.TCPConn); ok {
		// Keep what waits in our kernel small, so that progress reflects
		// what the device took and a stalled device is noticed.
		tc.SetWriteBuffer(2 * blockSize)
	}
	events := make(chan readEvent, blocks+4)
	quit := make(chan struct{})
	var draining atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(events)
		for {
			wait := o.DataTimeout
			if draining.Load() {
				wait = drainWait
			}
			s.conn.SetReadDeadline(time.Now().Add(wait))
			b, err := s.readRaw()
			select {
			case events <- readEvent{b, err}:
			case <-quit:
				return
			}
			if err != nil || b == respEndOK || b >= 0x80 {
				return
			}
		}
	}()
	// The reader ends by itself after UPDATE_END_OK; on any other way out
	// closing the connection ends it (attempt closes it again, harmlessly).
	success := false
	defer func() {
		close(quit)
		if !success {
			s.conn.Close()
		}
		wg.Wait()
	}()

	t0 := time.Now()
	var lastProgress time.Time
	acked, written := 0, 0
	gotReceive := false
	progress := func(done int, force bool) {
		if !force && time.Since(lastProgress) < progressEvery {
			return
		}
		lastProgress = time.Now()
		rate := 0.0
		if el := time.Since(t0).Seconds(); el > 0 {
			rate = float64(done) / el
		}
		s.u.pump.send(Progress{Stage: s.stage, Done: int64(done), Total: int64(total), Rate: rate,
			Attempt: s.attempt, Addr: s.u.addr, Session: s.info})
	}
	progress(0, true)
	committed := func() bool {
		if s.info.Version >= 2 {
			return acked == blocks || gotReceive
		}
		return written == total
	}
	// handle processes one device byte; done is true after UPDATE_END_OK.
	handle := func(ev readEvent) (done bool, err error) {
		if ev.err != nil {
			e := s.readErr(ev.err).(*Error)
			e.Committed = committed()
			return false, e
		}
		switch b := ev.b; {
		case b == respChunkOK && s.info.Version >= 2 && !gotReceive:
			acked++
			if acked > blocks || (acked-1)*blockSize >= written {
				return false, s.protocolErr(fmt.Sprintf("CHUNK_OK %d for %d bytes sent", acked, written))
			}
			progress(min(acked*blockSize, total), acked == blocks)
		case b == respReceiveOK && !gotReceive:
			if written < total || (s.info.Version >= 2 && acked < blocks) {
				return false, s.protocolErr("RECEIVE_OK before every block was acknowledged")
			}
			gotReceive = true
			s.stage = StageFinalize
			progress(total, true)
		case b == respEndOK && gotReceive:
			return true, nil
		default:
			// The device's own verdict: it says what happened to the
			// image, so Committed (a guess for lost connections) stays false.
			return false, s.unexpected(b, "CHUNK_OK, RECEIVE_OK or UPDATE_END_OK")
		}
		return false, nil
	}
	writeErr := func(err error) error {
		// The device may have sent its reason and closed: give its byte
		// precedence over our broken pipe.
		draining.Store(true)
		s.conn.SetReadDeadline(time.Now().Add(drainWait))
		// Whatever the reader is doing, it ends by drainWait.
		cut := time.AfterFunc(drainWait, func() { s.conn.Close() })
		defer cut.Stop()
		for ev := range events {
			if _, herr := handle(ev); herr != nil && ev.err == nil {
				return herr
			}
		}
		e := s.netErr(err, "sending the image").(*Error)
		e.Committed = committed()
		return e
	}
	for blk := 0; blk < blocks; blk++ {
		for s.info.Version >= 2 && blk-acked >= o.Window {
			ev, ok := <-events
			if !ok {
				return s.protocolErr("the reader ended early")
			}
			if _, err := handle(ev); err != nil {
				return err
			}
		}
		for drained := false; !drained; {
			select {
			case ev := <-events:
				if _, err := handle(ev); err != nil {
					return err
				}
			default:
				drained = true
			}
		}
		chunk := payload[blk*blockSize : min((blk+1)*blockSize, total)]
		s.conn.SetWriteDeadline(time.Now().Add(o.DataTimeout))
		if err := s.data(chunk); err != nil {
			return writeErr(err)
		}
		written += len(chunk)
		// The device answers nothing on version 1 while data flows: our
		// own progress is what keeps the read side alive.
		s.conn.SetReadDeadline(time.Now().Add(o.DataTimeout))
		if s.info.Version < 2 {
			progress(written, written == total)
		}
	}
	if s.info.Version < 2 {
		s.stage = StageFinalize
	}
	for {
		ev, ok := <-events
		if !ok {
			return s.protocolErr("the reader ended early")
		}
		done, err := handle(ev)
		if err != nil {
			return err
		}
		if done {
			success = true
			return nil
		}
	}
}

type readEvent struct {
	b   byte
	err error
}

// write sends raw bytes (the plaintext preamble, authentication, and the
// Noise handshake frames).
func (s *session) write(b []byte) error {
	if _, err := s.conn.Write(b); err != nil {
		return s.netErr(err, "sending to the device")
	}
	return nil
}

// control sends one protocol value: plain, or as one encrypted frame.
func (s *session) control(b []byte) error {
	if s.noise == nil {
		return s.write(b)
	}
	f, err := s.noise.seal(nil, b)
	if err != nil {
		return &Error{Kind: ErrDevice, Stage: s.stage, Word: "noise_failed", Msg: "cannot encrypt", Cause: err}
	}
	return s.write(f)
}

// data sends one block of the payload: plain, or in encrypted frames of
// at most noiseDataPlain bytes. It returns the raw network error.
func (s *session) data(b []byte) error {
	if s.noise == nil {
		_, err := s.conn.Write(b)
		return err
	}
	var buf []byte
	for off := 0; off < len(b); off += noiseDataPlain {
		var err error
		if buf, err = s.noise.seal(buf, b[off:min(off+noiseDataPlain, len(b))]); err != nil {
			return err
		}
	}
	_, err := s.conn.Write(buf)
	return err
}

// readByte reads one response byte: plain, or one encrypted frame that
// must hold exactly one byte.
func (s *session) readByte() (byte, error) {
	b, err := s.readRaw()
	if err != nil {
		return 0, s.readErr(err)
	}
	return b, nil
}

// readRaw is readByte without classifying the error, for the transfer's
// reader goroutine (which must not touch the session's stage).
func (s *session) readRaw() (byte, error) {
	if s.noise == nil {
		return s.br.ReadByte()
	}
	p, err := readFrame(s.br, 64)
	if err != nil {
		return 0, err
	}
	pt, err := s.noise.open(p)
	if err != nil {
		return 0, &cryptoError{err}
	}
	if len(pt) != 1 {
		return 0, &frameError{fmt.Sprintf("an encrypted reply of %d bytes, want 1", len(pt))}
	}
	return pt[0], nil
}

// cryptoError is a reply that does not decrypt.
type cryptoError struct{ err error }

func (e *cryptoError) Error() string { return e.err.Error() }

// readErr classifies an error of readRaw.
func (s *session) readErr(err error) error {
	var fe *frameError
	if errors.As(err, &fe) {
		return s.protocolErr(fe.msg)
	}
	var ce *cryptoError
	if errors.As(err, &ce) {
		return &Error{Kind: ErrDevice, Stage: s.stage, Word: "protocol_error", Msg: "an encrypted reply from the device does not verify", Cause: ce.err}
	}
	return s.netErr(err, "waiting for the device")
}

// expect reads one byte and requires want.
func (s *session) expect(want byte, name string) error {
	b, err := s.readByte()
	if err != nil {
		return err
	}
	if b != want {
		return s.unexpected(b, name)
	}
	return nil
}

// unexpected turns a byte that is not the expected reply into an error:
// a device error from the table, or a protocol error.
func (s *session) unexpected(b byte, want string) error {
	if b >= 0x80 {
		de := lookupDeviceError(b)
		e := &Error{Kind: de.kind, Stage: s.stage, Word: de.code, Msg: de.msg, Next: de.hint, DeviceCode: b}
		if b == 0x82 && s.sent && s.u.opts.NoSHA256 {
			e.Word = "auth_needs_sha256"
			e.Msg = "the device requires SHA-256 authentication, which this upload did not offer"
			e.Next = "upload without disabling SHA-256 (current ESPHome firmware accepts nothing else); the password itself may be right"
		} else if b == 0x82 && s.stage == StageAuth && s.u.opts.Password == "" && s.noise == nil {
			e.Word = "password_required"
			e.Msg = "the device requires an OTA password and none was given"
		}
		return e
	}
	return s.protocolErr(fmt.Sprintf("the device sent 0x%02X where %s was expected", b, want))
}

func (s *session) protocolErr(msg string) error {
	return &Error{Kind: ErrDevice, Stage: s.stage, Word: "protocol_error", Msg: msg,
		Next: "check that the port is the device's ESPHome OTA port; restart the device and retry"}
}

// netErr classifies a network error during a stage.
func (s *session) netErr(err error, doing string) error {
	var ne net.Error
	word, msg, next := "connection_lost", "the connection to the device was lost "+doing,
		"check the device's Wi-Fi signal and power, then retry"
	if errors.As(err, &ne) && ne.Timeout() {
		word, msg = "stalled", "the device stopped answering "+doing
		if s.stage == StageHandshake || s.stage == StageAuth {
			word, msg = "handshake_timeout", "the device did not finish the handshake in time"
			next = "another upload may be running (the device serves one client at a time); wait and retry"
		}
	} else if closedByPeer(err) && (s.stage == StageHandshake || s.stage == StageAuth) {
		word, msg = "closed_by_device", "the device closed the connection "+doing
		next = "another upload may be running, or the device is not running ESPHome's OTA on this port"
	}
	return &Error{Kind: ErrTransfer, Stage: s.stage, Word: word, Msg: msg, Next: next, Cause: err}
}

// closedByPeer is true when the device ended the connection itself. A
// device that closes at once, with our opening bytes unread, resets the
// connection instead of closing it, so which of EOF, reset or broken pipe
// we see depends only on which packet arrived first.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// gzipBest compresses at level 9, as ESPHome's uploader does.
func gzipBest(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// printable keeps a device-supplied reason to printable ASCII.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7E {
			b[i] = '?'
		}
	}
	if len(b) > 120 {
		b = b[:120]
	}
	return string(b)
}
