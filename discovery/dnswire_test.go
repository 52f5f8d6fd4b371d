package discovery

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// captures returns the packets recorded from mDNS stacks we did not write,
// inside a test-made network namespace (testdata/captures).
func captures(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/captures/*.bin")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = b
	}
	return out
}

// TestParsePacketZeroconfNSEC is the case that hid python-zeroconf hosts
// without IPv6: miekg/dns refuses the whole packet, we skip the NSEC only.
func TestParsePacketZeroconfNSEC(t *testing.T) {
	pkt := captures(t)["zeroconf-0.47-answer-3-instances-nsec.bin"]
	var m dns.Msg
	require.Error(t, m.Unpack(pkt), "miekg/dns refuses the packet as a whole")

	p := parsePacket(pkt)
	require.True(t, p.Response)
	require.False(t, p.Truncated)
	require.Equal(t, 1, p.Skipped, "only the NSEC is skipped")
	count := map[uint16]int{}
	for _, r := range p.Records {
		count[r.Type]++
	}
	require.Equal(t, map[uint16]int{dns.TypePTR: 3, dns.TypeSRV: 3, dns.TypeTXT: 3, dns.TypeA: 1}, count)
}

func TestParsePacketBrokenFraming(t *testing.T) {
	pkt := captures(t)["zeroconf-0.47-answer-3-instances-nsec.bin"]
	full := parsePacket(pkt)
	// Cut anywhere: never a panic, only records that ended before the cut.
	for n := range len(pkt) {
		p := parsePacket(pkt[:n])
		require.LessOrEqual(t, len(p.Records), len(full.Records))
		if n < len(pkt) && len(p.Records) == len(full.Records) {
			require.True(t, p.Truncated || n >= len(pkt), "cut at %d", n)
		}
	}
	// A compression pointer loop in an owner name stops the parse.
	loop := []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12}
	p := parsePacket(loop)
	require.True(t, p.Truncated)
	require.Empty(t, p.Records)
}

func FuzzParsePacket(f *testing.F) {
	for _, b := range captures(f) {
		f.Add(b)
	}
	f.Add(response(esp("esp32-aa", "10.0.0.1", "board=esp32").records()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := parsePacket(b)
		for _, r := range p.Records {
			switch r.Type {
			case dns.TypeA:
				require.True(t, r.Addr.Is4())
			case dns.TypeAAAA:
				require.True(t, r.Addr.Is6())
			case dns.TypeSRV:
				require.NotZero(t, r.Port)
			}
		}
		// Whatever was parsed can be cached and assembled without panics.
		c := newRecordCache()
		for _, r := range p.Records {
			c.add(r, 1, timeZero)
		}
		c.assemble([]string{ServiceArduino, ServiceESPHome}, []netInterface{{Has4: true, Has6: true}})
		c.assemble([]string{ServiceArduino, ServiceESPHome}, []netInterface{{Iface: ifaceOne, Has4: true}})
	})
}

var (
	timeZero = time.Unix(1_700_000_000, 0)
	ifaceOne = net.Interface{Index: 1, Name: "eth0"}
)
