package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/pki"
)

// bench is a running server over real TLS on loopback, with its CA, its
// image folder and its audit log.
type bench struct {
	t     *testing.T
	dir   string
	srv   *Server
	hs    *httptest.Server
	ca    *pki.Authority
	audit string
	log   *audit.Log
	seen  int           // audit records already waited for
	added chan struct{} // one token per record appended
}

// notifying passes records to the log and then says so, so a test waits
// for the record of a download instead of guessing when it was written.
type notifying struct {
	log   *audit.Log
	added chan struct{}
}

func (n notifying) Append(ctx context.Context, r audit.Record) error {
	err := n.log.Append(ctx, r)
	n.added <- struct{}{}
	return err
}

func newBench(t *testing.T, opt Options, files map[string][]byte) *bench {
	t.Helper()
	b := &bench{t: t, dir: t.TempDir()}
	for name, data := range files {
		b.write(name, data)
	}
	var err error
	b.ca, _, err = pki.Init(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := b.ca.ServerCertificate(pki.Names{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	b.audit = filepath.Join(t.TempDir(), "audit.jsonl")
	if b.log, err = audit.Open(b.audit); err != nil {
		t.Fatal(err)
	}
	b.added = make(chan struct{}, 1024)
	opt.Dir, opt.Audit = b.dir, notifying{b.log, b.added}
	if b.srv, err = New(context.Background(), opt); err != nil {
		t.Fatal(err)
	}
	b.hs = httptest.NewUnstartedServer(b.srv)
	b.hs.Config = HTTPServer(b.srv, nil, nil)
	b.hs.TLS = pki.TLSConfig(cert)
	b.hs.Listener = CountingListener(b.hs.Listener)
	b.hs.StartTLS()
	t.Cleanup(func() {
		b.hs.Close()
		b.srv.Close()
		b.log.Close()
	})
	return b
}

func (b *bench) write(name string, data []byte) {
	b.t.Helper()
	// Write then rename: the way a build drops a new image in place.
	tmp := filepath.Join(b.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.dir, name)); err != nil {
		b.t.Fatal(err)
	}
}

// client trusts the bench CA and nothing else; keepAlive false opens a new
// connection per request, as some esp_https_ota firmware does.
func (b *bench) client(keepAlive bool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: b.ca.ClientPool(), MinVersion: tls.VersionTLS12},
		DisableKeepAlives: !keepAlive,
		ForceAttemptHTTP2: false,
	}}
}

func (b *bench) url(name string) string { return b.hs.URL + "/" + name }

// records waits until the log holds want records (the server writes a
// record after the last byte went out, which may be after the client read
// it) and returns them all.
func (b *bench) records(want int) []audit.Record {
	b.t.Helper()
	deadline := time.After(time.Minute) // a hang guard, not a timing assertion
	for ; b.seen < want; b.seen++ {
		select {
		case <-b.added:
		case <-deadline:
			b.t.Fatalf("only %d of %d audit records were written", b.seen, want)
		}
	}
	f, err := os.Open(b.audit)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	recs, skipped, err := audit.Read(f, audit.Filter{})
	if err != nil || skipped != 0 {
		b.t.Fatalf("audit log: %v, %d lines skipped", err, skipped)
	}
	// A download is recorded once its last bytes are acknowledged, which
	// may be after a later request was answered; its record's time is when
	// it began, so sorting by time gives the order of the downloads.
	slices.SortStableFunc(recs, func(a, b audit.Record) int { return a.Time.Compare(b.Time) })
	return recs
}

func appImage(version string, size int) []byte {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*7 + len(version))
	}
	return firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32C3, Entry: 0x40380000,
		AppDesc:  &firmware.AppDesc{Version: version, ProjectName: "greenhouse"},
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x3FC80000, Data: payload}}})
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func get(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s body: %v", method, url, err)
	}
	return resp, body
}

func TestPinnedClientWholeAndRanges(t *testing.T) {
	img := appImage("1.0.0", 100_000)
	b := newBench(t, Options{}, map[string][]byte{"fw.bin": img})
	c := b.client(true)
	resp, body := get(t, c, "GET", b.url("fw.bin"), nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, img) {
		t.Fatalf("whole: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp.ContentLength != int64(len(img)) || len(resp.TransferEncoding) != 0 || resp.Header.Get("x-MD5") != md5hex(img) {
		t.Errorf("headers: length %d, TE %v, x-MD5 %q", resp.ContentLength, resp.TransferEncoding, resp.Header.Get("x-MD5"))
	}
	for _, tc := range []struct {
		rng        string
		from, to   int
		contentRng string
	}{
		{"bytes=0-4095", 0, 4096, "bytes 0-4095/100"},
		{"bytes=4096-", 4096, len(img), "bytes 4096-"},
		{"bytes=-10", len(img) - 10, len(img), ""},
		{"bytes=99000-999999", 99000, len(img), ""},
	} {
		resp, body := get(t, c, "GET", b.url("fw.bin"), map[string]string{"Range": tc.rng})
		if resp.StatusCode != 206 || !bytes.Equal(body, img[tc.from:tc.to]) || resp.ContentLength != int64(tc.to-tc.from) {
			t.Errorf("%s: %d, %d bytes", tc.rng, resp.StatusCode, len(body))
		}
		want := fmt.Sprintf("bytes %d-%d/%d", tc.from, tc.to-1, len(img))
		if got := resp.Header.Get("Content-Range"); got != want {
			t.Errorf("%s: Content-Range %q, want %q", tc.rng, got, want)
		}
	}
	resp, _ = get(t, c, "GET", b.url("fw.bin"), map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(img))})
	if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes */%d", len(img)) {
		t.Errorf("past the end: %d %q", resp.StatusCode, resp.Header.Get("Content-Range"))
	}

	// A client pinned to another CA never gets a byte.
	other, _, _ := pki.Init(t.TempDir())
	oc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: other.ClientPool()}}}
	if r, err := oc.Get(b.url("fw.bin")); err == nil {
		r.Body.Close()
		t.Error("a client trusting another CA was served")
	}
}

// arduinoGET sends exactly what arduino-esp32's HTTPUpdate sends (HTTP/1.0
// via useHTTP10, its User-Agent and x-ESP32-* headers) over a fresh TLS
// connection and reads the response.
func arduinoGET(t *testing.T, b *bench, path, mac, sketchMD5 string) (*http.Response, []byte) {
	t.Helper()
	conn, err := tls.Dial("tcp", b.hs.Listener.Addr().String(), &tls.Config{RootCAs: b.ca.ClientPool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := b.hs.Listener.Addr().String()
	req := "GET /" + path + " HTTP/1.0\r\n" +
		"Host: " + host + "\r\n" +
		"User-Agent: ESP32-http-Update\r\n" +
		"Connection: close\r\n" +
		"Cache-Control: no-cache\r\n" +
		"x-ESP32-STA-MAC: " + mac + "\r\n" +
		"x-ESP32-AP-MAC: " + mac + "\r\n" +
		"x-ESP32-free-space: 1966080\r\n" +
		"x-ESP32-sketch-size: 912384\r\n" +
		"x-ESP32-sketch-md5: " + sketchMD5 + "\r\n" +
		"x-ESP32-chip-size: 4194304\r\n" +
		"x-ESP32-sdk-version: v5.1.4\r\n" +
		"x-ESP32-mode: sketch\r\n" +
		"x-ESP32-version: 0.9.0\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestArduinoHTTPUpdate(t *testing.T) {
	img := appImage("1.1.0", 50_000)
	b := newBench(t, Options{}, map[string][]byte{"fw.bin": img})
	mac := "24:0A:C4:12:34:56"
	resp, body := arduinoGET(t, b, "fw.bin", mac, md5hex([]byte("the old sketch")))
	if resp.StatusCode != 200 || !bytes.Equal(body, img) || body[0] != 0xE9 {
		t.Fatalf("update: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp.ContentLength != int64(len(img)) || resp.Header.Get("Content-Length") == "" || len(resp.TransferEncoding) != 0 {
		t.Errorf("HTTP/1.0 needs a Content-Length and no chunking: %d %v", resp.ContentLength, resp.TransferEncoding)
	}
	if resp.Header.Get("x-MD5") != md5hex(img) {
		t.Errorf("x-MD5 %q", resp.Header.Get("x-MD5"))
	}
	// After the update the board reports the new sketch's MD5: no update.
	resp, body = arduinoGET(t, b, "fw.bin", mac, md5hex(img))
	if resp.StatusCode != 304 || len(body) != 0 {
		t.Fatalf("up to date: %d, %d bytes", resp.StatusCode, len(body))
	}
	recs := b.records(2)
	if len(recs) != 2 {
		t.Fatalf("%d audit records, want 2: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Kind != audit.KindDownload || r.MAC != "24:0a:c4:12:34:56" || !r.Complete || !r.TLS || r.Status != 200 || r.Bytes != int64(len(img)) ||
		r.FromVersion != "0.9.0" || r.ToVersion != "1.1.0" || r.ImageSHA256 == "" || r.Result != "ok" || !strings.HasPrefix(r.Address, "127.0.0.1:") {
		t.Errorf("download record %+v", r)
	}
	if recs[1].Status != 304 || recs[1].Result != "not_modified" || recs[1].Bytes != 0 {
		t.Errorf("304 record %+v", recs[1])
	}
}

// espHTTPSOTA downloads like esp_https_ota with partial_http_download: a
// HEAD for the length, then Range GETs of step bytes from offset, each on
// a new connection. stopAfter > 0 abandons the download after that many
// bytes, mid-range, the way a board losing Wi-Fi does.
func espHTTPSOTA(t *testing.T, b *bench, name string, have []byte, step, stopAfter int) []byte {
	t.Helper()
	c := b.client(false)
	resp, _ := get(t, c, "HEAD", b.url(name), nil)
	if resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Fatalf("HEAD: %d length %d", resp.StatusCode, resp.ContentLength)
	}
	size := int(resp.ContentLength)
	for len(have) < size {
		end := min(len(have)+step, size) - 1
		req, _ := http.NewRequest("GET", b.url(name), nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", len(have), end))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 206 || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", len(have), end, size) {
			t.Fatalf("range at %d: %d %q", len(have), resp.StatusCode, resp.Header.Get("Content-Range"))
		}
		want := end + 1 - len(have)
		if stopAfter > 0 && len(have)+want > stopAfter {
			want = stopAfter - len(have)
		}
		part := make([]byte, want)
		if _, err := io.ReadFull(resp.Body, part); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		have = append(have, part...)
		if stopAfter > 0 && len(have) >= stopAfter {
			return have
		}
	}
	return have
}

func TestESPHTTPSOTAPartialDownload(t *testing.T) {
	img := appImage("2.0.0", 70_000)
	b := newBench(t, Options{CloseAfterRange: true}, map[string][]byte{"app.bin": img})
	got := espHTTPSOTA(t, b, "app.bin", nil, 4096, 0)
	if !bytes.Equal(got, img) {
		t.Fatal("reassembled image differs")
	}
	recs := b.records(1)
	if len(recs) != 1 {
		t.Fatalf("%d records, want one for the whole download: %+v", len(recs), recs)
	}
	r := recs[0]
	wantRanges := (len(img) + 4095) / 4096
	if !r.Complete || r.Result != "ok" || len(r.Ranges) != wantRanges || !slices.Contains(r.Ranges, "bytes=0-4095") || r.Bytes != int64(len(img)) || r.Status != 206 {
		t.Errorf("record: complete %v, %d ranges (want %d), %d bytes, status %d", r.Complete, len(r.Ranges), wantRanges, r.Bytes, r.Status)
	}
	d := b.srv.Downloads()
	if len(d) != 1 || !d[0].Done || !d[0].Complete || d[0].Ranges != wantRanges || d[0].Covered != int64(len(img)) {
		t.Errorf("downloads view %+v", d)
	}
}

func TestCloseAfterRange(t *testing.T) {
	img := appImage("2.0.1", 20_000)
	for _, closeIt := range []bool{false, true} {
		b := newBench(t, Options{CloseAfterRange: closeIt}, map[string][]byte{"app.bin": img})
		resp, _ := get(t, b.client(true), "GET", b.url("app.bin"), map[string]string{"Range": "bytes=0-4095"})
		if resp.StatusCode != 206 || resp.Close != closeIt {
			t.Errorf("CloseAfterRange=%v: status %d, connection closed %v", closeIt, resp.StatusCode, resp.Close)
		}
	}
}

func TestResumedDownload(t *testing.T) {
	img := appImage("2.1.0", 60_000)
	b := newBench(t, Options{}, map[string][]byte{"app.bin": img})
	part := espHTTPSOTA(t, b, "app.bin", nil, 16384, 23_000) // drops mid-range
	if len(part) != 23_000 {
		t.Fatalf("partial %d", len(part))
	}
	// ota_resumption: same HEAD, then ranges from the byte already written.
	got := espHTTPSOTA(t, b, "app.bin", part, 16384, 0)
	if !bytes.Equal(got, img) {
		t.Fatal("resumed image differs")
	}
	recs := b.records(1)
	if len(recs) != 1 || !recs[0].Complete {
		t.Fatalf("records %+v", recs)
	}
	if !slices.Contains(recs[0].Ranges, "bytes=23000-39383") {
		t.Errorf("resumed range not recorded: %v", recs[0].Ranges)
	}
}

func TestMACAllowList(t *testing.T) {
	img := appImage("3.0", 10_000)
	b := newBench(t, Options{AllowMACs: []string{"24:0a:c4:00:00:01"}}, map[string][]byte{"fw.bin": img})
	resp, body := arduinoGET(t, b, "fw.bin", "24:0A:C4:00:00:02", "")
	if resp.StatusCode != 403 || bytes.Contains(body, img[:64]) {
		t.Errorf("other MAC: %d", resp.StatusCode)
	}
	resp, _ = get(t, b.client(true), "GET", b.url("fw.bin"), nil)
	if resp.StatusCode != 403 {
		t.Errorf("no MAC: %d", resp.StatusCode)
	}
	resp, body = arduinoGET(t, b, "fw.bin", "24:0A:C4:00:00:01", "")
	if resp.StatusCode != 200 || !bytes.Equal(body, img) {
		t.Errorf("allowed MAC: %d", resp.StatusCode)
	}
	recs := b.records(3)
	if len(recs) != 3 || recs[0].Status != 403 || recs[0].MAC != "24:0a:c4:00:00:02" || recs[0].Result != "forbidden" {
		t.Errorf("records %+v", recs)
	}
	if _, err := New(context.Background(), Options{Dir: b.dir, AllowMACs: []string{"not-a-mac"}}); err == nil {
		t.Error("a malformed allow-list entry was accepted")
	}
}

func TestSignedOnlyPolicy(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	unsigned := appImage("4.0", 9000)
	signed, err := firmware.Sign(unsigned, []crypto.Signer{key}, firmware.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byOther, _ := firmware.Sign(unsigned, []crypto.Signer{other}, firmware.SignOptions{})
	b := newBench(t, Options{Keys: []crypto.PublicKey{key.Public()}},
		map[string][]byte{"good.bin": signed, "plain.bin": unsigned, "other.bin": byOther})
	c := b.client(true)
	for _, name := range []string{"plain.bin", "other.bin"} {
		for _, h := range []map[string]string{nil, {"Range": "bytes=0-4095"}} {
			for _, m := range []string{"GET", "HEAD"} {
				resp, body := get(t, c, m, b.url(name), h)
				if resp.StatusCode != 403 || bytes.Contains(body, unsigned[:32]) || resp.Header.Get("x-MD5") != "" {
					t.Errorf("%s %s %v: %d, %d bytes", m, name, h, resp.StatusCode, len(body))
				}
			}
		}
		for _, m := range []string{"fota/", "esphome/"} {
			if resp, _ := get(t, c, "GET", b.url(m+name+".json"), nil); resp.StatusCode != 403 {
				t.Errorf("manifest %s%s: %d", m, name, resp.StatusCode)
			}
		}
	}
	resp, body := get(t, c, "GET", b.url("good.bin"), nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, signed) {
		t.Fatalf("signed image: %d", resp.StatusCode)
	}
	// The signed file is replaced by an unsigned one: refused from the next scan on.
	b.write("good.bin", appImage("4.1", 9000))
	if _, err := b.srv.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, c, "GET", b.url("good.bin"), nil); resp.StatusCode != 403 {
		t.Errorf("unsigned replacement served: %d", resp.StatusCode)
	}
	for _, r := range b.records(10) {
		if r.Image != "good.bin" && (r.Bytes != 0 || r.Result != "refused_by_policy") {
			t.Errorf("refused image record %+v", r)
		}
	}
}

func TestSwapMidDownload(t *testing.T) {
	oldImg, newImg := appImage("5.0", 40_000), appImage("5.1", 45_000)
	b := newBench(t, Options{}, map[string][]byte{"app.bin": oldImg})
	c := b.client(false)
	resp, _ := get(t, c, "HEAD", b.url("app.bin"), nil)
	size := int(resp.ContentLength)
	var got []byte
	for len(got) < size {
		if len(got) == 8192 {
			// A new build lands while the board is a third through.
			b.write("app.bin", newImg)
			if ch, err := b.srv.Rescan(context.Background()); err != nil || len(ch) != 1 {
				t.Fatalf("rescan: %v %v", ch, err)
			}
		}
		_, part := get(t, c, "GET", b.url("app.bin"), map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", len(got), min(len(got)+4096, size)-1)})
		got = append(got, part...)
	}
	if !bytes.Equal(got, oldImg) {
		t.Fatal("the download mixed two files")
	}
	// The next download is of the new file.
	if _, body := get(t, c, "GET", b.url("app.bin"), nil); !bytes.Equal(body, newImg) {
		t.Error("the new file is not served after the old download finished")
	}
	recs := b.records(2)
	if len(recs) != 2 || recs[0].ToVersion != "5.0" || !recs[0].Complete || recs[1].ToVersion != "5.1" {
		t.Errorf("records %+v", recs)
	}
}

func TestManifests(t *testing.T) {
	img := appImage("6.2.1", 5000)
	b := newBench(t, Options{}, map[string][]byte{"greenhouse.bin": img, "notes.txt": []byte("hello")})
	c := b.client(true)
	_, body := get(t, c, "GET", b.url("fota/greenhouse.bin.json"), nil)
	var f FOTAManifest
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if f.Type != "greenhouse" || f.Version != "6.2.1" || f.URL != b.url("greenhouse.bin") || f.Bin != "/greenhouse.bin" || f.Host != "127.0.0.1" || f.Port == 0 {
		t.Errorf("esp32FOTA manifest %+v", f)
	}
	_, body = get(t, c, "GET", b.url("esphome/greenhouse.bin.json"), nil)
	var e ESPHomeManifest
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatal(err)
	}
	if e.Version != "6.2.1" || len(e.Builds) != 1 || e.Builds[0].ChipFamily != "ESP32-C3" || e.Builds[0].OTA.MD5 != md5hex(img) || e.Builds[0].OTA.Path != b.url("greenhouse.bin") {
		t.Errorf("ESPHome manifest %+v", e)
	}
	// The manifest's URL downloads the image it describes.
	if _, got := get(t, c, "GET", e.Builds[0].OTA.Path, nil); md5hex(got) != e.Builds[0].OTA.MD5 {
		t.Error("manifest MD5 does not match the download")
	}
	_, body = get(t, c, "GET", b.hs.URL+"/", nil)
	var idx []IndexEntry
	if err := json.Unmarshal(body, &idx); err != nil || len(idx) != 2 {
		t.Fatalf("index: %v %s", err, body)
	}
	if resp, _ := get(t, c, "GET", b.url("fota/missing.bin.json"), nil); resp.StatusCode != 404 {
		t.Errorf("missing manifest: %d", resp.StatusCode)
	}
}

func TestHostileRequests(t *testing.T) {
	b := newBench(t, Options{}, map[string][]byte{"fw.bin": appImage("7", 3000)})
	secret := filepath.Join(filepath.Dir(b.dir), "secret.bin")
	_ = os.WriteFile(secret, []byte("do not serve"), 0o600)
	c := b.client(true)
	for _, p := range []string{"../secret.bin", "%2e%2e/secret.bin", "..%2fsecret.bin", ".fw.bin.tmp", "fota/../fw.bin"} {
		resp, body := get(t, c, "GET", b.hs.URL+"/"+p, nil)
		if resp.StatusCode == 200 && bytes.Contains(body, []byte("do not serve")) {
			t.Errorf("%s served a file outside the folder", p)
		}
	}
	req, _ := http.NewRequest("PUT", b.url("fw.bin"), strings.NewReader("x"))
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	img := appImage("7", 3000)
	for rng, want := range map[string]int{"bytes=5-2": 200, "bytes=a-b": 200, "bytes=0-1,5-6": 200, "items=0-5": 200, "bytes=-0": 416} {
		resp, body := get(t, c, "GET", b.url("fw.bin"), map[string]string{"Range": rng})
		if resp.StatusCode != want || (want == 200 && !bytes.Equal(body, img)) {
			t.Errorf("%s: %d with %d bytes, want %d", rng, resp.StatusCode, len(body), want)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-4095", "bytes=100-", "bytes=-5", "bytes=5-2", "bytes=0-1,2-3", "bytes= 7 - 9", "bytes=-0"} {
		f.Add(s, int64(10000))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		start, end, status, ok := parseRange(h, size)
		if !ok {
			return
		}
		if start < 0 || end > size || start > end {
			t.Fatalf("%q of %d: [%d,%d)", h, size, start, end)
		}
		if status == http.StatusOK && (start != 0 || end != size) {
			t.Fatalf("%q: 200 for a part", h)
		}
		if status == http.StatusPartialContent && start == end {
			t.Fatalf("%q: empty 206", h)
		}
	})
}

func FuzzAddSpan(f *testing.F) {
	f.Add([]byte{0, 10, 20, 30, 5, 25})
	f.Fuzz(func(t *testing.T, b []byte) {
		var spans []span
		set := map[int64]bool{}
		for i := 0; i+1 < len(b); i += 2 {
			from, to := int64(b[i]), int64(b[i+1])
			spans = addSpan(spans, from, to)
			for x := from; x < to; x++ {
				set[x] = true
			}
		}
		if coveredBytes(spans) != int64(len(set)) {
			t.Fatalf("covered %d, want %d (%v)", coveredBytes(spans), len(set), spans)
		}
		for i := 1; i < len(spans); i++ {
			if spans[i-1].to >= spans[i].from {
				t.Fatalf("spans overlap or touch: %v", spans)
			}
		}
	})
}

// A client offering only HTTP/1.0 in ALPN (curl -0; an updater built with
// ALPN) is served, not refused in the handshake.
func TestHTTP10ALPN(t *testing.T) {
	img := appImage("1.0", 3000)
	b := newBench(t, Options{}, map[string][]byte{"fw.bin": img})
	conn, err := tls.Dial("tcp", b.hs.Listener.Addr().String(), &tls.Config{RootCAs: b.ca.ClientPool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.0"}})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /fw.bin HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, img) {
		t.Errorf("%d, %d bytes", resp.StatusCode, len(body))
	}
}

// An Arduino board whose download dropped retries with a whole GET: that
// is a new download of the current file, and the dropped one is on record
// as incomplete, although the server had written all of it to the socket.
func TestWholeGETRestartsDownload(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("telling delivered bytes from written ones needs Linux's TCP_INFO")
	}
	oldImg, newImg := appImage("8.0", 200_000), appImage("8.1", 150_000)
	b := newBench(t, Options{}, map[string][]byte{"fw.bin": oldImg})
	// A board's TCP window is small (lwIP: 5760 bytes): the server's
	// writes return long before the board has the bytes.
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8192) })
		return errors.Join(err, serr)
	}}
	conn, err := tls.DialWithDialer(d, "tcp", b.hs.Listener.Addr().String(), &tls.Config{RootCAs: b.ca.ClientPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET /fw.bin HTTP/1.0\r\nHost: x\r\nx-ESP32-STA-MAC: 24:0A:C4:00:00:09\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	conn.Close() // Wi-Fi dropped
	b.write("fw.bin", newImg)
	if _, err := b.srv.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp2, body := arduinoGET(t, b, "fw.bin", "24:0A:C4:00:00:09", "")
	if resp2.StatusCode != 200 || !bytes.Equal(body, newImg) {
		t.Fatalf("retry: %d, new image %v", resp2.StatusCode, bytes.Equal(body, newImg))
	}
	recs := b.records(2)
	if recs[0].Complete || recs[0].Result != "incomplete" || recs[0].ToVersion != "8.0" || !recs[1].Complete || recs[1].ToVersion != "8.1" {
		t.Errorf("records %+v", recs)
	}
	if d := b.srv.Downloads(); len(d) != 2 || d[0].Covered >= d[0].Size {
		t.Errorf("downloads view %+v", d)
	}
}

// A client that requests an image and never reads it does not hold the
// server: the response ends after the stall timeout and the download is
// recorded as incomplete.
func TestStalledClientReleased(t *testing.T) {
	img := appImage("9", 4<<20)
	b := newBench(t, Options{StallTimeout: 200 * time.Millisecond}, map[string][]byte{"big.bin": img})
	conn, err := tls.Dial("tcp", b.hs.Listener.Addr().String(), &tls.Config{RootCAs: b.ca.ClientPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Never read. The handler gives up, and with the connection still
	// open the download stays a session until it is closed.
	d := func() []DownloadStatus { return b.srv.Downloads() }
	for {
		if ds := d(); len(ds) == 1 && ds[0].Requests == 1 {
			if ds[0].Covered >= ds[0].Size {
				t.Fatalf("a client that read nothing counted as served: %+v", ds[0])
			}
			break
		}
		time.Sleep(10 * time.Millisecond) // waiting for the event, bounded by the test timeout
	}
	b.srv.Close()
	recs := b.records(1)
	if recs[0].Complete || recs[0].Result != "incomplete" {
		t.Errorf("record %+v", recs[0])
	}
}

// Both chip families' images start with E9, so an ESP8266 would accept an
// ESP32 image and then not boot: the server refuses by the headers.
func TestWrongBoardRefused(t *testing.T) {
	esp32img := appImage("10", 3000)
	esp8266img := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP8266, Entry: 0x40100000,
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x40100000, Data: make([]byte, 64)}}})
	b := newBench(t, Options{}, map[string][]byte{"c3.bin": esp32img, "8266.bin": esp8266img})
	ask := func(path string, hdr map[string]string) int {
		resp, body := get(t, b.client(true), "GET", b.url(path), hdr)
		if resp.StatusCode == 403 && bytes.Contains(body, []byte{0xE9}) {
			t.Errorf("%s: refusal carries image bytes", path)
		}
		return resp.StatusCode
	}
	as8266 := map[string]string{"User-Agent": "ESP8266-http-Update", "x-ESP8266-STA-MAC": "5C:CF:7F:00:00:01", "x-ESP8266-free-space": "1000000"}
	as32 := map[string]string{"User-Agent": "ESP32-http-Update", "x-ESP32-STA-MAC": "24:0A:C4:00:00:01", "x-ESP32-free-space": "1000000"}
	if got := ask("c3.bin", as8266); got != 403 {
		t.Errorf("ESP8266 asking for an ESP32-C3 image: %d", got)
	}
	if got := ask("8266.bin", as32); got != 403 {
		t.Errorf("ESP32 asking for an ESP8266 image: %d", got)
	}
	if got := ask("8266.bin", as8266); got != 200 {
		t.Errorf("ESP8266 image to an ESP8266: %d", got)
	}
	if got := ask("c3.bin", map[string]string{"x-ESP32-STA-MAC": "24:0A:C4:00:00:02", "x-ESP32-free-space": "1000"}); got != 403 {
		t.Errorf("image larger than the free space: %d", got)
	}
	if got := ask("c3.bin", as32); got != 200 {
		t.Errorf("ESP32 image to an ESP32: %d", got)
	}
	recs := b.records(5)
	if recs[0].Result != "wrong_board" || recs[0].Status != 403 {
		t.Errorf("record %+v", recs[0])
	}
}

// Downloads in progress are bounded: MAC headers are the client's word,
// and each new one would otherwise be a new session kept for minutes.
func TestSessionsBounded(t *testing.T) {
	b := newBench(t, Options{MaxSessions: 2}, map[string][]byte{"fw.bin": appImage("11", 20_000)})
	c := b.client(true)
	var codes []int
	for i := range 4 {
		resp, _ := get(t, c, "HEAD", b.url("fw.bin"), map[string]string{"x-ESP32-STA-MAC": fmt.Sprintf("24:0a:c4:00:00:%02x", i)})
		codes = append(codes, resp.StatusCode)
	}
	if !slices.Equal(codes, []int{200, 200, 503, 503}) {
		t.Errorf("statuses %v", codes)
	}
	// A download in progress goes on.
	resp, _ := get(t, c, "GET", b.url("fw.bin"), map[string]string{"x-ESP32-STA-MAC": "24:0a:c4:00:00:00", "Range": "bytes=0-99"})
	if resp.StatusCode != 206 {
		t.Errorf("existing session: %d", resp.StatusCode)
	}
}
