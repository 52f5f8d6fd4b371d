// Package serialflash talks to the ESP ROM bootloader over a serial port or
// a raw TCP socket (socket://HOST:PORT), without uploading Espressif's stub:
// everything here works against the bare ROM (protocol-serial-rom.md §5, §8.3).
//
// Open resets the chip into download mode (reset strategies tried in
// order), syncs through boot-log noise, detects the chip (GET_SECURITY_INFO,
// else the magic register), optionally raises the baud rate (stepping down
// when the link fails at a high rate), attaches the flash and learns its
// size from the JEDEC id. The returned Flasher reads chip information,
// writes regions (compressed where the ROM supports it, plain on ESP8266),
// verifies them with SPI_FLASH_MD5 (or by reading back), reads, erases and
// hard-resets. It never sends FLASH_END after writing (§3.3.5).
//
// Errors wrap sentinels (ErrNoSync, ErrWrongBootMode, ErrPermission, …) or a
// *CommandError, and carry the next step for a person: see Hint.
package serialflash
