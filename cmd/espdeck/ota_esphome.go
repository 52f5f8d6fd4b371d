package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/esphomeyaml"
	"github.com/espdeck/espdeck/internal/humanize"
	"github.com/espdeck/espdeck/internal/ops"
)

// otaESPHomeUsage is appended to 'ota upload --help'.
const otaESPHomeUsage = `
ESPHome boards (ESPHome's native OTA; espdeck connects to the board, so no
port needs to be open on this machine):
  espdeck ota upload --protocol esphome --host kitchen.local --file firmware.bin
  espdeck ota upload --esphome-config kitchen.yaml --file .esphome/build/kitchen/.pioenvs/kitchen/firmware.bin
  espdeck ota upload --protocol esphome --host 192.168.1.52 --file fw.bin --api-key-env KITCHEN_KEY
The OTA password and the API encryption key are read from the device's YAML
(--esphome-config, with !secret from the secrets.yaml beside it), or given
with --password-env/--password-file and --api-key-env/--api-key-file (or the
ESPDECK_PASSWORD and ESPDECK_API_KEY environment variables). With a key the
session is encrypted and espdeck refuses a board that does not offer
encryption. Default ports: ESP32 3232, ESP8266 8266, RP2040 2040, BK72xx 8892.`

// esphomeFlags are the ota upload flags for ESPHome boards.
type esphomeFlags struct {
	protocol   string
	apiKeyEnv  string
	apiKeyFile string
	config     string
	otaType    string
	noGzip     bool
	retries    int
}

// addESPHomeFlags registers the ESPHome flags on the ota upload flag set.
func addESPHomeFlags(fs *flag.FlagSet) *esphomeFlags {
	ef := &esphomeFlags{}
	fs.Func("protocol", "`PROTOCOL` to speak: arduino (ArduinoOTA, the default) or esphome (ESPHome's native OTA)", func(v string) error {
		switch strings.ToLower(v) {
		case "arduino", "arduinoota", "espota", "esphome":
			ef.protocol = strings.ToLower(v)
			return nil
		}
		return errors.New("want arduino or esphome")
	})
	fs.StringVar(&ef.apiKeyEnv, "api-key-env", "", "ESPHome: read the API encryption key from environment variable `VAR`")
	fs.StringVar(&ef.apiKeyFile, "api-key-file", "", "ESPHome: read the API encryption key from `FILE` (first line)")
	fs.StringVar(&ef.config, "esphome-config", "", "ESPHome: the device's `YAML` (OTA password, API key, port, name)")
	fs.StringVar(&ef.otaType, "ota-type", "app", "ESPHome: `TYPE` to replace: app, partition-table or bootloader (the last two ask for confirmation)")
	fs.IntVar(&ef.retries, "retries", esphomeota.DefaultRetries, "ESPHome: reconnect up to `N` times after a network error, only before the device has every block")
	fs.BoolVar(&ef.noGzip, "no-gzip", false, "ESPHome: send the image uncompressed even when the board accepts gzip")
	return ef
}

// selected reports whether the command line asks for ESPHome's protocol:
// --protocol esphome, an ESPHome-only flag, or a host given as the device
// ID discovery lists for ESPHome boards ("esphome/kitchen").
func (ef *esphomeFlags) selected(host string) bool {
	if strings.HasPrefix(host, "esphome/") && ef.protocol == "" {
		return true
	}
	// ESPHome-only flags select it too; with --protocol arduino they are
	// a usage error, reported by runOTAUploadESPHome.
	return ef.protocol == "esphome" || ef.config != "" || ef.apiKeyEnv != "" || ef.apiKeyFile != ""
}

// runOTAUploadESPHome is 'ota upload' for an ESPHome board: flags, one ops
// call, rendering.
func runOTAUploadESPHome(c *cli, cm *common, f otaFlags, ef *esphomeFlags, pos []string) int {
	r := c.reporter(cm, f.host)
	usage := func(msg, hint string) int {
		return r.finish(&failure{code: exitUsage, name: "usage", message: msg, hint: hint}, nil)
	}
	if len(pos) > 0 {
		return usage(fmt.Sprintf("unexpected argument %q", pos[0]), "run 'espdeck ota upload --help'")
	}
	if ef.protocol != "" && ef.protocol != "esphome" {
		return usage("--api-key-*, --esphome-config and --ota-type are for --protocol esphome", "leave --protocol out, or set it to esphome")
	}
	if f.fs {
		return usage("ESPHome's OTA does not upload filesystem images", "leave out --fs")
	}
	if ef.retries == 0 {
		ef.retries = -1 // none; the option's zero value means the default
	}
	var yml esphomeyaml.Device
	if ef.config != "" {
		var err error
		if yml, err = esphomeyaml.Load(ef.config); err != nil {
			return usage(err.Error(), "check the file given with --esphome-config")
		}
	}
	if name, ok := strings.CutPrefix(f.host, "esphome/"); ok && name != "" {
		// A discovery device ID: its mDNS name.
		f.host = name + ".local"
	}
	if f.host == "" && yml.Name != "" {
		f.host = yml.Name + ".local"
		r.device = f.host
	}
	if f.host == "" || f.file == "" {
		return usage("ota upload needs --host and --file", "example: espdeck ota upload --protocol esphome --host kitchen.local --file firmware.bin")
	}
	log, closeLog, err := c.logger(cm)
	if err != nil {
		return usage(err.Error(), "")
	}
	defer closeLog()

	t, err := parseOTAHost(f.host, f.port)
	if err != nil {
		return usage(err.Error(), "give an IP address or host name, optionally with :PORT")
	}
	chip := firmware.ChipUnknown
	if f.chip != "" && f.chip != "auto" {
		if chip, err = firmware.ParseChip(f.chip); err != nil {
			return usage(fmt.Sprintf("--chip %q: %v", f.chip, err), "give the chip the board has, or leave --chip out")
		}
	} else if ch, err := firmware.ParseChip(yml.Variant); yml.Variant != "" && err == nil {
		chip = ch
	} else if ch, ok := ops.ChipFromESPHome(yml.Platform, yml.Board); ok {
		chip = ch
	}
	target := esphomeota.Target{Host: t.Host, Port: t.Port}
	if target.Port == 0 {
		switch {
		case yml.OTAPort != 0:
			target.Port = yml.OTAPort
		case yml.Platform != "":
			target.Port = ops.ESPHomePort(yml.Platform)
		case chip == firmware.ChipESP8266:
			target.Port = esphomeota.DefaultPortESP8266
		default:
			target.Port = esphomeota.DefaultPortESP32
		}
	}
	typ, err := parseOTAType(ef.otaType)
	if err != nil {
		return usage(err.Error(), "use --ota-type app, partition-table or bootloader")
	}
	image, err := os.ReadFile(f.file)
	if err != nil {
		return usage(fmt.Sprintf("cannot read the image: %v", err), "check the path given with --file")
	}
	if len(image) == 0 {
		return usage(fmt.Sprintf("the image %s is empty", f.file), "check the build output")
	}
	password, apiKey, warning, err := esphomeSecrets(c, f, ef, yml)
	if err != nil {
		return usage(err.Error(), cmpOr(ops.HintOf(err), "export that variable, or fix the file path (the flags take a name or a path, never the secret itself)"))
	}
	if warning != "" {
		r.warn(warning)
	}
	allowRisky := false
	if typ != esphomeota.TypeApp {
		q := fmt.Sprintf("Replace the %s of %s? If writing it fails or it is wrong, the board may not boot and needs a USB flash to recover.", typ, f.host)
		if !c.confirm(cm, q) {
			return r.finish(&failure{code: exitRefused, name: "not_confirmed",
				message: "nothing was sent: the " + typ.String() + " update was not confirmed",
				hint:    "answer y, or pass --yes if you accept the risk"}, nil)
		}
		allowRisky = true
	}
	policy, err := c.preflightPolicy(cm)
	if err != nil {
		return usage(err.Error(), "fix the config file or the key file its signing_key names, or point --config at another one")
	}
	up := ops.ESPHomeUpload{
		Target: target, Image: image, Type: typ, AllowRisky: allowRisky, Chip: chip, Policy: policy,
		Password: password, APIKey: apiKey, Logger: log,
		Options:    esphomeota.Options{ConnectTimeout: f.timeout, NoCompression: ef.noGzip, Retries: max(ef.retries, -1)},
		OnProgress: esphomeProgress(r),
	}
	res, err := ops.UploadESPHome(c.ctx, up)
	for _, w := range res.Verdict.Warnings {
		r.warn(w)
	}
	var ce *esphomeota.Error
	if err != nil && up.Password == "" && errors.As(err, &ce) && ce.Code() == "password_required" && isTerminal(c.stdin) {
		pw, perr := c.readSecret(fmt.Sprintf("OTA password for %s: ", f.host))
		if perr != nil {
			return r.finish(esphomeFailure(c.ctx, perr), nil)
		}
		up.Password = esphomeota.Secret(pw)
		res, err = ops.UploadESPHome(c.ctx, up)
	}
	if typ == esphomeota.TypeApp {
		// Only app updates are updates of the board's firmware; a
		// bootloader or table write is not an image the board runs.
		c.recordAttempt(r, f.auditPath, ops.Attempt{Board: f.host, Address: cmpOr(res.Upload.Device, target.Host+":"+strconv.Itoa(target.Port)),
			Chip: ops.ChipKey(chip), Protocol: "esphome", Auth: authLabel(res.Upload), Image: f.file, Data: image,
			Bytes: res.Upload.Bytes, Duration: res.Upload.Duration, Err: err})
	}
	if err != nil {
		if errors.Is(err, ops.ErrRefused) {
			hint := "fix the image, or send it anyway with --force if you are sure"
			var h interface{ Hint() string }
			if errors.As(err, &h) && h.Hint() != "" {
				hint = h.Hint()
			}
			return r.finish(&failure{code: exitRefused, name: "refused", message: "nothing was sent: " + err.Error(), hint: hint}, nil)
		}
		return r.finish(esphomeFailure(c.ctx, err), nil)
	}
	u := res.Upload
	rate := 0.0
	if u.Transfer > 0 {
		rate = float64(u.Bytes) / u.Transfer.Seconds()
	}
	wire := humanize.Bytes(u.Bytes)
	if u.Gzip {
		wire += fmt.Sprintf(" gzip of %s", humanize.Bytes(u.ImageBytes))
	}
	enc := "not encrypted"
	if u.Encrypted {
		enc = "encrypted"
	}
	r.say("Uploaded %s (%s) to %s in %s (%s; ESPHome OTA v%d, authentication: %s, %s). The device is rebooting into the new firmware.",
		u.Type, wire, u.Device, u.Duration.Round(10*time.Millisecond), humanize.Rate(rate), u.Version, u.AuthScheme, enc)
	return r.finish(nil, map[string]any{
		"protocol":    "esphome",
		"ota_type":    u.Type.String(),
		"version":     u.Version,
		"auth_scheme": u.AuthScheme,
		"encrypted":   u.Encrypted,
		"gzip":        u.Gzip,
		"bytes":       u.Bytes,
		"image_bytes": u.ImageBytes,
		"device_addr": u.Device,
		"attempts":    u.Attempts,
		"transfer_ms": u.Transfer.Milliseconds(),
		"rate_bps":    int64(rate),
	})
}

func parseOTAType(s string) (esphomeota.OTAType, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "-")) {
	case "", "app":
		return esphomeota.TypeApp, nil
	case "partition-table", "partitions":
		return esphomeota.TypePartitionTable, nil
	case "bootloader":
		return esphomeota.TypeBootloader, nil
	}
	return 0, fmt.Errorf("--ota-type %q is not app, partition-table or bootloader", s)
}

// esphomeSecrets picks the password (flags, then the YAML, then
// ESPDECK_PASSWORD) and the API key (ops.ResolveAPIKey: flags, then the
// YAML, then ESPDECK_API_KEY; checked to be a key).
func esphomeSecrets(c *cli, f otaFlags, ef *esphomeFlags, yml esphomeyaml.Device) (pw, key esphomeota.Secret, warning string, err error) {
	if f.passwordFile != "" || f.passwordEnv != "" || f.authArg != "" || yml.Password == "" {
		p, _, ws, err := ops.ResolvePassword(ops.PasswordSources{File: f.passwordFile, Env: f.passwordEnv, Arg: f.authArg, Getenv: c.getenv})
		if err != nil {
			return "", "", "", err
		}
		pw, warning = esphomeota.Secret(string(p)), strings.Join(ws, "; ")
	} else {
		pw = esphomeota.Secret(yml.Password)
	}
	k, ws, err := ops.ResolveAPIKey(ops.APIKeySources{File: ef.apiKeyFile, Env: ef.apiKeyEnv,
		Config: esphomeota.Secret(yml.APIKey), Getenv: c.getenv})
	if err != nil {
		return "", "", "", err
	}
	if len(ws) > 0 {
		warning = strings.TrimPrefix(warning+"; "+strings.Join(ws, "; "), "; ")
	}
	key = k
	return pw, key, warning, nil
}

// esphomeProgress turns upload progress into stage lines and a bar.
func esphomeProgress(r *reporter) func(esphomeota.Progress) {
	var last esphomeota.Stage
	return func(p esphomeota.Progress) {
		switch p.Stage {
		case esphomeota.StageConnect:
			msg := "Connecting to " + p.Addr
			if p.Attempt > 1 {
				msg = fmt.Sprintf("Connection lost; connecting to %s again (attempt %d)", p.Addr, p.Attempt)
			}
			r.event("stage", map[string]any{"stage": string(p.Stage), "message": msg, "attempt": p.Attempt})
			r.say("%s", msg)
		case esphomeota.StageAuth:
			r.stage(string(p.Stage), fmt.Sprintf("The device asks for a password (%s); authenticating", p.Session.AuthScheme))
		case esphomeota.StagePrepare:
			enc := ""
			if p.Session.Encrypted {
				enc = ", encrypted"
			}
			msg := fmt.Sprintf("ESPHome OTA v%d, authentication: %s%s; the device prepares its flash", p.Session.Version, p.Session.AuthScheme, enc)
			r.event("stage", map[string]any{"stage": string(p.Stage), "message": msg, "version": p.Session.Version,
				"auth_scheme": p.Session.AuthScheme, "encrypted": p.Session.Encrypted})
			r.say("%s", msg)
		case esphomeota.StageTransfer:
			if last != esphomeota.StageTransfer {
				r.event("stage", map[string]any{"stage": string(p.Stage), "message": "sending the image", "gzip": p.Session.Gzip})
			}
			r.progress(string(p.Stage), p.Done, p.Total, p.Rate)
		case esphomeota.StageFinalize:
			r.progress(string(esphomeota.StageTransfer), p.Done, p.Total, p.Rate)
			r.stage(string(p.Stage), "The device has every byte; waiting for it to verify and commit the image")
		}
		last = p.Stage
	}
}

// esphomeFailure is failureOf for an upload: the code, hint and exit
// status come from the error (ops.Class groups ESPHome's words).
func esphomeFailure(ctx context.Context, err error) *failure {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return interrupted("the upload")
	}
	ce := ops.Classify(err).(ops.Coded)
	return &failure{code: exitFor(ops.Class(err)), name: ce.Code(), message: err.Error(), hint: ce.Hint()}
}
