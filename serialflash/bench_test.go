package serialflash_test

import (
	"bytes"
	"compress/zlib"
	"context"
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
