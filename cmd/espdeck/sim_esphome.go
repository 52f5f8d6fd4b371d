package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

const simESPHomeUsage = `Usage:
  espdeck sim esphome [--image FILE]

Runs simulated ESPHome boards on 127.0.0.1 and prints their addresses, so
you can try 'espdeck ota upload --protocol esphome' without a board. They
run until Ctrl-C: one without a password, one with a SHA-256 password, one
that requires Noise encryption, and an old ESP8266 firmware (protocol
version 1, MD5 password, gzip). After an upload each reports a new version.

Examples:
  espdeck sim esphome --image /tmp/app.bin`

func runSimESPHome(c *cli, args []string) int {
	fs, cm := c.newFlags("sim esphome", simESPHomeUsage)
	imagePath := fs.String("image", "", "also write a small valid ESP32 test app image to `FILE`")
	if _, err := parse(fs, args); err != nil {
		return c.usageExit(err, args)
	}
	log, closeLog, err := c.logger(cm)
	if err != nil {
		fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
		return exitUsage
	}
	defer closeLog()
	if *imagePath != "" {
		if err := os.WriteFile(*imagePath, ops.DemoAppImage(firmware.ChipESP32, "espdeck-sim-demo", "1.0.0", 256<<10), 0o644); err != nil {
			fmt.Fprintf(c.stderr, "espdeck: write --image: %v\n", err)
			return exitUsage
		}
	}
	r := c.reporter(cm, "")
	var devs []*esphomesim.Device
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	for _, cfg := range esphomesim.Demo() {
		cfg.Logger = log
		d, err := esphomesim.New(cfg)
		if err == nil {
			err = d.Start(c.ctx)
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: start simulated device: %v\n", err)
			return exitInternal
		}
		devs = append(devs, d)
		desc := describeESPHomeSim(d.Config())
		r.event("device", map[string]any{"name": cfg.Name, "addr": d.Addr().String(), "protocol": "esphome",
			"platform": cfg.Platform, "board": cfg.Board, "version": cfg.FirmwareVersion, "description": desc})
		if !cm.json {
			fmt.Fprintf(c.stdout, "%-16s %-16s %s\n", cfg.Name, d.Addr(), desc)
		}
	}
	if !cm.json {
		file := *imagePath
		if file == "" {
			file = "app.bin"
		}
		fmt.Fprintf(c.stdout, "\nTry, in another terminal:\n")
		fmt.Fprintf(c.stdout, "  espdeck ota upload --protocol esphome --host %s --file %s\n", devs[0].Addr(), file)
		fmt.Fprintf(c.stdout, "  ESPDECK_PASSWORD=%s espdeck ota upload --protocol esphome --host %s --file %s\n", esphomesim.DemoPassword, devs[1].Addr(), file)
		fmt.Fprintf(c.stdout, "  ESPDECK_API_KEY=%s espdeck ota upload --protocol esphome --host %s --file %s\n", esphomesim.DemoAPIKey, devs[2].Addr(), file)
		fmt.Fprintf(c.stdout, "(demo credentials; the old ESP8266 takes an ESP8266 image)\n")
		fmt.Fprintf(c.stdout, "Simulated devices listen on loopback only. Ctrl-C stops them.\n")
	}
	<-c.ctx.Done()
	for _, d := range devs {
		for _, s := range d.Records() {
			r.event("session", map[string]any{"name": d.Config().Name, "step": string(s.Step), "outcome": fmt.Sprintf("0x%02X", s.Outcome),
				"bytes": s.Received, "encrypted": s.Encrypted, "auth": s.Auth, "error": s.Err})
		}
	}
	return exitOK
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
	if cfg.Legacy {
		parts = append(parts, "legacy feature reply")
	}
	return strings.Join(parts, "; ")
}
