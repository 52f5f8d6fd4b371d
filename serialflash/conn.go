package serialflash

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/espdeck/espdeck/serialflash/slip"
)

// pollInterval is the port read timeout: how often a blocked read looks at
// the context. go.bug.st/serial returns (0, nil) when it passes.
const pollInterval = 20 * time.Millisecond

// conn sends commands and matches replies (§2.7).
type conn struct {
	port   Port
	log    *slog.Logger
	dec    slip.Decoder
	frames [][]byte
	buf    []byte
	// seen keeps the most recent out-of-frame bytes (boot log, app output)
	// for error messages.
	seen []byte
}

func newConn(p Port, log *slog.Logger) *conn {
	p.SetReadTimeout(pollInterval)
	return &conn{port: p, log: log, buf: make([]byte, 4096)}
}

// flush discards everything buffered on both sides.
func (c *conn) flush() {
	c.port.ResetInputBuffer()
	c.collectNoise()
	c.dec.Reset()
	c.frames = c.frames[:0]
}

func (c *conn) collectNoise() {
	if n := c.dec.Noise(); len(n) > 0 {
		c.seen = append(c.seen, n...)
		if len(c.seen) > 2048 {
			c.seen = append([]byte(nil), c.seen[len(c.seen)-2048:]...)
		}
	}
}

// readSome reads once (up to pollInterval) and feeds the decoder. It
// reports whether bytes arrived.
func (c *conn) readSome(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	n, err := c.port.Read(c.buf)
	if n > 0 {
		c.dec.Feed(c.buf[:n], func(f []byte, ferr error) {
			if ferr != nil {
				c.log.Debug("dropped a malformed frame", "err", ferr)
				return
			}
			c.frames = append(c.frames, append([]byte(nil), f...))
		})
		c.collectNoise()
	}
	if err != nil {
		return n > 0, fmt.Errorf("read from the port: %w", err)
	}
	return n > 0, nil
}

// readFrame returns the next frame, waiting at most timeout in all.
// Bytes that arrive do not extend the wait: a chatty app, line noise or a
// frame that never ends cannot keep a command waiting past its bound.
func (c *conn) readFrame(ctx context.Context, timeout time.Duration) ([]byte, error) {
	return c.readFrameUntil(ctx, time.Now().Add(timeout))
}

// readFrameUntil returns the next frame or ErrTimeout at deadline.
func (c *conn) readFrameUntil(ctx context.Context, deadline time.Time) ([]byte, error) {
	for len(c.frames) == 0 {
		if !time.Now().Before(deadline) {
			return nil, ErrTimeout
		}
		if _, err := c.readSome(ctx); err != nil {
			return nil, err
		}
	}
	f := c.frames[0]
	c.frames = c.frames[1:]
	return f, nil
}

func (c *conn) write(ctx context.Context, pkt []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wire := slip.Encode(nil, pkt)
	for len(wire) > 0 {
		n, err := c.port.Write(wire)
		if err != nil {
			return fmt.Errorf("write to the port: %w", err)
		}
		wire = wire[n:]
	}
	return nil
}

// command sends op and waits for its reply, returning the value field and
// respLen bytes of output. Errors: *CommandError for a failure status
// (unsupported commands included), ErrTimeout, ctx.Err().
func (c *conn) command(ctx context.Context, op Opcode, data []byte, chk uint32, respLen int, timeout time.Duration) (uint32, []byte, error) {
	r, err := c.exchange(ctx, op, data, chk, timeout)
	if err != nil {
		return 0, nil, err
	}
	out, err := r.status(respLen)
	if err != nil {
		return 0, nil, err
	}
	return r.value, out, nil
}

// exchange sends op and returns its raw reply. timeout bounds the whole
// wait, however many unrelated frames or bytes arrive meanwhile.
func (c *conn) exchange(ctx context.Context, op Opcode, data []byte, chk uint32, timeout time.Duration) (response, error) {
	if err := c.write(ctx, encodeRequest(op, data, chk)); err != nil {
		return response{}, err
	}
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.readFrameUntil(ctx, deadline)
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				return response{}, fmt.Errorf("%v: %w", op, ErrTimeout)
			}
			return response{}, fmt.Errorf("%v: %w", op, err)
		}
		r, err := parseResponse(f)
		if err != nil {
			continue
		}
		if r.op == op {
			return r, nil
		}
		if r.unsupportedShape() {
			// The ESP32 ROM answers an unsupported command with the
			// previous reply's opcode and value and status 01 05 (§13).
			c.drainUnsupported(ctx)
			return response{}, &CommandError{Op: op, Status: r.data[0], ROMCode: r.data[1]}
		}
	}
}

// drainUnsupported discards the rest of an unsupported-command answer
// (esptool waits 0.2 s; the ROM may send it several times).
func (c *conn) drainUnsupported(ctx context.Context) {
	c.drain(ctx, 60*time.Millisecond, 200*time.Millisecond)
	c.frames = c.frames[:0]
}

// drain reads and discards until the line has been quiet for quiet, but
// never longer than limit: a sender that never stops (an app logging, line
// noise) ends the drain at limit.
func (c *conn) drain(ctx context.Context, quiet, limit time.Duration) {
	now := time.Now()
	end := now.Add(limit)
	deadline := now.Add(quiet)
	for now.Before(deadline) && now.Before(end) {
		got, err := c.readSome(ctx)
		if err != nil {
			return
		}
		now = time.Now()
		if got {
			deadline = now.Add(quiet)
		}
	}
}

// takeSeen returns and forgets the out-of-frame bytes collected so far.
func (c *conn) takeSeen() []byte {
	c.collectNoise()
	s := c.seen
	c.seen = nil
	return s
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
