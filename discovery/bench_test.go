//go:build linux

package discovery_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/mdns"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/discovery/internal/netns"
)

// BenchmarkFound100 advertises 100 simulated ArduinoOTA devices in a private
// namespace and counts how many one round finds, side by side: espdeck's
// browser (default 400 ms round) and hashicorp/mdns used the obvious way
// (Lookup-style defaults: unbuffered entries channel, 1 s timeout, a
// goroutine collecting names).
func BenchmarkFound100(b *testing.B) {
	if !netns.RunBenchmark(b) {
		return
	}
	const n = 100
	for i := range n {
		arduinoESP32(fmt.Sprintf("esp32-%012x", i), i%2 == 0).start(b)
	}
	var ours, baseline []float64
	for b.Loop() {
		devs, _ := discovery.New(discovery.Options{Interfaces: []string{"lo"}, DisableSerial: true}).Scan(b.Context())
		ours = append(ours, float64(len(devs)))
		baseline = append(baseline, float64(naiveLookup(b, discovery.ServiceArduino)))
	}
	b.ReportMetric(mean(ours), "found/100(espdeck)")
	b.ReportMetric(mean(baseline), "found/100(hashicorp-defaults)")
}

// naiveLookup is the baseline: the library's defaults and an unbuffered
// channel drained by a goroutine, as most examples do it. Only Name is
// read: the library keeps writing the other fields after sending.
func naiveLookup(b *testing.B, service string) int {
	params := mdns.DefaultParams(service)
	entries := make(chan *mdns.ServiceEntry)
	params.Entries = entries
	params.DisableIPv6 = true
	params.Logger = log.New(io.Discard, "", 0)
	names := map[string]bool{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for e := range entries {
			names[e.Name] = true
		}
	})
	if err := mdns.Query(params); err != nil {
		b.Fatal(err)
	}
	close(entries)
	wg.Wait()
	return len(names)
}

// BenchmarkAppear measures the time from a simulated device starting to
// answer until its Added event, side by side: the default schedule (400 ms
// rounds, 800 ms ±20 % apart) and the previous one (1 s rounds, 1 s apart).
// Each device starts at a random phase of the round schedule; the metrics
// are the mean and the maximum over the samples (ns/op is the whole run).
func BenchmarkAppear(b *testing.B) {
	if !netns.RunBenchmark(b) {
		return
	}
	for _, c := range []struct {
		name string
		opts discovery.Options
		n    int
	}{
		{"default", discovery.Options{Interfaces: []string{"lo"}, DisableSerial: true}, 20},
		{"previous-1s", discovery.Options{Interfaces: []string{"lo"}, DisableSerial: true,
			Interval: time.Second, RoundTimeout: time.Second}, 20},
	} {
		lat := appearLatencies(b, c.name, c.opts, c.n)
		b.ReportMetric(mean(lat), "s/appear("+c.name+")")
		b.ReportMetric(slices.Max(lat), "max-s/appear("+c.name+")")
	}
}

func appearLatencies(b *testing.B, name string, opts discovery.Options, n int) []float64 {
	w := discovery.New(opts)
	ctx, cancel := context.WithCancel(b.Context())
	events := w.Watch(ctx)
	defer func() {
		cancel()
		for range events {
		}
	}()
	period := opts.Interval + opts.RoundTimeout
	if period == 0 {
		period = discovery.DefaultInterval + discovery.DefaultRoundTimeout
	}
	var out []float64
	for i := range n {
		time.Sleep(time.Duration(rand.Int64N(int64(period))))
		id := fmt.Sprintf("%s-%d", name, i)
		start := time.Now()
		stop := arduinoESP8266(id).start(b)
		for ev := range events {
			if ev.Kind == discovery.Added && ev.Device.Name == id {
				break
			}
		}
		out = append(out, time.Since(start).Seconds())
		stop()
	}
	return out
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
