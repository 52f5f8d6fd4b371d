package main

import (
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
)

const simESPHomeUsage = `Usage:
  espdeck sim esphome [--image FILE]                the demo fleet (four boards)
  espdeck sim esphome [device flags] [faults]       one board as described

Runs simulated ESPHome boards on 127.0.0.1 and prints their addresses, so
you can try 'espdeck ota upload --protocol esphome' without a board. They
run until Ctrl-C. Without device flags: one without a password, one with a
SHA-256 password, one that requires Noise encryption, and an old ESP8266
firmware (protocol version 1, MD5 password, gzip). After an upload each
reboots and reports a new version.

Examples:
  espdeck sim esphome --image /tmp/app.bin
  espdeck sim esphome --password secret --scheme md5 --ota-version 1
  ESPHOME_KEY=$(head -c32 /dev/urandom | base64) espdeck sim esphome --api-key-env ESPHOME_KEY --require-encryption
  espdeck sim esphome --fault end:0x8D          a signature the board refuses
  espdeck sim esphome --stall-after 100000      a board that stops taking data`

func runSimESPHome(c *cli, args []string) int {
	fs, cm := c.newFlags("sim esphome", simESPHomeUsage)
	imagePath := fs.String("image", "", "also write a small valid ESP32 test app image to `FILE`")
	var cfg esphomesim.Config
	platform := fs.String("platform", "esp32", "esp32 or esp8266")
	version := fs.Int("ota-version", 2, "OTA protocol `VERSION`: 1 or 2")
	fs.BoolVar(&cfg.Legacy, "legacy", false, "firmware before the extended protocol (answers 0x40/0x46)")
	fs.BoolVar(&cfg.Gzip, "gzip", false, "accept gzip images (ESP8266 firmware does)")
	fs.BoolVar(&cfg.PartitionAccess, "partition-access", false, "allow partition-table and bootloader updates")
	fs.StringVar(&cfg.Password, "password", "", "OTA `PASSWORD` set on the board")
	scheme := fs.String("scheme", "sha256", "authentication with a password: sha256 (current firmware) or md5 (older)")
	keyEnv := fs.String("api-key-env", "", "offer Noise encryption with the API key in environment variable `VAR`")
	fs.BoolVar(&cfg.RequireEncryption, "require-encryption", false, "answer 0x94 to a client without encryption")
	fault := fs.String("fault", "", "send error `STEP:CODE` instead of the step's reply (steps: magic, features, auth, prepare, md5, data, receive, end)")
	fs.IntVar(&cfg.StallAfter, "stall-after", 0, "fault: stop taking data after `N` bytes")
	fs.IntVar(&cfg.DropAfter, "drop-after", 0, "fault: drop the connection after `N` bytes")
	fs.DurationVar(&cfg.EraseDelay, "erase-delay", 0, "fault: preparing the flash takes `D`")
	fs.IntVar(&cfg.ReceiveWindow, "window", 0, "socket receive buffer `BYTES` (an ESP has 5744)")
	if _, err := parse(fs, args); err != nil {
		return c.usageExit(err, args)
	}
	custom := false
	fs.Visit(func(f *flag.Flag) {
		custom = custom || f.Name != "image" && f.Name != "json" && !strings.HasPrefix(f.Name, "log")
	})
	fail := func(msg string) int {
		fmt.Fprintf(c.stderr, "espdeck: %s\n  run 'espdeck sim esphome --help' for the flags\n", msg)
		return exitUsage
	}
	cfgs := esphomesim.Demo()
	if custom {
		switch strings.ToLower(*platform) {
		case "esp32":
			cfg.Platform, cfg.Board = esphomesim.PlatformESP32, "esp32dev"
		case "esp8266":
			cfg.Platform, cfg.Board = esphomesim.PlatformESP8266, "d1_mini"
		default:
			return fail(fmt.Sprintf("--platform %q: want esp32 or esp8266", *platform))
		}
		if *version != 1 && *version != 2 {
			return fail("--ota-version must be 1 or 2")
		}
		cfg.Version = byte(*version)
		switch strings.ToLower(*scheme) {
		case "sha256":
		case "md5":
			cfg.Scheme = esphomesim.SchemeMD5
		default:
			return fail(fmt.Sprintf("--scheme %q: want sha256 or md5", *scheme))
		}
		if *keyEnv != "" {
			if cfg.APIKey = c.getenv(*keyEnv); cfg.APIKey == "" {
				return fail(fmt.Sprintf("--api-key-env %s: that environment variable is empty or not set", *keyEnv))
			}
		}
		if *fault != "" {
			step, code, ok := strings.Cut(*fault, ":")
			n, err := parseUint(code)
			if !ok || err != nil || n < 0x80 || n > 0xFF {
				return fail(fmt.Sprintf("--fault %q: want STEP:CODE with a code from 0x80 to 0xFF", *fault))
			}
			switch esphomesim.Step(strings.ToLower(step)) {
			case esphomesim.StepMagic, esphomesim.StepFeatures, esphomesim.StepAuth, esphomesim.StepPrepare,
				esphomesim.StepMD5, esphomesim.StepData, esphomesim.StepReceive, esphomesim.StepEnd:
			default:
				return fail(fmt.Sprintf("--fault %q: unknown step %q", *fault, step))
			}
			cfg.FaultStep, cfg.FaultCode, cfg.FaultAfter = esphomesim.Step(strings.ToLower(step)), byte(n), 8192
		}
		cfg.Name, cfg.FirmwareVersion, cfg.NextVersion, cfg.RebootDelay = "esphome-custom", "2026.11.0", "2026.11.1", 500*time.Millisecond
		cfgs = []esphomesim.Config{cfg}
	}
	return runSimFleet(c, cm, *imagePath, simFleet[esphomesim.Config, *esphomesim.Device]{
		configs: cfgs,
		start: func(cfg esphomesim.Config, log *slog.Logger) (*esphomesim.Device, error) {
			cfg.Logger = log
			d, err := esphomesim.New(cfg)
			if err == nil {
				err = d.Start(c.ctx)
			}
			return d, err
		},
		announce: func(cfg esphomesim.Config, d *esphomesim.Device) (map[string]any, string) {
			desc := describeESPHomeSim(d.Config())
			return map[string]any{"name": cfg.Name, "addr": d.Addr().String(), "protocol": "esphome",
					"platform": cfg.Platform, "board": cfg.Board, "version": cfg.FirmwareVersion, "description": desc},
				fmt.Sprintf("%-16s %-16s %s", cfg.Name, d.Addr(), desc)
		},
		tryIt: func(devs []*esphomesim.Device, file string) {
			fmt.Fprintf(c.stdout, "  espdeck ota upload --protocol esphome --host %s --file %s\n", devs[0].Addr(), file)
			if !custom {
				fmt.Fprintf(c.stdout, "  ESPDECK_PASSWORD=%s espdeck ota upload --protocol esphome --host %s --file %s\n", esphomesim.DemoPassword, devs[1].Addr(), file)
				fmt.Fprintf(c.stdout, "  ESPDECK_API_KEY=%s espdeck ota upload --protocol esphome --host %s --file %s\n", esphomesim.DemoAPIKey, devs[2].Addr(), file)
				fmt.Fprintf(c.stdout, "(demo credentials; the old ESP8266 takes an ESP8266 image)\n")
			}
		},
		sessions: func(d *esphomesim.Device) []map[string]any {
			var out []map[string]any
			for _, s := range d.Records() {
				out = append(out, map[string]any{"name": d.Config().Name, "step": string(s.Step), "outcome": fmt.Sprintf("0x%02X", s.Outcome),
					"bytes": s.Received, "encrypted": s.Encrypted, "auth": s.Auth, "error": s.Err})
			}
			return out
		},
	})
}

// describeESPHomeSim says in a few words what a simulated board does.
func describeESPHomeSim(cfg esphomesim.Config) string {
	parts := []string{fmt.Sprintf("%s %s, ESPHome %s, OTA v%d", cfg.Platform, cfg.Board, cfg.FirmwareVersion, cfg.Version)}
	if cfg.Password == "" {
		parts = append(parts, "no password")
	} else {
		parts = append(parts, "password "+shellQuote(cfg.Password)+" ("+cfg.Scheme.String()+")")
	}
	if cfg.RequireEncryption {
		parts = append(parts, "encryption required")
	} else if cfg.APIKey != "" {
		parts = append(parts, "encryption offered")
	}
	if cfg.Gzip {
		parts = append(parts, "gzip")
	}
	if cfg.FaultStep != "" {
		parts = append(parts, fmt.Sprintf("fault: 0x%02X at %s", cfg.FaultCode, cfg.FaultStep))
	}
	if cfg.StallAfter > 0 {
		parts = append(parts, fmt.Sprintf("stalls after %d bytes", cfg.StallAfter))
	}
	if cfg.DropAfter > 0 {
		parts = append(parts, fmt.Sprintf("drops after %d bytes", cfg.DropAfter))
	}
	if cfg.Legacy {
		parts = append(parts, "legacy feature reply")
	}
	return strings.Join(parts, "; ")
}
