package campaign

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

// benchFleet starts n boards whose every reply comes rtt late (a modelled
// round trip) and which reboot for down after an update.
func benchFleet(b *testing.B, n int, rtt, down time.Duration, rate int) *fleet {
	b.Helper()
	f := &fleet{roster: NewRoster(), sims: map[string]*otasim.Device{}}
	for i := range n {
		name := fmt.Sprintf("b%02d", i)
		id := "bench/" + name
		var addr string
		d, err := otasim.New(otasim.Config{Name: name, ReceiveTimeout: 10 * time.Second, Faults: otasim.Faults{ReplyDelay: rtt, ReadRate: rate},
			Reboot: &otasim.Reboot{Version: "1", Down: down, OnAnnounce: func(up bool, v string) {
				if up {
					f.roster.Seen(id, addr, v)
				} else {
					f.roster.Gone(id)
				}
			}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		addr = d.Addr().String()
		f.roster.Seen(id, addr, "1")
		f.sims[name] = d
		f.boards = append(f.boards, Board{ID: id, Name: name, Protocol: "arduino-ota", Address: addr, Chip: "esp32", Version: "1"})
	}
	return f
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCampaign50 measures, in one run, one upload to one board and a
// campaign over 50 boards, 16 at a time (canary 1), every reply 20 ms late,
// with boards that take data as fast as loopback allows ("unlimited": the
// host's CPU is the limit, simulators included) and at 400 KiB/s (about
// what an ESP32 writes to flash during OTA, so the boards are the limit).
// The bound: campaign ≤ 1.5 × ceil(50/16) × one upload, with the
// confirmation wait excluded (confirm 0) and measured separately
// (confirm-ms: mean time from accepted to confirmed, with a 200 ms reboot).
// CPU is this process's (simulators included).
//
//	go test ./internal/ops/campaign -run '^$' -bench Campaign50 -benchtime 3x
func BenchmarkCampaign50(b *testing.B) {
	b.Run("unlimited", func(b *testing.B) { benchCampaign(b, 0) })
	b.Run("device-400KiBps", func(b *testing.B) { benchCampaign(b, 400<<10) })
}

func benchCampaign(b *testing.B, rate int) {
	const boards, parallel = 50, 16
	rtt := 20 * time.Millisecond
	p := filepath.Join(b.TempDir(), "app.bin")
	if err := os.WriteFile(p, ops.DemoAppImage(firmware.ChipESP32, "bench", "2", 256<<10), 0o644); err != nil {
		b.Fatal(err)
	}
	img, data, err := LoadImage(p)
	if err != nil {
		b.Fatal(err)
	}
	flashers := map[string]Flasher{"arduino-ota": ArduinoOTA{}}
	ctx := context.Background()
	var single, camp, confirm, cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		one := benchFleet(b, 1, rtt, 0, rate)
		fl := benchFleet(b, boards, rtt, 200*time.Millisecond, rate)
		b.StartTimer()

		t0 := time.Now()
		if _, err := flashers["arduino-ota"].Flash(ctx, one.boards[0], img, data, nil); err != nil {
			b.Fatal(err)
		}
		single += time.Since(t0)

		plan, err := Plan(fl.boards, []Image{img}, Settings{Canary: 1, Parallel: parallel, Confirm: 0}, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		r := &Runner{Flashers: flashers, Images: map[string][]byte{img.SHA256: data}}
		c0, t1 := cpuTime(), time.Now()
		if err := r.Run(ctx, plan); err != nil {
			b.Fatal(err)
		}
		camp += time.Since(t1)
		cpu += cpuTime() - c0
		if s := plan.Summarize(); s.Uploaded != boards {
			b.Fatalf("uploaded %d of %d: %+v", s.Uploaded, boards, s)
		}

		// Confirmation, separately: the same fleet again (now on "2"),
		// with an image "3", confirm on.
		b.StopTimer()
		p3 := filepath.Join(b.TempDir(), "app3.bin")
		os.WriteFile(p3, ops.DemoAppImage(firmware.ChipESP32, "bench", "3", 256<<10), 0o644)
		img3, data3, _ := LoadImage(p3)
		plan3, _ := Plan(fl.boards, []Image{img3}, Settings{Canary: 1, Parallel: parallel, Confirm: 30 * time.Second}, time.Now())
		fl3 := &Runner{Flashers: flashers, Presence: fl.roster, Images: map[string][]byte{img3.SHA256: data3}}
		fl3.Run(ctx, plan3)
		var sum int64
		for _, row := range plan3.Rows {
			if row.State != Confirmed {
				b.Fatalf("%s: %s %s", row.Board.Name, row.State, row.Message)
			}
			sum += row.ConfirmMS
		}
		confirm += time.Duration(sum/int64(len(plan3.Rows))) * time.Millisecond
		b.StartTimer()
	}
	n := float64(b.N)
	waves := math.Ceil(boards / float64(parallel))
	b.ReportMetric(float64(single.Milliseconds())/n, "one-upload-ms")
	b.ReportMetric(float64(camp.Milliseconds())/n, "campaign-ms")
	b.ReportMetric(float64(camp)/(waves*float64(single)), "x-bound-unit")
	b.ReportMetric(float64(confirm.Milliseconds())/n, "confirm-ms")
	b.ReportMetric(float64(cpu.Milliseconds())/n, "cpu-ms")
	b.SetBytes(int64(len(data)) * boards)
}
