package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/internal/humanize"
)

const simOTAUsage = `Usage:
  espdeck sim ota                                   the demo fleet (five devices)
  espdeck sim ota [--count N] [--password P] [--scheme md5|pbkdf2] [--flavour esp32|esp8266] [faults]

Runs simulated ArduinoOTA devices on 127.0.0.1 and prints their addresses,
so you can try 'espdeck ota upload' without a board. They run until Ctrl-C.
Without device flags it starts the demo fleet: an ESP32 with a PBKDF2
password, an ESP8266 with an MD5 password, an ESP32 without a password, one
that never connects back (as behind a firewall) and a slow one.

Examples:
  espdeck sim ota --image /tmp/app.bin
  espdeck sim ota --count 3 --flavour esp8266 --password secret
  espdeck sim ota --never-connect`

func runSimOTA(c *cli, args []string) int {
	fs, cm := c.newFlags("sim ota", simOTAUsage)
	count := fs.Int("count", 1, "number of devices")
	password := fs.String("password", "", "OTA password set on the devices")
	scheme := fs.String("scheme", "", "authentication scheme with a password: md5 or pbkdf2 (default: pbkdf2 on esp32, md5 on esp8266)")
	flavour := fs.String("flavour", "esp32", "esp32 or esp8266")
	fs.StringVar(flavour, "flavor", "esp32", "same as --flavour")
	md5Secret := fs.Bool("md5-secret", false, "pbkdf2 devices store MD5(password), like setPasswordHash with an MD5 hash")
	slot := fs.String("slot", "", "app slot `SIZE` (default 1280K)")
	neverConnect := fs.Bool("never-connect", false, "fault: never connect back after OK")
	slow := fs.Int("slow", 0, "fault: take data at most at `BPS` bytes per second")
	delay := fs.Duration("delay", 0, "fault: delay every reply by `D` (models a round trip)")
	md5Fail := fs.Bool("md5-failure", false, "fault: report an MD5 mismatch at the end")
	ignore := fs.Int("ignore", 0, "fault: ignore the first `N` invitations")
	errText := fs.String("error", "", "fault: end every upload with this device error `TEXT` instead of OK")
	imagePath := fs.String("image", "", "also write a small valid ESP32 test app image to `FILE`")
	if _, err := parse(fs, args); err != nil {
		return c.usageExit(err, args)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	custom := false
	for _, n := range []string{"count", "password", "scheme", "flavour", "flavor", "md5-secret", "slot", "never-connect", "slow", "delay", "md5-failure", "ignore", "error"} {
		custom = custom || set[n]
	}

	var cfgs []otasim.Config
	if !custom {
		cfgs = otasim.Demo()
	} else {
		cfg := otasim.Config{Password: *password}
		switch strings.ToLower(*flavour) {
		case "esp32":
			cfg.Flavour = otasim.ESP32
		case "esp8266":
			cfg.Flavour = otasim.ESP8266
		default:
			fmt.Fprintf(c.stderr, "espdeck: --flavour %q: want esp32 or esp8266\n", *flavour)
			return exitUsage
		}
		switch strings.ToLower(*scheme) {
		case "":
			if cfg.Flavour == otasim.ESP32 {
				cfg.Scheme = otasim.SchemePBKDF2
			}
		case "md5":
			cfg.Scheme = otasim.SchemeMD5
		case "pbkdf2":
			cfg.Scheme = otasim.SchemePBKDF2
		default:
			fmt.Fprintf(c.stderr, "espdeck: --scheme %q: want md5 or pbkdf2\n", *scheme)
			return exitUsage
		}
		cfg.MD5Secret = *md5Secret
		if *slot != "" {
			n, err := parseUint(*slot)
			if err != nil || n == 0 || n > 1<<30 {
				fmt.Fprintf(c.stderr, "espdeck: --slot: %v\n", err)
				return exitUsage
			}
			cfg.AppSlot = int64(n)
		}
		cfg.Faults = otasim.Faults{NeverConnect: *neverConnect, ReadRate: *slow, ReplyDelay: *delay,
			MD5Failure: *md5Fail, IgnoreInvitations: *ignore, ErrorText: *errText}
		if *count < 1 || *count > 64 {
			fmt.Fprintln(c.stderr, "espdeck: --count must be between 1 and 64")
			return exitUsage
		}
		for i := range *count {
			cfg.Name = fmt.Sprintf("%s-%d", cfg.Flavour, i+1)
			cfgs = append(cfgs, cfg)
		}
	}
	return runSimFleet(c, cm, *imagePath, simFleet[otasim.Config, *otasim.Device]{
		configs: cfgs,
		start: func(cfg otasim.Config, log *slog.Logger) (*otasim.Device, error) {
			cfg.Logger = log
			d, err := otasim.New(cfg)
			if err == nil {
				err = d.Start(c.ctx)
			}
			return d, err
		},
		announce: func(cfg otasim.Config, d *otasim.Device) (map[string]any, string) {
			desc := describeSim(cfg)
			return map[string]any{"name": cfg.Name, "addr": d.Addr().String(), "flavour": cfg.Flavour.String(), "description": desc},
				fmt.Sprintf("%-17s %-16s %s", cfg.Name, d.Addr(), desc)
		},
		tryIt: func(devs []*otasim.Device, file string) {
			first := devs[0]
			pwPrefix := ""
			if first.Config().Password != "" {
				pwPrefix = "ESPDECK_PASSWORD=" + shellQuote(first.Config().Password) + " "
			}
			fmt.Fprintf(c.stdout, "  %sespdeck ota upload --host %s --file %s\n", pwPrefix, first.Addr(), file)
			if *imagePath == "" {
				fmt.Fprintf(c.stdout, "(use an ESP32 app .bin from your build, or let --image FILE write a small one)\n")
			}
		},
		sessions: func(d *otasim.Device) []map[string]any {
			var out []map[string]any
			for _, s := range d.Sessions() {
				out = append(out, map[string]any{"name": d.Config().Name, "state": string(s.State), "bytes": len(s.Received), "error": s.Error})
			}
			return out
		},
	})
}

// describeSim says in a few words what a simulated device does.
func describeSim(cfg otasim.Config) string {
	var parts []string
	port := "3232"
	if cfg.Flavour == otasim.ESP8266 {
		port = "8266"
	}
	parts = append(parts, fmt.Sprintf("%s (real port %s)", cfg.Flavour, port))
	if cfg.Password == "" {
		parts = append(parts, "no password")
	} else {
		s := "password " + shellQuote(cfg.Password) + ", " + cfg.Scheme.String()
		if cfg.MD5Secret {
			s += " with MD5 secret"
		}
		parts = append(parts, s)
	}
	f := cfg.Faults
	if f.NeverConnect {
		parts = append(parts, "never connects back")
	}
	if f.ReadRate > 0 {
		parts = append(parts, fmt.Sprintf("slow: %s", humanize.Rate(float64(f.ReadRate))))
	}
	if f.ReplyDelay > 0 {
		parts = append(parts, fmt.Sprintf("replies delayed %s", f.ReplyDelay.Round(time.Millisecond)))
	}
	if f.MD5Failure {
		parts = append(parts, "reports an MD5 failure")
	}
	if f.ErrorText != "" {
		parts = append(parts, fmt.Sprintf("ends uploads with %q", f.ErrorText))
	}
	if f.IgnoreInvitations > 0 {
		parts = append(parts, fmt.Sprintf("ignores the first %d invitations", f.IgnoreInvitations))
	}
	return strings.Join(parts, "; ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
