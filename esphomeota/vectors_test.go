package esphomeota

import (
	"bytes"
	"encoding/hex"
	"io"
	"testing"

	"github.com/flynn/noise"
	"github.com/stretchr/testify/require"
)

// fixedRand is a deterministic "random" source for ephemeral keys.
type fixedRand struct{ b byte }

func (r *fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.b
		r.b += 7
	}
	return len(p), nil
}

func testResponder(t *testing.T, psk, prologue []byte, rng io.Reader) *noise.HandshakeState {
	t.Helper()
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: cipherSuite, Random: rng, Pattern: noise.HandshakeNN,
		Prologue: prologue, PresharedKey: psk, PresharedKeyPlacement: 0})
	require.NoError(t, err)
	return hs
}

// TestNoiseTranscript builds a whole encrypted session's opening with
// fixed keys and checks it byte for byte against the framing of
// docs/protocol-esphome-ota.md §5: the handshake frames, one frame per
// control value with its exact length, data frames within the device's
// 1024-byte buffer, and a one-byte frame per device response.
func TestNoiseTranscript(t *testing.T) {
	psk, err := ParseAPIKey(testKey)
	require.NoError(t, err)
	prologue := noisePrologue(2, featGzip|featSHA256|featExtended|featNoise, serverNoise)
	require.Equal(t, "NoiseOTAInit\x6C\x26\xF7\x5C\x45\x00\x02\x0F\x48\x04", string(prologue))

	ini, err := newInitiator(psk, prologue, &fixedRand{1})
	require.NoError(t, err)
	res := testResponder(t, psk, prologue, &fixedRand{100})

	msg1, _, _, err := ini.WriteMessage(nil, nil)
	require.NoError(t, err)
	f1 := appendFrame(nil, append([]byte{0}, msg1...))
	// 01 ‖ length 49 ‖ status 00 ‖ ephemeral key (32) ‖ tag of the empty payload (16)
	require.Equal(t, []byte{0x01, 0x00, 0x31, 0x00}, f1[:4])
	require.Len(t, f1, 3+1+32+16)

	_, _, _, err = res.ReadMessage(nil, f1[4:])
	require.NoError(t, err)
	msg2, r1, r2, err := res.WriteMessage(nil, nil)
	require.NoError(t, err)
	f2 := appendFrame(nil, append([]byte{0}, msg2...))
	require.Equal(t, []byte{0x01, 0x00, 0x31, 0x00}, f2[:4])
	require.Len(t, f2, 52)

	p, err := readFrame(bytes.NewReader(f2), maxHandshakeFrame)
	require.NoError(t, err)
	_, c1, c2, err := ini.ReadMessage(nil, p[1:])
	require.NoError(t, err)
	client := &noiseSession{send: c1, recv: c2}

	// The device's AUTH_OK: one byte, one frame of 17.
	ct, err := r2.Encrypt(nil, nil, []byte{respAuthOK})
	require.NoError(t, err)
	authFrame := appendFrame(nil, ct)
	require.Equal(t, []byte{0x01, 0x00, 0x11}, authFrame[:3])
	pl, err := readFrame(bytes.NewReader(authFrame), 64)
	require.NoError(t, err)
	pt, err := client.open(pl)
	require.NoError(t, err)
	require.Equal(t, []byte{respAuthOK}, pt)

	// Control values: type (1), size (4), MD5 (32), end ack (1).
	for _, c := range []struct {
		plain []byte
		hdr   []byte
	}{
		{[]byte{0x00}, []byte{0x01, 0x00, 0x11}},
		{[]byte{0, 1, 0, 0}, []byte{0x01, 0x00, 0x14}},
		{bytes.Repeat([]byte("a"), 32), []byte{0x01, 0x00, 0x30}},
	} {
		f, err := client.seal(nil, c.plain)
		require.NoError(t, err)
		require.Equal(t, c.hdr, f[:3])
		got, err := r1.Decrypt(nil, nil, f[3:])
		require.NoError(t, err)
		require.Equal(t, c.plain, got)
	}
	// A data frame's ciphertext fills the device's 1024-byte buffer at most.
	f, err := client.seal(nil, make([]byte, noiseDataPlain))
	require.NoError(t, err)
	require.Equal(t, []byte{0x01, 0x04, 0x00}, f[:3])

	// The whole transcript is stable for fixed keys: a change in the
	// prologue, the pattern or the framing shows here.
	sum := hex.EncodeToString(append(append([]byte{}, f1...), f2...))
	require.Equal(t, goldenTranscript, sum)
}

// goldenTranscript is the two handshake frames for testKey, the prologue
// above and the fixed ephemeral keys.
const goldenTranscript = "01003100c8feca81be196cdf2cadeabf13c4903d7632dce4955aa68b6e5d9adef54e2616cb9a5d9ea4c13c930d1d12b8656c2d3601003100a2ce93c64b85e78a62d23d888e41770269b04dc5565edd1db54030ae3781ef6ea98fd67fdaa885a1f4eefcd30f945dbc"

// TestNoisePrologueBindsEveryByte: a difference in any negotiated byte
// (magic, version, client features, server flags) breaks the handshake.
func TestNoisePrologueBindsEveryByte(t *testing.T) {
	psk, _ := ParseAPIKey(testKey)
	good := noisePrologue(2, 0x0F, 0x05)
	for i := len(noisePrologueInit); i < len(good); i++ {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x01
		ini, err := newInitiator(psk, good, nil)
		require.NoError(t, err)
		res := testResponder(t, psk, bad, nil)
		msg1, _, _, _ := ini.WriteMessage(nil, nil)
		_, _, _, err = res.ReadMessage(nil, msg1)
		require.Error(t, err, "prologue byte %d is not bound", i)
	}
}
