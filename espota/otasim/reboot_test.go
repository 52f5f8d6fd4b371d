package otasim

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// appWithVersion is the start of an app image whose first segment begins
// with an app description naming version.
func appWithVersion(version string, size int) []byte {
	img := make([]byte, size)
	img[0] = 0xE9
	binary.LittleEndian.PutUint32(img[32:], 0xABCD5432)
	copy(img[32+16:32+48], version)
	return img
}

// rawUpload plays the host's side of an unauthenticated upload by hand
// and returns the device's last TCP text.
func rawUpload(t *testing.T, d *Device, img []byte) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer ln.Close()
	c := udpPeer(t)
	sum := md5.Sum(img)
	send(t, c, d, fmt.Sprintf("0 %d %d %s\n", ln.Addr().(*net.TCPAddr).Port, len(img), hex.EncodeToString(sum[:])))
	require.Equal(t, "OK", recv(t, c, 5*time.Second))
	ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	require.NoError(t, err)
	defer conn.Close()
	go conn.Write(img)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, _ := io.ReadAll(conn)
	return string(b)
}

type announcement struct {
	up      bool
	version string
}

func rebootDevice(t *testing.T, outcome RebootOutcome) (*Device, chan announcement) {
	ch := make(chan announcement, 4)
	d := start(t, Config{ReceiveTimeout: 5 * time.Second, Reboot: &Reboot{Version: "1.0.0", Down: 50 * time.Millisecond, Outcome: outcome,
		OnAnnounce: func(up bool, v string) { ch <- announcement{up, v} }}})
	return d, ch
}

func next(t *testing.T, ch chan announcement) announcement {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement")
	}
	return announcement{}
}

func TestRebootComesBackWithTheImagesVersion(t *testing.T) {
	d, ch := rebootDevice(t, BootNew)
	require.Equal(t, "1.0.0", d.Version())
	out := rawUpload(t, d, appWithVersion("2.0.0", 6000))
	require.True(t, strings.HasSuffix(out, "OK"), out)
	require.Equal(t, announcement{false, ""}, next(t, ch))
	require.Equal(t, announcement{true, "2.0.0"}, next(t, ch))
	require.Equal(t, "2.0.0", d.Version())
	require.True(t, d.Up())
}

func TestRebootRollbackComesBackOnTheOldVersion(t *testing.T) {
	d, ch := rebootDevice(t, BootRollback)
	rawUpload(t, d, appWithVersion("2.0.0", 6000))
	require.Equal(t, announcement{false, ""}, next(t, ch))
	require.Equal(t, announcement{true, "1.0.0"}, next(t, ch))
	require.Equal(t, "1.0.0", d.Version())
}

func TestRebootNeverAnswersNothing(t *testing.T) {
	d, ch := rebootDevice(t, BootNever)
	rawUpload(t, d, appWithVersion("2.0.0", 6000))
	require.Equal(t, announcement{false, ""}, next(t, ch))
	require.False(t, d.Up())
	c := udpPeer(t)
	send(t, c, d, inv)
	require.Empty(t, recv(t, c, 300*time.Millisecond), "a board that is gone answers nothing")
	require.Equal(t, 1, len(d.Sessions()))
	select {
	case a := <-ch:
		t.Fatalf("a board that never boots announced %+v", a)
	default:
	}
}

func TestRebootOnlyAfterAnAcceptedApp(t *testing.T) {
	ch := make(chan announcement, 4)
	d := start(t, Config{ReceiveTimeout: 5 * time.Second, Faults: Faults{MD5Failure: true},
		Reboot: &Reboot{Version: "1.0.0", OnAnnounce: func(up bool, v string) { ch <- announcement{up, v} }}})
	out := rawUpload(t, d, appWithVersion("2.0.0", 6000))
	require.Contains(t, out, "MD5 Check Failed")
	_, err := d.WaitSessions(context.Background(), 1)
	require.NoError(t, err)
	require.True(t, d.Up())
	require.Equal(t, "1.0.0", d.Version())
	require.Empty(t, ch)
}

func TestAppVersion(t *testing.T) {
	require.Equal(t, "v2.7.0-rc1", appVersion(appWithVersion("v2.7.0-rc1", 400)))
	require.Equal(t, "", appVersion(make([]byte, 400)))
	require.Equal(t, "", appVersion([]byte{0xE9}))
}
