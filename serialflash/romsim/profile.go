package romsim

import (
	"fmt"

	"github.com/espdeck/espdeck/firmware"
)

// Profile is what distinguishes one chip's ROM loader from another's: the
// values it answers with and the commands it implements
// (protocol-serial-rom.md §3.1, §3.6, §4.5, §4.9).
type Profile struct {
	Chip firmware.Chip
	Name string
	// Magic is the value of READ_REG(0x40001000).
	Magic uint32
	// StatusLen is 2 (ESP8266 ROM) or 4 (ESP32-family ROMs).
	StatusLen int
	// SecurityInfoLen is the GET_SECURITY_INFO output length: 0 when the
	// ROM lacks the command, 12 on ESP32-S2, 20 on later chips.
	SecurityInfoLen int
	// Begin20 says FLASH_BEGIN/FLASH_DEFL_BEGIN also accept the 20-byte form.
	Begin20 bool
	// Ops lists the opcodes the ROM implements.
	Ops []byte
	// SPIBase and the offsets of the SPI flash controller's user-command
	// registers (§3.6). MISODlen 0 means the read length lives in USR1
	// (ESP8266).
	SPIBase                                 uint32
	USR, USR1, USR2, MOSIDlen, MISODlen, W0 uint32
	// UARTClkDiv is the UART_CLKDIV register address and ClkDivHz the clock
	// it divides (40 MHz on ESP32, twice the crystal on ESP8266).
	UARTClkDiv uint32
	ClkDivHz   uint32
	// Registers are other modelled register values: eFuse words holding
	// the MAC, revision and security fields.
	Registers map[uint32]uint32
	// FlashID is the JEDEC id the RDID command returns (manufacturer in
	// the low byte) and FlashSize the physical flash size in bytes.
	FlashID   uint32
	FlashSize uint32
	// BannerDownload and BannerNormal are what the ROM prints after a reset
	// into download mode and into a normal SPI flash boot.
	BannerDownload, BannerNormal string
	// UnsupportedEchoesLast: the reply to an unsupported command reuses the
	// previous reply's opcode and value (observed on the real ESP32 ROM,
	// §13); otherwise it carries the request's opcode.
	UnsupportedEchoesLast bool
}

// Supports reports whether the ROM implements op.
func (p Profile) Supports(op byte) bool {
	for _, o := range p.Ops {
		if o == op {
			return true
		}
	}
	return false
}

var (
	opsESP8266 = []byte{0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A}
	opsESP32   = []byte{0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13}
	opsLater   = append(append([]byte(nil), opsESP32...), 0x14)
)

// macWords returns eFuse words m0, m1 for a MAC in the S2-and-later layout
// (§4.9.2): m1 = mac[0]<<8|mac[1], m0 = mac[2..5].
func macWords(mac [6]byte) (m0, m1 uint32) {
	m0 = uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])
	m1 = uint32(mac[0])<<8 | uint32(mac[1])
	return
}

// Profiles returns the simulated chips. Each call returns fresh copies.
func Profiles() []Profile {
	return []Profile{esp8266(), esp32(), esp32s2(), esp32s3(), esp32c3(), esp32c6()}
}

// ProfileFor returns the profile of chip.
func ProfileFor(chip firmware.Chip) (Profile, error) {
	for _, p := range Profiles() {
		if p.Chip == chip {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("romsim: no simulated ROM for %v (have esp8266, esp32, esp32s2, esp32s3, esp32c3, esp32c6)", chip)
}

func esp8266() Profile {
	// MAC 18:fe:34:a1:b2:c3: efuse 0x3FF00050 holds byte 5 in bits 31:24,
	// 0x3FF00054 bytes 3,4 and OUI selector 0 (18:fe:34).
	return Profile{
		Chip: firmware.ChipESP8266, Name: "ESP8266", Magic: 0xFFF0C101, StatusLen: 2, Ops: opsESP8266,
		SPIBase: 0x60000200, USR: 0x1C, USR1: 0x20, USR2: 0x24, W0: 0x40,
		UARTClkDiv: 0x60000014, ClkDivHz: 52_000_000, // 26 MHz crystal
		Registers: map[uint32]uint32{
			0x3FF00050: 0xC3000000,
			0x3FF00054: 0x0000A1B2,
			0x3FF00058: 0,
			0x3FF0005C: 0,
		},
		FlashID: 0x1640E0, FlashSize: 4 << 20, // BergMicro/Generic 4 MB as on NodeMCU boards
		BannerDownload: "\r\n ets Jan  8 2013,rst cause:2, boot mode:(1,7)\r\n\r\n",
		BannerNormal:   "\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\nload 0x4010f000, len 3460, room 16 \r\n",
	}
}

func esp32() Profile {
	mac := [6]byte{0x24, 0x0a, 0xc4, 0x12, 0x34, 0x56}
	return Profile{
		Chip: firmware.ChipESP32, Name: "ESP32", Magic: 0x00F01D83, StatusLen: 4, Ops: opsESP32,
		SPIBase: 0x3FF42000, USR: 0x1C, USR1: 0x20, USR2: 0x24, MOSIDlen: 0x28, MISODlen: 0x2C, W0: 0x80,
		UARTClkDiv: 0x3FF40014, ClkDivHz: 40_000_000,
		Registers: map[uint32]uint32{
			0x3FF5A004: uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5]),
			0x3FF5A008: uint32(mac[0])<<8 | uint32(mac[1]),
			0x3FF5A00C: 1 << 15,       // CHIP_VER_REV1
			0x3FF5A010: 100,           // CK8M calibration: the baud workaround sends the exact rate
			0x3FF5A014: 1<<20 | 0<<24, // CHIP_VER_REV2, wafer minor 0
			0x3FF6607C: 1 << 31,       // APB_CTL_DATE bit 31: revision 3
			0x3FF5F06C: 0x00020000,    // RTC calibration field 1024
			0x3FF5A018: 0,             // no secure boot, JTAG enabled
			0x3FF5A000: 0,             // FLASH_CRYPT_CNT 0
		},
		FlashID: 0x1640C8, FlashSize: 4 << 20, // GigaDevice 4 MB, as the emulated ESP32 in §13
		BannerDownload:        "ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n",
		BannerNormal:          "ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\nconfigsip: 0, SPIWP:0xee\r\nclk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\nmode:DIO, clock div:2\r\n",
		UnsupportedEchoesLast: true,
	}
}

// laterChip builds the profile of an S2-or-later chip from its eFuse base.
func laterChip(chip firmware.Chip, name string, magic uint32, secLen int, spiBase, efuse uint32, mac [6]byte, regs map[uint32]uint32, rom string) Profile {
	m0, m1 := macWords(mac)
	r := map[uint32]uint32{efuse + 0x44: m0, efuse + 0x48: m1}
	for k, v := range regs {
		r[k] = v
	}
	return Profile{
		Chip: chip, Name: name, Magic: magic, StatusLen: 4, SecurityInfoLen: secLen, Begin20: true, Ops: opsLater,
		SPIBase: spiBase, USR: 0x18, USR1: 0x1C, USR2: 0x20, MOSIDlen: 0x24, MISODlen: 0x28, W0: 0x58,
		UARTClkDiv: 0x60000014, ClkDivHz: 40_000_000,
		Registers: r,
		FlashID:   0x1740EF, FlashSize: 8 << 20, // Winbond 8 MB
		BannerDownload: "ESP-ROM:" + rom + "\r\nBuild:Mar 27 2021\r\nrst:0x1 (POWERON),boot:0x0 (DOWNLOAD(USB/UART0))\r\nwaiting for download\r\n",
		BannerNormal:   "ESP-ROM:" + rom + "\r\nBuild:Mar 27 2021\r\nrst:0x1 (POWERON),boot:0x8 (SPI_FAST_FLASH_BOOT)\r\nSPIWP:0xee\r\nmode:DIO, clock div:1\r\n",
	}
}

func esp32s2() Profile {
	// S2: major w3[19:18], minor w3[20]<<3 | w4[6:4] (BLOCK1 w3 at +0x50).
	p := laterChip(firmware.ChipESP32S2, "ESP32-S2", 0x000007C6, 12, 0x3F402000, 0x3F41A000,
		[6]byte{0x7c, 0xdf, 0xa1, 0x00, 0x11, 0x22},
		map[uint32]uint32{0x3F41A050: 1 << 18}, "esp32s2-rc4-20191025")
	p.UARTClkDiv = 0x3F400014
	return p
}

func esp32s3() Profile {
	// Revision v0.2: minor w3[20:18] = 2 (w3 = BLOCK1 word 3 at 0x60007050).
	return laterChip(firmware.ChipESP32S3, "ESP32-S3", 0x00000009, 20, 0x60002000, 0x60007000,
		[6]byte{0xf4, 0x12, 0xfa, 0x43, 0x21, 0x10},
		map[uint32]uint32{0x60007050: 2 << 18}, "esp32s3-20210327")
}

func esp32c3() Profile {
	// Revision v0.4: minor = w5[23]<<3 | w3[20:18] = 4.
	return laterChip(firmware.ChipESP32C3, "ESP32-C3", 0x1B31506F, 20, 0x60002000, 0x60008800,
		[6]byte{0x58, 0xcf, 0x79, 0x0a, 0x0b, 0x0c},
		map[uint32]uint32{0x60008850: 4 << 18}, "esp32c3-api1-20210207")
}

func esp32c6() Profile {
	// Revision v0.1: minor w3[21:18] = 1.
	return laterChip(firmware.ChipESP32C6, "ESP32-C6", 0x2CE0806F, 20, 0x60003000, 0x600B0800,
		[6]byte{0x40, 0x4c, 0xca, 0x01, 0x02, 0x03},
		map[uint32]uint32{0x600B0850: 1 << 18}, "esp32c6-20220919")
}
