package testnet

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// echo serves one echoing connection at a time until the test ends.
func echo(t *testing.T) string {
	return Serve(t, func(c net.Conn) { io.Copy(c, c) }).String()
}

// Bytes cross the path unchanged and in order both ways, with a window far
// smaller than the data in either direction, and the end of the stream
// crosses too.
func TestProxyCarriesBothWays(t *testing.T) {
	for _, deviceDials := range []bool{false, true} {
		backend := echo(t)
		p := NewProxy(t, Config{RTT: 0, Window: 100, DeviceDials: deviceDials, Backend: func() string { return backend }})
		c, err := net.Dial("tcp4", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 50_000)
		for i := range want {
			want[i] = byte(i * 7)
		}
		go func() {
			c.Write(want)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("deviceDials=%v: %d of %d bytes back, equal %v, err %v", deviceDials, len(got), len(want), bytes.Equal(got, want), err)
		}
	}
}
