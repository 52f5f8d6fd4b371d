package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/serialflash"
)

// Exit codes of campaigns (in addition to the table in cli.go).
const (
	exitSomeFailed = 11 // the campaign ran to its end, but some boards failed or were not confirmed
	exitStopped    = 12 // a failed canary or the failure threshold stopped the campaign
)

const campaignUsage = `Usage:
  espdeck campaign run --image APP.bin [--image OTHER-CHIP.bin] TARGETS [flags]
  espdeck campaign resume FILE [flags]
  espdeck campaign status FILE [--json]

Updates many boards: a canary first, then the rest a few at a time; stops
when failures pass --max-failures; a board counts as updated only when it
comes back announcing the image's version (--confirm). The campaign is a
file (--state) written as it goes: 'campaign resume FILE' retries only the
boards that failed, were not confirmed or never started. Every attempt is
a record in the audit log ('espdeck audit' reads it).

Targets (at least one):
  --select EXPR      discovered boards: name glob, or name=, board=, platform=,
                     protocol=, chip=, txt.KEY=VALUE terms joined by commas
  --all              every discovered board
  --host HOST[:PORT] a board by address (repeatable; --chip names its chip)
  --hosts-file FILE  one HOST[:PORT] [CHIP] per line
  --protocol esphome the --host and --hosts-file boards run ESPHome (default:
                     ArduinoOTA); discovered boards bring their own protocol
  --port PORT        a board on a serial port (repeatable), written through its
                     ROM loader into the OTA slot that neither runs nor boots
                     next, then selected; USB boards found by discovery join
                     with --select protocol=serial,...

Versions: the image's app description against what the board announces
(ArduinoOTA: the TXT key "version"; ESPHome: project_version, else version).
A serial board announces nothing: after the write espdeck reads back the
slot that boots next and its version, and the board ends 'uploaded'
(confirmation boot-slot) before it is reset into the new app.
One image per chip family; a board never gets another chip's image.

The password comes from --password-env VAR, --password-file FILE or
ESPDECK_PASSWORD; on a terminal espdeck asks once when an ArduinoOTA board
wants one. ESPHome boards get the same password and, with --api-key-env VAR
or --api-key-file FILE (or ESPDECK_API_KEY), an encrypted session: with a
key, an ESPHome board that does not offer encryption gets nothing, so put
boards with different keys in different campaigns.

Examples:
  espdeck campaign run --image build/app.bin --select 'greenhouse-*' --outdated
  espdeck campaign run --image app.bin --image app-s3.bin --all --canary 2 --parallel 8 --max-failures 10%
  espdeck campaign run --image app.bin --host 192.168.1.40 --host 192.168.1.41 --confirm 0s
  espdeck campaign run --demo --image app.bin --max-failures 3    (simulated boards)
  espdeck campaign run --image app.bin --host 192.168.1.40 --explain 192.168.1.40=/dev/ttyUSB0
  espdeck campaign resume ~/.local/state/espdeck/campaigns/20261202-101500-a1b2c3.json
  espdeck campaign status FILE --json

Exit codes: 0 every board confirmed (or skipped), 2 bad usage or file,
3 an image refused, 11 some boards failed or were not confirmed,
12 stopped by a failed canary or the threshold, 130 interrupted (resumable).`

func runCampaign(c *cli, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "run":
			return runCampaignRun(c, args[1:], "")
		case "resume":
			return runCampaignRun(c, args[1:], "resume")
		case "status":
			return runCampaignStatus(c, args[1:])
		}
	}
	fmt.Fprintln(c.stderr, campaignUsage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return exitOK
	}
	if len(args) > 0 {
		fmt.Fprintf(c.stderr, "\nespdeck: unknown campaign command %q\n", args[0])
	}
	return exitUsage
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// thresholdFlag parses --max-failures N or P%.
type thresholdFlag struct{ t *campaign.Threshold }

func (f thresholdFlag) String() string {
	if f.t == nil {
		return ""
	}
	if f.t.Percent > 0 {
		return strconv.FormatFloat(f.t.Percent, 'g', -1, 64) + "%"
	}
	return strconv.Itoa(f.t.Count)
}

func (f thresholdFlag) Set(s string) error {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v <= 0 || v >= 100 {
			return fmt.Errorf("%q: want a percentage between 0 and 100 (10%%)", s)
		}
		*f.t = campaign.Threshold{Percent: v}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("%q: want a number of boards (3) or a percentage (10%%)", s)
	}
	*f.t = campaign.Threshold{Count: n}
	return nil
}

type campaignFlags struct {
	images                    multiFlag
	hosts                     multiFlag
	ports                     multiFlag // serial boards
	baud                      int
	selectExpr, hostsFile     string
	chip, state, auditPath    string
	protocol                  string // of the --host and --hosts-file boards
	all, outdated, skipUnk    bool
	demo                      bool
	canary, parallel          int
	threshold                 campaign.Threshold
	confirm, discover         time.Duration
	passwordEnv, passwordFile string
	apiKeyEnv, apiKeyFile     string
	hostIP                    string
	hostPort                  int
	timeout                   time.Duration
	explain                   multiFlag // BOARD=PORT
}

// runCampaignRun is "campaign run" and (mode "resume") "campaign resume FILE".
func runCampaignRun(c *cli, args []string, mode string) int {
	name := "campaign run"
	if mode == "resume" {
		name = "campaign resume"
	}
	fs, cm := c.newFlags(name, campaignUsage)
	var f campaignFlags
	fs.Var(&f.images, "image", "app image `FILE` (repeatable: one per chip family)")
	fs.StringVar(&f.selectExpr, "select", "", "discovered boards matching `EXPR`")
	fs.BoolVar(&f.all, "all", false, "every discovered board")
	fs.Var(&f.hosts, "host", "a board at `HOST[:PORT]` (repeatable)")
	fs.Var(&f.ports, "port", "a board on serial `PORT`, updated through its ROM loader (repeatable; --chip names its chip)")
	fs.IntVar(&f.baud, "baud", 460800, "serial boards: baud rate after syncing at 115200")
	fs.StringVar(&f.hostsFile, "hosts-file", "", "boards from `FILE`: HOST[:PORT] [CHIP] per line")
	fs.Func("protocol", "`PROTOCOL` of the --host and --hosts-file boards: arduino (ArduinoOTA, the default) or esphome", func(v string) error {
		switch strings.ToLower(v) {
		case "arduino", "arduino-ota", "arduinoota", "espota":
			f.protocol = string(discovery.ProtocolArduinoOTA)
		case "esphome":
			f.protocol = string(discovery.ProtocolESPHome)
		default:
			return errors.New("want arduino or esphome")
		}
		return nil
	})
	fs.StringVar(&f.chip, "chip", "", "the `CHIP` of the --host boards (esp32, esp32s3, esp8266 …)")
	fs.BoolVar(&f.outdated, "outdated", false, "only boards not already announcing the image's version")
	fs.BoolVar(&f.skipUnk, "skip-unknown", false, "with --outdated: also skip boards whose version is unknown")
	fs.IntVar(&f.canary, "canary", 1, "boards updated first, alone; the campaign stops if one fails")
	fs.IntVar(&f.parallel, "parallel", campaign.DefaultParallel, "boards at a time after the canary")
	fs.Var(thresholdFlag{&f.threshold}, "max-failures", "stop when more than `N` boards (or N% of them) failed (default 0)")
	fs.DurationVar(&f.confirm, "confirm", campaign.DefaultConfirm, "wait up to `D` for each board to come back on the new version; 0s skips")
	fs.DurationVar(&f.discover, "discover", 3*time.Second, "look for boards on the network for `D` before starting")
	fs.StringVar(&f.state, "state", "", "campaign `FILE` (default $XDG_STATE_HOME/espdeck/campaigns/ID.json)")
	fs.StringVar(&f.auditPath, "audit", "", "audit log `FILE` (default $XDG_STATE_HOME/espdeck/audit.jsonl)")
	fs.StringVar(&f.passwordEnv, "password-env", "", "read the OTA password from environment variable `VAR`")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the OTA password from `FILE` (first line)")
	fs.StringVar(&f.apiKeyEnv, "api-key-env", "", "ESPHome: read the API encryption key from environment variable `VAR` (every ESPHome board must then encrypt)")
	fs.StringVar(&f.apiKeyFile, "api-key-file", "", "ESPHome: read the API encryption key from `FILE` (first line)")
	fs.StringVar(&f.hostIP, "host-ip", "", "local `IP` boards connect back to")
	fs.IntVar(&f.hostPort, "host-port", 0, "local TCP `PORT` for the connections back (default: any free one)")
	fs.DurationVar(&f.timeout, "timeout", 0, "how long to wait for each board to answer and connect back (`D`, default 10s)")
	fs.BoolVar(&f.demo, "demo", false, "run on a simulated fleet on loopback (no boards needed)")
	fs.Var(&f.explain, "explain", "`BOARD=PORT`: if BOARD rolls back, read its partitions over serial PORT to show why (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	r := c.reporter(cm, "")
	usage := func(msg, hint string) int {
		return r.finish(&failure{code: exitUsage, name: "usage", message: msg, hint: hint}, nil)
	}
	fail := func(err error) int {
		return r.finish(failureOf(c, err, ""), nil)
	}
	log, closeLog, err := c.logger(cm)
	if err != nil {
		return usage(err.Error(), "")
	}
	defer closeLog()

	var file *campaign.File
	images := map[string][]byte{}
	if mode == "resume" {
		if len(pos) != 1 {
			return usage("campaign resume needs the campaign file", "example: espdeck campaign resume campaign.json")
		}
		f.state = pos[0]
		file, err = campaign.Load(f.state)
		if err != nil {
			return fail(err)
		}
		for _, im := range file.Images {
			got, data, err := campaign.LoadImage(im.Path)
			if err != nil {
				return fail(err)
			}
			if got.SHA256 != im.SHA256 {
				return usage(fmt.Sprintf("the image %s changed since the campaign started (SHA-256 %.12s…, was %.12s…)", im.Path, got.SHA256, im.SHA256),
					"put the original image back, or start a new campaign with 'campaign run'")
			}
			images[im.SHA256] = data
		}
		if set["parallel"] {
			file.Settings.Parallel = f.parallel
		}
		if set["max-failures"] {
			file.Settings.Threshold = f.threshold
		}
		if set["confirm"] {
			file.Settings.Confirm = f.confirm
		}
	} else if len(pos) > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", pos[0]), "images go with --image, boards with --host or --select")
	}

	explain := map[string]string{}
	for _, e := range f.explain {
		name, port, ok := strings.Cut(e, "=")
		if !ok || name == "" || port == "" {
			return usage(fmt.Sprintf("--explain %q: want BOARD=PORT", e), "example: --explain porch=/dev/ttyUSB0")
		}
		explain[name] = port
	}

	// Discovery: the targets (run) and the reboots (confirmation).
	roster := campaign.NewRoster()
	var presence campaign.Presence = roster
	var boards []campaign.Board
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	password := espota.Secret("")
	if f.demo {
		if mode == "resume" {
			return usage("--demo boards exist only while 'campaign run --demo' runs", "start a new demo campaign")
		}
		// The ESPHome demo boards come back on the image's version.
		version := ""
		for _, p := range f.images {
			if im, _, err := campaign.LoadImage(p); err == nil && im.Chip == "esp32" {
				version = im.Version
			}
		}
		fleet, err := startCampaignDemo(ctx, roster, version, log)
		if err != nil {
			return fail(err)
		}
		defer fleet.close()
		boards = fleet.boards
		password = espota.Secret(fleet.password)
		if !set["confirm"] {
			f.confirm = 5 * time.Second
		}
	} else {
		static, err := hostBoards(f)
		if err != nil {
			return usage(err.Error(), "give HOST[:PORT] (and --chip esp32, esp32s3, esp8266 … where it helps)")
		}
		sel, err := campaign.ParseSelector(f.selectExpr)
		if err != nil {
			return usage("--select: "+err.Error(), "example: --select 'name=greenhouse-*,txt.room=attic'")
		}
		for _, p := range f.ports {
			b, err := campaign.SerialBoard(p, f.chip)
			if err != nil {
				return usage(fmt.Sprintf("--port %s: %v", p, err), "give a serial port (/dev/ttyUSB0, COM3) and --chip esp32, esp32s3 … where it helps")
			}
			static = append(static, b)
		}
		wantDiscovered := f.all || f.selectExpr != ""
		// USB boards join only when the selector names them: --all means
		// the boards on the network.
		wantUSB := sel.Names(discovery.ProtocolSerial)
		if mode != "resume" && !wantDiscovered && len(static) == 0 {
			return usage("campaign run needs targets", "add --select EXPR, --all, --host HOST, --hosts-file FILE or --port PORT")
		}
		if c.mdnsOff() {
			presence = nil
			if wantDiscovered {
				return usage("--select and --all need network discovery, which ESPDECK_MDNS turns off", "name the boards with --host or --hosts-file")
			}
		} else {
			w := discovery.New(discovery.Options{DisableSerial: !wantUSB, Logger: log})
			go campaign.FollowEvents(ctx, roster, w.Watch(ctx))
			if wantDiscovered || (mode != "resume" && f.outdated) {
				r.say("Looking for boards on the network for %s…", f.discover)
				select {
				case <-time.After(f.discover):
				case <-ctx.Done():
					return r.finish(interrupted("the campaign"), nil)
				}
			}
			if wantDiscovered {
				for _, d := range w.Snapshot() {
					network := d.Protocol == discovery.ProtocolArduinoOTA || d.Protocol == discovery.ProtocolESPHome
					if (network || (wantUSB && d.Protocol == discovery.ProtocolSerial)) && sel.Match(d) {
						boards = append(boards, campaign.BoardFromDevice(d))
					}
				}
			}
		}
		boards = append(boards, static...)
	}
	if presence == nil && mode != "resume" && f.confirm > 0 {
		r.warn("without network discovery the reboots cannot be confirmed: boards end as 'uploaded' (use --confirm 0s to say so)")
	}

	if mode != "resume" {
		if len(f.images) == 0 {
			return usage("campaign run needs --image", "example: espdeck campaign run --image build/app.bin --select 'kitchen-*'")
		}
		var imgs []campaign.Image
		for _, p := range f.images {
			im, data, err := campaign.LoadImage(p)
			if err != nil {
				return fail(err)
			}
			imgs = append(imgs, im)
			images[im.SHA256] = data
		}
		file, err = campaign.Plan(boards, imgs, campaign.Settings{
			Canary: f.canary, Parallel: f.parallel, Threshold: f.threshold, Confirm: f.confirm,
			Outdated: f.outdated, SkipUnknown: f.skipUnk}, time.Now())
		if err != nil {
			return fail(err)
		}
		if f.state == "" {
			dir, err := c.stateDir()
			if err != nil {
				return usage(err.Error(), "name the campaign file with --state FILE")
			}
			f.state = dir.Campaign(file.ID)
		}
		if err := os.MkdirAll(filepath.Dir(f.state), 0o700); err != nil {
			return usage(fmt.Sprintf("cannot create the campaign's folder: %v", err), "name the campaign file with --state FILE")
		}
	} else {
		n := campaign.Resume(file)
		if n == 0 {
			r.say("Nothing to resume: every board of %s is confirmed, uploaded or skipped.", f.state)
			return r.finish(nil, campaignResult(file, f.state))
		}
	}

	if password == "" {
		pw, _, warnings, err := ops.ResolvePassword(ops.PasswordSources{File: f.passwordFile, Env: f.passwordEnv, Getenv: c.getenv})
		if err != nil {
			return usage(err.Error(), ops.HintOf(err))
		}
		for _, w := range warnings {
			r.warn(w)
		}
		password = pw
		if password == "" && isTerminal(c.stdin) && anyAuth(file) {
			s, err := c.readSecret("OTA password for the campaign's boards: ")
			if err != nil {
				return r.finish(interrupted("the campaign"), nil)
			}
			password = espota.Secret(s)
		}
	}
	apiKey, warnings, err := ops.ResolveAPIKey(ops.APIKeySources{File: f.apiKeyFile, Env: f.apiKeyEnv, Getenv: c.getenv})
	if err != nil {
		return usage(err.Error(), ops.HintOf(err))
	}
	for _, w := range warnings {
		r.warn(w)
	}
	otaOpts := espota.Options{HostIP: f.hostIP, HostPort: f.hostPort, InviteTimeout: f.timeout, ConnectTimeout: f.timeout}
	if password == "" && isTerminal(c.stdin) {
		otaOpts.AskPassword = askOnce(c, r)
	}

	if f.auditPath == "" {
		dir, err := c.stateDir()
		if err != nil {
			return usage(err.Error(), "name the audit log with --audit FILE")
		}
		f.auditPath = dir.AuditLog()
	}
	var history func(campaign.Board) (audit.Record, bool)
	if file.Settings.Outdated {
		// What espdeck last wrote to each board: a board that announces no
		// version but got this very image is up to date.
		if fh, err := os.Open(f.auditPath); err == nil {
			recs, _, err := audit.Read(fh, audit.Filter{Kind: audit.KindUpdate})
			fh.Close()
			if err != nil {
				r.warn("the audit log could not be read to the end: " + err.Error())
			}
			history = campaign.LastWrites(recs)
		}
	}
	alog, err := audit.Open(f.auditPath)
	if err != nil {
		return usage(err.Error(), "name another audit log with --audit FILE")
	}
	defer alog.Close()

	policy, err := c.preflightPolicy(cm)
	if err != nil {
		return usage(err.Error(), "fix the config file or the key file its signing_key names")
	}
	runner := &campaign.Runner{
		Path: f.state, Presence: presence, Audit: alog, History: history, Images: images, Logger: log,
		Flashers: map[string]campaign.Flasher{
			string(discovery.ProtocolArduinoOTA): campaign.ArduinoOTA{Password: password, Policy: policy, Logger: log, Options: otaOpts},
		},
		OnEvent: campaignPrinter(r),
	}
	runner.Flashers[string(discovery.ProtocolSerial)] = campaign.Serial{Options: serialflash.Options{Baud: f.baud}, Policy: policy, Logger: log}
	esphome := campaign.ESPHome{
		Password: esphomeota.Secret(password), APIKey: apiKey, Policy: policy, Logger: log,
		Options: esphomeota.Options{ConnectTimeout: f.timeout},
	}
	if ask := otaOpts.AskPassword; ask != nil {
		// The same single prompt as the ArduinoOTA boards'.
		esphome.AskPassword = func(ctx context.Context) (esphomeota.Secret, error) {
			pw, err := ask(ctx)
			return esphomeota.Secret(pw), err
		}
	}
	runner.Flashers[string(discovery.ProtocolESPHome)] = esphome
	r.say("Campaign %s: %d board(s), canary %d, %d at a time, stop when %s; file %s",
		file.ID, len(file.Rows), file.Settings.Canary, file.Settings.Parallel, file.Settings.Threshold, f.state)
	r.event("campaign", map[string]any{"id": file.ID, "state_file": f.state, "boards": len(file.Rows), "message": "started"})
	if err := runner.Run(ctx, file); err != nil {
		r.warn(err.Error())
	}
	explainRollbacks(c, cm, r, file, explain)
	return finishCampaign(r, file, f.state)
}

// explainRollbacks reads, over serial, the partitions of every rolled-back
// board named with --explain: which slot booted and the otadata states
// (ABORTED, INVALID) that say why the new image did not stay. With --json
// the read's result becomes an "explain" event.
func explainRollbacks(c *cli, cm *common, r *reporter, file *campaign.File, ports map[string]string) {
	for _, row := range file.Rows {
		if row.State != campaign.RolledBack {
			continue
		}
		port := ""
		for _, k := range []string{row.Board.Name, row.Board.ID, row.Board.Address} {
			if p, ok := ports[k]; ok {
				port = p
				break
			}
		}
		if port == "" {
			continue
		}
		args := []string{"--port", port}
		if cm.config != "" {
			args = append(args, "--config", cm.config)
		}
		if !cm.json {
			r.say("\n%s rolled back; its partitions, read over %s:", row.Board.Name, port)
			sub := *c
			sub.stdout = c.stderr
			runPartitionsShow(&sub, args)
			continue
		}
		var out bytes.Buffer
		sub := *c
		sub.stdout, sub.stderr = &out, io.Discard
		code := runPartitionsShow(&sub, append(args, "--json"))
		ev := map[string]any{"device": row.Board.ID, "name": row.Board.Name, "port": port, "exit_code": code}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var res map[string]any
		if json.Unmarshal([]byte(lines[len(lines)-1]), &res) == nil {
			delete(res, "event")
			delete(res, "time")
			ev["partitions"] = res
		}
		r.event("explain", ev)
	}
}

// finishCampaign prints the summary and maps the outcome to an exit code.
func finishCampaign(r *reporter, file *campaign.File, state string) int {
	s := file.Summarize()
	r.say("")
	r.say("Summary: %d confirmed, %d uploaded (not confirmed), %d skipped, %d failed, %d timed out, %d rolled back, %d untouched",
		s.Confirmed, s.Uploaded, s.Skipped, s.Failed, s.TimedOut, s.RolledBack, s.Untouched+s.InFlight)
	fields := campaignResult(file, state)
	resume := "espdeck campaign resume " + state
	switch file.Outcome() {
	case campaign.OutcomeOK:
		return r.finish(nil, fields)
	case campaign.OutcomeInterrupted:
		f := interrupted("the campaign")
		f.hint = resume + " goes on where it stopped"
		return r.finish(f, fields)
	case campaign.OutcomeStopped:
		return r.finish(&failure{code: exitStopped, name: "stopped", message: file.StopReason,
			hint: "look at the failed boards above; " + resume + " retries them and the untouched ones"}, fields)
	}
	return r.finish(&failure{code: exitSomeFailed, name: "some_failed",
		message: fmt.Sprintf("%d board(s) failed or were not confirmed", s.Failures()+s.Untouched+s.InFlight),
		hint:    resume + " retries only those"}, fields)
}

func campaignResult(file *campaign.File, state string) map[string]any {
	return map[string]any{"campaign": file.ID, "state_file": state, "outcome": string(file.Outcome()),
		"summary": file.Summarize(), "stopped": file.Stopped, "stop_reason": file.StopReason}
}

// campaignPrinter prints one line per board and state change (JSON: one
// "board" event), and campaign-level messages.
func campaignPrinter(r *reporter) func(campaign.Event) {
	return func(ev campaign.Event) {
		if ev.Progress {
			return
		}
		if ev.Row.Board.ID == "" {
			r.event("campaign", map[string]any{"message": ev.Message})
			if !strings.HasPrefix(ev.Message, "finished:") { // the summary says it
				r.say("%s", ev.Message)
			}
			return
		}
		row := ev.Row
		fields := map[string]any{"device": row.Board.ID, "name": row.Board.Name, "state": string(row.State),
			"canary": row.Canary, "attempt": row.Attempts, "from_version": row.FromVersion, "to_version": row.ToVersion}
		for k, v := range map[string]string{"running": row.Running, "error": row.Code, "message": row.Message, "hint": row.Hint,
			"confirmation": row.Confirmation, "auth_scheme": row.Auth, "address": row.Board.Address} {
			if v != "" {
				fields[k] = v
			}
		}
		if row.State.Final() && row.Bytes > 0 {
			fields["bytes"], fields["upload_ms"], fields["confirm_ms"] = row.Bytes, row.UploadMS, row.ConfirmMS
		}
		r.event("board", fields)
		if !row.State.Final() {
			// A terminal gets one line per board, when its attempt ends.
			return
		}
		name := row.Board.Name
		if row.Canary {
			name += " (canary)"
		}
		versions := ""
		if row.ToVersion != "" {
			versions = cmpOr(row.FromVersion, "?") + " → " + row.ToVersion
		}
		line := fmt.Sprintf("%-22s %-11s %s", name, row.State, padRight(versions, 17))
		if row.Message != "" {
			line += " " + row.Message
		}
		r.say("%s", strings.TrimRight(line, " "))
		if row.State.Failure() && row.Hint != "" {
			r.say("%24s%s", "", row.Hint)
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// askOnce asks for the password the first time a board wants one that
// was not given; boards asking at the same time wait for that one answer,
// and later boards get it without a prompt. A failed prompt is not
// repeated for every board.
func askOnce(c *cli, r *reporter) func(context.Context) (espota.Secret, error) {
	var mu sync.Mutex
	var asked bool
	var answer espota.Secret
	var askErr error
	return func(ctx context.Context) (espota.Secret, error) {
		mu.Lock()
		defer mu.Unlock()
		if !asked {
			asked = true
			// Hold the output so no board's line lands inside the prompt.
			r.mu.Lock()
			r.clearBar()
			s, err := c.readSecret("OTA password for the campaign's boards: ")
			r.mu.Unlock()
			answer, askErr = espota.Secret(s), err
		}
		return answer, askErr
	}
}

func anyAuth(f *campaign.File) bool {
	for _, r := range f.Rows {
		if r.Board.Auth && r.State == campaign.Queued {
			return true
		}
	}
	return false
}

// hostBoards are the boards named by --host and --hosts-file.
func hostBoards(f campaignFlags) ([]campaign.Board, error) {
	var out []campaign.Board
	for _, h := range f.hosts {
		b, err := campaign.HostBoard(h, f.chip)
		if err != nil {
			return nil, fmt.Errorf("--host %s: %v", h, err)
		}
		out = append(out, b)
	}
	if f.hostsFile != "" {
		bs, err := campaign.ReadHostsFile(f.hostsFile)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	if f.protocol != "" {
		for i := range out {
			out[i].Protocol = f.protocol
		}
	}
	return out, nil
}

// stateDir is espdeck's state folder (ops.DefaultStateDir, read through
// c.getenv so that tests stay hermetic); the TUI uses the same one.
func (c *cli) stateDir() (ops.StateDir, error) { return ops.DefaultStateDir(c.getenv) }

// runCampaignStatus prints a campaign file: one row per board and the summary.
func runCampaignStatus(c *cli, args []string) int {
	fs, cm := c.newFlags("campaign status", campaignUsage)
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	r := c.reporter(cm, "")
	if len(pos) != 1 {
		return r.finish(&failure{code: exitUsage, name: "usage", message: "campaign status needs the campaign file",
			hint: "example: espdeck campaign status campaign.json"}, nil)
	}
	file, err := campaign.Load(pos[0])
	if err != nil {
		var e *campaign.Error
		errors.As(err, &e)
		return r.finish(&failure{code: exitUsage, name: e.Code(), message: e.Error(), hint: e.Hint()}, nil)
	}
	for _, row := range file.Rows {
		r.event("board", map[string]any{"device": row.Board.ID, "name": row.Board.Name, "state": string(row.State),
			"canary": row.Canary, "attempts": row.Attempts, "from_version": row.FromVersion, "to_version": row.ToVersion,
			"running": row.Running, "error": row.Code, "message": row.Message, "confirmation": row.Confirmation})
	}
	if !cm.json {
		w := c.stdout
		fmt.Fprintf(w, "Campaign %s (started %s, %d run(s))\n", file.ID, file.Created.Local().Format(time.DateTime), file.Runs)
		fmt.Fprintf(w, "canary %d, %d at a time, stop when %s, confirm %s\n\n", file.Settings.Canary, file.Settings.Parallel,
			file.Settings.Threshold, file.Settings.Confirm)
		fmt.Fprintf(w, "%-20s %-12s %-20s %-8s %s\n", "BOARD", "STATE", "VERSION", "ATTEMPTS", "NOTE")
		for _, row := range file.Rows {
			name := row.Board.Name
			if row.Canary {
				name += " *"
			}
			v := ""
			if row.ToVersion != "" {
				v = cmpOr(row.FromVersion, "?") + " → " + row.ToVersion
			}
			fmt.Fprintf(w, "%-20s %-12s %s %-8d %s\n", name, row.State, padRight(v, 20), row.Attempts, row.Message)
		}
		s := file.Summarize()
		fmt.Fprintf(w, "\n* canary. %d confirmed, %d uploaded, %d skipped, %d failed, %d timed out, %d rolled back, %d untouched\n",
			s.Confirmed, s.Uploaded, s.Skipped, s.Failed, s.TimedOut, s.RolledBack, s.Untouched+s.InFlight)
		if file.Stopped {
			fmt.Fprintf(w, "%s\n", file.StopReason)
		}
	}
	return r.finish(nil, campaignResult(file, pos[0]))
}
