// Package esphomeota uploads firmware to boards running ESPHome's native
// OTA component: the host connects to the device (no port has to be opened
// on the host), negotiates protocol version 1 or 2 and the feature byte,
// authenticates with SHA-256 (current firmware) or MD5 (older firmware),
// optionally encrypts the whole session with Noise_NNpsk0 keyed by the
// board's API key, and streams the image in 8 KiB blocks.
//
// Unlike ESPHome's own uploader it keeps a small, bounded number of blocks
// in flight instead of waiting a full round trip for every block's
// acknowledgement, checks every byte the device sends against the error
// table, never falls back to plaintext when a key was given, and retries a
// lost connection only while the device cannot yet have committed the
// image.
//
// The protocol is described in docs/protocol-esphome-ota.md.
package esphomeota
