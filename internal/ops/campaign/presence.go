package campaign

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

// Sighting is one thing discovery learned about a board: it went away, or
// it was seen announcing Version ("" when it announces none).
type Sighting struct {
	ID      string // discovery ID
	Addr    string // host:port it was seen at
	Gone    bool
	Version string
	At      time.Time
}

// Presence says when boards go away and come back and which version they
// announce. Discovery (mDNS) provides one through Roster and FollowEvents;
// a test or the demo drives a Roster directly.
type Presence interface {
	// Current is the last sighting of b, if there is one and b is not gone.
	Current(b Board) (Sighting, bool)
	// Follow records every sighting of b from now on until Stop.
	Follow(b Board) Follower
}

// Follower hands out the sightings of one board in order.
type Follower interface {
	// Next waits for the next sighting (bounded by ctx).
	Next(ctx context.Context) (Sighting, error)
	Stop()
}

// maxQueued bounds the sightings a follower holds for a slow reader; the
// oldest are dropped first (a board flapping for minutes loses nothing
// that matters: the last sightings decide).
const maxQueued = 256

// Roster is a Presence fed by whoever sees boards: a discovery event
// stream (FollowEvents), a simulator's reboot hook, a test. Safe for
// concurrent use.
type Roster struct {
	mu        sync.Mutex
	now       func() time.Time
	last      map[string]Sighting // by ID
	byAddr    map[string]string   // addr → ID
	followers map[*follower]struct{}
}

// NewRoster returns an empty Roster.
func NewRoster() *Roster {
	return &Roster{now: time.Now, last: map[string]Sighting{}, byAddr: map[string]string{},
		followers: map[*follower]struct{}{}}
}

// Seen records that the board id at addr announces version.
func (r *Roster) Seen(id, addr, version string) {
	r.put(Sighting{ID: id, Addr: addr, Version: version})
}

// Gone records that the board id is no longer seen.
func (r *Roster) Gone(id string) {
	r.mu.Lock()
	addr := r.last[id].Addr
	r.mu.Unlock()
	r.put(Sighting{ID: id, Addr: addr, Gone: true})
}

func (r *Roster) put(s Sighting) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.At = r.now()
	r.last[s.ID] = s
	if s.Addr != "" {
		r.byAddr[s.Addr] = s.ID
	}
	for f := range r.followers {
		if f.matches(s) {
			f.push(s)
		}
	}
}

// Current implements Presence.
func (r *Roster) Current(b Board) (Sighting, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.last[b.ID]
	if !ok && b.Address != "" {
		if id, found := r.byAddr[b.Address]; found {
			s, ok = r.last[id]
		}
	}
	return s, ok && !s.Gone
}

// Follow implements Presence.
func (r *Roster) Follow(b Board) Follower {
	f := &follower{board: b, wake: make(chan struct{}, 1)}
	f.stop = func() {
		r.mu.Lock()
		delete(r.followers, f)
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.followers[f] = struct{}{}
	r.mu.Unlock()
	return f
}

type follower struct {
	board Board
	wake  chan struct{}
	stop  func()

	mu    sync.Mutex
	queue []Sighting
}

func (f *follower) matches(s Sighting) bool {
	return s.ID == f.board.ID || (s.Addr != "" && s.Addr == f.board.Address)
}

func (f *follower) push(s Sighting) {
	f.mu.Lock()
	f.queue = append(f.queue, s)
	if len(f.queue) > maxQueued {
		f.queue = f.queue[len(f.queue)-maxQueued:]
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *follower) Next(ctx context.Context) (Sighting, error) {
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			s := f.queue[0]
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return s, nil
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return Sighting{}, ctx.Err()
		case <-f.wake:
		}
	}
}

func (f *follower) Stop() { f.stop() }

// FollowEvents feeds r from a discovery event stream until the stream
// closes or ctx ends. Run it on a goroutine of its own.
func FollowEvents(ctx context.Context, r *Roster, events <-chan discovery.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.Kind {
			case discovery.Added, discovery.Updated:
				r.Seen(ev.Device.ID, DeviceAddress(ev.Device), AnnouncedVersion(ev.Device))
			case discovery.Removed:
				r.Gone(ev.Device.ID)
			}
		}
	}
}

// VersionTXT is the TXT key an ArduinoOTA sketch publishes its version
// under (MDNS.addServiceTxt("arduino", "tcp", "version", APP_VERSION)), so
// a campaign can skip boards already on the image's version and confirm
// the new one after the reboot. It should equal the version in the app
// description (PROJECT_VER in ESP-IDF; the build's version string).
const VersionTXT = "version"

// ChipTXT is the TXT key a board may publish its chip under (esp32s3 …),
// so a campaign can pick the image for it; without it the chip is guessed
// from the board key.
const ChipTXT = "chip"

// AnnouncedVersion is the version d announces, "" when none: for ESPHome
// the TXT project_version (the YAML's project version), else its version
// (the ESPHome release the firmware was built with); for ArduinoOTA the
// TXT key VersionTXT.
func AnnouncedVersion(d discovery.Device) string {
	if d.Protocol == discovery.ProtocolESPHome {
		if v := d.TXT["project_version"]; v != "" {
			return v
		}
		return d.TXT["version"]
	}
	return d.TXT[VersionTXT]
}

// AnnouncedChip is the chip family d says or hints it has, "" when unknown:
// the TXT key ChipTXT, else a board or platform that names a chip.
//
// ESPHome says platform "ESP32" for every ESP32 variant, so for ESPHome
// boards the platform alone names no chip: the TXT chip or variant, else
// ops.ChipFromESPHome (a board id that names the variant, or a well-known
// plain board). A wrong guess would send an S3 the ESP32 image.
func AnnouncedChip(d discovery.Device) string {
	if d.Protocol == discovery.ProtocolESPHome {
		for _, s := range []string{d.TXT[ChipTXT], d.TXT["variant"]} {
			if c, err := firmware.ParseChip(strings.ToLower(s)); s != "" && err == nil {
				return ops.ChipKey(c)
			}
		}
		if c, ok := ops.ChipFromESPHome(d.Platform, d.Board); ok {
			return ops.ChipKey(c)
		}
		return ""
	}
	for _, s := range []string{d.TXT[ChipTXT], d.Board, d.Platform, d.TXT["variant"]} {
		if s == "" {
			continue
		}
		if c, err := firmware.ParseChip(strings.ToLower(s)); err == nil {
			return ops.ChipKey(c)
		}
	}
	return ""
}

// DeviceAddress is where a network device's OTA port is: "ip:port".
func DeviceAddress(d discovery.Device) string {
	if d.Path != "" {
		return d.Path
	}
	host := d.Target()
	if host == "" {
		return ""
	}
	port := d.OTAPort()
	if port == 0 && d.Protocol == discovery.ProtocolESPHome {
		// The announced port is the API's (6053), never the OTA's.
		port = ops.ESPHomePort(d.Platform)
	}
	if port == 0 {
		port = d.Port
	}
	if port == 0 {
		return host
	}
	return joinHostPort(host, port)
}
