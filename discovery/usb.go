package discovery

import (
	"fmt"
	"strconv"
	"strings"

	"go.bug.st/serial/enumerator"
)

// USBInfo is what the VID:PID table knows about a USB serial device.
type USBInfo struct {
	VID, PID   uint16
	Bridge     string // the USB side: "CP210x", "CH340", "ESP USB-Serial/JTAG"
	ChipFamily string // the likely ESP chip behind it; a hint, never a fact
}

// anyESP is the honest answer for an external USB-UART bridge: every ESP32
// and ESP8266 board family uses the same few bridges.
const anyESP = "ESP32 or ESP8266 (external USB-UART bridge)"

// usbTable lists the USB serial devices seen on ESP boards. PID 0 in an
// entry matches every product of that vendor (used after exact matches).
var usbTable = []USBInfo{
	// Silicon Labs
	{0x10c4, 0xea60, "CP210x (CP2102/CP2104)", anyESP},
	{0x10c4, 0xea70, "CP2105 (dual UART)", anyESP},
	{0x10c4, 0xea71, "CP2108 (quad UART)", anyESP},
	// WCH
	{0x1a86, 0x7523, "CH340", anyESP},
	{0x1a86, 0x5523, "CH341", anyESP},
	{0x1a86, 0x55d2, "CH342 (dual UART)", anyESP},
	{0x1a86, 0x55d3, "CH343", anyESP},
	{0x1a86, 0x55d4, "CH9102", anyESP},
	// FTDI
	{0x0403, 0x6001, "FTDI FT232R", anyESP},
	{0x0403, 0x6010, "FTDI FT2232 (ESP-Prog / ESP-WROVER-KIT: JTAG + UART)", "ESP32 (JTAG + UART board)"},
	{0x0403, 0x6011, "FTDI FT4232", anyESP},
	{0x0403, 0x6014, "FTDI FT232H", anyESP},
	{0x0403, 0x6015, "FTDI FT230X/FT231X", anyESP},
	// Espressif's own USB peripherals.
	{0x303a, 0x1001, "ESP USB-Serial/JTAG", "ESP32-S3, -C3, -C5, -C6, -H2 or -P4 (built-in USB-Serial/JTAG)"},
	{0x303a, 0x0002, "ESP USB-OTG (ROM download mode)", "ESP32-S2 (native USB-OTG)"},
	{0x303a, 0x0009, "ESP USB-OTG (ROM download mode)", "ESP32-S3 (native USB-OTG)"},
	{0x303a, 0, "Espressif USB (application CDC)", "ESP32-S2, -S3 or -P4 (native USB-OTG, TinyUSB CDC)"},
}

// LookupUSB returns what the table knows about vid:pid: an exact entry first,
// then a vendor-wide one. ok is false for an unknown device.
func LookupUSB(vid, pid uint16) (info USBInfo, ok bool) {
	for _, e := range usbTable {
		if e.VID == vid && e.PID == pid {
			return e, true
		}
	}
	for _, e := range usbTable {
		if e.VID == vid && e.PID == 0 {
			e.PID = pid
			return e, true
		}
	}
	return USBInfo{VID: vid, PID: pid}, false
}

// KnownUSB returns a copy of the VID:PID table (for documentation and tests).
func KnownUSB() []USBInfo { return append([]USBInfo(nil), usbTable...) }

// SerialPort is one port as the operating system lists it.
type SerialPort struct {
	Path         string
	IsUSB        bool
	VID, PID     uint16
	SerialNumber string
	Product      string
}

// ListSerialPorts lists serial ports through go.bug.st/serial/enumerator (on
// Linux it reads sysfs; pseudo-terminals never appear). It does not open the
// ports.
func ListSerialPorts() ([]SerialPort, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list serial ports: %w", err)
	}
	out := make([]SerialPort, 0, len(list))
	for _, p := range list {
		out = append(out, SerialPort{Path: p.Name, IsUSB: p.IsUSB, VID: parseHex16(p.VID),
			PID: parseHex16(p.PID), SerialNumber: strings.TrimSpace(p.SerialNumber), Product: p.Product})
	}
	return out, nil
}

func parseHex16(s string) uint16 {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x"), 16, 16)
	if err != nil {
		return 0
	}
	return uint16(v)
}

// serialDevice turns a listed port into a Device. Only USB ports are shown:
// built-in UARTs (ttyS*) are almost never an ESP board and would crowd the list.
func serialDevice(p SerialPort) (Device, bool) {
	if !p.IsUSB || p.Path == "" {
		return Device{}, false
	}
	info, _ := LookupUSB(p.VID, p.PID)
	d := Device{
		Protocol: ProtocolSerial, Path: p.Path, VID: p.VID, PID: p.PID,
		SerialNumber: p.SerialNumber, Bridge: info.Bridge, ChipFamily: info.ChipFamily,
		Name: p.Path,
	}
	if d.Bridge == "" {
		d.Bridge = strings.TrimSpace(p.Product)
	}
	if d.Bridge == "" {
		d.Bridge = fmt.Sprintf("USB %04x:%04x", p.VID, p.PID)
	}
	d.ID = serialID(p)
	return d, true
}

// serialID follows a board across port names through its USB serial number.
// Bridges without one (most CH340s) are known by their path only.
func serialID(p SerialPort) string {
	if p.SerialNumber != "" {
		return fmt.Sprintf("usb/%04x:%04x/%s", p.VID, p.PID, p.SerialNumber)
	}
	return "serial/" + p.Path
}
