package otasim

import "time"

// DemoPassword is the OTA password of the demo devices that have one.
const DemoPassword = "espdeck"

// Demo returns the configurations of a small demo fleet: an ESP32 with a
// PBKDF2 password (arduino-esp32 ≥ 3.3.1), an ESP8266 with an MD5
// password, an ESP32 without a password, one that never connects back (as
// behind a host firewall) and a slow one. Names are stable; callers may
// change any field before New.
func Demo() []Config {
	return []Config{
		{Name: "esp32-pbkdf2", Flavour: ESP32, Password: DemoPassword, Scheme: SchemePBKDF2},
		{Name: "esp8266-md5", Flavour: ESP8266, Password: DemoPassword},
		{Name: "esp32-open", Flavour: ESP32},
		{Name: "esp32-firewalled", Flavour: ESP32, Faults: Faults{NeverConnect: true}},
		{Name: "esp32-slow", Flavour: ESP32, Faults: Faults{ReadRate: 40 << 10, ReplyDelay: 20 * time.Millisecond}},
	}
}
