package serialflash

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// decoderPort is an rfc2217Port whose Telnet answers (WONT/DONT for
// options it did not offer) go to a peer that discards them.
func decoderPort(t testing.TB) *rfc2217Port {
	ours, peer := net.Pipe()
	go io.Copy(io.Discard, peer)
	t.Cleanup(func() { ours.Close(); peer.Close() })
	return &rfc2217Port{c: ours}
}

// A server that never ends a subnegotiation, or fills one with escaped
// bytes, must not grow the client's buffer without bound.
func TestRFC2217EndlessSubnegotiationStaysBounded(t *testing.T) {
	p := decoderPort(t)
	stream := []byte{telIAC, telSB, telComPort}
	for range 10000 {
		stream = append(stream, telIAC, 0x01) // IAC followed by a non-SE byte
	}
	stream = append(stream, telIAC, telSE, 'o', 'k')
	p.decode(stream)
	require.LessOrEqual(t, cap(p.sb), 1024, "subnegotiation buffer grew with the peer's input")
	require.Equal(t, []byte("ok"), p.in, "data after the subnegotiation still arrives")
}

// escapeTelnet doubles IAC, as a server sends payload.
func escapeTelnet(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte{telIAC}, []byte{telIAC, telIAC})
}

func FuzzRFC2217Decode(f *testing.F) {
	f.Add([]byte("hello\xff\xff"), []byte{telIAC, telWILL, 1}, uint16(3))
	f.Add([]byte{0xC0, 0xFF, 0x00, 0xC0}, []byte{telIAC, telSB, telComPort, 101, telIAC, telIAC, 5, telIAC, telSE}, uint16(7))
	f.Add([]byte{}, []byte{telIAC, telSB, telIAC, 1, telIAC}, uint16(1))
	f.Fuzz(func(t *testing.T, payload, noise []byte, split uint16) {
		// Arbitrary bytes: the decoder never panics, keeps its
		// subnegotiation buffer bounded, and decodes the same however
		// the stream is cut into reads.
		whole := decoderPort(t)
		whole.decode(noise)
		cut := decoderPort(t)
		at := int(split) % (len(noise) + 1)
		cut.decode(noise[:at])
		cut.decode(noise[at:])
		require.Equal(t, whole.in, cut.in)
		require.LessOrEqual(t, len(cut.sb), 64)

		// Payload with IAC doubled, after a complete command, arrives
		// unchanged.
		p := decoderPort(t)
		stream := append([]byte{telIAC, telSB, telComPort, 101, 0, telIAC, telSE}, escapeTelnet(payload)...)
		at = int(split) % (len(stream) + 1)
		p.decode(stream[:at])
		p.decode(stream[at:])
		require.Equal(t, string(payload), string(p.in))
	})
}
