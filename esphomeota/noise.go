package esphomeota

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/flynn/noise"
)

// Noise framing (docs/protocol-esphome-ota.md §5): 01 ‖ u16 length ‖ payload.
const (
	frameIndicator  = 0x01
	frameHeaderSize = 3
	// maxHandshakeFrame bounds a handshake frame we accept; a reject reason
	// is short text, msg2 is 48 bytes.
	maxHandshakeFrame = 512
	noisePrologueInit = "NoiseOTAInit"
)

// cipherSuite is Noise_NNpsk0_25519_ChaChaPoly_SHA256's suite.
var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// ParseAPIKey decodes an ESPHome API encryption key: standard base64 of
// exactly 32 bytes. The error never contains the key.
func ParseAPIKey(s Secret) ([]byte, error) {
	k := strings.TrimSpace(s.reveal())
	b, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		return nil, errors.New("the API key is not valid base64 (it looks like 44 characters ending in '=')")
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("the API key decodes to %d bytes, want 32", len(b))
	}
	return b, nil
}

// appendFrame appends one frame around payload.
func appendFrame(dst, payload []byte) []byte {
	dst = append(dst, frameIndicator, 0, 0)
	binary.BigEndian.PutUint16(dst[len(dst)-2:], uint16(len(payload)))
	return append(dst, payload...)
}

// readFrame reads one frame and returns its payload. It refuses a wrong
// indicator, an empty frame and one longer than maxLen.
func readFrame(r io.Reader, maxLen int) ([]byte, error) {
	var h [frameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	return readFrameBody(r, h, maxLen)
}

func readFrameBody(r io.Reader, h [frameHeaderSize]byte, maxLen int) ([]byte, error) {
	n := int(binary.BigEndian.Uint16(h[1:]))
	if h[0] != frameIndicator {
		return nil, &frameError{fmt.Sprintf("frame starts with 0x%02X, not 0x01", h[0])}
	}
	if n == 0 || n > maxLen {
		return nil, &frameError{fmt.Sprintf("frame of %d bytes (want 1 to %d)", n, maxLen)}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// frameError is a malformed frame from the device.
type frameError struct{ msg string }

func (e *frameError) Error() string { return e.msg }

// noisePrologue is "NoiseOTAInit" followed by every byte exchanged before
// the handshake, in order.
func noisePrologue(version, clientFeatures, serverFlags byte) []byte {
	p := append([]byte(noisePrologueInit), magic[:]...)
	return append(p, respOK, version, clientFeatures, respFeatureFlags, serverFlags)
}

// newInitiator starts the client side of the handshake. rng is the source
// of the ephemeral key (crypto/rand when nil; fixed in test vectors).
func newInitiator(psk, prologue []byte, rng io.Reader) (*noise.HandshakeState, error) {
	if rng == nil {
		rng = rand.Reader
	}
	return noise.NewHandshakeState(noise.Config{
		CipherSuite:           cipherSuite,
		Random:                rng,
		Pattern:               noise.HandshakeNN,
		Initiator:             true,
		Prologue:              prologue,
		PresharedKey:          psk,
		PresharedKeyPlacement: 0,
	})
}

// noiseSession is an established transport: one cipher each way.
type noiseSession struct {
	send, recv *noise.CipherState
}

// seal returns the frame carrying plaintext.
func (s *noiseSession) seal(dst, plaintext []byte) ([]byte, error) {
	ct, err := s.send.Encrypt(nil, nil, plaintext)
	if err != nil {
		return nil, err
	}
	return appendFrame(dst, ct), nil
}

// open decrypts one frame's payload.
func (s *noiseSession) open(payload []byte) ([]byte, error) {
	return s.recv.Decrypt(nil, nil, payload)
}
