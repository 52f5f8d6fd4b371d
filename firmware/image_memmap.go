package firmware

// memRegion is one named address range of a chip's memory map, [start, end).
type memRegion struct {
	start, end uint32
	name       string
}

// memoryMap returns the address ranges that esptool's image_info names in its
// "Memory types" column, in esptool's order (the column lists every region a
// segment's load address falls in, in table order). Chips without a table
// here get nil; their segments show no memory type.
func memoryMap(c Chip) []memRegion {
	switch c {
	case ChipESP32:
		return []memRegion{
			{0x00000000, 0x00010000, "PADDING"},
			{0x3F400000, 0x3F800000, "DROM"},
			{0x3F800000, 0x3FC00000, "EXTRAM_DATA"},
			{0x3FF80000, 0x3FF82000, "RTC_DRAM"},
			{0x3FF90000, 0x40000000, "BYTE_ACCESSIBLE"},
			{0x3FFAE000, 0x40000000, "DRAM"},
			{0x3FFE0000, 0x3FFFFFFC, "DIRAM_DRAM"},
			{0x40000000, 0x40070000, "IROM"},
			{0x40070000, 0x40078000, "CACHE_PRO"},
			{0x40078000, 0x40080000, "CACHE_APP"},
			{0x40080000, 0x400A0000, "IRAM"},
			{0x400A0000, 0x400BFFFC, "DIRAM_IRAM"},
			{0x400C0000, 0x400C2000, "RTC_IRAM"},
			{0x400D0000, 0x40400000, "IROM"},
			{0x50000000, 0x50002000, "RTC_DATA"},
		}
	case ChipESP32S2:
		return []memRegion{
			{0x00000000, 0x00010000, "PADDING"},
			{0x3F000000, 0x3FF80000, "DROM"},
			{0x3F500000, 0x3FF80000, "EXTRAM_DATA"},
			{0x3FF9E000, 0x3FFA0000, "RTC_DRAM"},
			{0x3FF9E000, 0x40000000, "BYTE_ACCESSIBLE"},
			{0x3FF9E000, 0x40072000, "MEM_INTERNAL"},
			{0x3FFB0000, 0x40000000, "DRAM"},
			{0x40000000, 0x4001A100, "IROM_MASK"},
			{0x40020000, 0x40070000, "IRAM"},
			{0x40070000, 0x40072000, "RTC_IRAM"},
			{0x40080000, 0x40800000, "IROM"},
			{0x50000000, 0x50002000, "RTC_DATA"},
		}
	case ChipESP32S3:
		return []memRegion{
			{0x00000000, 0x00010000, "PADDING"},
			{0x3C000000, 0x3D000000, "DROM"},
			{0x3D000000, 0x3E000000, "EXTRAM_DATA"},
			{0x600FE000, 0x60100000, "RTC_DRAM"},
			{0x3FC88000, 0x3FD00000, "BYTE_ACCESSIBLE"},
			{0x3FC88000, 0x403E2000, "MEM_INTERNAL"},
			{0x3FC88000, 0x3FD00000, "DRAM"},
			{0x40000000, 0x4001A100, "IROM_MASK"},
			{0x40370000, 0x403E0000, "IRAM"},
			{0x600FE000, 0x60100000, "RTC_IRAM"},
			{0x42000000, 0x42800000, "IROM"},
			{0x50000000, 0x50002000, "RTC_DATA"},
		}
	case ChipESP32C3:
		return []memRegion{
			{0x00000000, 0x00010000, "PADDING"},
			{0x3C000000, 0x3C800000, "DROM"},
			{0x3FC80000, 0x3FCE0000, "DRAM"},
			{0x3FC88000, 0x3FD00000, "BYTE_ACCESSIBLE"},
			{0x3FF00000, 0x3FF20000, "DROM_MASK"},
			{0x40000000, 0x40060000, "IROM_MASK"},
			{0x42000000, 0x42800000, "IROM"},
			{0x4037C000, 0x403E0000, "IRAM"},
			{0x50000000, 0x50002000, "RTC_IRAM"},
			{0x50000000, 0x50002000, "RTC_DRAM"},
			{0x600FE000, 0x60100000, "MEM_INTERNAL2"},
		}
	case ChipESP8266:
		return []memRegion{
			{0x3FF00000, 0x3FF00010, "DPORT"},
			{0x3FFE8000, 0x40000000, "DRAM"},
			{0x40100000, 0x40108000, "IRAM"},
			{0x40201010, 0x402E1010, "IROM"},
		}
	}
	return nil
}

// flashWindows returns the address ranges through which a chip's cache maps
// flash (instruction and data buses). A segment loaded there runs from flash,
// which only application images do; bootloaders run from RAM.
func flashWindows(c Chip) [][2]uint32 {
	switch c {
	case ChipESP32:
		return [][2]uint32{{0x400D0000, 0x40400000}, {0x3F400000, 0x3F800000}}
	case ChipESP32S2:
		return [][2]uint32{{0x40080000, 0x40B80000}, {0x3F000000, 0x3F3F0000}}
	case ChipESP32S3:
		return [][2]uint32{{0x42000000, 0x44000000}, {0x3C000000, 0x3E000000}}
	case ChipESP32C3:
		return [][2]uint32{{0x42000000, 0x42800000}, {0x3C000000, 0x3C800000}}
	case ChipESP32C2:
		return [][2]uint32{{0x42000000, 0x42400000}, {0x3C000000, 0x3C400000}}
	case ChipESP32C6, ChipESP32H2:
		return [][2]uint32{{0x42000000, 0x43000000}}
	case ChipESP32P4:
		return [][2]uint32{{0x40000000, 0x4C000000}}
	case ChipESP8266:
		return [][2]uint32{{0x40200000, 0x40300000}}
	}
	// C5, C61, H21, H4, S31 map flash at 0x42000000 like the other RISC-V parts.
	return [][2]uint32{{0x42000000, 0x44000000}}
}

// MemoryTypes names the memory regions addr falls in on chip c, as esptool's
// image_info prints them (e.g. "BYTE_ACCESSIBLE", "DRAM").
func MemoryTypes(c Chip, addr uint32) []string {
	var out []string
	for _, r := range memoryMap(c) {
		if addr >= r.start && addr < r.end {
			out = append(out, r.name)
		}
	}
	return out
}

func isFlashMapped(c Chip, addr uint32) bool {
	for _, w := range flashWindows(c) {
		if addr >= w[0] && addr < w[1] {
			return true
		}
	}
	return false
}
