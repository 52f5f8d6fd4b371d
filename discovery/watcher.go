package discovery

import (
	"cmp"
	"context"
	"log/slog"
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
	// Interval is the pause after the first mDNS query while watching
	// (default 1 s, the least RFC 6762 §5.2 allows); each later pause is
	// twice the one before, up to MaxInterval. Refresh starts over. Between
	// queries the browser keeps listening: announcements, goodbyes and
	// answers to anyone's query are taken as they arrive.
	Interval time.Duration
	// MaxInterval caps the growing pause between queries (default 60 s).
	// Records are refreshed on their own schedule (80–95 % of their TTL),
	// so this only bounds how long a board whose announcements were all
	// lost stays unseen.
	MaxInterval time.Duration
	// RoundTimeout is how long Scan listens after its query (default
	// 400 ms). Watch does not use it.
	RoundTimeout time.Duration
	// ExpireAfter is no longer used: a device is removed when it says
	// goodbye or when its records' TTLs run out. It is kept so that
	// callers setting it still compile.
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
	// Logger receives debug lines (nil: discard).
	Logger *slog.Logger
	// Now is the clock for FirstSeen/LastSeen (default time.Now).
	Now func() time.Time

	// openTransport and interfaces replace the network in unit tests.
	openTransport func(ctx context.Context) (transport, error)
	interfaces    func(names []string) ([]netInterface, []string, error)
}

// Defaults. The first pause of 1 s and the doubling are RFC 6762 §5.2's;
// the 60 s cap keeps a board whose announcements were all lost from staying
// unseen for long while the query rate, once settled, stays far below one
// query per second per interface. DefaultRoundTimeout is Scan's listening
// window: boards answer within 20–120 ms (§6) plus up to about 300 ms for
// one in Wi-Fi power save, which sees a multicast query only after a DTIM
// beacon.
const (
	DefaultInterval       = time.Second
	DefaultMaxInterval    = time.Minute
	DefaultRoundTimeout   = 400 * time.Millisecond
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
	if o.MaxInterval < o.Interval {
		o.MaxInterval = max(DefaultMaxInterval, o.Interval)
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
	if o.openTransport == nil {
		o.openTransport = openUDPTransport
	}
	if o.interfaces == nil {
		o.interfaces = chooseInterfaces
	}
	return o
}

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
	Rounds     int      `json:"rounds"`               // mDNS queries sent (one per query on all interfaces)
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
	dev Device
	src source
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

// Refresh asks for an mDNS query and a USB poll now instead of at the next
// tick; the pause between queries starts over at Interval. It never blocks; requests while one is pending are merged.
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
// worker has stopped. Consume it promptly:
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

// Scan takes one look without Watch: one mDNS query on every interface,
// listening for RoundTimeout, and one USB poll (as enabled), then returns
// every known device and the status. ctx bounds it.
func (w *Watcher) Scan(ctx context.Context) ([]Device, Status) {
	var wg sync.WaitGroup
	if !w.opts.DisableMDNS {
		wg.Go(func() { w.scanMDNS(ctx) })
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
		// A USB departure is definite: no missed-round grace.
		evs = w.mergeLocked(fromSerial, seen, now, func(other source) bool { return other == fromStatic })
	}
	st.Message = joinMsgs(w.mdnsMsg, w.serialMsg)
	evs = w.setStatusLocked(st, evs)
	w.mu.Unlock()
	w.emit(ctx, evs)
}

// mergeLocked makes seen the devices src reports, keyed by ID, and
// returns the events: an ID new to the watcher is Added, a changed one
// Updated (it keeps its FirstSeen), and a device of src that is not in
// seen is Removed. An entry of another source for which outranks is true
// stays as it is. w.mu is held.
func (w *Watcher) mergeLocked(src source, seen map[string]Device, now time.Time, outranks func(other source) bool) []Event {
	var evs []Event
	for id, d := range seen {
		c, ok := w.devices[id]
		switch {
		case ok && outranks(c.src):
			continue
		case !ok:
			d.FirstSeen, d.LastSeen = now, now
			w.devices[id] = &cached{dev: d, src: src}
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
	for id, c := range w.devices {
		if _, ok := seen[id]; !ok && c.src == src {
			delete(w.devices, id)
			evs = append(evs, Event{Kind: Removed, Device: c.dev.clone()})
		}
	}
	return evs
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
