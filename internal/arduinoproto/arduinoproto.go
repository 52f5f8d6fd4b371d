// Package arduinoproto is the framing that Arduino's pluggable discovery
// and pluggable monitor protocols share (arduino-cli
// docs/pluggable-discovery-specification.md and
// docs/pluggable-monitor-specification.md, version 1): the IDE writes one
// command per line on the tool's stdin, the tool answers with JSON
// objects on stdout, and the first command is HELLO <VERSION> "<AGENT>".
// What the commands mean is each protocol's own business.
package arduinoproto

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Serve reads commands from in and passes each line, trimmed, to handle
// until handle reports QUIT (quit true), in ends, or ctx ends. Blank lines
// are not commands. It returns nil on QUIT and at the end of in, the read
// error if reading failed, and ctx's error if ctx ended first.
func Serve(ctx context.Context, in io.Reader, handle func(line string) (quit bool)) error {
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), 64*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-lines:
			if !ok {
				return <-readErr
			}
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			if handle(line) {
				return nil
			}
		}
	}
}

// Writer writes one JSON object per line. It is safe for concurrent use:
// events from other goroutines never interleave with an answer. HTML
// characters are written as they are, as the IDE shows them.
type Writer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewWriter writes to w.
func NewWriter(w io.Writer) *Writer {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &Writer{enc: enc}
}

// Write encodes v as one line. A failed write is not reported: the IDE
// that stopped reading is gone, and the next command (or the end of
// stdin) ends the session.
func (w *Writer) Write(v any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.enc.Encode(v)
}

var helloRE = regexp.MustCompile(`^HELLO\s+(\d+)\s+"([^"]*)"\s*$`)

// ParseHello splits a HELLO command line into its protocol version (as
// written: digits) and the user agent; ok is false if the line is not
// HELLO <VERSION> "<AGENT>". The command word may be in any case.
func ParseHello(line string) (version, agent string, ok bool) {
	word, rest, _ := strings.Cut(line, " ")
	if !strings.EqualFold(word, "HELLO") {
		return "", "", false
	}
	m := helloRE.FindStringSubmatch("HELLO " + rest)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}
