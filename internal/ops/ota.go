package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
)

// ParseHostPort splits "host", "host:port", "[v6]", "[v6]:port" or a bare
// IPv6 address. port is 0 when none is given; brackets never stay in host.
// Every host[:port] the CLI and the TUI accept goes through here.
func ParseHostPort(s string) (host string, port int, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", 0, Errorf(CodeUsage, "give a host name or IP address, optionally with :PORT", "no host given")
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, Errorf(CodeUsage, "ESP32 boards listen on 3232, ESP8266 boards on 8266", "%q: %q is not a port number", s, p)
		}
		if h == "" {
			return "", 0, Errorf(CodeUsage, "give a host name or IP address before the port", "no host in %q", s)
		}
		return h, n, nil
	}
	host = s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(host); err != nil {
			return "", 0, Errorf(CodeUsage, "write an IPv6 address with a port as [ADDR]:PORT", "%q is neither host:port nor an IPv6 address", s)
		}
	}
	if host == "" || strings.ContainsAny(host, "[] /") {
		return "", 0, Errorf(CodeUsage, "give a host name or IP address, optionally with :PORT", "%q is not a host name or address", s)
	}
	return host, 0, nil
}

// ChipFromBoard guesses the chip from an mDNS "board" TXT value (an
// Arduino variant or ESPHome board) or a platform name.
func ChipFromBoard(board, platform string) (firmware.Chip, bool) {
	for _, s := range []string{board, platform} {
		if s == "" {
			continue
		}
		if c, err := firmware.ParseChip(s); err == nil {
			return c, true
		}
	}
	b := strings.ToLower(board)
	switch {
	case strings.EqualFold(platform, "ESP8266"),
		b == "generic", b == "nodemcuv2", b == "nodemcu", b == "d1_mini", b == "d1_mini_pro", b == "esp01_1m", b == "esp12e":
		return firmware.ChipESP8266, true
	case b == "esp32dev", b == "esp32doit-devkit-v1":
		return firmware.ChipESP32, true
	}
	return firmware.ChipUnknown, false
}

// PasswordSources are the places an OTA password can come from. They are
// tried in this order, the first that is set wins:
//
//  1. File: --password-file FILE (first line; warned about when others can read it)
//  2. Env: --password-env VAR
//  3. Arg: -a/--auth PASSWORD (warned about: visible in the process list)
//  4. Device: the config file's [[device]] password_file or password_env
//  5. ESPDECK_PASSWORD in the environment
//  6. a no-echo prompt, when the device asks and a terminal is there (the
//     caller's espota.Options.AskPassword)
//
// A source that is named but empty or unreadable is an error, not a
// silent fall-through to the next one.
type PasswordSources struct {
	File, Env, Arg string
	Device         *config.Device
	Getenv         func(string) string
}

// ResolvePassword applies the order documented on PasswordSources. source
// names where the password came from ("" when none: the device may not
// need one, or the prompt asks). Errors never contain the password.
func ResolvePassword(s PasswordSources) (pw espota.Secret, source string, warnings []string, err error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	switch {
	case s.File != "":
		v, warn, err := ReadSecretFile(s.File)
		if err != nil {
			return "", "", nil, Errorf(CodeUsage, "check the --password-file path; the file's first line is the password", "--password-file: %w", err)
		}
		if warn != "" {
			warnings = append(warnings, warn)
		}
		if v == "" {
			return "", "", warnings, Errorf(CodeUsage, "put the password on the file's first line", "--password-file %s is empty", s.File)
		}
		return espota.Secret(v), "--password-file", warnings, nil
	case s.Env != "":
		v := getenv(s.Env)
		if v == "" {
			return "", "", nil, Errorf(CodeUsage, "export that variable before running espdeck (--password-env takes the variable's name, not the password)",
				"--password-env %s: that environment variable is empty or not set", s.Env)
		}
		return espota.Secret(v), "--password-env", nil, nil
	case s.Arg != "":
		return espota.Secret(s.Arg), "-a/--auth", []string{"a password given with -a/--auth is visible to other users in the process list; prefer --password-env VAR or --password-file FILE"}, nil
	case s.Device != nil && (s.Device.PasswordFile != "" || s.Device.PasswordEnv != ""):
		if s.Device.PasswordFile != "" {
			v, warn, err := ReadSecretFile(s.Device.PasswordFile)
			if err != nil {
				return "", "", nil, Errorf(CodeUsage, "fix password_file in the config file", "device %q password_file: %w", s.Device.Name, err)
			}
			if warn != "" {
				warnings = append(warnings, warn)
			}
			if v != "" {
				return espota.Secret(v), "config password_file", warnings, nil
			}
			return "", "", warnings, Errorf(CodeUsage, "put the password on the file's first line", "device %q: password_file %s is empty", s.Device.Name, s.Device.PasswordFile)
		}
		v := getenv(s.Device.PasswordEnv)
		if v == "" {
			return "", "", nil, Errorf(CodeUsage, "export that variable, or remove password_env from the config file",
				"device %q: password_env %s is empty or not set", s.Device.Name, s.Device.PasswordEnv)
		}
		return espota.Secret(v), "config password_env", nil, nil
	}
	if v := getenv("ESPDECK_PASSWORD"); v != "" {
		return espota.Secret(v), "ESPDECK_PASSWORD", nil, nil
	}
	return "", "", nil, nil
}

// ConfigDevice finds the config file's [[device]] for a network device by
// any of its names: instance name, host, host:port.
func ConfigDevice(cfg config.Config, keys ...string) (*config.Device, bool) {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if d, ok := cfg.Lookup(k); ok {
			return &d, true
		}
		if h, _, err := ParseHostPort(k); err == nil && h != k {
			if d, ok := cfg.Lookup(h); ok {
				return &d, true
			}
		}
	}
	return nil, false
}

// OTAOptions tune UploadOTA.
type OTAOptions struct {
	// Filesystem sends a filesystem image (checked only to be no firmware).
	Filesystem bool
	// Chip is the board's chip from --chip or the config (ChipUnknown: not
	// given); Board is the mDNS "board" TXT value, used when Chip is not
	// given. With neither the chip is not checked, and the result says so.
	Chip  firmware.Chip
	Board string
	// Policy holds --force and the signing keys.
	Policy Policy
	// Upload are the espota options: password, host IP/port, timeouts,
	// AskPassword, Logger, OnProgress. Force follows Policy.Force.
	Upload espota.Options
}

// OTAResult is a finished upload.
type OTAResult struct {
	espota.Result
	Verdict Verdict
	// ChipChecked is false when no chip was known to check the image
	// against; ChipNote then says so in a sentence for the success line.
	ChipChecked bool
	ChipNote    string
	ChipFrom    string // "--chip", "the board's mDNS TXT", ""
}

// PreflightOTA is the check UploadOTA makes before sending, for a preview
// (the TUI's flash screen): the chip from o.Chip, else from o.Board
// (chipFrom says which; "" when the chip is unknown and not checked).
func PreflightOTA(image []byte, o OTAOptions) (v Verdict, chipFrom string, err error) {
	route := RouteOTAApp
	if o.Filesystem {
		route = RouteOTAFilesystem
	}
	pt := NewTarget(route)
	switch {
	case o.Chip != firmware.ChipUnknown:
		pt.Chip, chipFrom = o.Chip, "--chip"
	default:
		if c, ok := ChipFromBoard(o.Board, ""); ok {
			pt.Chip, chipFrom = c, "the board's mDNS TXT ("+o.Board+")"
		}
	}
	v, err = Preflight(image, pt, o.Policy)
	return v, chipFrom, err
}

// UploadOTA checks image against what is known of the device (the chip
// from --chip/config or the board's TXT, the signing policy, app vs
// filesystem) and uploads it over ArduinoOTA. Nothing is sent when a check
// fails (Force overrides what may be overridden).
func UploadOTA(ctx context.Context, t espota.Target, image []byte, o OTAOptions) (OTAResult, error) {
	var res OTAResult
	v, chipFrom, err := PreflightOTA(image, o)
	res.Verdict, res.ChipFrom = v, chipFrom
	if err != nil {
		return res, fmt.Errorf("nothing was sent: %w", err)
	}
	res.ChipChecked = chipFrom != "" || o.Filesystem
	if !res.ChipChecked {
		res.ChipNote = "the board's chip was not checked (give --chip; OTA cannot ask the board)"
	}
	up := o.Upload
	up.Filesystem, up.Force = o.Filesystem, o.Policy.Force
	r, err := espota.Upload(ctx, t, image, up)
	res.Result = r
	if err != nil {
		return res, magicHint(err, image)
	}
	return res, nil
}

// magicHint: a device that answers "Magic byte is not 0xE9" about an image
// espdeck checked starts with E9 read something else back from its own
// flash: the fault is on the device's side.
func magicHint(err error, image []byte) error {
	var e *espota.Error
	if !errors.As(err, &e) || !errors.Is(err, espota.ErrDeviceError) || len(image) == 0 || image[0] != firmware.ImageMagic {
		return err
	}
	if !strings.Contains(strings.ToLower(e.Device), "magic byte") {
		return err
	}
	return &Error{code: CodeDevice, err: err,
		hint: "espdeck checked that the image starts with 0xE9; the device read something else back from its flash, so its flash write failed or the data was damaged on the way: upload again, and check the board's power supply"}
}
