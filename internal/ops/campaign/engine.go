package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/espdeck/espdeck/internal/audit"
)

// Flasher sends one image to one board over one protocol. It runs its own
// pre-flight checks (chip, size, signature) before sending anything and
// returns an error that answers Code() and Hint() when it can.
type Flasher interface {
	Flash(ctx context.Context, b Board, img Image, data []byte, progress func(done, total int64)) (FlashResult, error)
}

// FlashResult is what a successful upload learned.
type FlashResult struct {
	Protocol string // arduino-ota, esphome, serial
	Auth     string // auth scheme used: none, md5, pbkdf2-sha256, …
	Bytes    int64
	Duration time.Duration
	// Confirmation, when set, is what the flasher itself learned about
	// what the board will run (a serial board read back: ConfirmBootSlot),
	// and Running the version found; the engine then does not wait for
	// discovery, which cannot see such a board. Note says it in a sentence.
	Confirmation string
	Running      string
	Note         string
}

// FlasherFunc adapts a function to Flasher.
type FlasherFunc func(ctx context.Context, b Board, img Image, data []byte, progress func(done, total int64)) (FlashResult, error)

// Flash implements Flasher.
func (f FlasherFunc) Flash(ctx context.Context, b Board, img Image, data []byte, progress func(done, total int64)) (FlashResult, error) {
	return f(ctx, b, img, data, progress)
}

// Event is one change of one board: a new state, or progress while
// uploading. Row is a copy of the board's row after the change.
type Event struct {
	Time     time.Time
	Row      Row
	Progress bool // a progress event (State unchanged)
	// Campaign-level events have an empty Row.Board.ID and a Message.
	Message string
}

// Runner runs campaigns. Fill in what applies and call Run.
type Runner struct {
	// Path is the campaign file, rewritten at every state change; "" keeps
	// the campaign in memory only.
	Path string
	// Flashers by board protocol (arduino-ota, esphome, serial). A board
	// whose protocol has none is skipped with code "unsupported_protocol".
	Flashers map[string]Flasher
	// Presence confirms reboots and supplies current versions; nil means
	// confirmation is impossible (boards end as Uploaded, not-checked).
	Presence Presence
	// Audit receives one record per upload attempt; nil writes none.
	Audit *audit.Log
	// History, when set, is what the audit log says espdeck last wrote to
	// a board with success (see LastWrites). With Outdated, a board that
	// announces no version but last received this very image (same
	// SHA-256) from espdeck is skipped.
	History func(Board) (audit.Record, bool)
	// Images holds the image bytes by SHA-256.
	Images map[string][]byte
	// OnEvent, when set, is called for every state change and progress
	// step, from worker goroutines, one call at a time. Keep it quick.
	OnEvent func(Event)
	Logger  *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex // guards f and the file on disk
	f       *File
	eventMu sync.Mutex
	saveErr error
}

// View is what a campaign screen shows: the rows, the canary, the
// threshold, the summary, and whether it is still running.
type View struct {
	File    File
	Summary Summary
	Running bool
}

// Snapshot returns a copy of the campaign as it is now; safe to call
// while Run runs (the TUI polls it or rebuilds it from events).
func (r *Runner) Snapshot() View {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return View{}
	}
	f := *r.f
	f.Rows = slices.Clone(r.f.Rows)
	f.Images = slices.Clone(r.f.Images)
	return View{File: f, Summary: f.Summarize(), Running: !f.Finished}
}

// Resume prepares a loaded campaign for another Run: boards that failed,
// were not confirmed, were interrupted in flight or never started go back
// to the queue; confirmed, uploaded and skipped boards are left alone.
func Resume(f *File) int {
	n := 0
	for i := range f.Rows {
		r := &f.Rows[i]
		if r.State.Retry() {
			r.State, r.Done = Queued, 0
			n++
		}
	}
	f.Stopped, f.StopReason, f.Interrupted, f.Finished = false, "", false, false
	return n
}

// Run works through f's queued rows: the canary first, then the rest at
// most Parallel at a time, until all are done, the threshold stops it, or
// ctx ends. It saves f after every state change and returns f's final
// state as an error only when it could not be saved; the outcome is
// f.Outcome(). A cancelled ctx leaves f resumable.
func (r *Runner) Run(ctx context.Context, f *File) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	f.Settings = f.Settings.withDefaults()
	r.mu.Lock()
	r.f = f
	f.Runs++
	f.Finished = false
	r.saveLocked()
	r.mu.Unlock()

	// Decide the skips first, so that the canary is a board that really
	// gets the image. Boards the plan skipped are reported once.
	var queue []int
	for i := range f.Rows {
		if f.Runs == 1 && f.Rows[i].State == Skipped {
			r.emit(Event{Time: r.Now().UTC(), Row: r.row(i)})
		}
		if f.Rows[i].State != Queued {
			continue
		}
		if r.skipCheck(i) {
			continue
		}
		queue = append(queue, i)
	}
	canary, rest := r.pickCanary(queue)

	var failed, finished int
	stopped := false
	var cmu sync.Mutex
	onFinal := func(st State) {
		cmu.Lock()
		defer cmu.Unlock()
		finished++
		if st.Failure() {
			failed++
		}
		if !stopped && f.Settings.Threshold.Exceeded(failed, finished) {
			stopped = true
			r.stop(fmt.Sprintf("stopped: %d of %d finished boards failed (threshold: %s)", failed, finished, f.Settings.Threshold))
		}
	}
	isStopped := func() bool {
		cmu.Lock()
		defer cmu.Unlock()
		return stopped
	}

	if len(canary) > 0 {
		r.campaignEvent(fmt.Sprintf("canary: %d board(s) first", len(canary)))
		r.work(ctx, canary, min(len(canary), f.Settings.Parallel), func(State) {}, func() bool { return false })
		var bad []string
		for _, i := range canary {
			if st := r.row(i).State; st.Failure() || !st.Final() {
				bad = append(bad, r.row(i).Board.Name)
			}
		}
		if len(bad) > 0 && ctx.Err() == nil {
			cmu.Lock()
			stopped = true
			cmu.Unlock()
			r.stop(fmt.Sprintf("stopped: the canary %v did not update; %d board(s) left untouched", bad, len(rest)))
		}
		// The canary counts for the percentage, not for the count: its
		// failure already stopped the campaign.
		for _, i := range canary {
			if st := r.row(i).State; st.Final() {
				cmu.Lock()
				finished++
				cmu.Unlock()
			}
		}
	}
	if ctx.Err() == nil && !isStopped() && len(rest) > 0 {
		r.campaignEvent(fmt.Sprintf("waves: %d board(s), %d at a time", len(rest), f.Settings.Parallel))
		r.work(ctx, rest, f.Settings.Parallel, onFinal, isStopped)
	}

	r.mu.Lock()
	if ctx.Err() != nil {
		f.Interrupted = true
	}
	f.Finished = true
	r.saveLocked()
	s := f.Summarize()
	saveErr := r.saveErr
	r.mu.Unlock()
	r.campaignEvent(fmt.Sprintf("finished: %d confirmed, %d uploaded, %d skipped, %d failed, %d timed out, %d rolled back, %d untouched",
		s.Confirmed, s.Uploaded, s.Skipped, s.Failed, s.TimedOut, s.RolledBack, s.Untouched+s.InFlight))
	return saveErr
}

// pickCanary takes the canary from queue: rows already marked canary (a
// resumed campaign whose canary failed) first, else the first N.
func (r *Runner) pickCanary(queue []int) (canary, rest []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.f.Settings.Canary
	for _, i := range queue {
		if r.f.Rows[i].Canary {
			canary = append(canary, i)
		} else {
			rest = append(rest, i)
		}
	}
	if r.f.Runs > 1 {
		// Resumed: the canary already passed, unless its rows are back in
		// the queue.
		return canary, rest
	}
	for len(canary) < n && len(rest) > 0 {
		canary, rest = append(canary, rest[0]), rest[1:]
	}
	for _, i := range canary {
		r.f.Rows[i].Canary = true
	}
	return canary, rest
}

// work runs rows with at most n at a time; done is told each final state;
// no new row starts once halt reports true or ctx ends.
func (r *Runner) work(ctx context.Context, rows []int, n int, done func(State), halt func() bool) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(rows)) {
		wg.Go(func() {
			for i := range next {
				// The dispatcher may have handed this row over before the
				// threshold tripped: check again, so no board starts after
				// the stop.
				if ctx.Err() != nil || halt() {
					continue
				}
				done(r.board(ctx, i))
			}
		})
	}
	for _, i := range rows {
		if ctx.Err() != nil || halt() {
			break
		}
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
}

// skipCheck decides, before anything is sent, whether row i is skipped:
// already on the target version, or its version unknown under SkipUnknown.
func (r *Runner) skipCheck(i int) bool {
	r.mu.Lock()
	row := r.f.Rows[i]
	set := r.f.Settings
	r.mu.Unlock()
	version := row.Board.Version
	if r.Presence != nil {
		if s, ok := r.Presence.Current(row.Board); ok && s.Version != "" {
			version = s.Version
		}
	}
	row.FromVersion = version
	var last audit.Record
	fromAudit := false
	if version == "" && r.History != nil {
		last, fromAudit = r.History(row.Board)
		fromAudit = fromAudit && last.ImageSHA256 == row.Image && row.Image != ""
	}
	skip := false
	if r.Flashers[row.Board.Protocol] == nil {
		// Not the board's failure: say so and leave it out of the count.
		row.State, row.Code = Skipped, "unsupported_protocol"
		row.Message = fmt.Sprintf("espdeck cannot update %s boards in a campaign yet", cmpOr(row.Board.Protocol, "unknown-protocol"))
		row.Hint = "update it on its own (espdeck ota upload, espdeck serial write)"
		r.update(i, row)
		return true
	}
	if set.Outdated {
		switch {
		case fromAudit:
			skip = true
			row.State, row.Code = Skipped, "up_to_date"
			row.Message = fmt.Sprintf("announces no version, but espdeck wrote this image here on %s (audit log)", last.Time.UTC().Format(time.DateTime))
			row.FromVersion = last.ToVersion
		case version != "" && version == row.ToVersion:
			skip = true
			row.State, row.Code, row.Message = Skipped, "up_to_date", "already runs "+version
			row.Confirmation = ""
		case version == "" && set.SkipUnknown:
			skip = true
			row.State, row.Code, row.Message = Skipped, "version_unknown", "its running version is not known (skipped by --skip-unknown)"
			row.Hint = "publish the version in the board's TXT record (key \"version\"), or leave out --skip-unknown"
		}
	}
	r.update(i, row)
	return skip
}

// board runs one board's attempt and returns its final state.
func (r *Runner) board(ctx context.Context, i int) State {
	r.mu.Lock()
	row := r.f.Rows[i]
	set := r.f.Settings
	var img Image
	for _, im := range r.f.Images {
		if im.SHA256 == row.Image {
			img = im
		}
	}
	r.mu.Unlock()
	data := r.Images[row.Image]

	row.State, row.Code, row.Message, row.Hint, row.Running, row.Confirmation = Preflight, "", "", "", "", ""
	row.Done, row.Bytes, row.UploadMS, row.ConfirmMS = 0, 0, 0, 0
	r.update(i, row)

	fl := r.Flashers[row.Board.Protocol]
	switch {
	case data == nil || img.SHA256 == "":
		return r.fail(i, row, "image_missing", "the image of this campaign is not loaded", "run the campaign with the same --image files")
	case fl == nil:
		return r.fail(i, row, "unsupported_protocol", fmt.Sprintf("espdeck cannot update %s boards in a campaign yet", row.Board.Protocol),
			"update it on its own (espdeck ota upload, espdeck serial write)")
	}

	var fol Follower
	if set.Confirm > 0 && r.Presence != nil {
		// Follow before sending, so a board that vanishes the moment it
		// says OK is not missed.
		fol = r.Presence.Follow(row.Board)
		defer fol.Stop()
	}
	row.State = Uploading
	row.Attempts++
	r.update(i, row)
	start := r.Now()
	var lastDone int64 = -1
	res, err := fl.Flash(ctx, row.Board, img, data, func(done, total int64) {
		if done == lastDone {
			return
		}
		lastDone = done
		p := row
		p.Done = done
		r.progress(i, p)
	})
	row.UploadMS = r.Now().Sub(start).Milliseconds()
	row.Protocol, row.Auth, row.Bytes = res.Protocol, res.Auth, res.Bytes
	if err != nil {
		code, hint := Classify(ctx, err)
		row.Done = lastDone
		return r.fail(i, row, code, err.Error(), hint)
	}
	row.Done = res.Bytes
	uploaded := r.Now()
	if res.Confirmation != "" {
		row.State, row.Confirmation, row.Running, row.Message = Uploaded, res.Confirmation, res.Running, res.Note
		return r.finish(i, row, img)
	}
	if fol == nil {
		row.State, row.Confirmation = Uploaded, ConfirmNotChecked
		if set.Confirm > 0 {
			row.Message = "uploaded; no discovery to confirm the reboot with"
		}
		return r.finish(i, row, img)
	}
	row.State = Rebooting
	r.update(i, row)
	row = r.confirm(ctx, fol, row, set.Confirm, uploaded)
	row.ConfirmMS = r.Now().Sub(uploaded).Milliseconds()
	return r.finish(i, row, img)
}

// confirm waits, up to limit, for the board to come back and compares what
// it announces with the image's version.
func (r *Runner) confirm(ctx context.Context, fol Follower, row Row, limit time.Duration, uploaded time.Time) Row {
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	gone := false
	var stale *Sighting // seen after the upload without going away, on another version
	for {
		s, err := fol.Next(cctx)
		if err != nil {
			break
		}
		switch {
		case s.Gone:
			gone = true
		case row.ToVersion != "" && s.Version == row.ToVersion:
			row.State, row.Confirmation, row.Running = Confirmed, ConfirmConfirmed, s.Version
			row.Message = "came back on " + s.Version
			return row
		case !gone && s.At.Before(uploaded):
			// An announcement from before the reboot.
		case !gone:
			stale = &s
		case s.Version == "" || row.ToVersion == "":
			row.State, row.Confirmation, row.Running = Uploaded, ConfirmNoVersion, s.Version
			row.Message = "came back, but the version cannot be compared (the board or the image has none)"
			return row
		default:
			return rolledBack(row, s.Version, "came back on "+s.Version+", not "+row.ToVersion)
		}
	}
	if ctx.Err() != nil {
		// Interrupted while waiting: the upload went through, the outcome
		// is unknown. Left in Rebooting so resume looks again.
		row.Confirmation = ConfirmNotChecked
		row.Message = "interrupted while waiting for the board to come back"
		return row
	}
	if stale != nil && stale.Version != "" {
		return rolledBack(row, stale.Version, fmt.Sprintf("still announces %s %s after the upload, not %s", stale.Version, limit, row.ToVersion))
	}
	row.State, row.Confirmation, row.Code = TimedOut, ConfirmTimedOut, "confirm_timeout"
	row.Message = fmt.Sprintf("accepted the image but did not come back within %s", limit)
	row.Hint = "look at the board (power, Wi-Fi, a boot loop on its serial console); 'campaign resume' tries it again"
	return row
}

func rolledBack(row Row, running, msg string) Row {
	row.State, row.Confirmation, row.Running, row.Code = RolledBack, ConfirmRolledBack, running, "rolled_back"
	row.Message = msg
	row.Hint = "the bootloader probably rejected the new image and booted the old slot; on USB, 'espdeck partitions show --port PORT' shows which slot booted and the otadata states (ABORTED, INVALID) that say why"
	return row
}

func (r *Runner) fail(i int, row Row, code, msg, hint string) State {
	row.State, row.Code, row.Message, row.Hint = Failed, code, msg, hint
	if code == "interrupted" {
		// Not a failure of the board: resume sends it again.
		row.State = Queued
		if row.Attempts == 0 {
			r.update(i, row)
			return Queued
		}
	}
	r.update(i, row)
	r.audit(row, r.imageOf(row.Image))
	return row.State
}

func (r *Runner) finish(i int, row Row, img Image) State {
	r.update(i, row)
	r.audit(row, img)
	return row.State
}

func (r *Runner) imageOf(sha string) Image {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, im := range r.f.Images {
		if im.SHA256 == sha {
			return im
		}
	}
	return Image{}
}

// audit writes the record of one attempt. Nothing in a Row is a secret.
func (r *Runner) audit(row Row, img Image) {
	if r.Audit == nil || row.Attempts == 0 {
		return
	}
	r.mu.Lock()
	id := r.f.ID
	r.mu.Unlock()
	// "ok" only for an attempt that ended well: a rolled-back or vanished
	// board is a failure in 'audit --result failed' too.
	result := "ok"
	if row.State.Failure() || row.Code == "interrupted" {
		result = row.Code
	}
	rec := audit.Record{
		Kind: audit.KindUpdate, Board: row.Board.Name, MAC: row.Board.MAC, Address: row.Board.Address, Chip: row.Board.Chip,
		Campaign: id, Attempt: row.Attempts, Protocol: cmpOr(row.Protocol, row.Board.Protocol), Auth: row.Auth,
		FromVersion: row.FromVersion, ToVersion: row.ToVersion, Image: filepath.Base(img.Path), ImageSHA256: img.SHA256,
		Bytes: row.Bytes, DurationMS: row.UploadMS + row.ConfirmMS, Result: result, Message: row.Message,
		Confirmation: row.Confirmation,
	}
	if err := r.Audit.Append(context.WithoutCancel(context.Background()), rec); err != nil {
		r.Logger.Warn("audit log", "err", err)
		r.campaignEvent("warning: " + err.Error())
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *Runner) row(i int) Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Rows[i]
}

// update stores row i, saves the file on a state change and emits an event.
func (r *Runner) update(i int, row Row) {
	row.Updated = r.Now().UTC()
	r.mu.Lock()
	changed := r.f.Rows[i].State != row.State
	r.f.Rows[i] = row
	r.saveLocked()
	r.mu.Unlock()
	if changed || row.State.Final() {
		r.emit(Event{Time: row.Updated, Row: row})
	}
}

// progress stores a progress step without saving the file.
func (r *Runner) progress(i int, row Row) {
	r.mu.Lock()
	r.f.Rows[i].Done = row.Done
	r.mu.Unlock()
	r.emit(Event{Time: r.Now().UTC(), Row: row, Progress: true})
}

func (r *Runner) stop(reason string) {
	r.mu.Lock()
	r.f.Stopped, r.f.StopReason = true, reason
	r.saveLocked()
	r.mu.Unlock()
	r.campaignEvent(reason)
}

// campaignEvent emits a campaign-level event (never under r.mu: OnEvent
// may call Snapshot).
func (r *Runner) campaignEvent(msg string) {
	r.emit(Event{Time: r.Now().UTC(), Message: msg})
}

func (r *Runner) emit(ev Event) {
	if r.OnEvent == nil {
		return
	}
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	r.OnEvent(ev)
}

// saveLocked writes the file; the first error is kept for Run to return.
func (r *Runner) saveLocked() {
	if r.Path == "" {
		return
	}
	if err := Save(r.Path, r.f); err != nil && r.saveErr == nil {
		r.saveErr = err
		r.Logger.Error("save campaign", "err", err)
	}
}

// Classify gives an upload error its machine word and next step: the
// error's own Code() and Hint() when it has them.
func Classify(ctx context.Context, err error) (code, hint string) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return "interrupted", "'espdeck campaign resume FILE' goes on where it stopped"
	}
	var c interface{ Code() string }
	if errors.As(err, &c) {
		code = c.Code()
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		hint = h.Hint()
	}
	if code == "" {
		code = "upload_failed"
	}
	return code, hint
}
