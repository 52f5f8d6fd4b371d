package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/humanize"
	"github.com/espdeck/espdeck/internal/ops"
)

const otaUsage = `Usage:
  espdeck ota upload --host HOST[:PORT] --file FW.bin [flags]

Uploads an image over the network to an ESP32 or ESP8266 running ArduinoOTA.
The device port defaults to 3232 (ESP32); ESP8266 boards listen on 8266.
The password comes from --password-env VAR, --password-file FILE or the
ESPDECK_PASSWORD environment variable; on a terminal espdeck asks for it
when the device wants one. OTA cannot ask the board for its chip: give it
with --chip and an image built for another chip is refused before sending.

espota.py's own flags work too, so espdeck can be the upload tool of the
Arduino IDE or PlatformIO:
  -i IP  -p PORT  -f FILE  -a PASSWORD  -s (filesystem)  -I HOST_IP  -P HOST_PORT  -t SECONDS
  (-r, -d and -m are accepted as well; -a is visible in the process list.)

Examples:
  espdeck ota upload --host 192.168.1.40 --file build/app.bin
  espdeck ota upload --host 192.168.1.40 --file build/app.bin --chip esp32s3
  espdeck ota upload --host esp8266-1a2b3c.local:8266 --file app.bin --password-env OTA_PW
  espdeck ota upload --host 192.168.1.40 --file littlefs.bin --fs --json
  espdeck ota -i 192.168.1.40 -p 3232 --auth=secret -f app.bin
` + otaESPHomeUsage + `

Exit codes: 0 ok, 2 bad usage or file, 3 refused before sending, 4 no answer,
5 authentication failed, 6 the device never connected back, 7 transfer
failed, 8 the device reported an error, 9 the device found the image
corrupted (ESPHome), 130 interrupted.`

// runOTA is "espdeck ota …". Without a verb (espota.py style flags right
// after "ota") it uploads.
func runOTA(c *cli, args []string) int {
	if len(args) > 0 && args[0] == "upload" {
		return runOTAUpload(c, args[1:])
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-h" && args[0] != "--help" && args[0] != "-help" {
		return runOTAUpload(c, args)
	}
	fmt.Fprintln(c.stderr, otaUsage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
		return exitOK
	}
	if len(args) == 0 {
		return exitUsage
	}
	fmt.Fprintf(c.stderr, "\nespdeck: unknown ota command %q\n", args[0])
	return exitUsage
}

// timeoutFlag accepts a Go duration ("10s") or, as espota.py's -t does, a
// plain number of seconds.
type timeoutFlag struct{ d *time.Duration }

func (f timeoutFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return ""
	}
	return f.d.String()
}

func (f timeoutFlag) Set(s string) error {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs <= 0 {
			return errors.New("must be positive")
		}
		*f.d = time.Duration(secs * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a duration (10s, 1m) or a number of seconds", s)
	}
	*f.d = d
	return nil
}

type otaFlags struct {
	host, file, passwordEnv, passwordFile, hostIP, authArg string
	chip, auditPath                                        string
	port, hostPort                                         int
	fs, md5Target, espotaProgress, debug                   bool
	timeout                                                time.Duration
}

func runOTAUpload(c *cli, args []string) int {
	fs, cm := c.newFlags("ota upload", otaUsage)
	var f otaFlags
	str := func(p *string, usage string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, "", usage)
		}
	}
	num := func(p *int, usage string, names ...string) {
		for _, n := range names {
			fs.IntVar(p, n, 0, usage)
		}
	}
	boolean := func(p *bool, usage string, names ...string) {
		for _, n := range names {
			fs.BoolVar(p, n, false, usage)
		}
	}
	str(&f.host, "device `HOST[:PORT]` (IP address or name)", "host")
	str(&f.host, "device IP (espota.py)", "i", "ip")
	num(&f.port, "device UDP `PORT` (default 3232; ESP8266: 8266)", "p", "port")
	str(&f.file, "image `FILE` to upload", "file", "f")
	str(&f.auditPath, "audit log `FILE` that gets one record of this upload (default $XDG_STATE_HOME/espdeck/audit.jsonl)", "audit")
	str(&f.chip, "the board's `CHIP` (esp32, esp32s3, esp8266, …): refuse an image built for another one (OTA cannot ask the board)", "chip")
	boolean(&f.fs, "the image is a filesystem (SPIFFS/LittleFS) image", "fs", "s", "spiffs")
	str(&f.passwordEnv, "read the password from environment variable `VAR`", "password-env")
	str(&f.passwordFile, "read the password from `FILE` (first line)", "password-file")
	str(&f.authArg, "password on the command line (espota.py; visible to other users)", "a", "auth")
	str(&f.hostIP, "local `IP` the device connects back to (default: the one that routes to it)", "host-ip", "I", "host_ip")
	num(&f.hostPort, "local TCP `PORT` for the connection back (default: any free one)", "host-port", "P", "host_port")
	fs.Var(timeoutFlag{&f.timeout}, "timeout", "how long to wait for the device to answer and to connect back (`D`: 10s, or seconds)")
	fs.Var(timeoutFlag{&f.timeout}, "t", "same as --timeout (espota.py)")
	boolean(&f.md5Target, "answer a PBKDF2 challenge with the MD5 of the password (espota.py -m)", "m", "md5-target")
	boolean(&f.espotaProgress, "accepted for espota.py compatibility (progress is shown on a terminal anyway)", "r", "progress")
	boolean(&f.debug, "debug log (espota.py; same as --log-level debug)", "d", "debug")
	ef := addESPHomeFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if f.debug {
		cm.logLevel = "debug"
	}
	if f.host == "" && len(pos) > 0 {
		f.host, pos = pos[0], pos[1:]
	}
	if f.file == "" && len(pos) > 0 {
		f.file, pos = pos[0], pos[1:]
	}
	if ef.selected(f.host) {
		return runOTAUploadESPHome(c, cm, f, ef, pos)
	}
	r := c.reporter(cm, f.host)
	usage := func(msg, hint string) int {
		return r.finish(&failure{code: exitUsage, name: "usage", message: msg, hint: hint}, nil)
	}
	if len(pos) > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", pos[0]), "run 'espdeck ota upload --help'")
	}
	if f.host == "" || f.file == "" {
		return usage("ota upload needs --host and --file", "example: espdeck ota upload --host 192.168.1.40 --file build/app.bin")
	}
	log, closeLog, err := c.logger(cm)
	if err != nil {
		return usage(err.Error(), "")
	}
	defer closeLog()

	target, err := parseOTAHost(f.host, f.port)
	if err != nil {
		return usage(err.Error(), "give an IP address or host name, optionally with :PORT")
	}
	image, err := ops.ReadInputFile(f.file, ops.MaxImageFile)
	if err != nil {
		return r.finish(failureOf(c, err, "--file"), nil)
	}
	if len(image) == 0 {
		return usage(fmt.Sprintf("the image %s is empty", f.file), "check the build output")
	}
	cfg, err := config.Load(cm.config, c.getenv)
	if err != nil {
		return usage(err.Error(), "fix the config file, or point --config at another one")
	}
	dev, _ := ops.ConfigDevice(cfg, f.host, target.Host)
	password, source, warnings, err := ops.ResolvePassword(ops.PasswordSources{File: f.passwordFile, Env: f.passwordEnv, Arg: f.authArg,
		Device: dev, Getenv: c.getenv})
	if err != nil {
		return r.finish(failureOf(c, err, ""), nil)
	}
	for _, w := range warnings {
		r.warn(w)
	}
	if source != "" {
		log.Debug("password", "source", source)
	}
	policy, err := c.preflightPolicy(cm)
	if err != nil {
		return usage(err.Error(), "fix the config file or the key file its signing_key names, or point --config at another one")
	}
	oo := ops.OTAOptions{Filesystem: f.fs, Chip: firmware.ChipUnknown, Policy: policy}
	if f.chip != "" && f.chip != "auto" {
		chip, err := firmware.ParseChip(f.chip)
		if err != nil {
			return usage(fmt.Sprintf("--chip %q: %v", f.chip, err), "give the chip the board has (espdeck serial info shows it), or leave --chip out")
		}
		oo.Chip = chip
	} else if dev != nil {
		oo.Board = dev.Board
	}

	opts := espota.Options{
		Password:       password,
		MD5Secret:      f.md5Target,
		HostIP:         f.hostIP,
		HostPort:       f.hostPort,
		InviteTimeout:  f.timeout,
		ConnectTimeout: f.timeout,
		Logger:         log,
		OnProgress:     otaProgress(r, target),
	}
	if password == "" && isTerminal(c.stdin) {
		opts.AskPassword = func(ctx context.Context) (espota.Secret, error) {
			// Hold the output while the prompt waits, so that a stage line
			// from the progress goroutine cannot land after "Password for …: ".
			// espota delivers progress on a goroutine of its own, so this
			// never stalls the upload itself.
			r.mu.Lock()
			defer r.mu.Unlock()
			r.clearBar()
			s, err := c.readSecret(fmt.Sprintf("Password for %s: ", f.host))
			return espota.Secret(s), err
		}
	}
	oo.Upload = opts
	res, err := ops.UploadOTA(c.ctx, target, image, oo)
	for _, w := range res.Verdict.Warnings {
		r.warn(w)
	}
	c.recordAttempt(r, f.auditPath, ops.Attempt{Board: f.host, Address: res.Device, Chip: ops.ChipKey(oo.Chip),
		Protocol: "arduino-ota", Auth: res.AuthScheme, Image: f.file, Data: image, Bytes: res.Bytes, Duration: res.Duration, Err: err})
	if err != nil {
		return r.finish(otaFailure(c.ctx, err), nil)
	}
	rate := 0.0
	if res.Transfer > 0 {
		rate = float64(res.Bytes) / res.Transfer.Seconds()
	}
	r.say("Uploaded %s to %s in %s (%s, authentication: %s). The device is applying the update and restarting.",
		humanize.Bytes(res.Bytes), res.Device, res.Duration.Round(10*time.Millisecond), humanize.Rate(rate), res.AuthScheme)
	if res.ChipNote != "" {
		r.say("Note: %s.", res.ChipNote)
	}
	return r.finish(nil, map[string]any{
		"auth_scheme":  res.AuthScheme,
		"bytes":        res.Bytes,
		"device_addr":  res.Device,
		"host_addr":    res.HostAddr,
		"invitations":  res.Invitations,
		"transfer_ms":  res.Transfer.Milliseconds(),
		"rate_bps":     int64(rate),
		"filesystem":   f.fs,
		"chip_checked": res.ChipChecked,
	})
}

// parseOTAHost splits HOST[:PORT] (ops.ParseHostPort); an explicit
// -p/--port wins over none and must agree with one in HOST.
func parseOTAHost(s string, port int) (espota.Target, error) {
	host, p, err := ops.ParseHostPort(s)
	if err != nil {
		return espota.Target{}, err
	}
	switch {
	case p != 0 && port == 0:
		port = p
	case p != 0 && port != p:
		return espota.Target{}, fmt.Errorf("%q and --port %d disagree", s, port)
	}
	if port < 0 || port > 65535 {
		return espota.Target{}, fmt.Errorf("port %d is out of range", port)
	}
	return espota.Target{Host: host, Port: port}, nil
}

// otaProgress turns upload progress into stage lines and a progress bar.
// It runs on the uploader's progress goroutine, one event at a time.
func otaProgress(r *reporter, t espota.Target) func(espota.Progress) {
	var last espota.Stage
	return func(p espota.Progress) {
		switch p.Stage {
		case espota.StageInvite:
			msg := fmt.Sprintf("Inviting %s", p.Addr)
			if p.Attempt > 1 {
				msg = fmt.Sprintf("No answer yet; inviting %s again (attempt %d)", p.Addr, p.Attempt)
			}
			r.event("stage", map[string]any{"stage": string(p.Stage), "message": msg, "attempt": p.Attempt})
			r.say("%s", msg)
		case espota.StageAuth:
			r.stage(string(p.Stage), "The device asks for a password; authenticating")
		case espota.StageConnect:
			r.stage(string(p.Stage), "Waiting for the device to connect back to "+p.Addr)
		case espota.StageTransfer:
			if last != espota.StageTransfer {
				r.event("stage", map[string]any{"stage": string(p.Stage), "message": "sending the image"})
			}
			r.progress(string(p.Stage), p.Done, p.Total, p.Rate)
		case espota.StageFinalize:
			r.progress(string(espota.StageTransfer), p.Done, p.Total, p.Rate)
			r.stage(string(p.Stage), "All bytes sent; waiting for the device to verify the image")
		}
		last = p.Stage
	}
}

// otaFailure maps an upload error to an exit code, a machine name, a
// message and a hint.
func otaFailure(ctx context.Context, err error) *failure {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return interrupted("the upload")
	}
	ce := ops.Classify(err).(ops.Coded)
	f := &failure{code: exitFor(ops.Class(err)), name: ce.Code(), message: err.Error(), hint: ce.Hint()}
	var e *espota.Error
	if errors.As(err, &e) {
		f.message = e.Msg
		if e.Cause != nil {
			f.message += ": " + e.Cause.Error()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) && f.code == exitInternal {
		f.code, f.name = exitTransfer, ops.CodeTimeout
	}
	f.hint = strings.ReplaceAll(f.hint, ". ", ".\n")
	return f
}
