// Package serve is espdeck's pull-update server: an http.Handler that hands
// a folder of firmware images to boards that download their own updates —
// Arduino HTTPUpdate, ESP-IDF esp_https_ota (whole, by ranges, resumed),
// esp32FOTA and ESPHome http_request — and writes one audit record per
// download.
//
// What is true of every response: a body has a Content-Length and is never
// chunked; a file is served from an immutable snapshot taken when it was
// published, and a client that started a download keeps getting the same
// snapshot until it finishes or goes idle, so replacing a file never tears
// a download; under a signing-key policy no byte of an image that does not
// verify is sent.
package serve

import (
	"context"
	"crypto"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
)

// Recorder takes audit records; *audit.Log is one.
type Recorder interface {
	Append(ctx context.Context, r audit.Record) error
}

// Options configure a Server.
type Options struct {
	Dir string // the folder of images; the URL path is the file name
	// Keys, when not empty, is the signing policy: only images whose
	// Secure Boot V2 signature verifies with one of them are served.
	Keys []crypto.PublicKey
	// AllowMACs, when not empty, is the list of board MACs (any
	// separators, any case) that may download; others get 403. Boards
	// send their MAC in x-ESP32-STA-MAC / x-ESP8266-STA-MAC.
	AllowMACs []string
	// CloseAfterRange closes the connection after every 206 response, for
	// boards with small TLS input buffers.
	CloseAfterRange bool
	// IdleTimeout ends a download session (and pins no snapshot any more)
	// when its client sent no request for this long. Default 2 minutes.
	IdleTimeout time.Duration
	Audit       Recorder // nil: no records
	// Notify, when set, is called with every record as it is made (also
	// without an Audit log): a download ended, a 304, a 403, a 404.
	Notify func(audit.Record)
	Logger *slog.Logger // nil: discard
	// KeepFinished is how many finished downloads Downloads still lists.
	// Default 64.
	KeepFinished int
	// MaxSessions bounds the downloads in progress at once (each is a few
	// hundred bytes of bookkeeping; the MAC header is the client's word,
	// so a hostile client could otherwise make them without end). Beyond
	// it a new download gets 503. Default 4096.
	MaxSessions int
	// StallTimeout ends a response when the client takes no bytes for this
	// long (a board that stopped reading holds no server resources
	// forever). Default 60 s.
	StallTimeout time.Duration
}

// Server serves one folder. Create it with New.
type Server struct {
	opt     Options
	allow   map[string]bool
	catalog atomic.Pointer[Catalog]
	scanMu  sync.Mutex // one rescan at a time

	mu       sync.Mutex
	sessions map[string]*session // active downloads by client key
	finished []DownloadStatus    // newest last
	nextID   uint64
}

// Error is a failure starting or rescanning the server.
type Error struct {
	Op   string
	Err  error
	Next string
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Code is the stable machine word.
func (e *Error) Code() string { return "serve_failed" }

// Hint is the next step.
func (e *Error) Hint() string { return e.Next }

// New publishes every file in opt.Dir and returns the server.
func New(ctx context.Context, opt Options) (*Server, error) {
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 2 * time.Minute
	}
	if opt.KeepFinished <= 0 {
		opt.KeepFinished = 64
	}
	if opt.MaxSessions <= 0 {
		opt.MaxSessions = 4096
	}
	if opt.StallTimeout <= 0 {
		opt.StallTimeout = 60 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opt: opt, sessions: map[string]*session{}, allow: map[string]bool{}}
	for _, m := range opt.AllowMACs {
		n := normalMAC(m)
		if len(n) != 12 {
			return nil, &Error{Op: "read the MAC allow-list", Err: fmt.Errorf("%q is not a MAC address", m), Next: "write MACs as aa:bb:cc:dd:ee:ff"}
		}
		s.allow[n] = true
	}
	if _, err := s.Rescan(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Rescan publishes files that were added or changed since the last scan
// and drops removed ones. Downloads in progress keep their snapshots. It
// returns the names that changed.
func (s *Server) Rescan(ctx context.Context) ([]string, error) {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	next, changed, err := rescan(ctx, s.opt.Dir, s.opt.Keys, s.catalog.Load())
	if err != nil {
		return nil, &Error{Op: "read the image folder " + s.opt.Dir, Err: err, Next: "check that the folder exists and is readable"}
	}
	s.catalog.Store(next)
	for _, name := range changed {
		if im, ok := next.Lookup(name); ok {
			if im.Refused != "" {
				s.opt.Logger.Warn("image refused by the signing policy", "image", name, "reason", im.Refused)
			} else {
				s.opt.Logger.Info("image published", "image", name, "bytes", len(im.Data), "version", im.Version, "sha256", im.SHA256)
			}
		} else if e, ok := next.errs[name]; ok {
			s.opt.Logger.Warn("file not published", "file", name, "reason", e)
		} else {
			s.opt.Logger.Info("image withdrawn", "image", name)
		}
	}
	return changed, nil
}

// Catalog is the current set of published images.
func (s *Server) Catalog() *Catalog { return s.catalog.Load() }

// Run rescans the folder every poll interval and ends idle download
// sessions until ctx ends; then it ends every session (recording the
// unfinished ones as incomplete).
func (s *Server) Run(ctx context.Context, poll time.Duration) {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Close()
			return
		case now := <-t.C:
			if _, err := s.Rescan(ctx); err != nil && ctx.Err() == nil {
				s.opt.Logger.Warn("rescan failed", "err", err)
			}
			s.expire(now)
		}
	}
}

// Close ends every download session, recording unfinished ones as
// incomplete.
func (s *Server) Close() {
	s.mu.Lock()
	var ended []*session
	for k, se := range s.sessions {
		delete(s.sessions, k)
		ended = append(ended, se)
	}
	s.mu.Unlock()
	for _, se := range ended {
		s.finish(se)
	}
}

// expire ends sessions idle for longer than the idle timeout.
func (s *Server) expire(now time.Time) {
	s.mu.Lock()
	var ended []*session
	for k, se := range s.sessions {
		if se.inflight == 0 && now.Sub(se.last) > s.opt.IdleTimeout {
			delete(s.sessions, k)
			ended = append(ended, se)
		}
	}
	s.mu.Unlock()
	for _, se := range ended {
		s.finish(se)
	}
}

// Arduino request headers, ESP32 and ESP8266 spellings.
func boardHeader(h http.Header, field string) string {
	for _, p := range []string{"x-ESP32-", "x-ESP8266-"} {
		if v := h.Get(p + field); v != "" {
			return v
		}
	}
	return ""
}

func boardMAC(h http.Header) string {
	for _, f := range []string{"STA-MAC", "BASE-MAC", "AP-MAC"} {
		if v := boardHeader(h, f); v != "" {
			return v
		}
	}
	return ""
}

// ServeHTTP answers GET and HEAD for images, manifests and the index.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "only GET and HEAD are served")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	cat := s.catalog.Load()
	switch {
	case path == "" || path == "index.json":
		s.serveIndex(w, r, cat)
		return
	case strings.HasPrefix(path, "fota/") || strings.HasPrefix(path, "esphome/"):
		s.serveManifest(w, r, cat, path)
		return
	}
	s.serveImage(w, r, cat, path)
}

func (s *Server) serveImage(w http.ResponseWriter, r *http.Request, cat *Catalog, name string) {
	mac := boardMAC(r.Header)
	base := s.baseRecord(r, name, mac)
	if len(s.allow) > 0 && !s.allow[normalMAC(mac)] {
		why := "this board's MAC is not on the allow-list"
		if mac == "" {
			why = "the request carries no board MAC (x-ESP32-STA-MAC) and an allow-list is set"
		}
		s.record(r.Context(), base, http.StatusForbidden, "forbidden", why)
		plain(w, http.StatusForbidden, why)
		return
	}
	key := clientKey(r, name, mac)
	se, abandoned := s.bind(key, r.Method == http.MethodGet && r.Header.Get("Range") == "")
	if abandoned != nil {
		s.finish(abandoned)
	}
	var im *Image
	if se != nil {
		im = se.image // keep serving the snapshot this download started with
	} else if found, ok := cat.Lookup(name); ok {
		im = found
	} else {
		s.record(r.Context(), base, http.StatusNotFound, "not_found", "no such image")
		plain(w, http.StatusNotFound, "no image named "+strconv.Quote(name))
		return
	}
	base.Image, base.ImageSHA256, base.ToVersion, base.Chip = im.Name, im.SHA256, im.Version, chipName(im)
	if se == nil && im.Refused != "" { // a session's snapshot was never refused
		s.record(r.Context(), base, http.StatusForbidden, "refused_by_policy", im.Refused)
		plain(w, http.StatusForbidden, "refused: "+im.Refused)
		return
	}
	if why := wrongBoard(r.Header, im); se == nil && why != "" {
		s.record(r.Context(), base, http.StatusForbidden, "wrong_board", why)
		plain(w, http.StatusForbidden, why)
		return
	}
	if se == nil && r.Header.Get("Range") == "" && r.Method == http.MethodGet && s.runsThisImage(r.Header, im) {
		// Arduino HTTPUpdate: 304 is "no update".
		s.record(r.Context(), base, http.StatusNotModified, "not_modified", "the board already runs this image")
		w.Header().Set("x-MD5", im.MD5)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if se == nil {
		if se = s.startSession(key, im, base); se == nil {
			s.record(r.Context(), base, http.StatusServiceUnavailable, "busy", "too many downloads in progress")
			w.Header().Set("Retry-After", "30")
			plain(w, http.StatusServiceUnavailable, fmt.Sprintf("%d downloads are in progress; try again later", s.opt.MaxSessions))
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("x-MD5", im.MD5)
	h.Set("Accept-Ranges", "bytes")
	h.Set("ETag", `"`+im.SHA256[:32]+`"`)
	h.Set("Cache-Control", "no-cache")
	start, end, status, ok := parseRange(r.Header.Get("Range"), im.Size())
	if !ok {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", im.Size()))
		s.progress(se, r.Header.Get("Range"), http.StatusRequestedRangeNotSatisfiable, 0, 0, 0, true)
		plain(w, http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("range %q is outside the %d-byte image", r.Header.Get("Range"), im.Size()))
		return
	}
	if ir := r.Header.Get("If-Range"); ir != "" && ir != h.Get("ETag") {
		start, end, status = 0, im.Size(), http.StatusOK // the client's partial copy is of another file
	}
	if status == http.StatusPartialContent {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, im.Size()))
		if s.opt.CloseAfterRange {
			h.Set("Connection", "close")
		}
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	var sent, delivered int64
	if r.Method == http.MethodGet {
		sent = writeBody(w, im.Data[start:end], s.opt.StallTimeout)
		delivered = sent
		// Only the response that would complete the download needs
		// confirming: a client asks for the next range after it got the
		// last one, so earlier ranges confirm themselves. TLS adds a few
		// bytes per record to what TCP carries, so any unacknowledged byte
		// means the body's end did not arrive; the body's bytes are
		// counted up to where the loss may begin.
		if sent > 0 && s.wouldComplete(se, start, sent) {
			switch lost := unacknowledged(w, r, sent == end-start); {
			case lost < 0:
				delivered = 0
			case lost > 0:
				delivered = max(0, sent-lost)
			}
		}
	}
	s.progress(se, r.Header.Get("Range"), status, start, sent, delivered, r.Method == http.MethodHead)
}

// writeBody writes b in pieces, each of which must be taken by the client
// within stall, and returns the bytes the connection took.
func writeBody(w http.ResponseWriter, b []byte, stall time.Duration) int64 {
	const piece = 16 << 10
	rc := http.NewResponseController(w)
	var n int64
	for len(b) > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(stall))
		k := min(piece, len(b))
		m, err := w.Write(b[:k])
		n += int64(m)
		if err != nil {
			break
		}
		b = b[k:]
	}
	return n
}

// wrongBoard says why an Arduino board must not get im, from what its
// request headers tell: an ESP8266 asking for an ESP32-family image or the
// other way round (both start with E9, so the board's own check passes and
// the board would not boot), or less free sketch space than the image
// needs. Empty means no objection.
func wrongBoard(h http.Header, im *Image) string {
	esp8266, esp32 := false, false
	for k := range h {
		switch lk := strings.ToLower(k); {
		case strings.HasPrefix(lk, "x-esp8266-"):
			esp8266 = true
		case strings.HasPrefix(lk, "x-esp32-"):
			esp32 = true
		}
	}
	if _, known := im.Chip.Info(); known && !(esp8266 && esp32) {
		switch {
		case esp8266 && im.Chip != firmware.ChipESP8266:
			return fmt.Sprintf("%s is built for %s but the board is an ESP8266", im.Name, chipName(im))
		case esp32 && im.Chip == firmware.ChipESP8266:
			return fmt.Sprintf("%s is built for the ESP8266 but the board is an ESP32", im.Name)
		}
	}
	if v := boardHeader(h, "free-space"); v != "" && boardHeader(h, "mode") != "spiffs" {
		if free, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && free > 0 && free < im.Size() {
			return fmt.Sprintf("%s needs %d bytes but the board has %d free for a sketch: use a partition table with larger app slots", im.Name, im.Size(), free)
		}
	}
	return ""
}

// runsThisImage: the board reports the served image's MD5 (Arduino's
// x-ESP32-sketch-md5 is the MD5 of the running app) or its version.
func (s *Server) runsThisImage(h http.Header, im *Image) bool {
	if md := strings.ToLower(boardHeader(h, "sketch-md5")); md != "" && (md == im.MD5 || md == im.AppMD5) {
		return true
	}
	v := boardHeader(h, "version")
	return v != "" && im.Version != "" && v == im.Version
}

// parseRange reads one "bytes=a-b", "bytes=a-" or "bytes=-n" range. An
// absent, multi-range or unparseable header means the whole file (RFC 9110
// lets a server ignore Range); a range starting past the end is
// unsatisfiable.
func parseRange(h string, size int64) (start, end int64, status int, ok bool) {
	whole := func() (int64, int64, int, bool) { return 0, size, http.StatusOK, true }
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if h == "" || !found || strings.Contains(spec, ",") {
		return whole()
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return whole()
	}
	if a == "" { // suffix: the last n bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 {
			return whole()
		}
		if n == 0 || size == 0 {
			return 0, 0, 0, false
		}
		return max(0, size-n), size, http.StatusPartialContent, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 {
		return whole()
	}
	if first >= size {
		return 0, 0, 0, false
	}
	last := size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return whole()
		}
		last = min(l, size-1)
	}
	return first, last + 1, http.StatusPartialContent, true
}

// clientKey identifies one board's download of one image: its address
// without the port (esp_https_ota may reconnect per range) and its MAC.
func clientKey(r *http.Request, name, mac string) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return host + "|" + normalMAC(mac) + "|" + name
}

func (s *Server) baseRecord(r *http.Request, name, mac string) audit.Record {
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	return audit.Record{Kind: audit.KindDownload, Address: r.RemoteAddr, MAC: formatMAC(mac), Image: name,
		FromVersion: boardHeader(r.Header, "version"), Protocol: proto, TLS: r.TLS != nil}
}

// record writes a one-request record (304, 403, 404).
func (s *Server) record(ctx context.Context, rec audit.Record, status int, result, msg string) {
	rec.Status, rec.Result, rec.Message = status, result, msg
	s.opt.Logger.Info("request answered", "client", rec.Address, "image", rec.Image, "status", status, "why", msg)
	if s.opt.Notify != nil {
		s.opt.Notify(rec)
	}
	if s.opt.Audit == nil {
		return
	}
	// The request's context may be cancelled by the time the record is
	// written; the record must still be written.
	if err := s.opt.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		s.opt.Logger.Warn("audit record not written", "err", err)
	}
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
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

// formatMAC writes a MAC as aa:bb:cc:dd:ee:ff, or leaves other text as is.
func formatMAC(s string) string {
	n := normalMAC(s)
	if len(n) != 12 {
		return s
	}
	var b strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(n[i : i+2])
	}
	return b.String()
}

func chipName(im *Image) string {
	if ci, ok := im.Chip.Info(); ok {
		return ci.Name
	}
	return ""
}

// HTTPServer wraps h in an http.Server with the limits a LAN server facing
// unknown peers needs: bounded header reads and idle connections, small
// headers. It also lets a Server see each request's connection: served
// through this and a CountingListener, a Server tells a delivered download
// from one the board never received. tlsConfig may be nil for plain HTTP.
func HTTPServer(h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnContext:       withConn,
		// TLS 1.2/1.3 over HTTP/1.1 only: the boards speak nothing else.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	}
	return srv
}
