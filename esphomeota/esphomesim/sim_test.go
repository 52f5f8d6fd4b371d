package esphomesim

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Raw conversations with the simulated device, written from the protocol
// page, checking it behaves as the device does.

func start(t *testing.T, cfg Config) (net.Conn, *bufio.Reader, *Device) {
	t.Helper()
	d, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	c, err := net.Dial("tcp4", d.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c), d
}

func read(t *testing.T, br *bufio.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := io.ReadFull(br, b)
	require.NoError(t, err)
	return b
}

// TestChunkOKRule: CHUNK_OK exactly when acked + 8192 ≤ received, and once
// for the final partial block; nothing on version 1.
func TestChunkOKRule(t *testing.T) {
	for _, version := range []byte{1, 2} {
		c, br, d := start(t, Config{Version: version})
		c.Write(magicBytes)
		require.Equal(t, []byte{0x00, version}, read(t, br, 2))
		c.Write([]byte{0x06})
		require.Equal(t, []byte{0x48, 0x00, 0x41}, read(t, br, 3))
		size := 2*8192 + 100
		img := make([]byte, size)
		img[0] = 0xE9
		c.Write([]byte{0x00, 0x00, 0x00, byte(size >> 8), byte(size)})
		require.Equal(t, []byte{0x42}, read(t, br, 1))
		sum := md5.Sum(img)
		c.Write([]byte(hex.EncodeToString(sum[:])))
		require.Equal(t, []byte{0x43}, read(t, br, 1))
		c.Write(img[:8191])
		if version == 2 {
			c.Write(img[8191:8192])
			require.Equal(t, []byte{0x47}, read(t, br, 1), "after the first full block")
			c.Write(img[8192:])
			require.Equal(t, []byte{0x47, 0x47, 0x44, 0x45}, read(t, br, 4), "second block, final partial block, then the verdict")
		} else {
			c.Write(img[8191:])
			require.Equal(t, []byte{0x44, 0x45}, read(t, br, 2))
		}
		c.Write([]byte{0x00})
		recs, err := d.WaitRecords(context.Background(), 1)
		require.NoError(t, err)
		require.True(t, recs[0].EndAck)
		require.Equal(t, img, recs[0].Image)
	}
}

func TestSHA256Required(t *testing.T) {
	c, br, _ := start(t, Config{Password: "pw"})
	c.Write(magicBytes)
	read(t, br, 2)
	c.Write([]byte{0x05}) // gzip + extended, no SHA-256
	require.Equal(t, []byte{0x48, 0x00, 0x82}, read(t, br, 3))
	_, err := br.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the device closes")
}

func TestEncryptionRequired(t *testing.T) {
	c, br, _ := start(t, Config{APIKey: DemoAPIKey, RequireEncryption: true})
	c.Write(magicBytes)
	read(t, br, 2)
	c.Write([]byte{0x06})
	require.Equal(t, []byte{0x94}, read(t, br, 1))
	_, err := br.ReadByte()
	require.ErrorIs(t, err, io.EOF)
}

func TestBadMagic(t *testing.T) {
	c, br, _ := start(t, Config{})
	c.Write([]byte{1, 2, 3, 4, 5})
	require.Equal(t, []byte{0x80}, read(t, br, 1))
}

func TestLegacyFeatureReply(t *testing.T) {
	c, br, _ := start(t, Config{Legacy: true, Gzip: true, Version: 1})
	c.Write(magicBytes)
	read(t, br, 2)
	c.Write([]byte{0x07})
	require.Equal(t, []byte{0x46, 0x41}, read(t, br, 2), "gzip accepted, no password")
}

// TestRebootComesBackWithNewVersion: after a successful update the device
// is away for RebootDelay, then answers on the same address with the new
// version.
func TestRebootComesBackWithNewVersion(t *testing.T) {
	d, err := New(Config{NextVersion: "2026.12.0", RebootDelay: 50 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	addr := d.Addr().String()
	upload := func() {
		c, err := net.Dial("tcp4", addr)
		require.NoError(t, err)
		defer c.Close()
		br := bufio.NewReader(c)
		c.Write(magicBytes)
		read(t, br, 2)
		c.Write([]byte{0x06})
		read(t, br, 3)
		img := []byte{0xE9, 1, 2, 3}
		c.Write([]byte{0x00, 0, 0, 0, 4})
		read(t, br, 1)
		sum := md5.Sum(img)
		c.Write([]byte(hex.EncodeToString(sum[:])))
		read(t, br, 1)
		c.Write(img)
		require.Equal(t, []byte{0x47, 0x44, 0x45}, read(t, br, 3))
		c.Write([]byte{0})
	}
	upload()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = d.WaitRecords(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "2026.12.0", d.FirmwareVersion())
	// Back on the same address: wait for it (bounded), then upload again.
	for i := 0; ; i++ {
		if d.Reboots() == 1 {
			break
		}
		require.Less(t, i, 3000, "the device never came back")
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, addr, d.Addr().String())
	upload()
	_, err = d.WaitRecords(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 2, d.Updates())
}
