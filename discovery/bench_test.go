//go:build linux

package discovery_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/mdns"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/discovery/internal/mdnssim"
	"github.com/espdeck/espdeck/discovery/internal/netns"
)

// previousBrowser is the browser this package had before the record cache,
// kept here as the benchmark's baseline: hashicorp/mdns queries in rounds of
// 400 ms, 800 ms ±20 % apart, entries read when a round ends, a device
// removed after 5 missed rounds. (It also sent a standard query from port
// 5353 halfway into each round; the simulated boards answer the library's
// one-shot query, so leaving that out does not slow it down here.)
func previousBrowser(ctx context.Context, iface *net.Interface, onAdd, onRemove func(name string)) {
	known := map[string]int{} // name → missed rounds
	for ctx.Err() == nil {
		ch := make(chan *mdns.ServiceEntry, 4096)
		ifc := *iface
		_ = mdns.QueryContext(ctx, &mdns.QueryParam{Service: discovery.ServiceArduino, Domain: "local", Timeout: 400 * time.Millisecond,
			Interface: &ifc, Entries: ch, DisableIPv6: true, Logger: log.New(io.Discard, "", 0)})
		seen := map[string]bool{}
		for done := false; !done; {
			select {
			case e := <-ch:
				if strings.HasSuffix(e.Name, "._arduino._tcp.local.") && e.Port > 0 {
					seen[strings.TrimSuffix(e.Name, "._arduino._tcp.local.")] = true
				}
			default:
				done = true
			}
		}
		if ctx.Err() != nil {
			return
		}
		for name := range seen {
			if _, ok := known[name]; !ok {
				onAdd(name)
			}
			known[name] = 0
		}
		for name := range known {
			if !seen[name] {
				known[name]++
				if known[name] >= 5 {
					delete(known, name)
					onRemove(name)
				}
			}
		}
		t := time.NewTimer(640*time.Millisecond + time.Duration(rand.Int64N(int64(320*time.Millisecond))))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// sightings collects when each browser saw a name added or removed.
type sightings struct {
	mu    sync.Mutex
	added map[string]time.Time
	gone  map[string]time.Time
	cond  chan struct{}
}

func newSightings() *sightings {
	return &sightings{added: map[string]time.Time{}, gone: map[string]time.Time{}, cond: make(chan struct{}, 1)}
}

func (s *sightings) add(name string) { s.set(s.added, name) }
func (s *sightings) rm(name string)  { s.set(s.gone, name) }
func (s *sightings) set(m map[string]time.Time, name string) {
	s.mu.Lock()
	if _, ok := m[name]; !ok {
		m[name] = time.Now()
	}
	s.mu.Unlock()
	select {
	case s.cond <- struct{}{}:
	default:
	}
}

// wait blocks until m holds name (or 30 s pass) and returns the time.
func (s *sightings) wait(b *testing.B, removed bool, name string) time.Time {
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		m := s.added
		if removed {
			m = s.gone
		}
		t, ok := m[name]
		s.mu.Unlock()
		if ok {
			return t
		}
		select {
		case <-s.cond:
		case <-deadline:
			b.Fatalf("%s never seen (removed=%v)", name, removed)
		}
	}
}

func (s *sightings) count(since time.Time, within time.Duration) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.added {
		if t.Sub(since) <= within {
			n++
		}
	}
	return n
}

// last returns how long after since the last Added came.
func (s *sightings) last(since time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	for _, t := range s.added {
		d = max(d, t.Sub(since))
	}
	return d
}

func watchInto(ctx context.Context, w *discovery.Watcher, s *sightings) {
	for ev := range w.Watch(ctx) {
		switch ev.Kind {
		case discovery.Added:
			s.add(ev.Device.Name)
		case discovery.Removed:
			s.rm(ev.Device.Name)
		}
	}
}

// BenchmarkAnnounceGoodbye measures, with both browsers running side by
// side, the time from a board's first announcement to its Added event and
// from its goodbye to its Removed event. Boards come up at random phases
// of the previous browser's round schedule, announce three times a second
// apart (RFC 6762 §8.3, as ESP responders do), then say goodbye and go
// silent. Metrics are the median and the maximum in seconds.
func BenchmarkAnnounceGoodbye(b *testing.B) {
	if !netns.RunBenchmark(b) {
		return
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.Context())
	ours, prev := newSightings(), newSightings()
	var wg sync.WaitGroup
	wg.Go(func() {
		watchInto(ctx, discovery.New(discovery.Options{Interfaces: []string{"lo"}, DisableSerial: true}), ours)
	})
	wg.Go(func() { previousBrowser(ctx, lo, prev.add, prev.rm) })
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(2 * time.Second) // both browsers settled

	const samples = 10
	var addOurs, addPrev, rmOurs, rmPrev []float64
	for b.Loop() {
		for i := range samples {
			time.Sleep(time.Duration(rand.Int64N(int64(1200 * time.Millisecond))))
			name := fmt.Sprintf("esp32-bench%02d", i)
			r, err := mdnssim.Start(ctx, lo, mdnssim.Instance{Name: name, Service: discovery.ServiceArduino,
				IP: net.IPv4(127, 0, 0, byte(10+i)), Port: 3232, TXT: []string{"board=esp32", "auth_upload=no"}})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			announce := make(chan struct{})
			go func() {
				defer close(announce)
				for k := range 3 {
					if k > 0 {
						time.Sleep(time.Second)
					}
					_ = r.Announce()
				}
			}()
			addOurs = append(addOurs, ours.wait(b, false, name).Sub(start).Seconds())
			addPrev = append(addPrev, prev.wait(b, false, name).Sub(start).Seconds())
			<-announce
			bye := time.Now()
			_ = r.Goodbye()
			r.Close()
			rmOurs = append(rmOurs, ours.wait(b, true, name).Sub(bye).Seconds())
			rmPrev = append(rmPrev, prev.wait(b, true, name).Sub(bye).Seconds())
		}
	}
	b.ReportMetric(median(addOurs), "s-median/announce→added(cache)")
	b.ReportMetric(slices.Max(addOurs), "s-max/announce→added(cache)")
	b.ReportMetric(median(addPrev), "s-median/announce→added(previous)")
	b.ReportMetric(slices.Max(addPrev), "s-max/announce→added(previous)")
	b.ReportMetric(median(rmOurs), "s-median/goodbye→removed(cache)")
	b.ReportMetric(slices.Max(rmOurs), "s-max/goodbye→removed(cache)")
	b.ReportMetric(median(rmPrev), "s-median/goodbye→removed(previous)")
	b.ReportMetric(slices.Max(rmPrev), "s-max/goodbye→removed(previous)")
}

// BenchmarkFound100 counts the boards each browser reports within 1 s of
// its first query, with 100 boards advertised by one responder (answers
// carry many instances per packet) and by 100 responders (100 answers in
// one burst), side by side in one run. The previous browser's one look is
// a single hashicorp/mdns query of 1 s.
func BenchmarkFound100(b *testing.B) {
	if !netns.RunBenchmark(b) {
		return
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		b.Fatal(err)
	}
	const n = 100
	instances := func(prefix string) []mdnssim.Instance {
		var out []mdnssim.Instance
		for i := range n {
			out = append(out, mdnssim.Instance{Name: fmt.Sprintf("%s-%03d", prefix, i), Service: discovery.ServiceArduino,
				IP: net.IPv4(127, 0, 1, byte(i+1)), Port: 3232, TXT: []string{"board=esp32", "auth_upload=no"}})
		}
		return out
	}
	for b.Loop() {
		for _, c := range []struct {
			name  string
			start func() func()
		}{
			{"one-responder", func() func() {
				r, err := mdnssim.Start(b.Context(), lo, instances("one")...)
				if err != nil {
					b.Fatal(err)
				}
				return func() { r.Close() }
			}},
			{"100-responders", func() func() {
				var rs []*mdnssim.Responder
				for _, in := range instances("many") {
					r, err := mdnssim.Start(b.Context(), lo, in)
					if err != nil {
						b.Fatal(err)
					}
					rs = append(rs, r)
				}
				return func() {
					for _, r := range rs {
						r.Close()
					}
				}
			}},
		} {
			stop := c.start()
			// Ours: a fresh watcher; count Added events within 1 s.
			ctx, cancel := context.WithCancel(b.Context())
			s := newSightings()
			start := time.Now()
			done := make(chan struct{})
			go func() {
				defer close(done)
				watchInto(ctx, discovery.New(discovery.Options{Interfaces: []string{"lo"}, DisableSerial: true}), s)
			}()
			time.Sleep(1500 * time.Millisecond)
			cancel()
			<-done
			found := s.count(start, time.Second)
			last := s.last(start)
			// Previous: one hashicorp/mdns query of 1 s.
			ch := make(chan *mdns.ServiceEntry, 4096)
			ifc := *lo
			_ = mdns.QueryContext(b.Context(), &mdns.QueryParam{Service: discovery.ServiceArduino, Domain: "local", Timeout: time.Second,
				Interface: &ifc, Entries: ch, DisableIPv6: true, Logger: log.New(io.Discard, "", 0)})
			names := map[string]bool{}
			for more := true; more; {
				select {
				case e := <-ch:
					names[e.Name] = true
				default:
					more = false
				}
			}
			stop()
			b.ReportMetric(float64(found), "found/100("+c.name+",cache)")
			b.ReportMetric(last.Seconds(), "s-all-found("+c.name+",cache)")
			b.ReportMetric(float64(len(names)), "found/100("+c.name+",previous)")
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
