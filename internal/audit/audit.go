// Package audit is espdeck's append-only record of what it did to boards:
// every update attempt (push over OTA or serial, alone or in a campaign) and
// every image its firmware server handed out. The log is a JSON Lines file,
// one Record per line, created 0600 and only ever appended to; each record
// is written with a single write call on a file opened with O_APPEND, so
// records from several espdeck processes never interleave within a line.
//
// A Record has no field for a secret: passwords, API keys and private keys
// cannot reach the log through this package.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sync"
	"time"
)

// Kinds of record.
const (
	KindUpdate   = "update"   // espdeck pushed an image to a board
	KindDownload = "download" // a board (or anyone) pulled an image from espdeck serve
)

// Record is one line of the log. Fields are added, never renamed.
type Record struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Operator string    `json:"operator,omitempty"` // OS user running espdeck
	Host     string    `json:"host,omitempty"`     // the computer espdeck runs on

	// The board.
	Board   string `json:"board,omitempty"`   // name as discovered or configured
	MAC     string `json:"mac,omitempty"`     // aa:bb:cc:dd:ee:ff where known
	Address string `json:"address,omitempty"` // host:port, serial port, or client address
	Chip    string `json:"chip,omitempty"`

	// What was done.
	Campaign    string `json:"campaign,omitempty"` // campaign file or id, when part of one
	Attempt     int    `json:"attempt,omitempty"`
	Protocol    string `json:"protocol,omitempty"` // arduino-ota, esphome, serial, https, http
	Auth        string `json:"auth,omitempty"`     // auth scheme used (none, md5, pbkdf2-sha256, sha256, noise)
	FromVersion string `json:"from_version,omitempty"`
	ToVersion   string `json:"to_version,omitempty"`
	Image       string `json:"image,omitempty"` // file name
	ImageSHA256 string `json:"image_sha256,omitempty"`
	Bytes       int64  `json:"bytes"`
	DurationMS  int64  `json:"duration_ms"`

	// Outcome.
	Result       string `json:"result"`                 // "ok" or the error's Code()
	Message      string `json:"message,omitempty"`      // what a person reads
	Confirmation string `json:"confirmation,omitempty"` // confirmed, rolled-back, timed-out, skipped, not-checked

	// Downloads (KindDownload).
	Ranges   []string `json:"ranges,omitempty"` // "bytes=0-4095" as requested
	Complete bool     `json:"complete,omitempty"`
	TLS      bool     `json:"tls,omitempty"`
	Status   int      `json:"status,omitempty"` // HTTP status sent
}

// Log appends records to one file. Safe for concurrent use.
type Log struct {
	mu       sync.Mutex
	f        *os.File
	path     string
	operator string
	host     string
	now      func() time.Time
}

// Open opens (creating it 0600, and its directory 0700, if needed) the log
// at path for appending. It refuses anything but a regular file so that a
// log path pointing at a device or a directory fails at once, with the path
// in the error.
func Open(path string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the audit log's folder: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("audit log %s is not a regular file", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the audit log: %w", err)
	}
	l := &Log{f: f, path: path, now: time.Now}
	if u, err := user.Current(); err == nil {
		l.operator = u.Username
	}
	l.host, _ = os.Hostname()
	return l, nil
}

// Path is the file the log appends to.
func (l *Log) Path() string { return l.path }

// Append writes r as one line. Time, Operator and Host are filled in when
// empty. The context only bounds waiting for the lock.
func (l *Log) Append(ctx context.Context, r Record) error {
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	r.Time = r.Time.UTC()
	if r.Operator == "" {
		r.Operator = l.operator
	}
	if r.Host == "" {
		r.Host = l.host
	}
	if r.Kind == "" {
		return errors.New("audit record without a kind")
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	line = append(line, '\n')
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("write the audit log %s: %w", l.path, err)
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Filter selects records; zero fields match everything.
type Filter struct {
	Kind    string
	Board   string // exact name
	MAC     string // case-insensitive, with or without separators
	Address string
	Since   time.Time
	Result  string // "ok", "failed" (anything but ok), or an exact code
}

// Match reports whether r passes f.
func (f Filter) Match(r Record) bool {
	switch {
	case f.Kind != "" && r.Kind != f.Kind,
		f.Board != "" && r.Board != f.Board,
		f.Address != "" && r.Address != f.Address,
		!f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	}
	if f.MAC != "" && normalMAC(f.MAC) != normalMAC(r.MAC) {
		return false
	}
	switch f.Result {
	case "":
	case "failed":
		if r.Result == "ok" {
			return false
		}
	default:
		if r.Result != f.Result {
			return false
		}
	}
	return true
}

func normalMAC(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			b = append(b, c)
		case c >= 'A' && c <= 'F':
			b = append(b, c+'a'-'A')
		}
	}
	return string(b)
}

// MaxLine bounds one record's line when reading, so a corrupt or hostile
// file cannot make Read hold gigabytes.
const MaxLine = 64 << 10

// Read returns the records of the log at path that pass f, oldest first.
// Lines that are not records (a torn last line after a crash, garbage) are
// counted in skipped, never fatal.
func Read(r io.Reader, f Filter) (recs []Record, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLine)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec Record
		if json.Unmarshal(line, &rec) != nil || rec.Kind == "" {
			skipped++
			continue
		}
		if f.Match(rec) {
			recs = append(recs, rec)
		}
	}
	if err := sc.Err(); err != nil {
		return recs, skipped, fmt.Errorf("read the audit log: %w", err)
	}
	return recs, skipped, nil
}
