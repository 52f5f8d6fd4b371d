// Package discovery finds ESP32 and ESP8266 boards on the network and on USB
// and turns what it sees into one stream of added, updated and removed
// devices that the CLI and the TUI both consume.
//
// Three sources feed a Watcher:
//
//   - mDNS: _arduino._tcp (ArduinoOTA) and _esphomelib._tcp (ESPHome),
//     browsed as an RFC 6762 record cache. One socket per address family on
//     UDP port 5353, shared with the host's other mDNS stacks and joined to
//     the group on every usable interface, takes every response on the link
//     (announcements, goodbyes, answers to anyone's query). Records are kept
//     per interface with their TTLs, assembled PTR → SRV/TXT → A/AAAA into
//     devices whatever order and packets they came in, refreshed at
//     80–95 % of their TTL and removed on a goodbye or when the TTL runs
//     out. Browse queries back off from 1 s to 60 s and carry known
//     answers. Packets are parsed leniently (dnswire.go): a record that
//     cannot be decoded is skipped, never the packet.
//   - USB serial ports through go.bug.st/serial/enumerator, polled for
//     arrivals and departures; a table of known VID:PID pairs names the
//     USB-UART bridge and the likely chip family.
//   - Static devices (hand-added hosts, the TUI's demo fleet): they never
//     expire and need no network.
//
// When another program holds UDP port 5353 exclusively, the status says so
// instead of failing; USB and hand-added devices are still reported.
package discovery
