package romsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash/slip"
)

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// wireTest drives a ROM over an in-memory pipe with raw bytes, checking the
// simulator against the spec's test vectors (not against our client).
type wireTest struct {
	t   *testing.T
	c   net.Conn
	dec slip.Decoder
	q   [][]byte
	rom *ROM
}

func newWire(t *testing.T, chip firmware.Chip, cfg Config) *wireTest {
	p, err := ProfileFor(chip)
	require.NoError(t, err)
	a, b := net.Pipe()
	rom := New(p, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rom.Serve(ctx, b); close(done) }()
	t.Cleanup(func() { cancel(); a.Close(); b.Close(); <-done })
	w := &wireTest{t: t, c: a, rom: rom}
	// Swallow the power-on banner.
	w.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, _ := w.c.Read(buf)
	require.Contains(t, string(buf[:n]), "boot")
	return w
}

func (w *wireTest) send(wire []byte) {
	w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := w.c.Write(wire)
	require.NoError(w.t, err)
}

func (w *wireTest) frame() []byte {
	buf := make([]byte, 4096)
	for len(w.q) == 0 {
		w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := w.c.Read(buf)
		require.NoError(w.t, err)
		w.dec.Feed(buf[:n], func(f []byte, err error) {
			require.NoError(w.t, err)
			w.q = append(w.q, append([]byte(nil), f...))
		})
	}
	f := w.q[0]
	w.q = w.q[1:]
	return f
}

func TestSyncReadRegAndUnsupportedVectors(t *testing.T) {
	w := newWire(t, firmware.ChipESP32, Config{})
	w.send(append(unhex(t, "c0 00 08 24 00 00 00 00 00 07 07 12 20"), append(bytes.Repeat([]byte{0x55}, 32), 0xc0)...))
	for range 8 {
		require.Equal(t, unhex(t, "01 08 04 00 07 07 12 20 00 00 00 00"), w.frame())
	}
	w.send(unhex(t, "c0 00 0a 04 00 00 00 00 00 00 10 00 40 c0"))
	require.Equal(t, unhex(t, "01 0a 04 00 83 1d f0 00 00 00 00 00"), w.frame())
	// GET_SECURITY_INFO is not in the ESP32 ROM: the reply reuses the
	// previous opcode and value with status 01 05 (§13).
	w.send(unhex(t, "c0 00 14 00 00 00 00 00 00 c0"))
	require.Equal(t, unhex(t, "01 0a 04 00 83 1d f0 00 01 05 00 00"), w.frame())
}

func TestESP8266TwoStatusBytes(t *testing.T) {
	w := newWire(t, firmware.ChipESP8266, Config{})
	w.send(append(unhex(t, "c0 00 08 24 00 00 00 00 00 07 07 12 20"), append(bytes.Repeat([]byte{0x55}, 32), 0xc0)...))
	require.Equal(t, unhex(t, "01 08 02 00 07 07 12 20 00 00"), w.frame())
}

func TestNORSemanticsAndMD5(t *testing.T) {
	w := newWire(t, firmware.ChipESP32S3, Config{FlashImage: bytes.Repeat([]byte{0x0F}, 0x1000)})
	// Attach, then MD5 of the erased sector 1 (vector 11's digest).
	w.send(unhex(t, "c0 00 0d 08 00 00 00 00 00 00 00 00 00 00 00 00 00 c0"))
	require.Equal(t, unhex(t, "01 0d 04 00 00 00 00 00 00 00 00 00"), w.frame())
	w.send(unhex(t, "c0 00 13 10 00 00 00 00 00 00 10 00 00 00 10 00 00 00 00 00 00 00 00 00 00 c0"))
	want := append(unhex(t, "01 13 24 00 00 00 00 00"), []byte("6ae59e64850377ee5470c854761551ea")...)
	require.Equal(t, append(want, 0, 0, 0, 0), w.frame())
	// FLASH_DATA without a matching erase: a block of F0 over 0F cannot
	// be programmed (bits only go 1→0) and the ROM reports 01 08. Use
	// FLASH_BEGIN of size 0 (no erase) at 0, one block of 0x400.
	w.send(slip.Encode(nil, append(unhex(t, "00 02 14 00 00 00 00 00"), unhex(t, "00000000 01000000 00040000 00000000 00000000")...)))
	require.Equal(t, unhex(t, "01 02 04 00 00 00 00 00 00 00 00 00"), w.frame())
	block := bytes.Repeat([]byte{0xF0}, 0x400)
	pkt := append(unhex(t, "00 03 10 04"), byte(0xEF), 0, 0, 0)
	pkt = append(pkt, unhex(t, "00040000 00000000 00000000 00000000")...)
	pkt = append(pkt, block...)
	w.send(slip.Encode(nil, pkt))
	require.Equal(t, unhex(t, "01 03 04 00 00 00 00 00 01 08 00 00"), w.frame())
	require.Equal(t, byte(0x00), w.rom.Flash()[0], "0F AND F0")
}

func TestBadChecksumVector(t *testing.T) {
	w := newWire(t, firmware.ChipESP32, Config{})
	w.send(unhex(t, "c0 00 0d 08 00 00 00 00 00 00 00 00 00 00 00 00 00 c0"))
	w.frame()
	w.send(slip.Encode(nil, append(unhex(t, "00 02 10 00 00 00 00 00"), unhex(t, "00040000 01000000 00040000 00000000")...)))
	require.Equal(t, unhex(t, "01 02 04 00 00 00 00 00 00 00 00 00"), w.frame())
	pkt := append(unhex(t, "00 03 10 04 00 00 00 00"), unhex(t, "00040000 00000000 00000000 00000000")...)
	pkt = append(pkt, bytes.Repeat([]byte{1}, 0x400)...)
	w.send(slip.Encode(nil, pkt))
	require.Equal(t, unhex(t, "01 03 04 00 00 00 00 00 01 07 00 00"), w.frame(), "vector 14")
}

func TestLinesBootIntoDownloadOrApp(t *testing.T) {
	w := newWire(t, firmware.ChipESP32, Config{AppLog: []byte("hello from app\r\n"), StrapDelay: time.Millisecond})
	// EN low, then up with IO0 high: a normal boot prints banner and app log.
	w.rom.SetLines(false, true)
	w.rom.SetLines(false, false)
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("hello from app")) {
		w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := w.c.Read(buf)
		require.NoError(t, err)
		got = append(got, buf[:n]...)
	}
	require.Contains(t, string(got), "boot:0x13")
	require.False(t, w.rom.InDownloadMode())
	require.Equal(t, []LineEvent{{false, true}, {false, false}}, w.rom.Lines())
}
