package serve

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/espdeck/espdeck/internal/audit"
)

// maxRecordedRanges bounds the Range headers one audit record lists (a
// 1 MiB image in 4 KiB ranges is 256 of them; the log's lines stay small).
const maxRecordedRanges = 300

// session is one client's download of one image snapshot, across however
// many requests and connections it takes.
type session struct {
	id      uint64
	key     string
	image   *Image
	rec     audit.Record // filled as the download goes
	started time.Time
	last    time.Time

	// Guarded by Server.mu.
	inflight int  // requests being answered from this session
	detached bool // no longer in Server.sessions; ends when inflight is 0
	ended    bool // recorded
	ranges   []string
	requests int
	bytes    int64
	covered  []span // merged, sorted byte spans sent
	status   int    // last status sent
}

type span struct{ from, to int64 } // [from, to)

// add merges [from, to) into the sorted, disjoint spans.
func addSpan(spans []span, from, to int64) []span {
	if to <= from {
		return spans
	}
	out := spans[:0:0]
	inserted := false
	for _, s := range spans {
		switch {
		case s.to < from:
			out = append(out, s)
		case to < s.from:
			if !inserted {
				out = append(out, span{from, to})
				inserted = true
			}
			out = append(out, s)
		default:
			from, to = min(from, s.from), max(to, s.to)
		}
	}
	if !inserted {
		out = append(out, span{from, to})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].from < out[j].from })
	return out
}

func coveredBytes(spans []span) int64 {
	var n int64
	for _, s := range spans {
		n += s.to - s.from
	}
	return n
}

// bind finds the client's download in progress and counts one more
// request in flight on it. A whole GET (restart) instead detaches it: it
// is recorded as soon as its own requests in flight are answered, and the
// caller starts afresh; abandoned is a detached session to record now.
func (s *Server) bind(key string, restart bool) (se, abandoned *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se = s.sessions[key]
	if se == nil {
		return nil, nil
	}
	if restart {
		delete(s.sessions, key)
		se.detached = true
		if se.inflight == 0 {
			return nil, se
		}
		return nil, nil
	}
	se.inflight++
	return se, nil
}

// startSession begins a download of im for key (or joins the one another
// connection of the same client began a moment ago), with one request in
// flight. It returns nil when MaxSessions downloads are in progress.
func (s *Server) startSession(key string, im *Image, rec audit.Record) *session {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if se, ok := s.sessions[key]; ok {
		se.inflight++
		return se
	}
	if len(s.sessions) >= s.opt.MaxSessions {
		return nil
	}
	s.nextID++
	se := &session{id: s.nextID, key: key, image: im, rec: rec, started: now, last: now, inflight: 1}
	s.sessions[key] = se
	return se
}

// wouldComplete reports whether n more bytes from start give the client
// every byte of the image.
func (s *Server) wouldComplete(se *session, start, n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return coveredBytes(addSpan(se.covered, start, start+n)) == se.image.Size()
}

// progress notes sent body bytes from offset start, of which the client
// acknowledged delivered; when the client now holds every byte of the
// image, the session ends and is recorded.
func (s *Server) progress(se *session, rng string, status int, start, sent, delivered int64, head bool) {
	s.mu.Lock()
	se.last = time.Now()
	se.status = status
	se.requests++
	if rng != "" {
		if len(se.ranges) < maxRecordedRanges {
			se.ranges = append(se.ranges, rng)
		} else if len(se.ranges) == maxRecordedRanges {
			se.ranges = append(se.ranges, "…")
		}
	}
	se.bytes += sent
	se.covered = addSpan(se.covered, start, start+delivered)
	se.inflight--
	complete := !head && coveredBytes(se.covered) == se.image.Size()
	end := false
	switch {
	case se.detached:
		end = complete || se.inflight == 0
	case complete && s.sessions[se.key] == se:
		delete(s.sessions, se.key)
		end = true
	}
	s.mu.Unlock()
	if end {
		s.finish(se)
	}
}

// finish writes the session's audit record and keeps it in the finished
// list.
func (s *Server) finish(se *session) {
	s.mu.Lock()
	if se.ended {
		s.mu.Unlock()
		return
	}
	se.ended = true
	st := se.statusLocked(true)
	rec := se.rec
	rec.Ranges = append([]string(nil), se.ranges...)
	rec.Bytes = se.bytes
	rec.Complete = st.Complete
	rec.Status = se.status
	rec.DurationMS = se.last.Sub(se.started).Milliseconds()
	rec.Time = se.started
	s.finished = append(s.finished, st)
	if len(s.finished) > s.opt.KeepFinished {
		s.finished = append(s.finished[:0:0], s.finished[len(s.finished)-s.opt.KeepFinished:]...)
	}
	s.mu.Unlock()
	if rec.Complete {
		rec.Result = "ok"
		rec.Message = fmt.Sprintf("served all %d bytes in %d request(s)", se.image.Size(), st.Requests)
	} else {
		rec.Result = "incomplete"
		rec.Message = fmt.Sprintf("the client stopped after %d of %d bytes", st.Covered, se.image.Size())
	}
	if se.bytes == 0 && !rec.Complete && se.image.Size() > 0 {
		// A HEAD (or a refused range) without a download that followed.
		rec.Result = "no_download"
		rec.Message = "the client asked about the image but downloaded nothing"
	}
	s.opt.Logger.Info("download ended", "client", rec.Address, "image", rec.Image, "bytes", rec.Bytes, "complete", rec.Complete)
	if s.opt.Notify != nil {
		s.opt.Notify(rec)
	}
	if s.opt.Audit != nil {
		if err := s.opt.Audit.Append(context.Background(), rec); err != nil {
			s.opt.Logger.Warn("audit record not written", "err", err)
		}
	}
}

// DownloadStatus is one client's download as a live view shows it.
type DownloadStatus struct {
	ID       uint64
	Client   string // address of the first request
	MAC      string
	Image    string
	Version  string // the image's version
	Size     int64  // bytes in the image
	Bytes    int64  // body bytes sent, counting repeats
	Covered  int64  // distinct bytes of the image sent
	Ranges   int    // Range requests seen
	Requests int
	Rate     float64 // bytes per second since the first request
	Started  time.Time
	Last     time.Time
	Done     bool // the session ended
	Complete bool // the client got every byte
	TLS      bool
}

func (se *session) statusLocked(done bool) DownloadStatus {
	cov := coveredBytes(se.covered)
	st := DownloadStatus{ID: se.id, Client: se.rec.Address, MAC: se.rec.MAC, Image: se.image.Name, Version: se.image.Version,
		Size: se.image.Size(), Bytes: se.bytes, Covered: cov, Ranges: len(se.ranges), Requests: se.requests,
		Started: se.started, Last: se.last, Done: done, Complete: cov == se.image.Size() && se.status != http.StatusNotModified, TLS: se.rec.TLS}
	if d := se.last.Sub(se.started).Seconds(); d > 0 {
		st.Rate = float64(se.bytes) / d
	}
	return st
}

// Downloads lists downloads in progress and the most recent finished ones,
// oldest first: what a live server pane shows, one row per client download.
func (s *Server) Downloads() []DownloadStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]DownloadStatus(nil), s.finished...)
	var active []DownloadStatus
	for _, se := range s.sessions {
		active = append(active, se.statusLocked(false))
	}
	sort.Slice(active, func(i, j int) bool { return active[i].ID < active[j].ID })
	return append(out, active...)
}
