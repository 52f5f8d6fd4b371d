package firmware

import (
	"fmt"
	"strings"
)

// EsptoolReport renders the image the way `esptool.py image_info --version 2`
// (v4.7) prints it, from "File size" to the app or bootloader information,
// so people can diff the two tools' output. Strings from the image are
// shown sanitised (esptool prints their NUL padding raw).
func (im *Image) EsptoolReport() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	title := func(s string) {
		p("%s", s)
		p("%s", strings.Repeat("=", len(s)))
	}
	chipName := strings.ToUpper(im.Chip.String())
	p("File size: %d (bytes)", im.FileSize)
	p("Detected image type: %s", chipName)
	p("")
	title(chipName + " image header")
	version := 1
	if im.Format == FormatESP8266V2 {
		version = 2
	}
	p("Image version: %d", version)
	if im.Entry != 0 {
		p("Entry point: %8s", fmt.Sprintf("0x%x", im.Entry))
	} else {
		p("Entry point not set")
	}
	p("Segments: %d", len(im.Segments))
	if s := im.FlashSizeName(); s != "" {
		p("Flash size: %s", s)
	} else {
		p("WARNING: Invalid flash size (0x%x)", im.FlashSizeCode<<4)
	}
	if s := im.FlashFreqName(); s != "" {
		p("Flash freq: %s", s)
	} else {
		p("WARNING: Invalid flash frequency (0x%x)", im.FlashFreqCode)
	}
	if im.FlashMode <= FlashDOUT {
		p("Flash mode: %s", im.FlashMode)
	} else {
		p("WARNING: Invalid flash mode (%d)", uint8(im.FlashMode))
	}
	if im.Format == FormatESP32 {
		p("")
		title(chipName + " extended image header")
		if im.WPPin == WPPinDisabled {
			p("WP pin: 0x%x (disabled)", im.WPPin)
		} else {
			p("WP pin: 0x%x", im.WPPin)
		}
		p("Flash pins drive settings: clk_drv: 0x%x, q_drv: 0x%x, d_drv: 0x%x, cs0_drv: 0x%x, hd_drv: 0x%x, wp_drv: 0x%x",
			im.DriveCLK, im.DriveQ, im.DriveD, im.DriveCS, im.DriveHD, im.DriveWP)
		if _, ok := ChipByID(im.ChipID); ok {
			p("Chip ID: %d (%s)", im.ChipID, im.Chip)
		} else {
			p("Chip ID: %d (Unknown ID)", im.ChipID)
		}
		p("Minimal chip revision: v%d.%d, (legacy min_rev = %d)", im.MinRevFull/100, im.MinRevFull%100, im.MinRevLegacy)
		p("Maximal chip revision: v%d.%d", im.MaxRevFull/100, im.MaxRevFull%100)
	}
	p("")
	title("Segments information")
	p("%7s  %7s  %10s  %10s  %-10s", "Segment", "Length", "Load addr", "File offs", "Memory types")
	p("%s  %s  %s  %s  %s", strings.Repeat("-", 7), strings.Repeat("-", 7), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 12))
	for i, s := range im.Segments {
		p("%7d  0x%05x  0x%08x  0x%08x  %s", i+1, s.Length, s.LoadAddr, s.HeaderOffset, strings.Join(s.MemoryTypes, ", "))
	}
	p("")
	title(chipName + " image footer")
	if im.Format == FormatESP8266V2 {
		p("Checksum: not checked (ESP8266 v2 image: only its header is read)")
	} else if im.ChecksumValid() {
		p("Checksum: 0x%x (valid)", im.Checksum)
	} else {
		p("Checksum: 0x%x (invalid - calculated %02x)", im.Checksum, im.ComputedChecksum)
	}
	if im.HashAppended {
		state := "valid"
		if !im.SHA256Valid() {
			state = "invalid"
		}
		p("Validation hash: %x (%s)", im.ComputedSHA256[:], state)
	}
	if d := im.AppDesc; d != nil {
		p("")
		title("Application information")
		p("Project name: %s", d.ProjectName)
		p("App version: %s", d.Version)
		p("Compile time: %s %s", d.Date, d.Time)
		p("ELF file SHA256: %x", d.ELFSHA256[:])
		p("ESP-IDF: %s", d.IDFVersion)
		p("Secure version: %d", d.SecureVersion)
	} else if d := im.BootloaderDesc; d != nil {
		p("")
		title("Bootloader information")
		p("Bootloader version: %d", d.Version)
		p("ESP-IDF: %s", d.IDFVersion)
		p("Compile time: %s", d.DateTime)
	}
	return b.String()
}
