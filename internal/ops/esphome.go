package ops

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/firmware"
)

// ESPHomeUpload is one upload to an ESPHome board through its native OTA
// protocol: pre-flight, then esphomeota.Upload.
type ESPHomeUpload struct {
	Target esphomeota.Target
	Image  []byte
	// Type is what the image replaces (app unless the user chose otherwise
	// and confirmed the risk; then AllowRisky is true).
	Type       esphomeota.OTAType
	AllowRisky bool
	// Chip is the board's chip when known (ChipUnknown otherwise); see
	// ChipFromESPHome for deriving it from the mDNS TXT record.
	Chip firmware.Chip
	// SlotSize is the app slot's size when known (0 otherwise).
	SlotSize uint32
	Policy   Policy
	Password esphomeota.Secret
	APIKey   esphomeota.Secret
	// Options carries timeouts, window and NoCompression; the fields set
	// above take precedence over the same fields in it.
	Options    esphomeota.Options
	OnProgress func(esphomeota.Progress)
	Logger     *slog.Logger
}

// ESPHomeResult is what an ESPHome upload learned.
type ESPHomeResult struct {
	Verdict Verdict
	Upload  esphomeota.Result
}

// UploadESPHome runs the pre-flight checks for u's OTA type and, when they
// pass (or were forced), uploads. A refusal is a *RefusedError and nothing
// is sent; an upload failure is the client's *esphomeota.Error.
func UploadESPHome(ctx context.Context, u ESPHomeUpload) (ESPHomeResult, error) {
	var res ESPHomeResult
	v, err := PreflightESPHome(u.Image, u.Type, Target{Route: RouteOTAApp, Chip: u.Chip, ChipRevision: -1, SlotSize: u.SlotSize}, u.Policy)
	res.Verdict = v
	if err != nil {
		return res, err
	}
	o := u.Options
	o.Type, o.AllowRisky = u.Type, u.AllowRisky
	o.Password, o.APIKey = u.Password, u.APIKey
	if u.OnProgress != nil {
		o.OnProgress = u.OnProgress
	}
	if u.Logger != nil {
		o.Logger = u.Logger
	}
	res.Upload, err = esphomeota.Upload(ctx, u.Target, u.Image, o)
	return res, err
}

// PreflightESPHome checks image for an ESPHome OTA of type typ: an app
// goes through the same checks as every other OTA app upload; a partition
// table must parse; a bootloader must look like one.
func PreflightESPHome(image []byte, typ esphomeota.OTAType, t Target, p Policy) (Verdict, error) {
	switch typ {
	case esphomeota.TypeApp:
		t.Route = RouteOTAApp
		return Preflight(image, t, p)
	case esphomeota.TypePartitionTable:
		pf := &preflight{data: image, t: t, p: p}
		pf.v.Content = firmware.Classify(image)
		if _, err := firmware.ParsePartitionTable(image); err != nil {
			pf.fail("partition table", err, true)
		} else {
			pf.pass("partition table", "a valid partition table")
		}
		return pf.finish()
	case esphomeota.TypeBootloader:
		pf := &preflight{data: image, t: t, p: p}
		pf.v.Content = firmware.Classify(image)
		// A bootloader without a description (ESP-IDF before v5) is a
		// RAM-only image; sent as a bootloader it lands at the bootloader
		// offset, which is what makes it one.
		if pf.v.Content != firmware.ContentBootloader && pf.v.Content != firmware.ContentRAMImage {
			pf.fail("content", &firmware.NotAnAppError{Found: pf.v.Content.String() + ", not a bootloader",
				Hint: "give the bootloader .bin of the build (e.g. build/bootloader/bootloader.bin)"}, true)
		} else {
			pf.pass("content", "bootloader image")
		}
		return pf.finish()
	}
	return Verdict{}, fmt.Errorf("preflight: unknown ESPHome OTA type %d", typ)
}

// ChipFromESPHome derives the chip from ESPHome's mDNS TXT platform and
// board (or a YAML's platform section); ok is false when unknown. ESPHome
// says "ESP32" for every ESP32 variant, so that platform alone proves
// nothing: the board must name the variant (esp32-s3-devkitc-1) or be a
// well-known plain ESP32 board. A wrong guess would refuse a good image.
func ChipFromESPHome(platform, board string) (firmware.Chip, bool) {
	b := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(board, "-", ""), "_", ""))
	for _, v := range []string{"esp32s3", "esp32s2", "esp32c3", "esp32c6", "esp32c2", "esp32h2"} {
		if strings.HasPrefix(b, v) {
			if c, err := firmware.ParseChip(v); err == nil {
				return c, true
			}
		}
	}
	if c, err := firmware.ParseChip(board); err == nil {
		return c, true
	}
	switch strings.ToLower(board) {
	case "esp32dev", "esp32doit-devkit-v1", "nodemcu-32s", "wemos_d1_mini32", "esp32cam", "m5stack-core-esp32":
		return firmware.ChipESP32, true
	case "nodemcuv2", "nodemcu", "d1_mini", "d1_mini_pro", "esp01_1m", "esp12e", "esp01":
		return firmware.ChipESP8266, true
	}
	if strings.EqualFold(platform, "ESP8266") {
		return firmware.ChipESP8266, true
	}
	return firmware.ChipUnknown, false
}

// ESPHomePort is the default OTA port for an ESPHome platform name
// (ESP32 3232, ESP8266 8266, RP2040 2040, BK72xx/RTL87xx 8892).
func ESPHomePort(platform string) int {
	p := strings.ToUpper(platform)
	switch {
	case p == "ESP8266":
		return esphomeota.DefaultPortESP8266
	case p == "RP2040":
		return esphomeota.DefaultPortRP2040
	case strings.HasPrefix(p, "BK72"), strings.HasPrefix(p, "RTL87"), p == "LIBRETINY":
		return esphomeota.DefaultPortBK72xx
	}
	return esphomeota.DefaultPortESP32
}

// APIKeySources are the places an ESPHome API encryption key can come
// from, tried in this order, the first that is set wins:
//
//  1. File: --api-key-file FILE (first line; warned about when others can read it)
//  2. Env: --api-key-env VAR
//  3. Config: the device YAML's api: encryption: key:
//  4. ESPDECK_API_KEY in the environment
//
// A source that is named but empty or unreadable is an error, not a
// silent fall-through; a key that is not base64 of 32 bytes is an error.
type APIKeySources struct {
	File, Env string
	Config    esphomeota.Secret
	Getenv    func(string) string
}

// ResolveAPIKey applies the order documented on APIKeySources. The key is
// "" when no source has one (the session is then not encrypted). Errors
// never contain the key.
func ResolveAPIKey(s APIKeySources) (key esphomeota.Secret, warnings []string, err error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	const hint = "copy the key from the device's api: encryption: key: setting (the flags take a file or a variable name, never the key itself)"
	switch {
	case s.File != "":
		raw, w, err := ReadSecretFile(s.File)
		if err != nil {
			return "", nil, Errorf(CodeUsage, "check the --api-key-file path; the file's first line is the key", "--api-key-file: %w", err)
		}
		if w != "" {
			warnings = append(warnings, w)
		}
		if strings.TrimSpace(raw) == "" {
			return "", warnings, Errorf(CodeUsage, "put the key on the file's first line", "--api-key-file %s is empty", s.File)
		}
		key = esphomeota.Secret(strings.TrimSpace(raw))
	case s.Env != "":
		v := getenv(s.Env)
		if v == "" {
			return "", nil, Errorf(CodeUsage, "export that variable before running espdeck (--api-key-env takes the variable's name, not the key)",
				"--api-key-env %s: that environment variable is empty or not set", s.Env)
		}
		key = esphomeota.Secret(v)
	case s.Config != "":
		key = s.Config
	default:
		key = esphomeota.Secret(getenv("ESPDECK_API_KEY"))
	}
	if key != "" {
		if _, err := esphomeota.ParseAPIKey(key); err != nil {
			return "", warnings, Errorf(CodeUsage, hint, "%w", err)
		}
	}
	return key, warnings, nil
}
