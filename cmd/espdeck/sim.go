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
		}
	}
	fmt.Fprint(c.stderr, `Usage:
  espdeck sim ota [--count N] [--password P] [--scheme md5|pbkdf2] [--flavour esp32|esp8266]
  espdeck sim serial [--chip esp32s3] [--tcp 127.0.0.1:PORT]

Simulated devices listen on loopback only and run until Ctrl-C.
`)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return exitOK
	}
	return exitUsage
}
