package main

import "fmt"

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
