package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

type flasher struct{ b *Backend }

// Flash runs one job: an OTA upload for a network device, a ROM-loader
// write for a serial one. The same pre-flight checks run as on the CLI,
// and the attempt gets the same audit record as the CLI's; a record that
// cannot be written is a warning of the job, never its failure.
func (s flasher) Flash(ctx context.Context, req tui.FlashRequest, progress func(tui.Progress)) tui.FlashResult {
	res, _, a := s.b.flash(ctx, req, progress)
	if a != nil {
		if w := s.b.recordAttempt(ctx, *a); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
	}
	return res
}

// flash runs one job without recording it (a campaign records its own
// attempts). The session is what the protocol told; the attempt is what
// the audit log is to hold of the job: nil when nothing was sent or the
// image is not an app the board runs.
func (b *Backend) flash(ctx context.Context, req tui.FlashRequest, progress func(tui.Progress)) (tui.FlashResult, session, *ops.Attempt) {
	start := time.Now()
	data, err := ops.ReadInputFile(req.File, ops.MaxImageFile)
	if err != nil {
		return errorResult(err), session{}, nil
	}
	var res tui.FlashResult
	var sess session
	proto := protocolWord(req)
	switch proto {
	case string(discovery.ProtocolSerial):
		res, sess = b.flashSerial(ctx, req, data, progress)
	case string(discovery.ProtocolESPHome):
		res, sess = b.flashESPHome(ctx, req, data, progress)
	default:
		res, sess = b.flashOTA(ctx, req, data, progress)
	}
	if ctx.Err() != nil && !res.OK() {
		res.Canceled = true
	}
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	if proto == string(discovery.ProtocolSerial) && !ops.IsUpdate(data) {
		// A bootloader, table or data region is not an update (the same
		// rule as the command line's).
		return res, sess, nil
	}
	return res, sess, b.attemptOf(req, proto, sess, data, res)
}

// session is what an upload's protocol session told: the auth scheme in
// the audit log's words and the bytes sent; for a serial write into an
// OTA slot, what was read back from the board before its reset.
type session struct {
	auth  string
	bytes int64
	// written is the OTA slot the image went into, and readBack the
	// partitions read from the board after the write (nil: not read).
	written  string
	readBack *ops.PartitionState
}

// attemptOf is a finished job as the audit log records it, with the
// facts learned during the job (the chip and MAC a serial board told).
func (b *Backend) attemptOf(req tui.FlashRequest, proto string, sess session, data []byte, res tui.FlashResult) *ops.Attempt {
	d := b.decorate(req.Device)
	addr := d.Address
	if proto == string(discovery.ProtocolSerial) {
		addr = d.Port
	}
	a := &ops.Attempt{Board: d.Name, Address: addr, MAC: d.MAC, Chip: chipKey(d.Chip), Protocol: proto, Auth: sess.auth,
		Image: req.File, Data: data, Bytes: sess.bytes, Duration: res.Duration}
	switch {
	case res.Canceled:
		a.Err = context.Canceled
	case !res.OK():
		a.Err = &campaignError{code: res.Code, msg: res.Error, hint: res.Hint}
	}
	return a
}

// recordAttempt appends a's record to the audit log; it returns the
// warning to show when the log cannot be written ("" when it was, or when
// this run keeps no log).
func (b *Backend) recordAttempt(ctx context.Context, a ops.Attempt) string {
	if b.cfg.AuditLog == "" {
		return ""
	}
	if err := ops.RecordAttempt(ctx, b.cfg.AuditLog, a); err != nil {
		b.log.Warn("audit log", "err", err)
		return "no audit record of this update: " + err.Error()
	}
	return ""
}

// chipKey is a chip's name as the audit log and campaigns write it
// (esp32s3), "" when unknown.
func chipKey(name string) string {
	if name == "" {
		return ""
	}
	c, err := firmware.ParseChip(name)
	if err != nil {
		return ""
	}
	return ops.ChipKey(c)
}

// flashOTA is ops.UploadOTA: the same checks (the chip from the device's
// facts or its mDNS board TXT), password order and errors as the CLI.
func (b *Backend) flashOTA(ctx context.Context, req tui.FlashRequest, data []byte, progress func(tui.Progress)) (tui.FlashResult, session) {
	host, port, err := ops.ParseHostPort(req.Device.Address)
	if err != nil {
		return errorResult(err), session{}
	}
	if port == 0 {
		port = 3232
	}
	password := req.Password.Reveal()
	if password == "" && b.cfg.Password != nil {
		if pw, ok := b.cfg.Password(req.Device); ok {
			password = pw
		}
	}
	pol := b.cfg.Policy
	pol.Force = req.Force
	o := ops.OTAOptions{Chip: firmware.ChipUnknown, Board: req.Device.Board, Policy: pol}
	if req.Device.Chip != "" {
		if c, err := firmware.ParseChip(req.Device.Chip); err == nil {
			o.Chip = c
		}
	}
	var lastStage espota.Stage
	o.Upload = espota.Options{
		Password:       espota.Secret(password),
		HostIP:         b.cfg.HostIP,
		HostPort:       b.cfg.HostPort,
		InviteTimeout:  b.cfg.InviteTimeout,
		ConnectTimeout: b.cfg.ConnectTimeout,
		Logger:         b.log,
		OnProgress: func(p espota.Progress) {
			note := ""
			if p.Stage == espota.StageInvite && p.Attempt > 1 {
				note = fmt.Sprintf("attempt %d", p.Attempt)
			}
			if lastStage == espota.StageInvite && p.Stage != espota.StageInvite {
				// Past the invitation: the device answered, so a hand-added
				// host is no longer unchecked.
				at := time.Now()
				b.learn(req.Device.ID, func(f *learnedFacts) { f.answered = at })
			}
			if p.Stage != lastStage && p.Stage == espota.StageConnect {
				note = "listening on " + p.Addr
			}
			lastStage = p.Stage
			progress(tui.Progress{Stage: string(p.Stage), Note: note, Done: p.Done, Total: p.Total, Rate: p.Rate})
		},
	}
	r, err := ops.UploadOTA(ctx, espota.Target{Host: host, Port: port}, data, o)
	res := tui.FlashResult{Bytes: int64(len(data)), Duration: r.Duration}
	if r.Verdict.Image != nil && r.Verdict.Image.AppDesc != nil {
		res.Version = r.Verdict.Image.AppDesc.Version
	}
	if err != nil {
		e := errorResult(err)
		res.Error, res.Hint, res.Code = e.Error, e.Hint, e.Code
		var oe *espota.Error
		if errors.As(err, &oe) {
			res.Error = oe.Msg
			if oe.Device != "" && oe.Msg == "" {
				res.Error = "the device said: " + oe.Device
			}
		}
		res.AuthFailed = errors.Is(err, espota.ErrAuthFailed)
		return res, session{auth: r.AuthScheme, bytes: r.Bytes}
	}
	if r.ChipNote != "" {
		b.log.Info("ota upload", "device", req.Device.Name, "note", r.ChipNote)
	}
	b.learn(req.Device.ID, func(f *learnedFacts) { f.authScheme = schemeWord(r.AuthScheme) })
	return res, session{auth: r.AuthScheme, bytes: r.Bytes}
}

// schemeWord is how the TUI names an auth scheme.
func schemeWord(s string) string {
	switch s {
	case espota.SchemeMD5:
		return "MD5"
	case espota.SchemePBKDF2SHA256:
		return "PBKDF2-SHA256"
	case espota.SchemePBKDF2MD5:
		return "PBKDF2 (MD5 secret)"
	case espota.SchemeNone:
		return "none"
	}
	return s
}

// errorResult shows err as the command line does: the same sentence,
// code and hint, classified once (ops.Classify).
func errorResult(err error) tui.FlashResult {
	ce := ops.Classify(err).(ops.Coded)
	return tui.FlashResult{Error: serialflash.Message(err), Hint: ce.Hint(), Code: ce.Code()}
}

// openSerial opens the ROM loader on dev's port with progress mapped to
// the TUI's words. The port stays locked until the returned close runs.
func (b *Backend) openSerial(ctx context.Context, dev tui.Device, progress func(tui.Progress)) (*serialflash.Flasher, func(), error) {
	if dev.Port == "" {
		return nil, nil, fmt.Errorf("%s has no serial port", dev.Name)
	}
	unlock, err := b.lockPort(ctx, dev.Port)
	if err != nil {
		return nil, nil, err
	}
	if m := b.monitorOn(dev.Port); m != nil {
		// A monitor holds the port: borrow it for this job.
		reattach, err := m.Release(ctx)
		if err != nil {
			unlock()
			return nil, nil, fmt.Errorf("the monitor on %s did not let go of the port: %w", dev.Port, err)
		}
		inner := unlock
		unlock = func() { reattach(); inner() }
	}
	opts := b.cfg.Serial
	opts.Logger = b.log
	opts.OnProgress = func(p serialflash.Progress) {
		if progress == nil {
			return
		}
		note := ""
		if p.Stage == "erase" || p.Stage == "write" || p.Stage == "verify" {
			note = fmt.Sprintf("0x%x", p.Addr)
		}
		progress(tui.Progress{Stage: p.Stage, Note: note, Done: p.Done, Total: p.Total, Rate: p.Rate})
	}
	opts.OnNotice = func(msg string) { b.log.Info("serial", "port", dev.Port, "notice", msg) }
	openPort := b.cfg.OpenSerialPort
	if openPort == nil {
		openPort = serialflash.OpenPort
	}
	port, err := openPort(ctx, dev.Port)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	f, err := serialflash.OpenWithPort(ctx, port, opts)
	if err != nil {
		port.Close()
		unlock()
		return nil, nil, err
	}
	if info, err := f.Info(ctx); err == nil {
		b.learn(dev.ID, func(l *learnedFacts) { l.chip, l.mac, l.flashSize = info.Chip.String(), info.MAC, info.FlashSize })
	}
	return f, func() { f.Close(); unlock() }, nil
}

func serialResult(err error) tui.FlashResult { return errorResult(err) }

// flashSerial is ops.FlashSerial on the device's port: the slot choice (an
// app goes into the slot that neither runs nor boots next, or is refused),
// the checks and the switch after writing are made there, as on the CLI.
func (b *Backend) flashSerial(ctx context.Context, req tui.FlashRequest, data []byte, progress func(tui.Progress)) (tui.FlashResult, session) {
	// Over the ROM loader: no password, and bytes only once written.
	sess := session{auth: "none"}
	progress(tui.Progress{Stage: "sync", Note: req.Device.Port})
	f, closeFn, err := b.openSerial(ctx, req.Device, progress)
	if err != nil {
		return serialResult(err), sess
	}
	defer closeFn()
	info, err := f.Info(ctx)
	if err != nil {
		return serialResult(err), sess
	}
	pol := b.cfg.Policy
	pol.Force = req.Force
	wr, err := ops.FlashSerial(ctx, f, info, data, req.File, req.Address, ops.WriteOptions{Policy: pol, OnWarning: func(w string) {
		b.log.Warn("serial flash", "port", req.Device.Port, "warning", w)
		progress(tui.Progress{Stage: "sync", Note: "warning: " + w})
	}})
	if err != nil {
		return errorResult(err), sess
	}
	res := tui.FlashResult{Bytes: int64(len(data))}
	sess.bytes = res.Bytes
	if img, perr := firmware.ParseImage(data); perr == nil && img.AppDesc != nil {
		res.Version = img.AppDesc.Version
	}
	if wr.Slot != "" {
		progress(tui.Progress{Stage: "finalize", Note: "boots " + wr.Slot})
		// What the bootloader will start, read from the board itself (a
		// campaign counts the board done on it; a port announces nothing).
		sess.written = wr.Slot
		if st, err := ops.ReadPartitionState(ctx, ops.SerialFlashIO(f), 0, ops.ReadOptions{Chip: info.Chip}); err == nil {
			sess.readBack = st
			// Not kept as the partitions shown: a slot change is confirmed
			// against what the screen showed, which this read is not.
		} else {
			b.log.Warn("serial flash: read back", "port", req.Device.Port, "err", err)
		}
	}
	progress(tui.Progress{Stage: "reset"})
	if err := f.HardReset(ctx); err != nil {
		b.log.Warn("hard reset failed", "port", req.Device.Port, "err", err)
	}
	return res, sess
}
