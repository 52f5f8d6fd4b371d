package esphomesim

import "time"

// DemoPassword is the OTA password of the demo devices that have one.
const DemoPassword = "espdeck"

// DemoAPIKey is the API encryption key of the demo device that encrypts
// (base64 of 32 bytes; a demo value, never use it on a real board).
const DemoAPIKey = "ZXNwZGVjay1kZW1vLWtleS1ub3QtZm9yLXJlYWwtdXM="

// Demo returns the configurations of the ESPHome demo fleet: current
// firmware without a password, current firmware with a SHA-256 password,
// one that requires encryption, and an old ESP8266 firmware (protocol
// version 1, legacy feature reply, MD5 password, gzip). Each comes back
// with a new version after a successful update, after a short reboot.
// Names are stable.
func Demo() []Config {
	cfgs := []Config{
		{Name: "esphome-plain", Platform: PlatformESP32, Board: "esp32dev", FirmwareVersion: "2026.11.0", NextVersion: "2026.11.1"},
		{Name: "esphome-sha256", Platform: PlatformESP32, Board: "esp32dev", Password: DemoPassword,
			FirmwareVersion: "2026.11.0", NextVersion: "2026.11.1"},
		{Name: "esphome-noise", Platform: PlatformESP32, Board: "esp32-s3-devkitc-1", APIKey: DemoAPIKey, RequireEncryption: true,
			FirmwareVersion: "2026.11.0", NextVersion: "2026.11.1"},
		{Name: "esphome-old-md5", Platform: PlatformESP8266, Board: "d1_mini", Version: 1, Legacy: true, Gzip: true,
			Password: DemoPassword, Scheme: SchemeMD5, SlotSize: 0xFB000, FirmwareVersion: "2023.12.9", NextVersion: "2024.1.0"},
	}
	for i := range cfgs {
		cfgs[i].RebootDelay = 500 * time.Millisecond
	}
	return cfgs
}
