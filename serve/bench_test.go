package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/espdeck/espdeck/internal/pki"
)

const (
	benchBoards    = 50
	benchImageSize = 1 << 20
	benchRange     = 4 << 10
)

// benchServer starts handler behind the bench TLS configuration on
// loopback and returns its address.
func benchServer(b *testing.B, h http.Handler, conf *tls.Config) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := HTTPServer(h, conf, nil)
	go func() { _ = hs.ServeTLS(CountingListener(ln), "", "") }()
	b.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// board is one simulated device: its own loopback source address (so the
// server sees 50 different boards, as on a LAN) and no TLS session cache
// (mbedTLS in esp_https_ota does a full handshake per connection).
func board(i int, pool *tls.Config, keepAlive bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i+1))}}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     pool,
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 1,
	}}
}

// rangesDownload is esp_https_ota's partial download: HEAD, then 4 KiB
// ranges, a new connection (and full TLS handshake) for each.
func rangesDownload(c *http.Client, url string, want []byte) error {
	resp, err := c.Head(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	got := make([]byte, 0, len(want))
	for off := 0; off < len(want); off += benchRange {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, min(off+benchRange, len(want))-1))
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		got, err = appendBody(got, resp)
		if err != nil {
			return err
		}
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("reassembled %d bytes differ", len(got))
	}
	return nil
}

func wholeDownload(c *http.Client, url string, want []byte) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	got, err := appendBody(make([]byte, 0, len(want)), resp)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("downloaded %d bytes differ", len(got))
	}
	return nil
}

func appendBody(dst []byte, resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode != 200 && resp.StatusCode != 206 {
		return dst, fmt.Errorf("status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	return append(dst, b...), err
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPull compares espdeck's handler with Go's http.FileServer over
// the same folder and TLS configuration: 50 boards at once each fetching a
// 1 MiB image, by 4 KiB ranges on a new connection per range (the
// esp_https_ota worst case) and whole. Every iteration runs both servers
// back to back (alternating which goes first), so load from other
// processes on the machine hits both alike; the metrics are the sums over
// all iterations and their ratio. CPU is the whole process (server and
// simulated boards, as both run here).
func BenchmarkPull(b *testing.B) {
	dir := b.TempDir()
	img := appImage("bench", benchImageSize-400)
	if err := os.WriteFile(filepath.Join(dir, "fw.bin"), img, 0o644); err != nil {
		b.Fatal(err)
	}
	ca, _, err := pki.Init(filepath.Join(b.TempDir(), "pki"))
	if err != nil {
		b.Fatal(err)
	}
	cert, _, err := ca.ServerCertificate(pki.Names{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		b.Fatal(err)
	}
	conf := pki.TLSConfig(cert)
	clientConf := &tls.Config{RootCAs: ca.ClientPool(), ServerName: "127.0.0.1"}
	srv, err := New(context.Background(), Options{Dir: dir, IdleTimeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	urls := []string{
		"https://" + benchServer(b, srv, conf) + "/fw.bin",
		"https://" + benchServer(b, http.FileServer(http.Dir(dir)), conf) + "/fw.bin",
	}
	modes := []struct {
		name      string
		keepAlive bool
		get       func(*http.Client, string, []byte) error
	}{
		{"ranges4k-newconn", false, rangesDownload},
		{"whole", true, wholeDownload},
	}
	fleet := func(b *testing.B, url string, keepAlive bool, get func(*http.Client, string, []byte) error) (wall, cpu time.Duration) {
		t0, c0 := time.Now(), cpuTime()
		var wg sync.WaitGroup
		errs := make(chan error, benchBoards)
		for i := range benchBoards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := board(i, clientConf, keepAlive)
				defer c.CloseIdleConnections()
				if err := get(c, url, img); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return time.Since(t0), cpuTime() - c0
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(2 * benchBoards * len(img)))
			var wall, cpu [2]time.Duration
			n := 0
			for b.Loop() {
				for k := range 2 {
					which := (k + n) % 2 // alternate who goes first
					w, c := fleet(b, urls[which], m.keepAlive, m.get)
					wall[which] += w
					cpu[which] += c
				}
				n++
			}
			b.ReportMetric(wall[0].Seconds()/float64(n), "espdeck-s/op")
			b.ReportMetric(wall[1].Seconds()/float64(n), "fileserver-s/op")
			b.ReportMetric(wall[0].Seconds()/wall[1].Seconds(), "wall-ratio")
			b.ReportMetric(cpu[0].Seconds()/float64(n), "espdeck-cpu-s/op")
			b.ReportMetric(cpu[1].Seconds()/float64(n), "fileserver-cpu-s/op")
			b.ReportMetric(cpu[0].Seconds()/cpu[1].Seconds(), "cpu-ratio")
		})
	}
}
