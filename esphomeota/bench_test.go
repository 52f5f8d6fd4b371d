package esphomeota

// Throughput over a modelled network path: ours against an ESPHome-style
// stop-and-wait uploader (one 8 KiB block, then wait for its CHUNK_OK) and
// the window-limited bound, side by side.
//
//	go test -run '^$' -bench Upload1MiB -benchtime 1x ./esphomeota
//
// The kernel here has no netem, so a proxy (internal/testnet) models the
// path: it delays every byte by half the round trip in each direction and
// lets at most deviceWindow bytes be in flight towards the device (lwIP's
// TCP_WND on an ESP, 4 × 1436), returning window credit one round trip
// after the bytes left, so a sender is limited by window/RTT as on a real
// Wi-Fi path. The simulated device's own socket receive buffer is set to
// the same size.

import (
	"bufio"
	"context"
	"crypto/md5"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/internal/testnet"
)

// deviceWindow is the receive window of an ESP (lwIP TCP_WND).
const deviceWindow = 5744

// stopAndWait uploads the way ESPHome's own uploader does: plaintext, no
// password, version 2, one 8 KiB block and then a blocking read of its
// CHUNK_OK. It is written from the protocol page, not from our client.
func stopAndWait(addr string, image []byte) error {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	expect := func(want byte) error {
		b, err := br.ReadByte()
		if err != nil {
			return err
		}
		if b != want {
			return fmt.Errorf("got 0x%02X, want 0x%02X", b, want)
		}
		return nil
	}
	c.Write([]byte{0x6C, 0x26, 0xF7, 0x5C, 0x45})
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr != [2]byte{0, 2} {
		return fmt.Errorf("greeting % X: %v", hdr, err)
	}
	c.Write([]byte{0x06}) // SHA-256 auth + extended, no gzip
	if err := expect(0x48); err != nil {
		return err
	}
	br.ReadByte() // server flags
	if err := expect(0x41); err != nil {
		return err
	}
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(image)))
	c.Write(append([]byte{0x00}, size[:]...))
	if err := expect(0x42); err != nil {
		return err
	}
	sum := md5.Sum(image)
	c.Write([]byte(hex.EncodeToString(sum[:])))
	if err := expect(0x43); err != nil {
		return err
	}
	for off := 0; off < len(image); off += 8192 {
		if _, err := c.Write(image[off:min(off+8192, len(image))]); err != nil {
			return err
		}
		if err := expect(0x47); err != nil {
			return err
		}
	}
	if err := expect(0x44); err != nil {
		return err
	}
	if err := expect(0x45); err != nil {
		return err
	}
	c.Write([]byte{0x00})
	return nil
}

func benchDevice(tb testing.TB) *esphomesim.Device {
	return startSim(tb, esphomesim.Config{ReceiveWindow: deviceWindow, SlotSize: 4 << 20})
}

// setupPath builds a delayed path to a fresh simulated device and returns
// a function that runs one upload of image over it.
func setupPath(tb testing.TB, method string, rtt time.Duration, image []byte) func() error {
	dev := benchDevice(tb)
	p := testnet.NewProxy(tb, testnet.Config{RTT: rtt, Window: deviceWindow, Backend: dev.Addr().String})
	switch method {
	case "espdeck":
		return func() error {
			_, err := Upload(context.Background(), Target{Host: "127.0.0.1", Port: p.Port()}, image, Options{Retries: -1})
			return err
		}
	case "stop-and-wait":
		return func() error { return stopAndWait(fmt.Sprintf("127.0.0.1:%d", p.Port()), image) }
	}
	tb.Fatalf("unknown method %s", method)
	return nil
}

func BenchmarkUpload1MiB(b *testing.B) {
	image := appImage(1 << 20)
	for _, rtt := range []time.Duration{0, 20 * time.Millisecond} {
		for _, method := range []string{"espdeck", "stop-and-wait"} {
			b.Run(fmt.Sprintf("rtt=%s/%s", rtt, method), func(b *testing.B) {
				upload := setupPath(b, method, rtt, image)
				b.SetBytes(int64(len(image)))
				for b.Loop() {
					if err := upload(); err != nil {
						b.Fatal(err)
					}
				}
				if rtt > 0 {
					// The window-limited bound: bytes / (window / RTT).
					bound := time.Duration(float64(len(image)) / (float64(deviceWindow) / rtt.Seconds()) * float64(time.Second))
					perOp := b.Elapsed() / time.Duration(b.N)
					b.ReportMetric(float64(bound.Milliseconds()), "bound-ms")
					b.ReportMetric(float64(perOp)/float64(bound), "x-bound")
				}
			})
		}
	}
}

// TestBenchHarness keeps the benchmark's proxy and baseline honest: each
// method moves the whole image through a delayed path, twice.
func TestBenchHarness(t *testing.T) {
	image := appImage(48 << 10)
	for _, method := range []string{"espdeck", "stop-and-wait"} {
		t.Run(method, func(t *testing.T) {
			upload := setupPath(t, method, 2*time.Millisecond, image)
			for range 2 {
				if err := upload(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// xtensaImages returns real Xtensa firmware from the shared fixtures: an
// ESP-IDF app image, and the loadable sections of an application ELF laid
// out as an image would carry them. Missing fixtures are skipped.
func xtensaImages(tb testing.TB) map[string][]byte {
	out := map[string][]byte{}
	if b, err := os.ReadFile("../../shared/fixtures/images/esp_idf_blink_esp32s2.bin"); err == nil {
		out["esp_idf_blink_esp32s2.bin"] = b
	}
	if f, err := elf.Open("../../shared/fixtures/elf/esp32-app-template.elf"); err == nil {
		defer f.Close()
		img := []byte{0xE9, 0, 0, 0}
		for _, s := range f.Sections {
			if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_ALLOC != 0 {
				data, err := s.Data()
				if err == nil {
					img = append(img, data...)
				}
			}
		}
		out["esp32-app-template.elf (loadable sections)"] = img
	}
	if len(out) == 0 {
		tb.Skip("../shared/fixtures not present")
	}
	return out
}

// TestGzipOnTheWire: with a device that takes gzip (ESP8266 firmware),
// real Xtensa firmware costs at most 0.7 of its size on the wire, and the
// device inflates it back to the image.
func TestGzipOnTheWire(t *testing.T) {
	for name, image := range xtensaImages(t) {
		t.Run(name, func(t *testing.T) {
			d := startSim(t, esphomesim.Config{Platform: esphomesim.PlatformESP8266, Gzip: true, SlotSize: 4 << 20})
			res, err := Upload(context.Background(), targetOf(d), image, Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec := lastRecord(t, d, 1)
			ratio := float64(res.Bytes) / float64(len(image))
			t.Logf("%s: %d bytes, %d on the wire, ratio %.3f", name, len(image), res.Bytes, ratio)
			if ratio > 0.7 {
				t.Errorf("ratio %.3f > 0.7", ratio)
			}
			if string(rec.Image) != string(image) {
				t.Error("the device did not inflate to the image")
			}
		})
	}
}
