package serialflash

import (
	"errors"
	"fmt"
)

// Sentinels callers branch on. Errors returned by this package wrap one of
// them (or a *CommandError) together with what was being done and a hint.
var (
	ErrNoSync        = errors.New("no sync reply from the ROM bootloader")
	ErrWrongBootMode = errors.New("the chip booted normally instead of into download mode")
	ErrNoModemLines  = errors.New("the port has no modem control lines (DTR/RTS), so the chip cannot be reset into download mode automatically")
	ErrTimeout       = errors.New("timed out waiting for the chip")
	ErrVerify        = errors.New("verification failed: flash content differs from what was written")
	ErrPortNotFound  = errors.New("serial port not found")
	ErrPermission    = errors.New("permission denied on the serial port")
	ErrPortBusy      = errors.New("serial port busy")
	ErrUnsupported   = errors.New("not supported by this chip's ROM bootloader")
	ErrTooBig        = errors.New("data does not fit the flash")
	ErrBadArgument   = errors.New("invalid argument")
	ErrWrongChip     = errors.New("the board is another chip than the one asked for")
	ErrBaudChange    = errors.New("the chip stopped answering after the baud rate change")
)

// codes are the stable machine words of the sentinels (Code).
var codes = []struct {
	err  error
	code string
}{
	{ErrBaudChange, "baud_change_failed"},
	{ErrWrongBootMode, "wrong_boot_mode"},
	{ErrNoModemLines, "no_sync"},
	{ErrNoSync, "no_sync"},
	{ErrTimeout, "timeout"},
	{ErrVerify, "verify_failed"},
	{ErrPortNotFound, "port_not_found"},
	{ErrPermission, "permission_denied"},
	{ErrPortBusy, "port_busy"},
	{ErrUnsupported, "device_error"},
	{ErrTooBig, "too_big"},
	{ErrBadArgument, "usage"},
	{ErrWrongChip, "wrong_chip"},
}

// Code returns the stable machine word for err: the first sentinel (in
// the order above) it wraps, "device_error" for a ROM failure status, or
// "transfer_failed". The words are internal/ops's codes, so a serial
// failure has one name everywhere (a test in internal/ops keeps them in
// step).
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	var ce *CommandError
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return "transfer_failed"
}

// HintError is an error with the next step a person should take.
type HintError struct {
	Err  error  // what went wrong (wraps a sentinel or *CommandError)
	Next string // what to do next; may span lines
}

func (e *HintError) Error() string {
	if e.Next == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + " (" + e.Next + ")"
}

// Code is the stable machine word for what went wrong (see Code).
func (e *HintError) Code() string { return Code(e.Err) }

// Hint is the next step.
func (e *HintError) Hint() string { return e.Next }

func (e *HintError) Unwrap() error { return e.Err }

// withHint wraps err with hint.
func withHint(err error, hint string) error {
	return &HintError{Err: err, Next: hint}
}

// Hint returns the next step attached to err (the outermost one), or "".
func Hint(err error) string {
	var h *HintError
	if errors.As(err, &h) {
		return h.Next
	}
	var c *CommandError
	if errors.As(err, &c) {
		return c.hint()
	}
	return ""
}

// Message returns err's text without the hint (for showing the two apart).
func Message(err error) string {
	var h *HintError
	if errors.As(err, &h) {
		return h.Err.Error()
	}
	return err.Error()
}

// Opcode is a ROM loader command.
type Opcode byte

// Commands of the ROM loader (§3.1).
const (
	OpFlashBegin      Opcode = 0x02
	OpFlashData       Opcode = 0x03
	OpFlashEnd        Opcode = 0x04
	OpMemBegin        Opcode = 0x05
	OpMemEnd          Opcode = 0x06
	OpMemData         Opcode = 0x07
	OpSync            Opcode = 0x08
	OpWriteReg        Opcode = 0x09
	OpReadReg         Opcode = 0x0A
	OpSPISetParams    Opcode = 0x0B
	OpSPIAttach       Opcode = 0x0D
	OpReadFlashSlow   Opcode = 0x0E
	OpChangeBaudrate  Opcode = 0x0F
	OpFlashDeflBegin  Opcode = 0x10
	OpFlashDeflData   Opcode = 0x11
	OpFlashDeflEnd    Opcode = 0x12
	OpSPIFlashMD5     Opcode = 0x13
	OpGetSecurityInfo Opcode = 0x14
)

var opNames = map[Opcode]string{
	OpFlashBegin: "FLASH_BEGIN", OpFlashData: "FLASH_DATA", OpFlashEnd: "FLASH_END",
	OpMemBegin: "MEM_BEGIN", OpMemEnd: "MEM_END", OpMemData: "MEM_DATA", OpSync: "SYNC",
	OpWriteReg: "WRITE_REG", OpReadReg: "READ_REG", OpSPISetParams: "SPI_SET_PARAMS",
	OpSPIAttach: "SPI_ATTACH", OpReadFlashSlow: "READ_FLASH_SLOW", OpChangeBaudrate: "CHANGE_BAUDRATE",
	OpFlashDeflBegin: "FLASH_DEFL_BEGIN", OpFlashDeflData: "FLASH_DEFL_DATA", OpFlashDeflEnd: "FLASH_DEFL_END",
	OpSPIFlashMD5: "SPI_FLASH_MD5", OpGetSecurityInfo: "GET_SECURITY_INFO",
}

func (o Opcode) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("command 0x%02X", byte(o))
}

// CommandError is a failure status returned by the ROM for one command.
type CommandError struct {
	Op      Opcode
	Status  byte // first status byte (non-zero = failure)
	ROMCode byte // error byte (§2.6)
}

// ROM error codes (§2.6).
var romErrors = map[byte]string{
	0x00: "undefined error",
	0x01: "input parameter invalid",
	0x02: "failed to allocate memory",
	0x03: "failed to send message",
	0x04: "failed to receive message",
	0x05: "invalid message format or command not supported",
	0x06: "operation failed",
	0x07: "checksum error",
	0x08: "flash write error (read-back does not match)",
	0x09: "flash read error",
	0x0A: "flash read length error",
	0x0B: "deflate (decompression) failed",
	0x0C: "deflate Adler-32 checksum error",
	0x0D: "deflate parameter error",
	0x0E: "invalid RAM binary size",
	0x0F: "invalid RAM binary address",
	0x64: "invalid parameter",
	0x65: "invalid format",
	0x66: "description too long",
	0x67: "bad encoding description",
	0x69: "insufficient storage",
}

// Meaning describes the error code.
func (e *CommandError) Meaning() string {
	if m, ok := romErrors[e.ROMCode]; ok {
		return m
	}
	return "unknown error"
}

// Code is "device_error": the ROM answered and said no (Unsupported
// tells a refused command from a failed one).
func (e *CommandError) Code() string { return "device_error" }

// Hint is the next step for this ROM error.
func (e *CommandError) Hint() string { return e.hint() }

// Unsupported reports the reply a ROM gives to a command it does not
// implement or refuses (Secure Download Mode).
func (e *CommandError) Unsupported() bool { return e.ROMCode == 0x05 }

func (e *CommandError) Error() string {
	return fmt.Sprintf("%v failed: ROM error 0x%02X%02X: %s", e.Op, e.Status, e.ROMCode, e.Meaning())
}

func (e *CommandError) Is(target error) bool {
	return target == ErrUnsupported && e.Unsupported()
}

func (e *CommandError) hint() string {
	switch e.ROMCode {
	case 0x05:
		return "the ROM refused the command: the chip may be in Secure Download Mode, or the command is not available in this chip's ROM"
	case 0x07, 0x0B, 0x0C:
		return "data was corrupted on the way: use a lower --baud (e.g. 115200) and a shorter or better USB cable"
	case 0x08, 0x09:
		return "the flash chip did not take the data: check the board's 3.3 V supply (use a powered hub) and the flash chip itself; try a lower --baud"
	case 0x06:
		return "the ROM could not do it: check the address and size against the flash size, or reset the board and try again"
	}
	return "reset the board into download mode (hold BOOT, tap EN) and try again"
}

// BusyError is a port another process holds; it wraps ErrPortBusy and
// names the holder ("espdeck monitor, PID 4242") where it can be known.
type BusyError struct {
	Port   string
	holder string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("open %s: %v: held by %s", e.Port, ErrPortBusy, e.holder)
}

// Unwrap returns ErrPortBusy.
func (e *BusyError) Unwrap() error { return ErrPortBusy }

// Holder names who holds the port.
func (e *BusyError) Holder() string { return e.holder }
