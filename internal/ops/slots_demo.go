package ops

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/espdeck/espdeck/firmware"
)

// DemoLayoutCSV is the flash layout DemoFlash builds: ESP-IDF's "factory
// app, two OTA definitions" table.
const DemoLayoutCSV = `# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     ,        0x4000,
otadata,  data, ota,     ,        0x2000,
phy_init, data, phy,     ,        0x1000,
factory,  app,  factory, ,        1M,
ota_0,    app,  ota_0,   ,        1M,
ota_1,    app,  ota_1,   ,        1M,
`

// DemoApp describes one app DemoFlash puts into a slot.
type DemoApp struct {
	Slot    string // partition name
	Project string
	Version string
	Size    int // approximate image size in bytes (at least 512)
}

// DemoFlash returns a 4 MB flash image for a simulated board: a
// bootloader-shaped image at the chip's bootloader offset, the demo table
// at 0x8000, otadata selecting ota_0 (seq 1, valid), and the given apps
// (default: factory v1.0.0, ota_0 v2.0.0, ota_1 v2.1.0). Demo mode and the
// end-to-end tests preload the ROM simulator with it.
func DemoFlash(chip firmware.Chip, apps ...DemoApp) ([]byte, error) {
	flash := make([]byte, 4<<20)
	for i := range flash {
		flash[i] = 0xFF
	}
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	if err != nil {
		return nil, err
	}
	bin, err := tab.MarshalBinary()
	if err != nil {
		return nil, err
	}
	copy(flash[firmware.DefaultTableOffset:], bin)
	ci, _ := chip.Info()
	boot := demoImage(chip, make([]byte, 256), 0x3000) // no app description: a bootloader
	copy(flash[ci.BootloaderOffset:], boot)
	if len(apps) == 0 {
		apps = []DemoApp{
			{Slot: "factory", Project: "greenhouse", Version: "1.0.0", Size: 0x6000},
			{Slot: "ota_0", Project: "greenhouse", Version: "2.0.0", Size: 0x7000},
			{Slot: "ota_1", Project: "greenhouse", Version: "2.1.0", Size: 0x7400},
		}
	}
	for _, a := range apps {
		p, ok := tab.Find(a.Slot)
		if !ok || !p.IsApp() {
			return nil, fmt.Errorf("demo flash: %q is not an app partition of the demo table", a.Slot)
		}
		img := DemoAppImage(chip, a.Project, a.Version, a.Size)
		if len(img) > int(p.Size) {
			return nil, fmt.Errorf("demo flash: %s image of %d bytes does not fit %s", a.Version, len(img), a.Slot)
		}
		copy(flash[p.Offset:], img)
	}
	otaP, _ := tab.OTAData()
	copy(flash[otaP.Offset:], firmware.NewOTAEntry(1, firmware.OTAStateValid).Encode())
	return flash, nil
}

// DemoAppImage builds a small, structurally valid ESP32-family app image:
// header, extended header, one DROM segment starting with an app
// description, one filler segment, checksum and SHA-256. It does not run.
func DemoAppImage(chip firmware.Chip, project, version string, size int) []byte {
	desc := make([]byte, 256)
	binary.LittleEndian.PutUint32(desc[0:], 0xABCD5432)
	copy(desc[16:48], version)
	copy(desc[48:80], project)
	copy(desc[80:96], "12:00:00")
	copy(desc[96:112], "Nov 21 2026")
	copy(desc[112:144], "v5.3-demo")
	return demoImage(chip, desc, size)
}

func demoImage(chip firmware.Chip, desc []byte, size int) []byte {
	filler := max(size-256-24-16-32-48, 16) &^ 3
	fill := make([]byte, filler)
	for i := range fill {
		fill[i] = byte(i*7 + int(desc[16]))
	}
	out := []byte{firmware.ImageMagic, 2, 2, 0x20}
	out = binary.LittleEndian.AppendUint32(out, 0x40080000)
	ext := make([]byte, 16)
	ext[0] = 0xEE
	binary.LittleEndian.PutUint16(ext[4:], uint16(chip))
	binary.LittleEndian.PutUint16(ext[9:], 0xFFFF) // max_rev_full: no maximum
	ext[15] = 1                                    // SHA-256 appended
	out = append(out, ext...)
	checksum := byte(0xEF)
	for i, seg := range [][]byte{desc, fill} {
		addr := uint32(0x3F400020)
		if i == 1 {
			addr = 0x3FFB0000
		}
		out = binary.LittleEndian.AppendUint32(out, addr)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(seg)))
		out = append(out, seg...)
		for _, c := range seg {
			checksum ^= c
		}
	}
	for (len(out)+1)%16 != 0 {
		out = append(out, 0)
	}
	out = append(out, checksum)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...)
}
