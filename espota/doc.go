// Package espota uploads firmware to ESP32 and ESP8266 boards running
// ArduinoOTA: the UDP invitation, the two authentication schemes (legacy
// MD5 digest and the PBKDF2-HMAC-SHA256 challenge of arduino-esp32 ≥ 3.3.1),
// the TCP connection the device opens back to us, and the data phase.
//
// Unlike espota.py it streams the image instead of waiting for a reply per
// 1 KiB chunk, keeps one UDP socket for the whole exchange (the ESP8266
// answers to the invitation's source port), retries the invitation within
// one bounded timeout, tells the different silent failures apart as far as
// the protocol allows, and never reports a device error as success.
//
// The protocol is described in docs/protocol-network-ota.md (§2, §3).
package espota
