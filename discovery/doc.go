// Package discovery finds ESP32 and ESP8266 boards on the network and on USB
// and turns what it sees into one stream of added, updated and removed
// devices that the CLI and the TUI both consume.
//
// Three sources feed a Watcher:
//
//   - mDNS: _arduino._tcp (ArduinoOTA) and _esphomelib._tcp (ESPHome),
//     browsed with github.com/hashicorp/mdns in short rounds, one query per
//     usable interface and service, repeated on a jittered interval. A device
//     expires only after several missed rounds, so one lost answer does not
//     make it flicker.
//   - USB serial ports through go.bug.st/serial/enumerator, polled for
//     arrivals and departures; a table of known VID:PID pairs names the
//     USB-UART bridge and the likely chip family.
//   - Static devices (hand-added hosts, the TUI's demo fleet): they never
//     expire and need no network.
//
// The library wrapper applies the workarounds hashicorp/mdns needs (see
// mdns.go): a large buffered entries channel read only after the query
// returns, filtering by service name, a discard logger, and a status instead
// of a failure when another program holds UDP port 5353 exclusively.
package discovery
