package serve

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// Linux TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpCloseWait   = 8 // the peer closed its side after reading; ours still sends
)

// waitAcked polls TCP_INFO until the peer has acknowledged every byte
// written on c, the connection leaves the states in which it can still
// deliver, or ctx ends, and returns the bytes written but not
// acknowledged. tcpi_bytes_acked survives a reset, so the answer is exact
// also for a board that went away.
func waitAcked(ctx context.Context, c *countingConn, wait bool) int64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	pause := 50 * time.Microsecond
	for {
		var info *unix.TCPInfo
		var qerr error
		if err := rc.Control(func(fd uintptr) {
			info, qerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		}); err != nil || qerr != nil {
			return 0 // the socket is closed already: nothing more to learn
		}
		unacked := c.written.Load() - int64(info.Bytes_acked)
		if unacked <= 0 {
			return 0
		}
		if !wait || (info.State != tcpEstablished && info.State != tcpCloseWait) {
			return unacked
		}
		select {
		case <-ctx.Done():
			return unacked
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}
