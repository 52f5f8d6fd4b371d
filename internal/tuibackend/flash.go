package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

type flasher struct{ b *Backend }

// Flash runs one job: an OTA upload for a network device, a ROM-loader
// write for a serial one. The same pre-flight checks run as on the CLI.
func (s flasher) Flash(ctx context.Context, req tui.FlashRequest, progress func(tui.Progress)) tui.FlashResult {
	start := time.Now()
	data, err := os.ReadFile(req.File)
	if err != nil {
		return tui.FlashResult{Error: fmt.Sprintf("cannot read %s: %v", req.File, errors.Unwrap(err)),
			Hint: "check the path; the file list offers recent files"}
	}
	var res tui.FlashResult
	switch {
	case req.Route == tui.RouteSerial || req.Device.Kind == tui.KindSerial:
		res = s.b.flashSerial(ctx, req, data, progress)
	case req.Device.Kind == tui.KindESPHome:
		res = s.b.flashESPHome(ctx, req, data, progress)
	default:
		res = s.b.flashOTA(ctx, req, data, progress)
	}
	if ctx.Err() != nil && !res.OK() {
		res.Canceled = true
	}
	if res.Duration == 0 {
		res.Duration = time.Since(start)
	}
	return res
}

func (b *Backend) flashOTA(ctx context.Context, req tui.FlashRequest, data []byte, progress func(tui.Progress)) tui.FlashResult {
	t := b.targetFor(req.Device, data)
	pol := b.cfg.Policy
	pol.Force = req.Force
	if _, err := ops.Preflight(data, t, pol); err != nil {
		return refusedResult(err)
	}
	host, portStr, err := net.SplitHostPort(req.Device.Address)
	if err != nil {
		return tui.FlashResult{Error: fmt.Sprintf("device address %q is not host:port", req.Device.Address)}
	}
	port, _ := strconv.Atoi(portStr)
	password := req.Password.Reveal()
	if password == "" && b.cfg.Password != nil {
		if pw, ok := b.cfg.Password(req.Device); ok {
			password = pw
		}
	}
	var lastStage espota.Stage
	r, err := espota.Upload(ctx, espota.Target{Host: host, Port: port}, data, espota.Options{
		Password:       espota.Secret(password),
		HostIP:         b.cfg.HostIP,
		HostPort:       b.cfg.HostPort,
		InviteTimeout:  b.cfg.InviteTimeout,
		ConnectTimeout: b.cfg.ConnectTimeout,
		Force:          req.Force,
		Logger:         b.log,
		OnProgress: func(p espota.Progress) {
			note := ""
			if p.Stage == espota.StageInvite && p.Attempt > 1 {
				note = fmt.Sprintf("attempt %d", p.Attempt)
			}
			if p.Stage != lastStage && p.Stage == espota.StageConnect {
				note = "listening on " + p.Addr
			}
			lastStage = p.Stage
			progress(tui.Progress{Stage: string(p.Stage), Note: note, Done: p.Done, Total: p.Total, Rate: p.Rate})
		},
	})
	res := tui.FlashResult{Bytes: int64(len(data)), Duration: r.Duration}
	if img, perr := firmware.ParseImage(data); perr == nil && img.AppDesc != nil {
		res.Version = img.AppDesc.Version
	}
	if err != nil {
		var e *espota.Error
		if errors.As(err, &e) {
			res.Error, res.Hint = e.Msg, e.Hint
			if e.Device != "" && e.Msg == "" {
				res.Error = "the device said: " + e.Device
			}
		} else {
			res.Error = err.Error()
		}
		res.AuthFailed = errors.Is(err, espota.ErrAuthFailed)
		return res
	}
	b.learn(req.Device.ID, func(f *learnedFacts) { f.authScheme = schemeWord(r.AuthScheme) })
	return res
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

func refusedResult(err error) tui.FlashResult {
	res := tui.FlashResult{Error: err.Error()}
	var refused *ops.RefusedError
	if errors.As(err, &refused) {
		res.Hint = refused.Hint()
	}
	return res
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

func serialResult(err error) tui.FlashResult {
	return tui.FlashResult{Error: serialflash.Message(err), Hint: serialflash.Hint(err)}
}

func (b *Backend) flashSerial(ctx context.Context, req tui.FlashRequest, data []byte, progress func(tui.Progress)) tui.FlashResult {
	progress(tui.Progress{Stage: "sync", Note: req.Device.Port})
	f, closeFn, err := b.openSerial(ctx, req.Device, progress)
	if err != nil {
		return serialResult(err)
	}
	defer closeFn()
	info, err := f.Info(ctx)
	if err != nil {
		return serialResult(err)
	}
	for _, w := range ops.SecurityWarnings(info.Security.SecureBoot, info.Security.FlashEncryption) {
		b.log.Warn("serial flash", "port", req.Device.Port, "warning", w)
		progress(tui.Progress{Stage: "sync", Note: "warning: " + w})
	}
	io := ops.SerialFlashIO(f)
	t := ops.Target{Route: ops.RouteSerial, Chip: info.Chip, ChipRevision: info.Revision, FlashSize: f.FlashSize(), Address: req.Address}
	slot := ""
	if t.Address == 0 {
		t.Address = defaultSerialAddress(info.Chip, data)
		if firmware.Classify(data) == firmware.ContentApp {
			// An app goes into the OTA slot that does not boot next, and is
			// then made the boot slot: the running firmware stays intact
			// until the new one is in place, as with a network update.
			if st, err := ops.ReadPartitionState(ctx, io, 0, ops.ReadOptions{Chip: info.Chip}); err == nil {
				if row, ok := nextSlot(st); ok {
					t.Address, t.SlotSize, slot = row.Offset, row.Size, row.Name
				}
			}
		}
	}
	pol := b.cfg.Policy
	pol.Force = req.Force
	if _, err := ops.Preflight(data, t, pol); err != nil {
		return refusedResult(err)
	}
	if err := f.WriteFlash(ctx, []serialflash.Region{{Addr: t.Address, Data: data}}); err != nil {
		return serialResult(err)
	}
	res := tui.FlashResult{Bytes: int64(len(data))}
	if img, perr := firmware.ParseImage(data); perr == nil && img.AppDesc != nil {
		res.Version = img.AppDesc.Version
	}
	if slot != "" {
		progress(tui.Progress{Stage: "finalize", Note: "boot " + slot})
		if _, _, err := ops.SwitchBootSlot(ctx, io, 0, slot, ops.ChangeOptions{Chip: info.Chip, TargetVerified: true}); err != nil {
			r := serialResult(err)
			r.Error = fmt.Sprintf("written to %s, but selecting it to boot failed: %s", slot, r.Error)
			return r
		}
	}
	progress(tui.Progress{Stage: "reset"})
	if err := f.HardReset(ctx); err != nil {
		b.log.Warn("hard reset failed", "port", req.Device.Port, "err", err)
	}
	return res
}

// nextSlot picks the OTA slot an update should go to: the first OTA slot
// that is not the one booting next (so the current firmware survives).
func nextSlot(st *ops.PartitionState) (ops.PartitionRow, bool) {
	var first *ops.PartitionRow
	for i := range st.Rows {
		r := &st.Rows[i]
		if r.OTASlot < 0 {
			continue
		}
		if first == nil {
			first = r
		}
		if r.Name != st.BootsNext && r.Name != st.Running {
			return *r, true
		}
	}
	if first != nil {
		return *first, true
	}
	return ops.PartitionRow{}, false
}
