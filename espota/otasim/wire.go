package otasim

import (
	"net"
	"strings"
	"time"
)

// invitation is a parsed invitation datagram (§2.3).
type invitation struct {
	cmd  int
	port int
	size int64
	md5  string
}

// cursor reads a datagram the way ArduinoOTA's parseInt and
// readStringUntil do.
type cursor struct {
	b []byte
	i int
}

// parseInt skips leading spaces and reads a run of decimal digits (at most
// 15); a non-digit first character yields 0 and consumes nothing.
func (c *cursor) parseInt() int64 {
	for c.i < len(c.b) && c.b[c.i] == ' ' {
		c.i++
	}
	var v int64
	for n := 0; n < 15 && c.i < len(c.b); n++ {
		ch := c.b[c.i]
		if ch < '0' || ch > '9' {
			break
		}
		v = v*10 + int64(ch-'0')
		c.i++
	}
	return v
}

// skip consumes one byte, if any.
func (c *cursor) skip() {
	if c.i < len(c.b) {
		c.i++
	}
}

// until returns the text up to (not including) sep and consumes sep.
func (c *cursor) until(sep byte) string {
	start := c.i
	for c.i < len(c.b) && c.b[c.i] != sep {
		c.i++
	}
	s := string(c.b[start:c.i])
	c.skip()
	return s
}

// parseInvitation applies the device's rules: cmd 0 or 100, then port and
// size, exactly one byte, then an MD5 of exactly 32 characters up to '\n'
// (whitespace-trimmed). Anything else is ignored by the device.
func parseInvitation(b []byte) (invitation, bool) {
	c := cursor{b: b}
	cmd := c.parseInt()
	if cmd != 0 && cmd != 100 {
		return invitation{}, false
	}
	port := c.parseInt()
	size := c.parseInt()
	c.skip()
	md5 := strings.TrimSpace(c.until('\n'))
	if len(md5) != 32 {
		return invitation{}, false
	}
	if port > 65535 {
		port = port & 0xFFFF // a uint16 on the device
	}
	if size > 1<<31-1 {
		size = -1 // overflows the device's int: Update.begin rejects it
	}
	return invitation{cmd: int(cmd), port: int(port), size: size, md5: md5}, true
}

// parseAuth reads "200 <cnonce> <response>\n". ok is false when the first
// number is not 200 (e.g. a retransmitted invitation).
func parseAuth(b []byte) (cnonce, response string, ok bool) {
	c := cursor{b: b}
	if c.parseInt() != 200 {
		return "", "", false
	}
	c.skip()
	cnonce = c.until(' ')
	response = strings.TrimSpace(c.until('\n'))
	return cnonce, response, true
}

// delayedWriter sends the device's TCP replies in order, each one no
// earlier than delay after it was produced (a modelled round trip), without
// holding up the receive loop.
type delayedWriter struct {
	conn  net.Conn
	delay time.Duration
	items chan timedText
	done  chan struct{}
}

type timedText struct {
	due     time.Time
	text    string
	flushed chan struct{} // a flush marker when non-nil
}

func newDelayedWriter(conn net.Conn, delay time.Duration) *delayedWriter {
	w := &delayedWriter{conn: conn, delay: delay, items: make(chan timedText, 4096), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *delayedWriter) write(text string) {
	w.items <- timedText{due: time.Now().Add(w.delay), text: text}
}

func (w *delayedWriter) loop() {
	defer close(w.done)
	for it := range w.items {
		if it.flushed != nil {
			close(it.flushed)
			continue
		}
		if wait := time.Until(it.due); wait > 0 {
			time.Sleep(wait)
		}
		w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		w.conn.Write([]byte(it.text))
	}
}

// flush waits until everything queued so far has been written.
func (w *delayedWriter) flush() {
	ch := make(chan struct{})
	w.items <- timedText{flushed: ch}
	<-ch
}

// close writes what is queued (honouring the delays) and stops.
func (w *delayedWriter) close() {
	close(w.items)
	<-w.done
}
