package serialflash

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/serialflash/slip"
)

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func wire(pkt []byte) []byte { return slip.Encode(nil, pkt) }

// Test vectors of protocol-serial-rom.md §11.
func TestRequestVectors(t *testing.T) {
	require.Equal(t, unhex(t, "c0 00 0a 04 00 00 00 00 00 00 10 00 40 c0"), wire(encodeRequest(OpReadReg, unhex(t, "00100040"), 0)))
	require.Equal(t, unhex(t, "c0 00 0f 08 00 00 00 00 00 00 10 0e 00 00 00 00 00 c0"), wire(encodeRequest(OpChangeBaudrate, unhex(t, "00100e0000000000"), 0)))
	require.Equal(t, unhex(t, "c0 00 14 00 00 00 00 00 00 c0"), wire(encodeRequest(OpGetSecurityInfo, nil, 0)))
	require.Equal(t, uint32(0xEF), checksum(make([]byte, 0)))
	ff := make([]byte, 0x400)
	for i := range ff {
		ff[i] = 0xFF
	}
	require.Equal(t, uint32(0xEF), checksum(ff))
	require.Equal(t, uint32(0xEC), checksum(unhex(t, "c0 db 00 ff 12 34 c0 01")))
	sync := wire(encodeRequest(OpSync, syncPayload, 0))
	require.Len(t, sync, 46)
	require.Equal(t, unhex(t, "c0 00 08 24 00 00 00 00 00 07 07 12 20"), sync[:13])
}

func TestResponseVectors(t *testing.T) {
	r, err := parseResponse(unhex(t, "01 0a 04 00 83 1d f0 00 00 00 00 00"))
	require.NoError(t, err)
	require.Equal(t, uint32(0x00F01D83), r.value)
	_, err = r.status(0)
	require.NoError(t, err)

	// Stub-shaped (2 status bytes) reply: same rule finds the status.
	r, err = parseResponse(unhex(t, "01 0a 02 00 83 1d f0 00 00 00"))
	require.NoError(t, err)
	_, err = r.status(0)
	require.NoError(t, err)

	// ROM MD5 reply.
	pkt := append(unhex(t, "01 13 24 00 00 00 00 00"), []byte("6ae59e64850377ee5470c854761551ea")...)
	pkt = append(pkt, 0, 0, 0, 0)
	r, err = parseResponse(pkt)
	require.NoError(t, err)
	out, err := r.status(32)
	require.NoError(t, err)
	require.Equal(t, "6ae59e64850377ee5470c854761551ea", string(out))

	// ROM checksum error.
	r, err = parseResponse(unhex(t, "01 03 04 00 00 00 00 00 01 07 00 00"))
	require.NoError(t, err)
	_, err = r.status(0)
	var ce *CommandError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, byte(7), ce.ROMCode)
	require.Contains(t, ce.Error(), "checksum")
	require.NotEmpty(t, Hint(err))

	// Unsupported command echoing SYNC (§13).
	r, err = parseResponse(unhex(t, "01 08 04 00 07 07 12 20 01 05 00 00"))
	require.NoError(t, err)
	require.True(t, r.unsupportedShape())
	require.True(t, errors.Is(&CommandError{Op: OpGetSecurityInfo, Status: 1, ROMCode: 5}, ErrUnsupported))

	_, err = parseResponse(unhex(t, "00 08 00 00 00 00 00 00"))
	require.Error(t, err, "direction 00 is a request")
	_, err = parseResponse(unhex(t, "01 08 09 00 00 00 00 00 00 00"))
	require.Error(t, err, "size field disagrees with the frame")
}

func TestClassifyOpenError(t *testing.T) {
	require.ErrorIs(t, classifyOpenError("/dev/ttyUSB0", syscall.EBUSY), ErrPortBusy)
	err := classifyOpenError("/dev/ttyUSB0", syscall.EACCES)
	require.ErrorIs(t, err, ErrPermission)
	require.Contains(t, Hint(err), "usermod -aG")
	require.ErrorIs(t, classifyOpenError("/dev/ttyUSB9", syscall.ENOENT), ErrPortNotFound)
}

func TestBootMode(t *testing.T) {
	dl, seen, desc := bootMode([]byte("ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"))
	require.True(t, seen)
	require.False(t, dl)
	require.Contains(t, desc, "0x13")
	dl, seen, _ = bootMode([]byte("rst:0x1 (POWERON_RESET),boot:0xf (UART_BOOT(UART0))\r\n"))
	require.True(t, seen && dl)
	dl, seen, _ = bootMode([]byte("rst:0x1 (POWERON),boot:0x0 (DOWNLOAD(USB/UART0))\r\nwaiting for download\r\n"))
	require.True(t, seen && dl)
	dl, seen, _ = bootMode([]byte(" ets Jan  8 2013,rst cause:2, boot mode:(3,6)"))
	require.True(t, seen)
	require.False(t, dl)
}

func TestFlashSizeAndEraseSize(t *testing.T) {
	require.Equal(t, uint32(4<<20), flashSizeFromID(0x1640EF))
	require.Equal(t, uint32(16<<20), flashSizeFromID(0x1840C8))
	require.Equal(t, uint32(0), flashSizeFromID(0xFFFFFF))
	require.Equal(t, uint32(2<<20), flashSizeFromID(0x00061F|0x000600))
	// ESP8266 erase bug compensation (esptool get_erase_size).
	require.Equal(t, uint32(0x1000), esp8266EraseSize(0, 0x1000))
	require.Equal(t, uint32(0x8000), esp8266EraseSize(0, 0x10000))
	require.Equal(t, uint32(0x1E000), esp8266EraseSize(0x1000, 0x2D000))
}

func FuzzParseResponse(f *testing.F) {
	f.Add(unhex(f, "01 0a 04 00 83 1d f0 00 00 00 00 00"), uint8(0))
	f.Add(unhex(f, "01 13 24 00 00 00 00 00"), uint8(32))
	f.Add(unhex(f, "01 14 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"), uint8(20))
	f.Add([]byte{1}, uint8(64))
	f.Fuzz(func(t *testing.T, frame []byte, respLen uint8) {
		r, err := parseResponse(frame)
		if err != nil {
			return
		}
		out, err := r.status(int(respLen))
		if err == nil && len(out) != int(respLen) {
			t.Fatalf("success with %d output bytes, want %d", len(out), respLen)
		}
		var ce *CommandError
		if errors.As(err, &ce) && ce.Status == 0 {
			t.Fatal("a CommandError with status 0")
		}
		if err == nil && int(respLen) == 20 {
			s := securityFromInfo(out)
			if s.SecureBoot != (out[0]&1 == 1) {
				t.Fatal("secure boot flag misread")
			}
		}
	})
}

// The boot-log reader must survive any line noise, and the last banner wins.
func FuzzBootMode(f *testing.F) {
	f.Add([]byte("ets Jul 29 2019 12:21:46\r\nrst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"))
	f.Add([]byte("boot mode:(1,7)"))
	f.Add([]byte{0xff, 0x00, 'b', 'o', 'o', 't', ':'})
	f.Fuzz(func(t *testing.T, noise []byte) {
		bootMode(noise)
		dl, seen, desc := bootMode(append(noise, "\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"...))
		if !seen || desc == "" {
			t.Fatal("banner not found after noise")
		}
		if dl {
			t.Fatal("a normal-boot banner read as download mode")
		}
	})
}

// Every error a user sees has a stable machine word and a next step,
// however deeply it is wrapped.
func TestErrorsAnswerCodeAndHint(t *testing.T) {
	wrapped := fmt.Errorf("write at 0x10000: %w", withHint(fmt.Errorf("%w: lost", ErrTimeout), "check the cable"))
	var coder interface {
		Code() string
		Hint() string
	}
	require.ErrorAs(t, wrapped, &coder)
	require.Equal(t, "timeout", coder.Code())
	require.Equal(t, "check the cable", coder.Hint())
	require.Equal(t, "timeout", Code(wrapped))
	ce := &CommandError{Op: OpFlashData, Status: 1, ROMCode: 0x08}
	require.Equal(t, "device_error", ce.Code())
	require.Contains(t, ce.Hint(), "power")
	require.Equal(t, "device_error", Code(fmt.Errorf("x: %w", &CommandError{Op: OpGetSecurityInfo, Status: 1, ROMCode: 5})))
	require.True(t, (&CommandError{Op: OpGetSecurityInfo, Status: 1, ROMCode: 5}).Unsupported(), "a refused command says so apart from its code")
	require.Equal(t, "baud_change_failed", Code(fmt.Errorf("%w: %w", ErrBaudChange, ErrNoSync)))
	require.Equal(t, "transfer_failed", Code(errors.New("other")))
}
