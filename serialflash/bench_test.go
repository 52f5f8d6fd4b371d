package serialflash_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// Flash timing the benchmark's simulator models (a common SPI NOR part):
// erasing a 4 KB sector and programming one byte.
const (
	benchErase   = 15 * time.Millisecond
	benchProgram = 1500 * time.Nanosecond
)

// benchImage returns 1 MiB of firmware: the real ESP-IDF app from the
// fixtures repeated (each copy is farther apart than zlib's window, so it
// compresses like the original), or similar synthetic data.
func benchImage(b *testing.B) ([]byte, string) {
	const size = 1 << 20
	img, err := os.ReadFile(filepath.Join("..", "..", "shared", "fixtures", "images", "esp_idf_blink_esp32s2.bin"))
	src := "esp_idf_blink_esp32s2.bin repeated"
	if err != nil {
		img, src = firmwareLike(size, 42), "synthetic firmware-like data"
	}
	out := make([]byte, 0, size)
	for len(out) < size {
		out = append(out, img...)
	}
	return out[:size], src
}

// wireLimit is the fastest a write can go: the bytes that must cross the
// wire at 10 bits per byte plus the flash time the simulator models
// (erase every sector, program every byte, read it back for the MD5).
func wireLimit(data []byte, baud int, compressed bool) (time.Duration, int) {
	n := len(data)
	if compressed {
		var zb bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&zb, zlib.BestCompression)
		zw.Write(data)
		zw.Close()
		n = zb.Len()
	}
	wire := time.Duration(n) * 10 * time.Second / time.Duration(baud)
	sectors := (len(data) + 0xFFF) / 0x1000
	flash := time.Duration(sectors)*benchErase + time.Duration(len(data))*benchProgram + time.Duration(len(data))*benchProgram/8
	return wire + flash, n
}

// BenchmarkWrite1MiB writes 1 MiB through the baud-paced simulated ROM at
// 115200 and 921600 Bd and reports the time relative to the wire limit
// (x_limit; 1.00 = as fast as the wire and the flash allow). The
// uncompressed run is the baseline: what esptool --no-stub does by default.
//
//	go test -run '^$' -bench Write1MiB -benchtime 1x ./serialflash/
func BenchmarkWrite1MiB(b *testing.B) {
	data, src := benchImage(b)
	b.Logf("data: %s", src)
	for _, tc := range []struct {
		name       string
		baud       int
		compressed bool
	}{
		{"compressed/115200", 115200, true},
		{"compressed/921600", 921600, true},
		{"plain-baseline/921600", 921600, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			limit, wireBytes := wireLimit(data, tc.baud, tc.compressed)
			b.SetBytes(int64(len(data)))
			var total time.Duration
			for range b.N {
				b.StopTimer()
				path, _, stop, err := romsim.StartPTY(context.Background(), romsim.Config{
					Chip: firmware.ChipESP32, Pace: true, EraseSectorTime: benchErase, ProgramByteTime: benchProgram})
				if err != nil {
					b.Fatal(err)
				}
				opts := serialflash.Options{Before: serialflash.ResetNone, Baud: tc.baud, NoCompress: !tc.compressed,
					SyncTimeout: 300 * time.Millisecond}
				f, err := serialflash.Open(context.Background(), path, opts)
				if err != nil {
					stop()
					b.Fatal(err)
				}
				if f.Baud() != tc.baud {
					b.Fatalf("link at %d Bd, want %d", f.Baud(), tc.baud)
				}
				b.StartTimer()
				start := time.Now()
				err = f.WriteFlash(context.Background(), []serialflash.Region{{Addr: 0x10000, Data: data}})
				total += time.Since(start)
				b.StopTimer()
				f.Close()
				stop()
				if err != nil {
					b.Fatal(err)
				}
			}
			per := total / time.Duration(b.N)
			b.ReportMetric(per.Seconds(), "s/write")
			b.ReportMetric(limit.Seconds(), "limit_s")
			b.ReportMetric(per.Seconds()/limit.Seconds(), "x_limit")
			b.ReportMetric(float64(wireBytes), "wire_bytes")
			b.Logf("%s: %v for %d bytes (%d on the wire), limit %v, ratio %.3f", tc.name, per.Round(time.Millisecond), len(data), wireBytes, limit.Round(time.Millisecond), per.Seconds()/limit.Seconds())
		})
	}
}

// benchWrite opens a fresh baud-paced simulated ESP32 (flash preloaded
// with pre at 0x10000 when given), writes data at 0x10000 and returns the
// time of the write alone.
func benchWrite(b *testing.B, baud int, pre, data []byte, opts serialflash.Options, faults romsim.Faults) (time.Duration, serialflash.WriteResult) {
	b.Helper()
	path, rom, stop, err := romsim.StartPTY(context.Background(), romsim.Config{
		Chip: firmware.ChipESP32, Pace: true, EraseSectorTime: benchErase, ProgramByteTime: benchProgram})
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	if pre != nil {
		if err := rom.LoadFlash(0x10000, pre); err != nil {
			b.Fatal(err)
		}
	}
	opts.Before, opts.Baud, opts.SyncTimeout = serialflash.ResetNone, baud, 300*time.Millisecond
	f, err := serialflash.Open(context.Background(), path, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if f.Baud() != baud {
		b.Fatalf("link at %d Bd, want %d", f.Baud(), baud)
	}
	rom.SetFaults(faults)
	start := time.Now()
	res, err := f.Write(context.Background(), []serialflash.Region{{Addr: 0x10000, Data: data}})
	took := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if got := rom.Flash()[0x10000 : 0x10000+len(data)]; !bytes.Equal(got, data) {
		b.Fatal("the flash does not hold the data")
	}
	return took, res
}

// BenchmarkSerialV2 measures, side by side at each rate, through the
// baud-paced simulated ROM (which models the ESP32's 32 KiB inflate
// window):
//
//	full       a 1 MiB app written whole (--no-diff), safe compression
//	diff5      the same app re-flashed over its previous version with 5 %
//	           of its sectors changed (only those are written)
//	unsafe     the old policy: compress without padding (damages the
//	           flash after the region on a real ESP32; the cost of safety
//	           is full/unsafe)
//	resumed    the full write with one block failing at 50 %, resumed
//
//	go test -run '^$' -bench SerialV2 -benchtime 3x ./serialflash/
func BenchmarkSerialV2(b *testing.B) {
	data, src := benchImage(b)
	b.Logf("data: %s", src)
	// The previous version differs in 5 % of the sectors, spread out.
	old := append([]byte(nil), data...)
	sectors := len(data) / 0x1000
	changed := sectors * 5 / 100
	for i := range changed {
		s := (i*sectors/changed + 3) % sectors
		old[s*0x1000+100] ^= 0xFF
	}
	// The resumed write: which compressed block is the middle one.
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, zlib.BestCompression)
	zw.Write(append(append([]byte(nil), data...), bytes.Repeat([]byte{0xFF}, 0x8000)...))
	zw.Close()
	middle := (zb.Len() + 0x3FF) / 0x400 / 2
	for _, baud := range []int{921600, 115200} {
		b.Run(fmt.Sprint(baud), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			// The four writes run interleaved, once each per iteration, so
			// a change in the machine's load hits them alike; the metrics
			// are the means over the iterations.
			var full, diff, unsafe, resumed time.Duration
			var skipped uint32
			for range b.N {
				t, _ := benchWrite(b, baud, nil, data, serialflash.Options{NoDiff: true}, romsim.Faults{})
				full += t
				t, dres := benchWrite(b, baud, old, data, serialflash.Options{}, romsim.Faults{})
				diff += t
				skipped = dres.Regions[0].Skipped
				t, _ = benchWrite(b, baud, nil, data, serialflash.UnsafeAlwaysCompress(serialflash.Options{NoDiff: true}), romsim.Faults{})
				unsafe += t
				t, rres := benchWrite(b, baud, nil, data, serialflash.Options{NoDiff: true},
					romsim.Faults{ErrorDataNth: middle, ErrorCode: 0x05})
				resumed += t
				if rres.Regions[0].Resumes != 1 {
					b.Fatalf("resumes %d, want 1", rres.Regions[0].Resumes)
				}
			}
			n := time.Duration(b.N)
			full, diff, unsafe, resumed = full/n, diff/n, unsafe/n, resumed/n
			b.ReportMetric(full.Seconds(), "full_s")
			b.ReportMetric(diff.Seconds(), "diff5_s")
			b.ReportMetric(diff.Seconds()/full.Seconds(), "diff5_x")
			b.ReportMetric(unsafe.Seconds(), "unsafe_s")
			b.ReportMetric(full.Seconds()/unsafe.Seconds(), "safety_x")
			b.ReportMetric(resumed.Seconds(), "resumed_s")
			b.ReportMetric(resumed.Seconds()/full.Seconds(), "resumed_x")
			b.Logf("%d Bd, mean of %d: full %v; diff5 %v (%.3fx, %d of %d bytes skipped); unsafe %v (safe costs %.3fx); resumed %v (%.3fx)",
				baud, b.N, full.Round(time.Millisecond), diff.Round(time.Millisecond), diff.Seconds()/full.Seconds(),
				skipped, len(data), unsafe.Round(time.Millisecond), full.Seconds()/unsafe.Seconds(),
				resumed.Round(time.Millisecond), resumed.Seconds()/full.Seconds())
		})
	}
}
