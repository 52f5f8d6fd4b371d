package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/tui"
)

// campaigns runs the TUI's campaigns with the campaign engine; every
// decision (skips, canary, threshold, confirmation) is the engine's. Each
// board is sent its image through the same flasher as a single flash job,
// so passwords, ESPHome, serial boards and the pre-flight are the same.
type campaigns struct{ b *Backend }

// runningCampaign is one campaign of this run, kept for a resume.
type runningCampaign struct {
	file *campaign.File
	// path is where the campaign is saved ("" in memory only), the file
	// 'espdeck campaign status' and 'resume' read.
	path  string
	image map[string][]byte           // by SHA-256
	reqs  map[string]tui.FlashRequest // by board ID: device, route, password
	label string
	mu    sync.Mutex // one Run at a time

	authMu sync.Mutex
	// needsPassword holds the boards whose last attempt failed for the
	// password, by board ID.
	needsPassword map[string]bool
	// warnings are what went wrong beside the boards (a file or an audit
	// log that could not be written), in the order they happened.
	warnings []string
}

func (rc *runningCampaign) warn(w string) {
	rc.authMu.Lock()
	rc.warnings = append(rc.warnings, w)
	rc.authMu.Unlock()
}

// errCampaignRunning is returned for a resume while the campaign runs.
var errCampaignRunning = errors.New("the campaign is still running; wait for it to end, then resume")

func (s campaigns) StartCampaign(ctx context.Context, req tui.CampaignRequest, update func(tui.CampaignView)) error {
	if len(req.Boards) == 0 {
		return errors.New("a campaign needs at least one board")
	}
	path := req.Boards[0].File
	// The file keeps the image's absolute path: a resume from the command
	// line may run in another folder.
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	img, data, err := campaign.LoadImage(abs)
	if err != nil {
		return err
	}
	rc := &runningCampaign{image: map[string][]byte{img.SHA256: data}, reqs: map[string]tui.FlashRequest{}, needsPassword: map[string]bool{}}
	rc.label = filepath.Base(path)
	if img.Version != "" {
		rc.label += " · " + img.Version
	}
	var boards []campaign.Board
	for _, r := range req.Boards {
		if r.File != path {
			return fmt.Errorf("a campaign sends one image; %s and %s differ", path, r.File)
		}
		boards = append(boards, s.b.boardOf(r.Device))
		rc.reqs[r.Device.ID] = r
	}
	set := campaign.Settings{Canary: req.Canary, Parallel: req.Parallel,
		Threshold: campaign.Threshold{Count: req.MaxFailures}, Confirm: s.b.campaignConfirm()}
	f, err := campaign.Plan(boards, []campaign.Image{img}, set, time.Now())
	if err != nil {
		return err
	}
	rc.file = f
	if dir := s.b.cfg.CampaignDir; dir != "" {
		rc.path = filepath.Join(dir, f.ID+".json")
		// Written once before any board is touched: a folder that cannot
		// take it is known now, and the campaign runs in memory only.
		err := os.MkdirAll(dir, 0o700)
		if err == nil {
			err = campaign.Save(rc.path, f)
		}
		if err != nil {
			rc.warn(fmt.Sprintf("the campaign is not saved (%v); it can be resumed only in this run", err))
			rc.path = ""
		}
	}
	rc.mu.Lock()
	s.b.mu.Lock()
	s.b.campaigns[f.ID] = rc
	s.b.mu.Unlock()
	s.run(ctx, rc, update)
	return nil
}

func (s campaigns) ResumeCampaign(ctx context.Context, id string, passwords map[string]tui.Secret, update func(tui.CampaignView)) error {
	s.b.mu.Lock()
	rc := s.b.campaigns[id]
	s.b.mu.Unlock()
	if rc == nil {
		return fmt.Errorf("no campaign %s in this run", id)
	}
	if !rc.mu.TryLock() {
		return errCampaignRunning
	}
	for id, pw := range passwords {
		if r, ok := rc.reqs[id]; ok {
			r.Password = pw
			rc.reqs[id] = r
		}
	}
	if campaign.Resume(rc.file) == 0 {
		rc.mu.Unlock()
		return errors.New("every board of the campaign is confirmed, uploaded or skipped; nothing to resume")
	}
	s.run(ctx, rc, update)
	return nil
}

// run starts the engine on rc and reports its view after every event. The
// caller holds rc.mu; it is released when the run ends.
func (s campaigns) run(ctx context.Context, rc *runningCampaign, update func(tui.CampaignView)) {
	runner := &campaign.Runner{
		Path:     rc.path,
		Flashers: map[string]campaign.Flasher{},
		Images:   rc.image,
		Logger:   s.b.log,
	}
	closeAudit := func() {}
	if p := s.b.cfg.AuditLog; p != "" {
		l, err := audit.Open(p)
		if err != nil {
			rc.warn("no audit records of this run: " + err.Error())
		} else {
			runner.Audit, closeAudit = l, func() { l.Close() }
		}
	}
	if rc.file.Settings.Confirm > 0 {
		runner.Presence = s.b.roster
	}
	fl := campaign.FlasherFunc(func(ctx context.Context, bd campaign.Board, img campaign.Image, _ []byte, progress func(done, total int64)) (campaign.FlashResult, error) {
		res, needPW, err := s.flash(ctx, rc.reqs[bd.ID], img, progress)
		rc.authMu.Lock()
		rc.needsPassword[bd.ID] = needPW
		rc.authMu.Unlock()
		return res, err
	})
	for _, p := range []discovery.Protocol{discovery.ProtocolArduinoOTA, discovery.ProtocolESPHome, discovery.ProtocolSerial} {
		runner.Flashers[string(p)] = fl
	}
	runner.OnEvent = func(ev campaign.Event) {
		if w, ok := strings.CutPrefix(ev.Message, "warning: "); ok && ev.Row.Board.ID == "" {
			// The engine's word that the audit log refused a record.
			rc.warn(w)
		}
		update(rc.view(runner.Snapshot()))
	}
	s.b.mu.Lock()
	if s.b.waiting {
		// The program is quitting: nothing starts now.
		s.b.mu.Unlock()
		closeAudit()
		v := rc.view(campaign.View{File: *rc.file, Summary: rc.file.Summarize()})
		v.Running = false
		rc.mu.Unlock()
		update(v)
		return
	}
	s.b.running.Add(1)
	s.b.mu.Unlock()
	go func() {
		defer s.b.running.Done()
		if err := runner.Run(ctx, rc.file); err != nil {
			s.b.log.Warn("campaign", "id", rc.file.ID, "err", err)
			rc.warn(err.Error())
		}
		closeAudit()
		v := rc.view(runner.Snapshot())
		v.Running = false
		s.b.mu.Lock()
		if v.Interrupted && rc.path != "" {
			s.b.interrupted[v.ID] = rc.path
		} else {
			delete(s.b.interrupted, v.ID)
		}
		s.b.mu.Unlock()
		// Unlocked before the last view goes out: whoever sees it ended
		// may resume it at once.
		rc.mu.Unlock()
		update(v)
	}()
}

// view is the engine's snapshot in the TUI's words, with the boards that
// need a password marked.
func (rc *runningCampaign) view(v campaign.View) tui.CampaignView {
	out := viewOf(v, rc.label)
	out.File = rc.path
	rc.authMu.Lock()
	defer rc.authMu.Unlock()
	out.Warnings = slices.Clone(rc.warnings)
	for i := range out.Rows {
		out.Rows[i].NeedsPassword = out.Rows[i].Failed() && rc.needsPassword[out.Rows[i].DeviceID]
	}
	return out
}

// flash sends one board its image as a flash job does and converts the
// outcome to the engine's terms; needPW says the password was refused.
// A board that nothing will announce after its reboot ends without the
// engine waiting for it: a serial board on what its partitions say boots
// next (as the command line's serial campaigns do), a host added by hand
// as not checked.
func (s campaigns) flash(ctx context.Context, req tui.FlashRequest, img campaign.Image, progress func(done, total int64)) (_ campaign.FlashResult, needPW bool, _ error) {
	if req.Device.ID == "" {
		return campaign.FlashResult{}, false, &campaignError{code: "usage", msg: "the board of this row is not known to this run", hint: "start a new campaign"}
	}
	// The engine writes the audit record of the attempt, as the command
	// line's campaigns do; the job's own record would be a second one.
	res, sess, a := s.b.flash(ctx, req, func(p tui.Progress) {
		if p.Stage == "transfer" || p.Stage == "write" {
			progress(p.Done, p.Total)
		}
	})
	out := campaign.FlashResult{Protocol: protocolWord(req), Bytes: res.Bytes, Duration: res.Duration}
	if a != nil {
		out.Auth, out.Bytes = a.Auth, a.Bytes
	}
	switch {
	case res.Canceled:
		return out, false, context.Canceled
	case !res.OK():
		return out, res.AuthFailed, &campaignError{code: res.Code, msg: res.Error, hint: res.Hint}
	}
	switch {
	case out.Protocol == string(discovery.ProtocolSerial) && sess.readBack != nil:
		// The command line's decision; the next step is the TUI's own.
		boot, err := campaign.BootSlot(img, sess.written, sess.readBack, req.Device.Port)
		if err != nil {
			return out, false, &campaignError{code: "not_selected", msg: err.Error(),
				hint: "read the board's partitions (p on its row) before resetting it again"}
		}
		out.Confirmation, out.Running, out.Note = boot.Confirmation, boot.Running, boot.Note
	case out.Protocol == string(discovery.ProtocolSerial):
		out.Confirmation, out.Note = campaign.ConfirmNotChecked, "written over serial; what boots next could not be read back"
	case !s.b.announced(req.Device.ID):
		out.Confirmation, out.Note = campaign.ConfirmNotChecked, "uploaded; a host added by hand announces nothing to confirm its reboot with"
	}
	return out, false, nil
}

// announced reports whether discovery hears the board announce itself
// (mDNS), so that its reboot can be confirmed; a host added by hand or
// from the config file is only probed.
func (b *Backend) announced(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.raw[id]
	return ok && d.Protocol != discovery.ProtocolManual
}

// boardOf is the campaign's view of a device: discovery's sighting when
// there is one (version, chip and address as the CLI's campaign reads
// them), else the TUI's own facts.
func (b *Backend) boardOf(d tui.Device) campaign.Board {
	b.mu.Lock()
	raw, ok := b.raw[d.ID]
	b.mu.Unlock()
	var bd campaign.Board
	if ok {
		bd = campaign.BoardFromDevice(raw)
	} else {
		addr := d.Address
		if d.Kind == tui.KindSerial {
			addr = d.Port
		}
		bd = campaign.Board{ID: d.ID, Name: d.Name, Protocol: protocolWord(tui.FlashRequest{Device: d}), Address: addr, MAC: d.MAC}
	}
	if bd.Chip == "" {
		// The TUI's chip (from the board id, or read from the ROM) in the
		// campaign's spelling, where the announcement names none.
		bd.Chip = chipKey(d.Chip)
	}
	return bd
}

func (b *Backend) campaignConfirm() time.Duration {
	switch c := b.cfg.CampaignConfirm; {
	case c < 0:
		return 0
	case c == 0:
		return campaign.DefaultConfirm
	default:
		return c
	}
}

func protocolWord(req tui.FlashRequest) string {
	switch {
	case req.Route == tui.RouteSerial || req.Device.Kind == tui.KindSerial:
		return string(discovery.ProtocolSerial)
	case req.Device.Kind == tui.KindESPHome:
		return string(discovery.ProtocolESPHome)
	}
	return string(discovery.ProtocolArduinoOTA)
}

// campaignError carries a flash job's failure into the engine with its
// machine word and next step.
type campaignError struct{ code, msg, hint string }

func (e *campaignError) Error() string { return e.msg }
func (e *campaignError) Code() string  { return e.code }
func (e *campaignError) Hint() string  { return e.hint }

// viewOf converts the engine's snapshot to the TUI's words.
func viewOf(v campaign.View, label string) tui.CampaignView {
	f := v.File
	out := tui.CampaignView{
		ID: f.ID, Image: label, Threshold: f.Settings.Threshold.String(),
		Canary: f.Settings.Canary, Parallel: f.Settings.Parallel, Confirm: f.Settings.Confirm,
		Running: v.Running, StopReason: f.StopReason, Interrupted: f.Interrupted,
		Summary: tui.CampaignSummary{Total: v.Summary.Total, Confirmed: v.Summary.Confirmed, Uploaded: v.Summary.Uploaded,
			Skipped: v.Summary.Skipped, Failed: v.Summary.Failed, TimedOut: v.Summary.TimedOut, RolledBack: v.Summary.RolledBack,
			Untouched: v.Summary.Untouched, InFlight: v.Summary.InFlight},
	}
	sizes := map[string]int64{}
	for _, im := range f.Images {
		sizes[im.SHA256] = im.Size
	}
	for _, r := range f.Rows {
		out.Rows = append(out.Rows, tui.CampaignRow{
			DeviceID: r.Board.ID, Name: r.Board.Name, Canary: r.Canary, State: string(r.State),
			Done: r.Done, Total: sizes[r.Image], From: r.FromVersion, To: r.ToVersion, Running: r.Running,
			Confirmation: r.Confirmation, Attempts: r.Attempts, Code: r.Code, Message: r.Message, Hint: r.Hint,
		})
	}
	return out
}
