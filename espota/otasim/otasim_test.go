package otasim

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseInvitation(t *testing.T) {
	inv, ok := parseInvitation([]byte("0 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n"))
	require.True(t, ok)
	require.Equal(t, invitation{cmd: 0, port: 41234, size: 1024, md5: "faaaf8b9bc279c65e87f39dbc272842a"}, inv)

	inv, ok = parseInvitation([]byte("100 41234 1310720 FAAAF8B9BC279C65E87F39DBC272842A\n"))
	require.True(t, ok)
	require.Equal(t, 100, inv.cmd)
	require.Equal(t, int64(1310720), inv.size)

	// Leading spaces are skipped; exactly one byte is consumed before the MD5.
	_, ok = parseInvitation([]byte("  0  41234   1024 faaaf8b9bc279c65e87f39dbc272842a\n"))
	require.True(t, ok)
	_, ok = parseInvitation([]byte("0 41234 1024  faaaf8b9bc279c65e87f39dbc272842a\n"))
	require.True(t, ok, "the MD5 is whitespace-trimmed")

	for _, bad := range []string{
		"200 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n", // auth command
		"1 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n",   // unknown command
		"0 41234 1024 faaaf8b9\n",                           // short MD5
		"0 41234 1024 faaaf8b9bc279c65e87f39dbc272842a00\n", // long MD5
		"",
	} {
		_, ok := parseInvitation([]byte(bad))
		require.False(t, ok, "%q", bad)
	}
}

// FuzzParseInvitation: never panics; an accepted datagram has a known
// command, a 32-character MD5 and a port that fits 16 bits; a well-formed
// invitation always round-trips.
func FuzzParseInvitation(f *testing.F) {
	f.Add([]byte("0 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n"))
	f.Add([]byte("100 1 1 0123456789abcdef0123456789abcdef"))
	f.Add([]byte("200 13d1312bcb358e3995a1dd951e6811da 590b0644b6b340f1d25f0c5704292780\n"))
	f.Add([]byte("0 9999999999999999999 1 x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, ok := parseInvitation(b)
		if ok {
			require.Contains(t, []int{0, 100}, inv.cmd)
			require.Len(t, inv.md5, 32)
			require.LessOrEqual(t, inv.port, 65535)
			require.GreaterOrEqual(t, inv.port, 0)
		}
		parseAuth(b)
		if len(b) >= 4 {
			port, size := int(b[0])<<8|int(b[1]), int64(b[2])<<8|int64(b[3])
			sum := md5.Sum(b)
			md := hex.EncodeToString(sum[:])
			got, ok := parseInvitation(fmt.Appendf(nil, "0 %d %d %s\n", port, size, md))
			require.True(t, ok)
			require.Equal(t, invitation{cmd: 0, port: port, size: size, md5: md}, got)
		}
	})
}

func start(t *testing.T, cfg Config) *Device {
	t.Helper()
	d, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	return d
}

// udpPeer is a raw UDP socket on loopback, standing in for an uploader.
func udpPeer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, d *Device, msg string) {
	t.Helper()
	_, err := c.WriteToUDPAddrPort([]byte(msg), d.Addr())
	require.NoError(t, err)
}

// recv returns the next datagram, or "" if none arrives within wait.
func recv(t *testing.T, c *net.UDPConn, wait time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

const inv = "0 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n"

func TestRetransmittedInvitationIsSwallowed(t *testing.T) {
	d := start(t, Config{Password: "pw"})
	c := udpPeer(t)
	send(t, c, d, inv)
	first := recv(t, c, 5*time.Second)
	require.True(t, strings.HasPrefix(first, "AUTH "), first)
	require.Len(t, first, 37, "legacy nonce: 32 hex")

	send(t, c, d, inv) // in WAITAUTH: no reply, back to IDLE
	require.Empty(t, recv(t, c, 300*time.Millisecond))

	send(t, c, d, inv) // the next one gets a fresh nonce
	second := recv(t, c, 5*time.Second)
	require.True(t, strings.HasPrefix(second, "AUTH "), second)
	require.Equal(t, 1, d.Stats().Swallowed)
}

func TestPBKDF2Nonce(t *testing.T) {
	d := start(t, Config{Password: "pw", Scheme: SchemePBKDF2})
	c := udpPeer(t)
	send(t, c, d, inv)
	r := recv(t, c, 5*time.Second)
	require.Len(t, r, 69)

	// A legacy-length answer is dropped without a reply (§2.2).
	send(t, c, d, "200 13d1312bcb358e3995a1dd951e6811da 590b0644b6b340f1d25f0c5704292780\n")
	require.Empty(t, recv(t, c, 300*time.Millisecond))
}

func TestESP8266RepliesToTheInvitationPort(t *testing.T) {
	d := start(t, Config{Flavour: ESP8266, Password: "pw"})
	a, b := udpPeer(t), udpPeer(t)
	send(t, a, d, inv)
	r := recv(t, a, 5*time.Second)
	require.True(t, strings.HasPrefix(r, "AUTH "))
	// Auth from another socket with a wrong answer: the reply goes to a.
	send(t, b, d, "200 "+strings.Repeat("0", 32)+" "+strings.Repeat("1", 32)+"\n")
	require.Equal(t, "Authentication Failed", recv(t, a, 5*time.Second))
	require.Empty(t, recv(t, b, 200*time.Millisecond))
}

func TestESP32SaysOKBeforeCheckingSize(t *testing.T) {
	d := start(t, Config{AppSlot: 100})
	c := udpPeer(t)
	send(t, c, d, inv)
	require.Equal(t, "OK", recv(t, c, 5*time.Second))
	ss, err := d.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, StateBeginFailed, ss[0].State)
}

func TestConfigChecks(t *testing.T) {
	_, err := New(Config{Flavour: ESP8266, Scheme: SchemePBKDF2})
	require.Error(t, err)
	_, err = New(Config{Flavour: Flavour(7)})
	require.Error(t, err)
	for _, c := range Demo() {
		_, err := New(c)
		require.NoError(t, err, c.Name)
	}
}

// misbehavingSession runs one update as a raw host: invitation, connection
// back, 100 bytes of data; then it reads what the device sends after the
// data until it has want bytes, and hangs up.
func misbehavingSession(t *testing.T, d *Device, want int) []byte {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer ln.Close()
	data := append([]byte{0xE9}, make([]byte, 99)...)
	sum := md5.Sum(data)
	c := udpPeer(t)
	send(t, c, d, fmt.Sprintf("0 %d %d %s\n", ln.Addr().(*net.TCPAddr).Port, len(data), hex.EncodeToString(sum[:])))
	require.Equal(t, "OK", recv(t, c, 5*time.Second))
	ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write(data)
	require.NoError(t, err)
	got := make([]byte, 0, want)
	buf := make([]byte, 64<<10)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for len(got) < want {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		require.NoError(t, err, "after %d bytes", len(got))
	}
	return got
}

func TestEndlessCountsAfterData(t *testing.T) {
	d := start(t, Config{ReceiveTimeout: 5 * time.Second, Faults: Faults{EndlessCounts: true}})
	got := misbehavingSession(t, d, 4<<20)
	require.Equal(t, "", strings.Trim(string(got), "0123456789"), "counts only, never a verdict")
	ss, err := d.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, StateAborted, ss[0].State)
	require.Contains(t, ss[0].Error, "until the host stopped reading")
}

func TestFloodAfterData(t *testing.T) {
	const flood = 1 << 20
	d := start(t, Config{Flavour: ESP8266, ReceiveTimeout: 5 * time.Second, Faults: Faults{Flood: flood}})
	got := misbehavingSession(t, d, 3+flood) // "100" (the count of the data), then the flood
	require.NotContains(t, string(got), "\n")
	require.Contains(t, string(got), "Update failed: ")
	// After the flood the device stays silent until the host hangs up.
	ss, err := d.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, StateAborted, ss[0].State)
	require.Equal(t, fmt.Sprintf("sent %d bytes after the data", flood), ss[0].Error)
}
