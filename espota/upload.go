package espota

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Protocol commands of the invitation datagram.
const (
	cmdFlash      = 0
	cmdFilesystem = 100
	cmdAuth       = 200
)

const (
	// sendChunk is the size of one write during the transfer. The device
	// does not care about chunk boundaries.
	sendChunk = 4096
	// sendBuffer keeps the data queued in our kernel small, so progress
	// reflects what the device has taken and a stalled device is noticed
	// (Linux doubles the value).
	sendBuffer = 16 << 10
	// writeTick is how often a blocked write wakes up to check for a
	// stall, a device verdict or cancellation.
	writeTick = 200 * time.Millisecond
	// progressEvery throttles transfer progress events.
	progressEvery = 100 * time.Millisecond
	// inviteAttempts is the number of invitations sent within InviteTimeout.
	inviteAttempts = 4
	// maxAuthSessions bounds fresh invitations after an unanswered
	// authentication datagram.
	maxAuthSessions = 3
)

// Upload sends image to the ArduinoOTA device at target and returns once
// the device has confirmed the update with OK. Any other outcome is an
// error: an *Error wrapping one of the sentinels (ErrNoAnswer,
// ErrAuthFailed, ErrNoConnectBack, ErrTransfer, ErrDeviceError,
// ErrNotAnApp, ErrListen), or an error wrapping ctx.Err() when ctx ends
// first. Every socket is closed when Upload returns.
func Upload(ctx context.Context, target Target, image []byte, opts Options) (Result, error) {
	opts = opts.withDefaults()
	u := &upload{
		opts:   opts,
		target: target,
		log:    opts.Logger,
		image:  image,
		total:  int64(len(image)),
		start:  time.Now(),
		res:    Result{Bytes: int64(len(image))},
	}
	if err := u.preflight(); err != nil {
		return Result{}, err
	}
	u.pump = newPump(opts.OnProgress)
	defer u.pump.close()
	g := newGuard(ctx)
	defer g.closeAll()
	u.guard = g

	err := u.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("upload to %s cancelled during %s: %w", u.devName(target), u.stage, ctx.Err())
		}
		return Result{}, err
	}
	u.res.Duration = time.Since(u.start)
	return u.res, nil
}

// upload is the state of one Upload call.
type upload struct {
	opts   Options
	target Target
	log    *slog.Logger
	image  []byte
	total  int64
	start  time.Time
	pump   *pump
	guard  *guard
	stage  Stage
	res    Result

	dev  *net.UDPAddr
	udp  *net.UDPConn
	ln   *net.TCPListener
	md5  string
	port int // our TCP port
}

func (u *upload) devName(t Target) string {
	if u.dev != nil {
		return u.dev.String()
	}
	return t.Host
}

func (u *upload) preflight() error {
	if len(u.image) == 0 {
		return &Error{Kind: ErrNotAnApp, Msg: "the image is empty", Next: "check the file: a build output (.bin) is never empty"}
	}
	if len(u.image) > math.MaxInt32 {
		return &Error{Kind: ErrNotAnApp, Msg: fmt.Sprintf("the image (%d bytes) is larger than any ESP flash", len(u.image)), Next: "check the file"}
	}
	if !u.opts.Filesystem && u.image[0] != 0xE9 {
		if !u.opts.Force {
			hint := "a device rejects it only after the whole upload (\"Wrong Magic Byte\"); upload a filesystem image with --fs, or send it anyway with --force"
			if u.image[0] == 0x1F {
				hint = "this looks gzip-compressed: only ESP8266 boards on core 2.7.0 or later accept that; send it with --force if that is your board"
			}
			return &Error{Kind: ErrNotAnApp,
				Msg:  fmt.Sprintf("the file does not look like an application image (first byte 0x%02X, expected 0xE9)", u.image[0]),
				Next: hint}
		}
		u.log.Warn("sending an image whose first byte is not 0xE9 because Force is set", "first_byte", u.image[0])
	}
	sum := md5.Sum(u.image)
	u.md5 = hex.EncodeToString(sum[:])
	return nil
}

func (u *upload) setStage(s Stage) {
	u.stage = s
	u.log.Debug("stage", "stage", string(s))
}

func (u *upload) progress(p Progress) {
	if p.Total == 0 {
		p.Total = u.total
	}
	u.pump.send(p)
}

func (u *upload) run(ctx context.Context) error {
	u.setStage(StageInvite)
	if err := u.open(ctx, u.target); err != nil {
		return err
	}
	if err := u.negotiate(ctx); err != nil {
		return err
	}
	conn, err := u.accept(ctx)
	if err != nil {
		return err
	}
	return u.transfer(ctx, conn)
}

// open resolves the device and opens the UDP socket (one for the whole
// exchange: the ESP8266 answers to the invitation's source port) and the
// TCP listener for the connection back.
func (u *upload) open(ctx context.Context, t Target) error {
	port := t.Port
	if port == 0 {
		port = DefaultPortESP32
	}
	if port < 1 || port > 65535 {
		return &Error{Kind: ErrNoAnswer, Stage: StageInvite, Msg: fmt.Sprintf("device port %d is out of range", port), Next: "ArduinoOTA listens on 3232 (ESP32) or 8266 (ESP8266)"}
	}
	ip, err := resolve(ctx, t.Host)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &Error{Kind: ErrNoAnswer, Stage: StageInvite, Msg: fmt.Sprintf("cannot resolve %q", t.Host), Cause: err,
			Next: "check the host name, or use the device's IP address (espdeck list shows it)"}
	}
	u.dev = &net.UDPAddr{IP: ip.AsSlice(), Port: port}
	u.res.Device = u.dev.String()

	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	// A connected UDP socket only delivers datagrams from the device and
	// tells us which local address routes to it.
	udp, err := net.DialUDP(network, nil, u.dev)
	if err != nil {
		return &Error{Kind: ErrNoAnswer, Stage: StageInvite, Msg: fmt.Sprintf("cannot send to %s", u.dev), Cause: err,
			Next: "this computer has no route to the device: check the network connection"}
	}
	u.udp = udp
	u.guard.add(udp)

	hostIP := udp.LocalAddr().(*net.UDPAddr).IP
	if u.opts.HostIP != "" {
		hostIP = net.ParseIP(u.opts.HostIP)
		if hostIP == nil {
			return &Error{Kind: ErrListen, Stage: StageInvite, Msg: fmt.Sprintf("--host-ip %q is not an IP address", u.opts.HostIP), Next: "give one of this computer's addresses"}
		}
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: hostIP, Port: u.opts.HostPort})
	if err != nil {
		return &Error{Kind: ErrListen, Stage: StageInvite,
			Msg:   fmt.Sprintf("cannot listen on %s for the device's connection back", net.JoinHostPort(hostIP.String(), strconv.Itoa(u.opts.HostPort))),
			Cause: err, Next: "choose another port with --host-port (or 0 for any), or another local address with --host-ip"}
	}
	u.ln = ln
	u.guard.add(ln)
	u.port = ln.Addr().(*net.TCPAddr).Port
	u.res.HostAddr = ln.Addr().String()
	return nil
}

// resolve returns the device address; literal IPs are not looked up.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return netip.Addr{}, errors.New("no host given")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("no IPv4 address for %s", host)
	}
	return ips[0].Unmap(), nil
}

// invitation is the datagram that starts an update.
func invitation(cmd, hostPort int, size int64, md5hex string) []byte {
	return fmt.Appendf(nil, "%d %d %d %s\n", cmd, hostPort, size, md5hex)
}

// authDatagram answers the device's challenge.
func authDatagram(cnonce, response string) []byte {
	return fmt.Appendf(nil, "%d %s %s\n", cmdAuth, cnonce, response)
}

// negotiate runs invitation and authentication until the device says OK.
func (u *upload) negotiate(ctx context.Context) error {
	pw := u.opts.Password
	md5Secret := u.opts.MD5Secret
	var tried []string
	silentAuth := 0
	var minWait, latency time.Duration
	for {
		u.setStage(StageInvite)
		reply, took, err := u.invite(ctx, minWait)
		if err != nil {
			return err
		}
		latency = took
		verdict, nonce := readInviteReply(reply)
		switch verdict {
		case inviteOK:
			u.res.AuthScheme = SchemeNone
			return nil
		case inviteRefused:
			return u.deviceError(StageInvite, reply)
		}
		u.setStage(StageAuth)
		u.progress(Progress{Stage: StageAuth, Addr: u.dev.String()})
		if pw == "" && u.opts.AskPassword != nil {
			got, err := u.opts.AskPassword(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &Error{Kind: ErrAuthFailed, Stage: StageAuth, Msg: "the device asks for a password and none was given", Cause: err,
					Next: "give the password with --password-env VAR or --password-file FILE"}
			}
			pw = got
		}
		if pw == "" {
			return &Error{Kind: ErrAuthFailed, Stage: StageAuth, Msg: fmt.Sprintf("the device at %s asks for a password and none was given", u.dev),
				Next: "give the password set in the sketch with --password-env VAR or --password-file FILE (or ESPDECK_PASSWORD)"}
		}
		scheme := challengeScheme(nonce, md5Secret)
		var cnonce, response string
		switch scheme {
		case SchemeMD5:
			cnonce = randomHex(32)
			response = md5Response(pw.reveal(), nonce, cnonce)
		case SchemePBKDF2SHA256, SchemePBKDF2MD5:
			secret := sha256hex(pw.reveal())
			if scheme == SchemePBKDF2MD5 {
				secret = md5hex(pw.reveal())
			}
			cnonce = randomHex(64)
			response, err = pbkdf2Response(secret, nonce, cnonce)
			if err != nil {
				return err
			}
		default:
			return &Error{Kind: ErrDeviceError, Stage: StageAuth,
				Msg:    fmt.Sprintf("the device at %s sent a challenge espdeck does not know (nonce of %d characters)", u.dev, len(nonce)),
				Device: reply, Next: "known schemes use 32 (MD5) or 64 (PBKDF2-SHA256) hex characters; please report the device's core version"}
		}
		u.log.Debug("answering challenge", "scheme", scheme, "nonce_len", len(nonce))
		tried = append(tried, scheme)
		reply, err = u.exchange(ctx, authDatagram(cnonce, response), u.opts.AuthTimeout)
		if err != nil {
			return err
		}
		switch readAuthReply(reply) {
		case authOK:
			u.res.AuthScheme = scheme
			return nil
		case authSilent:
			// The device went silent: it may have reset to IDLE (another
			// uploader, or a retransmission crossed our reply). Start over.
			silentAuth++
			// The likely cause is a slow device: our retry crossed its
			// reply and reset it. Do not retry faster than it answered.
			minWait = max(minWait, 2*latency)
			u.drain()
			if silentAuth >= maxAuthSessions {
				return &Error{Kind: ErrNoAnswer, Stage: StageAuth,
					Msg:  fmt.Sprintf("the device at %s answered the invitation but not the authentication (%d tries)", u.dev, silentAuth),
					Next: "another upload to the same device may be running, or the network drops packets; try again"}
			}
			tried = tried[:len(tried)-1]
			continue
		case authRejected:
			if scheme == SchemePBKDF2SHA256 {
				// A ≥3.3.1 sketch that stores an MD5 hash (setPasswordHash)
				// expects the MD5 secret; the device is back in IDLE, so a
				// fresh invitation brings a fresh nonce.
				u.log.Info("SHA-256 secret rejected; retrying with the MD5 secret")
				md5Secret = true
				continue
			}
			return &Error{Kind: ErrAuthFailed, Stage: StageAuth,
				Msg:  fmt.Sprintf("the device at %s rejected the password (scheme tried: %s)", u.dev, strings.Join(tried, ", then ")),
				Next: "check the password set in the sketch (ArduinoOTA.setPassword or setPasswordHash)"}
		default:
			return u.deviceError(StageAuth, reply)
		}
	}
}

// invite sends the invitation with bounded retries inside InviteTimeout and
// returns the first reply text and how long after the first send it came.
// No retry goes out sooner than minWait after the previous one.
func (u *upload) invite(ctx context.Context, minWait time.Duration) (string, time.Duration, error) {
	cmd := cmdFlash
	if u.opts.Filesystem {
		cmd = cmdFilesystem
	}
	msg := invitation(cmd, u.port, u.total, u.md5)
	first := time.Now()
	deadline := first.Add(u.opts.InviteTimeout)
	// Waits of 1, 2, 3, 4 tenths of the budget: quick retries for a lost
	// datagram, longer ones for a device that is slow to answer.
	for attempt := 1; ; attempt++ {
		wait := max(u.opts.InviteTimeout*time.Duration(attempt)/10, minWait)
		if attempt == inviteAttempts || time.Until(deadline) < wait {
			wait = time.Until(deadline)
		}
		u.res.Invitations++
		u.progress(Progress{Stage: StageInvite, Attempt: attempt, Addr: u.dev.String()})
		u.log.Debug("invitation", "attempt", attempt, "device", u.dev.String(), "wait", wait)
		reply, err := u.exchange(ctx, msg, wait)
		if err != nil {
			return "", 0, err
		}
		if reply != "" {
			return reply, time.Since(first), nil
		}
		if attempt >= inviteAttempts || time.Until(deadline) <= 0 {
			return "", 0, &Error{Kind: ErrNoAnswer, Stage: StageInvite,
				Msg: fmt.Sprintf("no answer from %s to %d invitations in %s", u.dev, attempt, u.opts.InviteTimeout.Round(time.Millisecond)),
				Next: "check the address and port (ESP32 3232, ESP8266 8266), that the board is powered and on this network, " +
					"that the sketch calls ArduinoOTA.handle() often (a busy device stays silent), and that UDP to it is not blocked"}
		}
	}
}

// exchange sends one datagram and waits up to wait for a reply. An empty
// reply means none arrived in time.
func (u *upload) exchange(ctx context.Context, msg []byte, wait time.Duration) (string, error) {
	if _, err := u.udp.Write(msg); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return "", &Error{Kind: ErrNoAnswer, Stage: u.stage, Msg: fmt.Sprintf("cannot send to %s", u.dev), Cause: err,
				Next: "check the network connection and the device address"}
		}
	}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 512)
	u.udp.SetReadDeadline(deadline)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	n, err := u.udp.Read(buf)
	if err == nil {
		return strings.TrimRight(string(buf[:n]), "\r\n"), nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		// ICMP port unreachable: nothing listens there (yet). Treat as
		// silence for this attempt, without spinning.
		u.log.Debug("device port unreachable", "device", u.dev.String())
		if err := sleepCtx(ctx, time.Until(deadline)); err != nil {
			return "", err
		}
		return "", nil
	}
	return "", &Error{Kind: ErrNoAnswer, Stage: u.stage, Msg: fmt.Sprintf("cannot read the reply of %s", u.dev), Cause: err,
		Next: "check the network connection"}
}

// drain discards datagrams already waiting (late replies to an earlier
// attempt) so they are not taken for answers to the next one.
func (u *upload) drain() {
	buf := make([]byte, 512)
	for range 16 {
		u.udp.SetReadDeadline(time.Now())
		if _, err := u.udp.Read(buf); err != nil {
			return
		}
	}
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

// accept waits for the device's connection back, from the device's address only.
func (u *upload) accept(ctx context.Context) (*net.TCPConn, error) {
	u.setStage(StageConnect)
	u.progress(Progress{Stage: StageConnect, Addr: u.res.HostAddr})
	u.ln.SetDeadline(time.Now().Add(u.opts.ConnectTimeout))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for {
		conn, err := u.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, u.noConnectBack()
			}
			return nil, &Error{Kind: ErrNoConnectBack, Stage: StageConnect, Msg: "waiting for the device's connection failed", Cause: err}
		}
		from := conn.RemoteAddr().(*net.TCPAddr)
		if !from.IP.Equal(u.dev.IP) {
			u.log.Warn("refused a connection from another address than the device", "from", from.String(), "device", u.dev.IP.String())
			conn.Close()
			continue
		}
		u.guard.add(conn)
		// The listener is not needed any more; close it so no one else connects.
		u.ln.Close()
		return conn, nil
	}
}

func (u *upload) noConnectBack() error {
	hp := u.res.HostAddr
	hint := fmt.Sprintf("The usual cause is this computer's firewall: allow inbound TCP on port %d "+
		"(for example 'sudo ufw allow %d/tcp', or pick a fixed port with --host-port and open that one). "+
		"If this computer has several networks, choose the address the device can reach with --host-ip. "+
		"On ESP32 the same silence happens when the image (%d bytes) does not fit the device's OTA slot", u.port, u.port, u.total)
	return &Error{Kind: ErrNoConnectBack, Stage: StageConnect,
		Msg:  fmt.Sprintf("the device at %s accepted the invitation but never connected back to %s within %s", u.dev, hp, u.opts.ConnectTimeout),
		Next: hint}
}

// deviceError turns the device's own text into an error with a hint.
func (u *upload) deviceError(stage Stage, text string) error {
	text = strings.TrimSpace(text)
	lower := strings.ToLower(text)
	hint := "see the device's serial log for details, then try again"
	switch {
	case strings.Contains(lower, "md5"):
		hint = "the image arrived different from the file (or the device computed a different digest); try again, and check Wi-Fi quality if it repeats"
	case strings.Contains(lower, "space") || strings.Contains(lower, "bad size") || strings.Contains(lower, "partition"):
		hint = fmt.Sprintf("the image (%d bytes) does not fit the device's OTA slot: build with a partition scheme that has a larger app (or filesystem) partition, or make the image smaller", u.total)
	case strings.Contains(lower, "magic"):
		hint = "the file is not an application image for this device; for a filesystem image use --fs"
	case strings.Contains(lower, "running"):
		hint = "another update is running on the device; wait for it to finish"
	case strings.Contains(lower, "bootstrapping"):
		hint = "reset the board once by its reset button or power after a serial flash, then upload again"
	}
	return &Error{Kind: ErrDeviceError, Stage: stage, Msg: fmt.Sprintf("the device at %s reported %q", u.dev, text), Device: text, Next: hint}
}

// transfer streams the image and waits for the device's verdict.
func (u *upload) transfer(ctx context.Context, conn *net.TCPConn) error {
	defer conn.Close()
	u.setStage(StageTransfer)
	conn.SetWriteBuffer(sendBuffer)
	rx := newReceiver(conn)
	defer rx.wait()
	defer conn.Close() // unblocks the receiver before waiting for it

	tstart := time.Now()
	var sent int64
	lastProgress := time.Now()
	lastEvent := time.Time{}
	var lastDone int64
	// taken is what the device has acknowledged where the OS tells us,
	// else what we handed to the socket. It never goes down.
	taken := func() int64 {
		done := sent
		if q, ok := queuedBytes(conn); ok {
			done = max(sent-q, 0)
		}
		lastDone = max(lastDone, done)
		return lastDone
	}
	emit := func(force bool) {
		if force || time.Since(lastEvent) >= progressEvery {
			lastEvent = time.Now()
			done := taken()
			rate := 0.0
			if el := time.Since(tstart).Seconds(); el > 0 {
				rate = float64(done) / el
			}
			u.progress(Progress{Stage: StageTransfer, Done: done, Rate: rate, Addr: conn.RemoteAddr().String()})
		}
	}
	emit(true)
	for sent < u.total {
		if rx.finished() {
			break
		}
		end := min(sent+sendChunk, u.total)
		conn.SetWriteDeadline(time.Now().Add(writeTick))
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, err := conn.Write(u.image[sent:end])
		if n > 0 {
			sent += int64(n)
			lastProgress = time.Now()
		}
		emit(false)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if time.Since(lastProgress) >= u.opts.StallTimeout {
				if e := u.verdict(rx, time.Second); e != nil {
					return e
				}
				return &Error{Kind: ErrTransfer, Stage: StageTransfer,
					Msg:  fmt.Sprintf("the device at %s stopped taking data for %s after %d of %d bytes", u.dev, u.opts.StallTimeout, taken(), u.total),
					Next: "the device may have hung, rebooted or lost Wi-Fi; check its power and signal, then try again"}
			}
			continue
		}
		// The connection broke; the device may have said why first.
		if e := u.verdict(rx, time.Second); e != nil {
			return e
		}
		return &Error{Kind: ErrTransfer, Stage: StageTransfer,
			Msg:   fmt.Sprintf("the connection to %s was lost after %d of %d bytes", u.dev, taken(), u.total),
			Cause: err, Next: "the device may have rebooted or lost Wi-Fi; check its power and signal, then try again"}
	}
	if sent < u.total {
		// The receiver finished before we sent everything.
		if e := u.verdict(rx, 0); e != nil {
			return e
		}
		return &Error{Kind: ErrTransfer, Stage: StageTransfer,
			Msg:  fmt.Sprintf("the device at %s closed the connection after %d of %d bytes", u.dev, sent, u.total),
			Next: "the device may have run out of time or memory; check its serial log and try again"}
	}

	// Let the bar follow the device until it has taken the last byte.
	for taken() < sent && !rx.finished() && time.Since(lastProgress) < u.opts.StallTimeout {
		emit(false)
		if sleepCtx(ctx, 5*time.Millisecond) != nil {
			return ctx.Err()
		}
	}
	u.res.Transfer = time.Since(tstart)
	u.setStage(StageFinalize)
	rate := 0.0
	if el := time.Since(tstart).Seconds(); el > 0 {
		rate = float64(sent) / el
	}
	u.progress(Progress{Stage: StageFinalize, Done: sent, Rate: rate, Addr: conn.RemoteAddr().String()})
	// The verdict must come within FinalizeTimeout of the last byte, however
	// much the device sends meanwhile: progress counts and text do not move
	// the deadline, so a device that keeps talking cannot hold us for ever.
	finalizeStart := time.Now()
	timer := time.NewTimer(u.opts.FinalizeTimeout)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-rx.done:
	case <-timer.C:
		// Stop the receiver so its state can be read.
		conn.Close()
		rx.wait()
		if rx.stream.success() {
			return nil // OK arrived with the deadline
		}
		if msg, complete := rx.stream.failed(); complete {
			return u.deviceError(StageFinalize, msg) // so did an error line
		}
		return u.noVerdict(rx, rx.lastRx().After(finalizeStart))
	}
	if rx.stream.success() {
		return nil
	}
	if e := u.verdict(rx, 0); e != nil {
		return e
	}
	return &Error{Kind: ErrTransfer, Stage: StageFinalize,
		Msg:   fmt.Sprintf("the device at %s closed the connection after all %d bytes without confirming the update", u.dev, u.total),
		Cause: rx.error(),
		Next:  "the update was probably not applied: check the device's serial log and try again"}
}

// noVerdict is the error for a device that gave no verdict within
// FinalizeTimeout; talking says whether it kept sending meanwhile. The
// receiver has exited.
func (u *upload) noVerdict(rx *receiver, talking bool) error {
	if !talking {
		return &Error{Kind: ErrTransfer, Stage: StageFinalize,
			Msg:  fmt.Sprintf("all %d bytes were sent but the device at %s did not confirm the update within %s", u.total, u.dev, u.opts.FinalizeTimeout),
			Next: "the update may or may not have been applied: check the device (its serial log or version) before trying again"}
	}
	what := fmt.Sprintf("%d bytes of progress counts", rx.stream.counts)
	if msg, _ := rx.stream.failed(); msg != "" {
		what = fmt.Sprintf("text without a line end (%q)", msg)
	}
	return &Error{Kind: ErrDeviceError, Stage: StageFinalize,
		Msg: fmt.Sprintf("the device at %s kept sending after all %d bytes (%s, %d bytes in all) but gave no verdict within %s",
			u.dev, u.total, what, rx.received.Load(), u.opts.FinalizeTimeout),
		Device: rx.stream.message(),
		Next:   "its firmware does not follow the OTA protocol; the update may or may not have been applied: check the device (its serial log or version) before trying again"}
}

// verdict waits up to wait for the receiver to finish and returns the
// device's error, if it sent one.
func (u *upload) verdict(rx *receiver, wait time.Duration) error {
	if wait > 0 {
		select {
		case <-rx.done:
		case <-time.After(wait):
		}
	}
	if !rx.finished() {
		return nil
	}
	if msg, _ := rx.stream.failed(); msg != "" {
		return u.deviceError(u.stage, msg)
	}
	return nil
}

// receiver reads the device's reply stream concurrently with the transfer.
type receiver struct {
	conn     net.Conn
	done     chan struct{} // closed when OK, a complete message, EOF or an error arrived
	stream   replyStream   // owned by the read goroutine until done is closed
	last     atomic.Int64  // unix nanos of the last received byte
	received atomic.Int64  // bytes received in all
	err      error         // read error other than EOF, valid after done
	exited   chan struct{}
}

func newReceiver(conn net.Conn) *receiver {
	r := &receiver{conn: conn, done: make(chan struct{}), exited: make(chan struct{})}
	r.last.Store(time.Now().UnixNano())
	go r.loop()
	return r
}

func (r *receiver) loop() {
	defer close(r.exited)
	defer close(r.done)
	buf := make([]byte, 4096)
	for {
		n, err := r.conn.Read(buf)
		if n > 0 {
			r.last.Store(time.Now().UnixNano())
			r.received.Add(int64(n))
			r.stream.feed(buf[:n])
			if r.stream.success() {
				return
			}
			if _, complete := r.stream.failed(); complete {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.err = err
			}
			return
		}
	}
}

func (r *receiver) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *receiver) lastRx() time.Time { return time.Unix(0, r.last.Load()) }

// error is the read error, valid once finished.
func (r *receiver) error() error {
	if !r.finished() {
		return nil
	}
	return r.err
}

func (r *receiver) wait() { <-r.exited }

// guard closes every registered socket when ctx ends, so that any blocked
// call returns at once; closeAll closes them when Upload returns.
type guard struct {
	mu      sync.Mutex
	closers []io.Closer
	stop    func() bool
	closed  bool
}

func newGuard(ctx context.Context) *guard {
	g := &guard{}
	// Under the lock: with ctx already done, AfterFunc runs closeAll at
	// once on another goroutine, which reads g.stop.
	g.mu.Lock()
	g.stop = context.AfterFunc(ctx, g.closeAll)
	g.mu.Unlock()
	return g
}

func (g *guard) add(c io.Closer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return
	}
	g.closers = append(g.closers, c)
}

func (g *guard) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stop != nil {
		g.stop()
	}
	g.closed = true
	for _, c := range g.closers {
		c.Close()
	}
	g.closers = nil
}

// pump delivers progress events to the callback on a goroutine of its own,
// in order, coalescing consecutive transfer events when the callback is
// slower than the transfer. send never blocks on the callback.
type pump struct {
	fn    func(Progress)
	mu    sync.Mutex
	queue []Progress
	kick  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func newPump(fn func(Progress)) *pump {
	p := &pump{fn: fn, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if fn == nil {
		close(p.done)
		return p
	}
	go p.loop()
	return p
}

func (p *pump) send(ev Progress) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	if n := len(p.queue); n > 0 && p.queue[n-1].Stage == ev.Stage && ev.Stage == StageTransfer {
		p.queue[n-1] = ev
	} else {
		p.queue = append(p.queue, ev)
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *pump) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.kick:
		case <-p.quit:
			p.drain()
			return
		}
		p.drain()
	}
}

func (p *pump) drain() {
	for {
		p.mu.Lock()
		q := p.queue
		p.queue = nil
		p.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, ev := range q {
			p.fn(ev)
		}
	}
}

// close delivers what is queued and stops the goroutine.
func (p *pump) close() {
	if p.fn != nil {
		close(p.quit)
	}
	<-p.done
}
