package discovery

import (
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Protocol says how a device was found and how espdeck talks to it.
type Protocol string

// Protocols a Device can have.
const (
	ProtocolArduinoOTA Protocol = "arduino-ota" // _arduino._tcp: ArduinoOTA / espota
	ProtocolESPHome    Protocol = "esphome"     // _esphomelib._tcp: ESPHome native API
	ProtocolSerial     Protocol = "serial"      // a USB serial port
	ProtocolManual     Protocol = "manual"      // added by hand (flag or config file)
)

// Service names browsed by default.
const (
	ServiceArduino = "_arduino._tcp"
	ServiceESPHome = "_esphomelib._tcp"
)

// DefaultServices are the mDNS services browsed when Options.Services is empty.
var defaultServices = []string{ServiceArduino, ServiceESPHome}

// DefaultServices returns the mDNS services browsed when Options.Services is
// empty (a fresh slice each call).
func DefaultServices() []string { return slices.Clone(defaultServices) }

// Device is one board as espdeck knows it. Network fields are empty for a
// serial device and the other way round.
type Device struct {
	// ID is stable for the life of the device, across address changes and
	// firmware updates: "arduino-ota/esp32-a1b2c3d4e5f6", "esphome/kitchen",
	// "usb/10c4:ea60/0001" (serial number) or "serial//dev/ttyUSB0" (no
	// serial number), "manual/192.168.1.40:3232".
	ID       string       `json:"id"`
	Name     string       `json:"name"`             // instance name or label shown to people
	Protocol Protocol     `json:"protocol"`         // how it was found
	Static   bool         `json:"static,omitempty"` // hand-added or demo: never expires
	Host     string       `json:"host,omitempty"`   // host name without the trailing dot (esp32-a1b2c3.local)
	Addrs    []netip.Addr `json:"addrs,omitempty"`  // IPv4 first, then IPv6 (link-local with zone)
	Port     int          `json:"port,omitempty"`   // SRV port: ArduinoOTA UDP port or ESPHome API port

	Board      string `json:"board,omitempty"`    // TXT board (Arduino variant or ESPHome board id)
	Platform   string `json:"platform,omitempty"` // ESPHome TXT platform: ESP32, ESP8266, RP2040, …
	AuthUpload bool   `json:"auth_upload"`        // ArduinoOTA: an OTA password is set

	ESPHomeVersion string `json:"esphome_version,omitempty"`
	MAC            string `json:"mac,omitempty"`           // ESPHome TXT mac: 12 lowercase hex digits
	FriendlyName   string `json:"friendly_name,omitempty"` // ESPHome TXT friendly_name

	Interface string            `json:"interface,omitempty"` // network interface it was last seen on
	TXT       map[string]string `json:"txt,omitempty"`       // every TXT key (lowercased) and value

	// Serial devices.
	Path         string `json:"path,omitempty"`          // /dev/ttyUSB0, COM3
	VID          uint16 `json:"vid,omitempty"`           // USB vendor ID
	PID          uint16 `json:"pid,omitempty"`           // USB product ID
	SerialNumber string `json:"serial_number,omitempty"` // USB serial number: follows a board across port names
	Bridge       string `json:"bridge,omitempty"`        // USB-UART bridge: "CP210x", "CH340", "ESP USB-Serial/JTAG"
	ChipFamily   string `json:"chip_family,omitempty"`   // likely chip family, a hint only

	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Addr returns the address to connect to: the first IPv4 address, else the
// first IPv6 address, else the zero Addr.
func (d Device) Addr() netip.Addr {
	for _, a := range d.Addrs {
		if a.Is4() {
			return a
		}
	}
	if len(d.Addrs) > 0 {
		return d.Addrs[0]
	}
	return netip.Addr{}
}

// Target is what a person would type to reach the device: an IP address
// (else the host name) for network devices, the path for serial ones.
func (d Device) Target() string {
	if d.Path != "" {
		return d.Path
	}
	if a := d.Addr(); a.IsValid() {
		return a.String()
	}
	return d.Host
}

// clone returns a deep copy so events and snapshots never share maps or slices
// with the watcher's cache.
func (d Device) clone() Device {
	d.Addrs = slices.Clone(d.Addrs)
	d.TXT = maps.Clone(d.TXT)
	return d
}

// sameContent reports whether a and b describe the device the same way,
// ignoring the time stamps (an Updated event is sent only when this changes).
func sameContent(a, b Device) bool {
	a.FirstSeen, a.LastSeen, b.FirstSeen, b.LastSeen = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !slices.Equal(a.Addrs, b.Addrs) || !maps.Equal(a.TXT, b.TXT) {
		return false
	}
	a.Addrs, b.Addrs, a.TXT, b.TXT = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// EventKind says what happened to a device.
type EventKind int

// Event kinds.
const (
	Added         EventKind = iota + 1 // first seen (or seen again after it was removed)
	Updated                            // something but the time stamps changed
	Removed                            // expired, unplugged, or gone
	StatusChanged                      // the Watcher's Status changed; Device is empty
)

func (k EventKind) String() string {
	switch k {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Removed:
		return "removed"
	case StatusChanged:
		return "status"
	}
	return "unknown"
}

// MarshalText makes kinds read as words in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one change in the set of known devices.
type Event struct {
	Kind   EventKind `json:"kind"`
	Device Device    `json:"device"`
	Status Status    `json:"status"` // set for StatusChanged; the current status otherwise
}

// OTAPort returns the port an OTA upload goes to, or 0 when unknown. For
// ArduinoOTA it is the advertised port (the OTA UDP port). ESPHome does not
// advertise its OTA port (the service port is the native API's), so the
// platform's default is returned: ESP8266 8266, ESP32 3232, RP2040 2040,
// LibreTiny BK72xx/RTL87xx 8892. A YAML that changes the port needs a
// hand-entered one.
func (d Device) OTAPort() int {
	switch d.Protocol {
	case ProtocolArduinoOTA:
		return d.Port
	case ProtocolESPHome:
		p := strings.ToUpper(d.Platform)
		switch {
		case p == "ESP8266":
			return 8266
		case p == "ESP32":
			return 3232
		case p == "RP2040":
			return 2040
		case strings.HasPrefix(p, "BK72"), strings.HasPrefix(p, "RTL87"):
			return 8892
		}
	}
	return 0
}
