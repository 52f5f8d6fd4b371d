package serialflash

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/espdeck/espdeck/firmware"
)

// chipRegs is what the flasher must know about a chip family to read its
// identity and drive its flash controller without a stub (§3.6, §4.9).
type chipRegs struct {
	spiBase                                       uint32
	usr, usr1, usr2, mosiDlen, misoDlen, w0       uint32
	efuseBase                                     uint32 // S2 and later: EFUSE_BASE; ESP32: BLOCK0
	uartClkDiv                                    uint32
	xtalFixed                                     int // MHz; 0 = estimate from UART_CLKDIV
	secInfo                                       bool
	deflate, md5, readSlow, changeBaud, spiAttach bool
	statusLen                                     int
}

func regsFor(c firmware.Chip) chipRegs {
	later := chipRegs{usr: 0x18, usr1: 0x1C, usr2: 0x20, mosiDlen: 0x24, misoDlen: 0x28, w0: 0x58,
		uartClkDiv: 0x60000014, secInfo: true, deflate: true, md5: true, readSlow: true, changeBaud: true, spiAttach: true, statusLen: 4}
	switch c {
	case firmware.ChipESP8266:
		return chipRegs{spiBase: 0x60000200, usr: 0x1C, usr1: 0x20, usr2: 0x24, w0: 0x40, uartClkDiv: 0x60000014, statusLen: 2}
	case firmware.ChipESP32:
		return chipRegs{spiBase: 0x3FF42000, usr: 0x1C, usr1: 0x20, usr2: 0x24, mosiDlen: 0x28, misoDlen: 0x2C, w0: 0x80,
			efuseBase: 0x3FF5A000, uartClkDiv: 0x3FF40014, deflate: true, md5: true, readSlow: true, changeBaud: true, spiAttach: true, statusLen: 4}
	case firmware.ChipESP32S2:
		later.spiBase, later.efuseBase, later.uartClkDiv, later.xtalFixed = 0x3F402000, 0x3F41A000, 0x3F400014, 40
	case firmware.ChipESP32S3:
		later.spiBase, later.efuseBase, later.xtalFixed = 0x60002000, 0x60007000, 40
	case firmware.ChipESP32C3:
		later.spiBase, later.efuseBase, later.xtalFixed = 0x60002000, 0x60008800, 40
	case firmware.ChipESP32C2:
		later.spiBase, later.efuseBase = 0x60002000, 0x60008800
	case firmware.ChipESP32C6:
		later.spiBase, later.efuseBase, later.xtalFixed = 0x60003000, 0x600B0800, 40
	case firmware.ChipESP32H2:
		later.spiBase, later.efuseBase, later.xtalFixed = 0x60003000, 0x600B0800, 32
	default:
		later.spiBase = 0x60002000
	}
	return later
}

// ChipInfo is what Info learned about the connected chip.
type ChipInfo struct {
	Chip     firmware.Chip
	Revision int    // major*100 + minor; -1 when unknown (Secure Download Mode)
	MAC      string // aa:bb:cc:dd:ee:ff; "" when unknown
	// CrystalMHz is the crystal frequency (0 when unknown).
	CrystalMHz int
	// FlashID is the JEDEC id (manufacturer in the low byte); 0 when unknown.
	FlashID uint32
	// FlashSize in bytes as detected (0 when unknown).
	FlashSize uint32
	Security  Security
	// StubLess is always true: espdeck talks to the ROM only.
	StubLess bool
}

// FlashManufacturer returns the JEDEC manufacturer byte.
func (c ChipInfo) FlashManufacturer() byte { return byte(c.FlashID) }

// FlashDevice returns the device id as esptool prints it (type<<8|capacity).
func (c ChipInfo) FlashDevice() uint16 {
	return uint16(c.FlashID>>8&0xFF)<<8 | uint16(c.FlashID>>16&0xFF)
}

// RevisionString renders the revision as v1.2.
func (c ChipInfo) RevisionString() string {
	if c.Revision < 0 {
		return "unknown"
	}
	return fmt.Sprintf("v%d.%d", c.Revision/100, c.Revision%100)
}

// Security are the chip's security settings (§9).
type Security struct {
	Known              bool // false when nothing could be read
	SecureBoot         bool
	SecureBootVersion  int // 1 or 2; 0 when off or unknown
	FlashEncryption    bool
	SecureDownloadMode bool
	JTAGDisabled       bool
	Flags              uint32 // raw GET_SECURITY_INFO flags when available
	FlashCryptCount    byte
}

// flashSizeFromID decodes the capacity byte of a JEDEC id (§3.6).
func flashSizeFromID(id uint32) uint32 {
	if id == 0 || id == 0xFFFFFF || id == 0xFFFF3F {
		return 0
	}
	if id&0xFF == 0x1F { // Adesto
		switch (id >> 8) & 0x1F {
		case 4:
			return 512 << 10
		case 5:
			return 1 << 20
		case 6:
			return 2 << 20
		case 7:
			return 4 << 20
		case 8:
			return 8 << 20
		case 9:
			return 16 << 20
		}
		return 0
	}
	switch byte(id >> 16) {
	case 0x12, 0x32:
		return 256 << 10
	case 0x13, 0x33:
		return 512 << 10
	case 0x14, 0x34:
		return 1 << 20
	case 0x15, 0x35:
		return 2 << 20
	case 0x16, 0x36:
		return 4 << 20
	case 0x17, 0x37:
		return 8 << 20
	case 0x18, 0x38:
		return 16 << 20
	case 0x19, 0x39:
		return 32 << 20
	case 0x1A, 0x20, 0x3A:
		return 64 << 20
	case 0x1B, 0x21:
		return 128 << 20
	case 0x1C, 0x22:
		return 256 << 20
	}
	return 0
}

// regReader reads a register (READ_REG).
type regReader func(ctx context.Context, addr uint32) (uint32, error)

func field(v uint32, hi, lo uint) uint32 { return v >> lo & (1<<(hi-lo+1) - 1) }

// readMAC reads the factory MAC from eFuse (§4.9).
func readMAC(ctx context.Context, c firmware.Chip, r chipRegs, rd regReader) (string, error) {
	var mac [6]byte
	switch c {
	case firmware.ChipESP8266:
		m0, err := rd(ctx, 0x3FF00050)
		if err != nil {
			return "", err
		}
		m1, err := rd(ctx, 0x3FF00054)
		if err != nil {
			return "", err
		}
		m3, err := rd(ctx, 0x3FF0005C)
		if err != nil {
			return "", err
		}
		switch {
		case m3 != 0:
			mac[0], mac[1], mac[2] = byte(m3>>16), byte(m3>>8), byte(m3)
		case m1>>16&0xFF == 0:
			mac[0], mac[1], mac[2] = 0x18, 0xFE, 0x34
		case m1>>16&0xFF == 1:
			mac[0], mac[1], mac[2] = 0xAC, 0xD0, 0x74
		default:
			return "", fmt.Errorf("unknown ESP8266 OUI selector 0x%02X", m1>>16&0xFF)
		}
		mac[3], mac[4], mac[5] = byte(m1>>8), byte(m1), byte(m0>>24)
	default:
		a0, a1 := r.efuseBase+0x44, r.efuseBase+0x48
		if c == firmware.ChipESP32 {
			a0, a1 = 0x3FF5A004, 0x3FF5A008
		} else if c == firmware.ChipESP32C2 {
			a0, a1 = 0x60008840, 0x60008844
		}
		m0, err := rd(ctx, a0)
		if err != nil {
			return "", err
		}
		m1, err := rd(ctx, a1)
		if err != nil {
			return "", err
		}
		mac = [6]byte{byte(m1 >> 8), byte(m1), byte(m0 >> 24), byte(m0 >> 16), byte(m0 >> 8), byte(m0)}
	}
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]), nil
}

// readRevision returns major*100+minor (§4.9).
func readRevision(ctx context.Context, c firmware.Chip, r chipRegs, rd regReader) (int, error) {
	get := func(addr uint32) (uint32, error) { return rd(ctx, addr) }
	switch c {
	case firmware.ChipESP8266:
		return 0, nil
	case firmware.ChipESP32:
		w3, err := get(0x3FF5A00C)
		if err != nil {
			return 0, err
		}
		w5, err := get(0x3FF5A014)
		if err != nil {
			return 0, err
		}
		apb, err := get(0x3FF6607C)
		if err != nil {
			return 0, err
		}
		code := apb>>31<<2 | field(w5, 20, 20)<<1 | field(w3, 15, 15)
		major := map[uint32]int{0: 0, 1: 1, 3: 2, 7: 3}[code]
		return major*100 + int(field(w5, 25, 24)), nil
	case firmware.ChipESP32C2:
		w, err := get(0x60008844)
		if err != nil {
			return 0, err
		}
		return int(field(w, 21, 20))*100 + int(field(w, 19, 16)), nil
	}
	w3, err := get(r.efuseBase + 0x50)
	if err != nil {
		return 0, err
	}
	switch c {
	case firmware.ChipESP32C6:
		return int(field(w3, 23, 22))*100 + int(field(w3, 21, 18)), nil
	case firmware.ChipESP32H2:
		return int(field(w3, 22, 21))*100 + int(field(w3, 20, 18)), nil
	case firmware.ChipESP32S2:
		w4, err := get(r.efuseBase + 0x54)
		if err != nil {
			return 0, err
		}
		return int(field(w3, 19, 18))*100 + int(field(w3, 20, 20)<<3|field(w4, 6, 4)), nil
	}
	// S3, C3
	w5, err := get(r.efuseBase + 0x58)
	if err != nil {
		return 0, err
	}
	minor := int(field(w5, 23, 23)<<3 | field(w3, 20, 18))
	return int(field(w5, 25, 24))*100 + minor, nil
}

// readSecurityEfuse reads the security state from eFuses (§9.2) for chips
// without GET_SECURITY_INFO (ESP32) or to add the secure boot version.
func readSecurityEfuse(ctx context.Context, c firmware.Chip, r chipRegs, rd regReader) (Security, error) {
	var s Security
	switch c {
	case firmware.ChipESP8266:
		return Security{Known: true}, nil
	case firmware.ChipESP32:
		w0, err := rd(ctx, 0x3FF5A000)
		if err != nil {
			return s, err
		}
		w6, err := rd(ctx, 0x3FF5A018)
		if err != nil {
			return s, err
		}
		s.FlashCryptCount = byte(field(w0, 26, 20))
		s.FlashEncryption = bits.OnesCount8(s.FlashCryptCount)%2 == 1
		switch {
		case w6>>5&1 == 1:
			s.SecureBoot, s.SecureBootVersion = true, 2
		case w6>>4&1 == 1:
			s.SecureBoot, s.SecureBootVersion = true, 1
		}
		s.JTAGDisabled = w6>>6&1 == 1
		s.Known = true
		return s, nil
	}
	b := r.efuseBase
	w30, err := rd(ctx, b+0x30)
	if err != nil {
		return s, err
	}
	w34, err := rd(ctx, b+0x34)
	if err != nil {
		return s, err
	}
	w38, err := rd(ctx, b+0x38)
	if err != nil {
		return s, err
	}
	w3c, err := rd(ctx, b+0x3C)
	if err != nil {
		return s, err
	}
	s.FlashCryptCount = byte(field(w34, 20, 18))
	s.FlashEncryption = bits.OnesCount8(s.FlashCryptCount)%2 == 1
	if w38>>20&1 == 1 {
		s.SecureBoot, s.SecureBootVersion = true, 2
	}
	s.SecureDownloadMode = w3c>>5&1 == 1
	s.JTAGDisabled = bits.OnesCount32(field(w30, 18, 16))%2 == 1 || w30>>19&1 == 1
	s.Known = true
	return s, nil
}

// securityFromInfo decodes GET_SECURITY_INFO output (§3.3.11, §9.1).
func securityFromInfo(out []byte) Security {
	flags := uint32(out[0]) | uint32(out[1])<<8 | uint32(out[2])<<16 | uint32(out[3])<<24
	s := Security{Known: true, Flags: flags, FlashCryptCount: out[4]}
	s.SecureBoot = flags&1 != 0
	if s.SecureBoot {
		s.SecureBootVersion = 2
	}
	s.SecureDownloadMode = flags&(1<<2) != 0
	s.JTAGDisabled = flags&(1<<6) != 0 || flags&(1<<7) != 0
	s.FlashEncryption = bits.OnesCount8(out[4])%2 == 1
	return s
}
