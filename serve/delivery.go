package serve

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// A response body handed to the kernel is not a response the board got:
// on a dropped download the last hundreds of KiB can sit in the socket's
// send queue when the writes return. So before a download is called
// complete, the server waits (bounded) until the peer's TCP has
// acknowledged every byte written on the connection, or the connection is
// gone, and then knows exactly how many were not: it counts the bytes
// written (CountingListener) and the kernel counts the bytes acknowledged,
// even after a reset.

// ackWaitLimit bounds the wait for the peer to acknowledge a response.
const ackWaitLimit = 30 * time.Second

// CountingListener wraps a TCP listener so that the Server can tell how
// much of each response reached the client. Serve through it (TLS wraps
// it, not the other way round); without it a response counts as delivered
// once written.
func CountingListener(ln net.Listener) net.Listener { return countingListener{ln} }

type countingListener struct{ net.Listener }

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &countingConn{TCPConn: tc}, nil
	}
	return c, nil
}

// countingConn counts the bytes written to the kernel.
type countingConn struct {
	*net.TCPConn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// connKey carries the accepted connection into the request's context.
type connKey struct{}

// withConn is an http.Server ConnContext that remembers the connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// unacknowledged flushes w and waits until everything written on r's
// connection is acknowledged, and returns how many bytes were not when
// the connection went away or the wait ended (0: all of them were). With
// wait false (the response broke off anyway) it looks once. Where it
// cannot tell (no CountingListener, another OS) it returns 0.
func unacknowledged(w http.ResponseWriter, r *http.Request, wait bool) int64 {
	flushErr := http.NewResponseController(w).Flush()
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, ok := c.(*countingConn)
	if !ok {
		if flushErr != nil {
			return -1
		}
		return 0
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ackWaitLimit)
	defer cancel()
	return waitAcked(ctx, cc, wait)
}
