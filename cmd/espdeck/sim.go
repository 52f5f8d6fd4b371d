package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

// runSim runs simulated devices so a person can try espdeck without boards.
func runSim(c *cli, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "ota":
			return runSimOTA(c, args[1:])
		case "serial":
			return runSimSerial(c, args[1:])
		case "esphome":
			return runSimESPHome(c, args[1:])
		}
	}
	fmt.Fprint(c.stderr, `Usage:
  espdeck sim ota [--image FILE] [--count N] [--password P] [--scheme md5|pbkdf2] [--flavour esp32|esp8266]
  espdeck sim serial [--chip esp32s3] [--tcp 127.0.0.1:PORT] [--demo]
  espdeck sim esphome [--image FILE]

Simulated devices listen on loopback only and run until Ctrl-C.

Examples:
  espdeck sim ota --image /tmp/app.bin    five OTA boards, and an app to upload to them
  espdeck sim serial                      an ESP32 ROM bootloader on a pseudo-terminal
  espdeck sim serial --demo               the same with a partition table, otadata and three apps
  espdeck sim esphome --image /tmp/app.bin four ESPHome boards: plain, SHA-256, Noise, old MD5

'espdeck sim ota --help' and 'espdeck sim serial --help' list every flag.
`)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return exitOK
	}
	return exitUsage
}

// simFleet is what one network simulator (ArduinoOTA, ESPHome) adds to
// the life all of them share in runSimFleet.
type simFleet[C any, D interface{ Close() error }] struct {
	configs []C
	// start creates and starts one device; it runs until closed.
	start func(cfg C, log *slog.Logger) (D, error)
	// announce says where a started device listens and what it does: the
	// fields of its "device" event and the line a person reads.
	announce func(cfg C, d D) (fields map[string]any, line string)
	// tryIt prints, for a person, the commands that upload to devs.
	tryIt func(devs []D, file string)
	// sessions are the "session" events of a device, reported at the end.
	sessions func(d D) []map[string]any
}

// runSimFleet writes --image if asked, starts every device of f on
// loopback, announces them, waits for Ctrl-C and reports what each device
// saw. Devices are closed on every way out (closing twice is harmless).
func runSimFleet[C any, D interface{ Close() error }](c *cli, cm *common, imagePath string, f simFleet[C, D]) int {
	log, closeLog, err := c.logger(cm)
	if err != nil {
		fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
		return exitUsage
	}
	defer closeLog()
	if imagePath != "" {
		if err := os.WriteFile(imagePath, ops.DemoAppImage(firmware.ChipESP32, "espdeck-sim-demo", "1.0.0", 256<<10), 0o644); err != nil {
			fmt.Fprintf(c.stderr, "espdeck: write --image: %v\n", err)
			return exitUsage
		}
	}
	r := c.reporter(cm, "")
	var devs []D
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	for _, cfg := range f.configs {
		d, err := f.start(cfg, log)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: start simulated device: %v\n", err)
			return exitInternal
		}
		devs = append(devs, d)
		fields, line := f.announce(cfg, d)
		r.event("device", fields)
		if !cm.json {
			fmt.Fprintln(c.stdout, line)
		}
	}
	if !cm.json {
		file := imagePath
		if file == "" {
			file = "app.bin"
		}
		fmt.Fprintf(c.stdout, "\nTry, in another terminal:\n")
		f.tryIt(devs, file)
		fmt.Fprintf(c.stdout, "Simulated devices listen on loopback only. Ctrl-C stops them.\n")
	}
	<-c.ctx.Done()
	// Closed first: a device records a session once its connection ends,
	// so an upload that just finished, or one cut off by the Ctrl-C, is
	// in the report only after Close has waited for it.
	for _, d := range devs {
		d.Close()
	}
	for _, d := range devs {
		for _, s := range f.sessions(d) {
			r.event("session", s)
		}
	}
	return exitOK
}
