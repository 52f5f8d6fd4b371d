package discovery

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Watcher. The zero value browses both services on every
// usable interface and polls USB with the defaults below.
type Options struct {
	// Services to browse (default DefaultServices: _arduino._tcp and
	// _esphomelib._tcp).
	Services []string
	// Interfaces to query by name (default: every interface that is up,
	// multicast-capable, not loopback, not an obvious container or VM
	// bridge, with a routable address). Named interfaces are used as given,
	// loopback included.
	Interfaces []string
	// Interval between the end of one mDNS round and the start of the next
	// (default 800 ms), jittered by ±20 % so that many espdeck instances do
	// not query in step.
	Interval time.Duration
	// RoundTimeout is how long one round listens for answers (default
	// 400 ms). Answers are read when the round ends, so a board that starts
	// answering appears after at most about 1.5 × RoundTimeout + 1.2 ×
	// Interval (2 × RoundTimeout + 1.2 × Interval for a responder that
	// answers the standard query by unicast to its source port, as
	// hashicorp/mdns's server does). hashicorp/mdns does not end a round early on cancellation,
	// so this also bounds how long Watch takes to stop.
	RoundTimeout time.Duration
	// ExpireAfter is how many rounds in a row a device may miss before it is
	// removed (default: as many mean round periods as span
	// DefaultExpireGrace, at least 3; 5 with the default schedule, 3 with
	// 2 s rounds). Rounds in which no query could be sent do not count.
	// The grace is set in rounds, not time, because only a round that asked
	// and heard nothing is evidence that a board left.
	ExpireAfter int
	// SerialInterval is how often USB serial ports are listed (default 1 s).
	SerialInterval time.Duration
	// Static devices: hand-added hosts and the demo fleet. They are reported
	// at once, never expire and need no network. ID defaults to
	// "manual/<host:port or path>", Protocol to ProtocolManual, Name to Host.
	Static []Device
	// DisableMDNS turns network browsing off (the demo must never browse).
	DisableMDNS bool
	// DisableSerial turns USB polling off.
	DisableSerial bool
	// ListSerialPorts lists serial ports (default ListSerialPorts, the
	// go.bug.st enumerator). Tests and the demo may pass their own.
	ListSerialPorts func() ([]SerialPort, error)
	// Logger receives debug lines, including hashicorp/mdns's own (nil: discard).
	Logger *slog.Logger
	// Now is the clock for FirstSeen/LastSeen (default time.Now).
	Now func() time.Time

	// lookup and interfaces replace the network in unit tests.
	lookup     lookupFunc
	interfaces func(names []string) ([]netInterface, []string, error)
}

// Defaults. A round every 1.2 s on average (each round sends two queries
// per service and interface, see mdnsLookup) keeps the time for a new board
// to appear under 2 s while the query rate stays at about 1.7 per service,
// interface and second; the 400 ms listening window still leaves room for
// Wi-Fi boards in power save, which see a multicast query only after a DTIM
// beacon (about 100–300 ms). DefaultExpireGrace keeps the grace before
// Removed at about 6 s (5 rounds of 1.2 s), whatever the schedule.
const (
	DefaultInterval       = 800 * time.Millisecond
	DefaultRoundTimeout   = 400 * time.Millisecond
	DefaultExpireGrace    = 6 * time.Second
	DefaultSerialInterval = time.Second
)

func (o Options) withDefaults() Options {
	if len(o.Services) == 0 {
		o.Services = DefaultServices()
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.RoundTimeout <= 0 {
		o.RoundTimeout = DefaultRoundTimeout
	}
	if o.ExpireAfter <= 0 {
		o.ExpireAfter = expireRounds(DefaultExpireGrace, o.RoundTimeout+o.Interval)
	}
	if o.SerialInterval <= 0 {
		o.SerialInterval = DefaultSerialInterval
	}
	if o.ListSerialPorts == nil {
		o.ListSerialPorts = ListSerialPorts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.lookup == nil {
		o.lookup = mdnsLookup
	}
	if o.interfaces == nil {
		o.interfaces = chooseInterfaces
	}
	return o
}

// expireRounds is how many rounds of period spans grace, rounded up and at
// least minExpireAfter, so that a single lost answer (or two, on a slow
// schedule) never removes a board.
func expireRounds(grace, period time.Duration) int {
	n := int((grace + period - 1) / period)
	return max(n, minExpireAfter)
}

// minExpireAfter is the fewest missed rounds that remove a board.
const minExpireAfter = 3

// Source states for Status.
const (
	StateOff         = "off"         // disabled by options
	StateStarting    = "starting"    // no round finished yet
	StateOK          = "ok"          // the last round or poll worked
	StateDegraded    = "degraded"    // partly working (some interfaces failed)
	StateUnavailable = "unavailable" // nothing could be queried or listed
)

// Status says what the Watcher can and cannot see, for a status line.
type Status struct {
	MDNS       string   `json:"mdns"`                 // one of the State… constants
	Serial     string   `json:"serial"`               // one of the State… constants
	Message    string   `json:"message,omitempty"`    // for people; empty when all is well
	Services   []string `json:"services,omitempty"`   // browsed services
	Interfaces []string `json:"interfaces,omitempty"` // queried in the last round
	Skipped    []string `json:"skipped,omitempty"`    // "docker0: virtual adapter"
	Rounds     int      `json:"rounds"`               // finished mDNS rounds
	Polls      int      `json:"polls"`                // finished serial polls
}

func (s Status) clone() Status {
	s.Services = slices.Clone(s.Services)
	s.Interfaces = slices.Clone(s.Interfaces)
	s.Skipped = slices.Clone(s.Skipped)
	return s
}

// sameState ignores the counters: a StatusChanged event is sent when what a
// person reads changes, and after the first round and poll.
func sameState(a, b Status) bool {
	return a.MDNS == b.MDNS && a.Serial == b.Serial && a.Message == b.Message &&
		slices.Equal(a.Interfaces, b.Interfaces) && slices.Equal(a.Skipped, b.Skipped) &&
		(a.Rounds == 0) == (b.Rounds == 0) && (a.Polls == 0) == (b.Polls == 0)
}

// source says which loop owns a cached device.
type source int

const (
	fromStatic source = iota
	fromMDNS
	fromSerial
)

type cached struct {
	dev    Device
	src    source
	missed int
}

// Watcher keeps the set of known devices and reports changes. Create it with
// New; run it with Watch (once) or use Scan for one look.
type Watcher struct {
	opts     Options
	refresh  chan struct{}
	refreshS chan struct{}

	sendMu    sync.RWMutex // held for reading while sending on events
	mu        sync.Mutex
	devices   map[string]*cached
	status    Status
	mdnsMsg   string
	serialMsg string
	started   bool
	events    chan Event // nil until Watch
}

// New returns a Watcher for opts. Nothing runs until Watch or Scan.
func New(opts Options) *Watcher {
	o := opts.withDefaults()
	w := &Watcher{
		opts:     o,
		refresh:  make(chan struct{}, 1),
		refreshS: make(chan struct{}, 1),
		devices:  make(map[string]*cached),
	}
	w.status = Status{MDNS: StateStarting, Serial: StateStarting, Services: slices.Clone(o.Services)}
	if o.DisableMDNS {
		w.status.MDNS = StateOff
	}
	if o.DisableSerial {
		w.status.Serial = StateOff
	}
	now := o.Now()
	for _, d := range o.Static {
		d = normalizeStatic(d)
		d.FirstSeen, d.LastSeen = now, now
		w.devices[d.ID] = &cached{dev: d.clone(), src: fromStatic}
	}
	return w
}

func normalizeStatic(d Device) Device {
	d = d.clone()
	d.Static = true
	if d.Protocol == "" {
		d.Protocol = ProtocolManual
	}
	if d.Name == "" {
		d.Name = cmp.Or(d.Host, d.Path)
		if d.Name == "" && len(d.Addrs) > 0 {
			d.Name = d.Addrs[0].String()
		}
	}
	if d.ID == "" {
		t := d.Target()
		if d.Port != 0 && d.Path == "" {
			t = net.JoinHostPort(t, strconv.Itoa(d.Port))
		}
		d.ID = "manual/" + t
	}
	sortAddrs(d.Addrs)
	return d
}

// Snapshot returns every known device, sorted by name then ID.
func (w *Watcher) Snapshot() []Device {
	w.mu.Lock()
	out := make([]Device, 0, len(w.devices))
	for _, c := range w.devices {
		out = append(out, c.dev.clone())
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b Device) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Status returns what the watcher can see right now.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status.clone()
}

// Refresh asks for an mDNS round and a USB poll now instead of at the next
// tick. It never blocks; requests while one is pending are merged.
func (w *Watcher) Refresh() {
	select {
	case w.refresh <- struct{}{}:
	default:
	}
	select {
	case w.refreshS <- struct{}{}:
	default:
	}
}

// Watch starts browsing and polling and returns the event stream: first an
// Added event for every static device, then changes as they happen, plus
// StatusChanged events. The channel is closed after ctx is done and every
// worker has stopped (at most one RoundTimeout later). Consume it promptly:
// the workers wait for the reader. Watch may be called once; later calls
// return a closed channel.
func (w *Watcher) Watch(ctx context.Context) <-chan Event {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		ch := make(chan Event)
		close(ch)
		return ch
	}
	w.started = true
	events := make(chan Event, 64)
	w.events = events
	var first []Event
	for _, c := range w.devices {
		first = append(first, Event{Kind: Added, Device: c.dev.clone(), Status: w.status.clone()})
	}
	w.mu.Unlock()
	slices.SortFunc(first, func(a, b Event) int { return cmp.Compare(a.Device.ID, b.Device.ID) })

	var wg sync.WaitGroup
	wg.Go(func() {
		w.emit(ctx, first)
		var inner sync.WaitGroup
		if !w.opts.DisableMDNS {
			inner.Go(func() { w.mdnsLoop(ctx) })
		}
		if !w.opts.DisableSerial {
			inner.Go(func() { w.serialLoop(ctx) })
		}
		inner.Wait()
		// Keep the stream open until ctx ends even when nothing polls (the
		// demo: static devices only), so hand-added devices can still arrive.
		<-ctx.Done()
	})
	go func() {
		wg.Wait()
		w.sendMu.Lock() // no emit is sending now, and none will start
		w.mu.Lock()
		w.events = nil
		w.mu.Unlock()
		close(events)
		w.sendMu.Unlock()
	}()
	return events
}

// Scan takes one look without Watch: one mDNS round and one USB poll (as
// enabled), then returns every known device and the status. ctx bounds it;
// an mDNS round takes RoundTimeout.
func (w *Watcher) Scan(ctx context.Context) ([]Device, Status) {
	var wg sync.WaitGroup
	if !w.opts.DisableMDNS {
		wg.Go(func() { w.round(ctx) })
	}
	if !w.opts.DisableSerial {
		wg.Go(func() { w.poll(ctx) })
	}
	wg.Wait()
	return w.Snapshot(), w.Status()
}

// emit sends events in order unless ctx ends first.
func (w *Watcher) emit(ctx context.Context, evs []Event) {
	// sendMu keeps the closer from closing the channel under a sender
	// (AddStatic may emit from outside the worker goroutines).
	w.sendMu.RLock()
	defer w.sendMu.RUnlock()
	w.mu.Lock()
	ch := w.events
	w.mu.Unlock()
	if ch == nil {
		return
	}
	for _, e := range evs {
		select {
		case ch <- e:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Watcher) mdnsLoop(ctx context.Context) {
	for ctx.Err() == nil {
		// A request that arrived before this round starts is served by it.
		select {
		case <-w.refresh:
		default:
		}
		w.round(ctx)
		t := time.NewTimer(jitter(w.opts.Interval))
		select {
		case <-ctx.Done():
		case <-w.refresh:
		case <-t.C:
		}
		t.Stop()
	}
}

func (w *Watcher) serialLoop(ctx context.Context) {
	for ctx.Err() == nil {
		w.poll(ctx)
		t := time.NewTimer(w.opts.SerialInterval)
		select {
		case <-ctx.Done():
		case <-w.refreshS:
		case <-t.C:
		}
		t.Stop()
	}
}

// jitter spreads d by ±20 %.
func jitter(d time.Duration) time.Duration {
	span := int64(d) * 2 / 5
	if span <= 0 {
		return d
	}
	return d - time.Duration(span/2) + time.Duration(rand.Int64N(span+1))
}

// round runs one query per usable interface and service, all at once, and
// applies what was heard.
func (w *Watcher) round(ctx context.Context) {
	o := w.opts
	ifaces, skipped, err := o.interfaces(o.Interfaces)
	var names []string
	for _, ni := range ifaces {
		names = append(names, ni.Iface.Name)
	}
	if err == nil && len(ifaces) == 0 {
		err = ErrNoInterface
	}
	if err != nil {
		w.applyMDNS(ctx, nil, false, names, skipped, err)
		return
	}
	type result struct {
		iface   string
		service string
		entries []entry
		err     error
	}
	// One slot per query, in interface then service order, so that merging
	// a device seen on two interfaces gives the same result every round
	// (otherwise its Interface would flip and cause needless updates).
	results := make([]result, len(ifaces)*len(o.Services))
	var wg sync.WaitGroup
	for i, ni := range ifaces {
		for j, svc := range o.Services {
			wg.Go(func() {
				es, err := o.lookup(ctx, ni, svc, o.RoundTimeout, o.Logger)
				results[i*len(o.Services)+j] = result{ni.Iface.Name, svc, es, err}
			})
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // a cancelled round says nothing about devices
	}

	seen := make(map[string]Device)
	queried := false
	var errs []error
	for _, r := range results {
		switch {
		case r.err == nil:
			queried = true
		case errors.Is(r.err, errOneFamily):
			queried = true // it ran, over the other family
			errs = append(errs, r.err)
		default:
			errs = append(errs, r.err)
			o.Logger.Debug("mDNS query failed", "interface", r.iface, "service", r.service, "err", r.err)
		}
		for _, e := range r.entries {
			d, ok := deviceFromEntry(e, r.service, r.iface)
			if !ok {
				continue
			}
			if prev, dup := seen[d.ID]; dup {
				d = mergeDevice(prev, d)
			}
			sortAddrs(d.Addrs)
			seen[d.ID] = d
		}
	}
	w.applyMDNS(ctx, seen, queried, names, skipped, errors.Join(errs...))
}

// applyMDNS updates the cache from one round and sends the events.
func (w *Watcher) applyMDNS(ctx context.Context, seen map[string]Device, queried bool, ifaces, skipped []string, err error) {
	now := w.opts.Now()
	var evs []Event
	w.mu.Lock()
	for id, d := range seen {
		c, ok := w.devices[id]
		switch {
		case ok && c.src == fromStatic:
			continue // a hand-added entry with the same ID wins
		case !ok:
			d.FirstSeen, d.LastSeen = now, now
			w.devices[id] = &cached{dev: d, src: fromMDNS}
			evs = append(evs, Event{Kind: Added, Device: d.clone()})
		default:
			d.FirstSeen, d.LastSeen = c.dev.FirstSeen, now
			changed := !sameContent(c.dev, d)
			c.dev, c.missed = d, 0
			if changed {
				evs = append(evs, Event{Kind: Updated, Device: d.clone()})
			}
		}
	}
	if queried {
		for id, c := range w.devices {
			if c.src != fromMDNS {
				continue
			}
			if _, ok := seen[id]; ok {
				continue
			}
			c.missed++
			if c.missed >= w.opts.ExpireAfter {
				delete(w.devices, id)
				evs = append(evs, Event{Kind: Removed, Device: c.dev.clone()})
			}
		}
	}
	st := w.status.clone()
	st.Rounds++
	st.Interfaces, st.Skipped = ifaces, skipped
	switch {
	case err == nil:
		st.MDNS, w.mdnsMsg = StateOK, ""
	case errors.Is(err, ErrPort5353Busy) && !queried:
		st.MDNS = StateUnavailable
		w.mdnsMsg = "UDP port 5353 is held exclusively by another program, so mDNS cannot listen; showing USB and hand-added devices only (stop that program or add the device with --host)"
	case errors.Is(err, ErrNoInterface):
		st.MDNS = StateUnavailable
		w.mdnsMsg = "no network interface is up with multicast and a routable address; showing USB and hand-added devices only"
	case errors.Is(err, errOneFamily) && !errors.Is(err, ErrPort5353Busy):
		st.MDNS = StateDegraded
		w.mdnsMsg = errOneFamily.Error()
	case !queried:
		st.MDNS = StateUnavailable
		w.mdnsMsg = "mDNS queries failed (" + firstLine(err) + "); showing USB and hand-added devices only"
	default:
		st.MDNS = StateDegraded
		w.mdnsMsg = "some mDNS queries failed (" + firstLine(err) + ")"
	}
	st.Message = joinMsgs(w.mdnsMsg, w.serialMsg)
	evs = w.setStatusLocked(st, evs)
	w.mu.Unlock()
	w.emit(ctx, evs)
}

// setStatusLocked stores st and appends a StatusChanged event when it matters.
func (w *Watcher) setStatusLocked(st Status, evs []Event) []Event {
	// Map iteration order is random; events of one round come sorted.
	slices.SortStableFunc(evs, func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Device.ID, b.Device.ID))
	})
	changed := !sameState(w.status, st)
	w.status = st
	for i := range evs {
		evs[i].Status = st.clone()
	}
	if changed {
		evs = append(evs, Event{Kind: StatusChanged, Status: st.clone()})
	}
	return evs
}

// poll lists serial ports once and reports arrivals and departures.
func (w *Watcher) poll(ctx context.Context) {
	ports, err := w.opts.ListSerialPorts()
	now := w.opts.Now()
	var evs []Event
	w.mu.Lock()
	st := w.status.clone()
	st.Polls++
	if err != nil {
		st.Serial = StateUnavailable
		w.serialMsg = "USB serial ports cannot be listed (" + firstLine(err) + ")"
	} else {
		st.Serial, w.serialMsg = StateOK, ""
		seen := make(map[string]Device)
		for _, p := range ports {
			if d, ok := serialDevice(p); ok {
				seen[d.ID] = d
			}
		}
		for id, d := range seen {
			c, ok := w.devices[id]
			switch {
			case ok && c.src == fromStatic:
				continue
			case !ok:
				d.FirstSeen, d.LastSeen = now, now
				w.devices[id] = &cached{dev: d, src: fromSerial}
				evs = append(evs, Event{Kind: Added, Device: d.clone()})
			default:
				d.FirstSeen, d.LastSeen = c.dev.FirstSeen, now
				changed := !sameContent(c.dev, d)
				c.dev = d
				if changed {
					evs = append(evs, Event{Kind: Updated, Device: d.clone()})
				}
			}
		}
		// A USB departure is definite: no missed-round grace.
		for id, c := range w.devices {
			if _, ok := seen[id]; !ok && c.src == fromSerial {
				delete(w.devices, id)
				evs = append(evs, Event{Kind: Removed, Device: c.dev.clone()})
			}
		}
	}
	st.Message = joinMsgs(w.mdnsMsg, w.serialMsg)
	evs = w.setStatusLocked(st, evs)
	w.mu.Unlock()
	w.emit(ctx, evs)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func joinMsgs(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}
