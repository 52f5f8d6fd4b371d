package esphomeota

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/internal/testnet"
)

// testKey is a fixed API key for tests (base64 of 32 bytes).
const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// otherKey is a valid key that is not testKey.
const otherKey = "HxwdHhscGRoXGBUWExQREg8QDQ4LDAkKBwgFBgMEAQI="

// appImage returns an incompressible app-like image of n bytes.
func appImage(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] = 0xE9
	return b
}

// esp8266Image returns an image with the redundancy of real firmware
// (code, strings, zero padding), for gzip tests.
func esp8266Image(n int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	var buf bytes.Buffer
	words := []string{"wifi", "sensor", "esphome", "component", "api", "ota", "logger", "mqtt", "\x00\x00\x00\x00", "\x20\x40\x60\x80"}
	for buf.Len() < n {
		switch r.IntN(4) {
		case 0:
			buf.WriteString(words[r.IntN(len(words))])
		case 1:
			buf.Write([]byte{byte(r.Uint32()), byte(r.Uint32()), 0x00, 0x40})
		default:
			buf.Write(bytes.Repeat([]byte{0x3F, 0x00}, 1+r.IntN(6)))
		}
	}
	b := buf.Bytes()[:n]
	b[0] = 0xE9
	return b
}

func startSim(t testing.TB, cfg esphomesim.Config) *esphomesim.Device {
	t.Helper()
	d, err := esphomesim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, d.Start(context.Background()))
	t.Cleanup(func() { d.Close() })
	return d
}

func targetOf(d *esphomesim.Device) Target {
	return Target{Host: "127.0.0.1", Port: d.Addr().Port}
}

// fast are options that keep failure tests short; they are timeouts, not
// assertions about time.
func fast(o Options) Options {
	o.RetryDelay = time.Millisecond
	return o
}

func lastRecord(t *testing.T, d *esphomesim.Device, n int) esphomesim.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := d.WaitRecords(ctx, n)
	require.NoError(t, err)
	return recs[n-1]
}

func TestMatrix(t *testing.T) {
	image := appImage(3*blockSize + 100)
	for _, version := range []byte{1, 2} {
		for _, legacy := range []bool{false, true} {
			for _, auth := range []string{"none", "sha256", "md5"} {
				for _, enc := range []bool{false, true} {
					if enc && legacy {
						continue // Noise needs the extended protocol
					}
					name := fmt.Sprintf("v%d/legacy=%v/auth=%s/noise=%v", version, legacy, auth, enc)
					t.Run(name, func(t *testing.T) {
						cfg := esphomesim.Config{Version: version, Legacy: legacy}
						opts := Options{}
						switch auth {
						case "sha256":
							cfg.Password, opts.Password = "pw", "pw"
						case "md5":
							cfg.Password, cfg.Scheme, opts.Password = "pw", esphomesim.SchemeMD5, "pw"
						}
						if enc {
							cfg.APIKey, opts.APIKey = testKey, testKey
						}
						d := startSim(t, cfg)
						res, err := Upload(context.Background(), targetOf(d), image, opts)
						require.NoError(t, err)
						rec := lastRecord(t, d, 1)
						require.Equal(t, byte(0x45), rec.Outcome, rec.Err)
						require.Equal(t, image, rec.Image)
						require.True(t, rec.EndAck)
						require.Equal(t, int(version), res.Version)
						require.Equal(t, !legacy, res.Extended)
						require.Equal(t, enc, res.Encrypted)
						require.Equal(t, enc, rec.Encrypted)
						wantAuth := auth
						if enc {
							wantAuth = "none" // the device skips the password inside Noise
						}
						require.Equal(t, wantAuth, res.AuthScheme)
						require.Equal(t, wantAuth, rec.Auth)
						require.False(t, res.Gzip)
						require.Equal(t, 1, res.Attempts)
						require.Equal(t, int64(len(image)), res.Bytes)
					})
				}
			}
		}
	}
}

func TestGzip(t *testing.T) {
	image := esp8266Image(300 << 10)
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("noise=%v", enc), func(t *testing.T) {
			cfg := esphomesim.Config{Platform: esphomesim.PlatformESP8266, Gzip: true}
			opts := Options{}
			if enc {
				cfg.APIKey, opts.APIKey = testKey, testKey
			}
			d := startSim(t, cfg)
			res, err := Upload(context.Background(), targetOf(d), image, opts)
			require.NoError(t, err)
			rec := lastRecord(t, d, 1)
			require.True(t, res.Gzip)
			require.True(t, rec.Gzip)
			require.Equal(t, image, rec.Image, "the device inflates to the image")
			require.Equal(t, int(res.Bytes), rec.Size, "the size sent is the compressed size")
			require.Less(t, float64(res.Bytes), 0.7*float64(len(image)), "gzip saves bytes on the wire")
		})
	}
	t.Run("legacy 0x46", func(t *testing.T) {
		d := startSim(t, esphomesim.Config{Platform: esphomesim.PlatformESP8266, Gzip: true, Legacy: true, Version: 1})
		res, err := Upload(context.Background(), targetOf(d), image, Options{})
		require.NoError(t, err)
		require.True(t, res.Gzip)
		require.Equal(t, image, lastRecord(t, d, 1).Image)
	})
	t.Run("NoCompression", func(t *testing.T) {
		d := startSim(t, esphomesim.Config{Platform: esphomesim.PlatformESP8266, Gzip: true})
		res, err := Upload(context.Background(), targetOf(d), image, Options{NoCompression: true})
		require.NoError(t, err)
		require.False(t, res.Gzip)
		require.False(t, lastRecord(t, d, 1).Gzip)
	})
}

// TestDeviceErrorTable: every error byte, injected where the device can
// send it, ends in its own code, sentinel and a hint.
func TestDeviceErrorTable(t *testing.T) {
	image := appImage(2*blockSize + 5)
	steps := map[byte]esphomesim.Step{0x80: esphomesim.StepMagic, 0x81: esphomesim.StepPrepare, 0x83: esphomesim.StepData,
		0x84: esphomesim.StepEnd, 0x85: esphomesim.StepPrepare, 0x86: esphomesim.StepPrepare, 0x87: esphomesim.StepPrepare,
		0x88: esphomesim.StepPrepare, 0x89: esphomesim.StepPrepare, 0x8A: esphomesim.StepPrepare, 0x8B: esphomesim.StepEnd,
		0x8C: esphomesim.StepPrepare, 0x8D: esphomesim.StepEnd, 0x8E: esphomesim.StepPrepare, 0x8F: esphomesim.StepEnd,
		0x90: esphomesim.StepEnd, 0x91: esphomesim.StepEnd, 0x92: esphomesim.StepEnd, 0x93: esphomesim.StepEnd,
		0x94: esphomesim.StepFeatures, 0xFF: esphomesim.StepData, 0x82: esphomesim.StepAuth}
	seen := map[string]byte{}
	for code, row := range deviceErrors {
		step := steps[code]
		require.NotEmpty(t, step, "no step for 0x%02X", code)
		for _, enc := range []bool{false, true} {
			t.Run(fmt.Sprintf("0x%02X/noise=%v", code, enc), func(t *testing.T) {
				cfg := esphomesim.Config{FaultStep: step, FaultCode: code, FaultAfter: blockSize}
				connects := 0
				opts := fast(Options{OnProgress: func(p Progress) {
					if p.Stage == StageConnect {
						connects++
					}
				}})
				if code == 0x82 {
					opts.Password = "pw"
				}
				if enc {
					cfg.APIKey, opts.APIKey = testKey, testKey
				}
				d := startSim(t, cfg)
				_, err := Upload(context.Background(), targetOf(d), image, opts)
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, code, e.DeviceCode)
				require.Equal(t, row.code, e.Code())
				require.ErrorIs(t, err, row.kind)
				require.NotEmpty(t, e.Hint())
				require.Equal(t, 1, connects, "device errors are never retried")
			})
		}
		if other, dup := seen[row.code]; dup && !(row.code == "not_enough_space") {
			t.Errorf("0x%02X and 0x%02X share the code %q", code, other, row.code)
		}
		seen[row.code] = code
	}
}

func TestAuthOutcomes(t *testing.T) {
	image := appImage(blockSize)
	cases := []struct {
		name string
		cfg  esphomesim.Config
		opts Options
		code string
		kind error
	}{
		{"wrong password sha256", esphomesim.Config{Password: "right"}, Options{Password: "wrong"}, "auth_invalid", ErrAuth},
		{"wrong password md5", esphomesim.Config{Password: "right", Scheme: esphomesim.SchemeMD5}, Options{Password: "wrong"}, "auth_invalid", ErrAuth},
		{"missing password", esphomesim.Config{Password: "right"}, Options{}, "password_required", ErrAuth},
		{"client without sha256", esphomesim.Config{Password: "right"}, Options{Password: "right", NoSHA256: true}, "auth_needs_sha256", ErrAuth},
		{"wrong api key", esphomesim.Config{APIKey: testKey}, Options{APIKey: otherKey}, "wrong_api_key", ErrAuth},
		{"missing api key", esphomesim.Config{APIKey: testKey, RequireEncryption: true}, Options{}, "encryption_required", ErrAuth},
		{"key but no encryption offered", esphomesim.Config{}, Options{APIKey: testKey}, "encryption_not_offered", ErrRefused},
		{"key but legacy firmware", esphomesim.Config{Legacy: true}, Options{APIKey: testKey}, "encryption_not_offered", ErrRefused},
		{"malformed key", esphomesim.Config{}, Options{APIKey: "bm90IDMyIGJ5dGVz"}, "bad_api_key", ErrInput},
		{"risky type unconfirmed", esphomesim.Config{PartitionAccess: true}, Options{Type: TypeBootloader}, "risky_type_not_confirmed", ErrRefused},
		{"partition access off", esphomesim.Config{}, Options{Type: TypePartitionTable, AllowRisky: true}, "partition_access_not_allowed", ErrRefused},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := startSim(t, c.cfg)
			_, err := Upload(context.Background(), targetOf(d), image, fast(c.opts))
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, c.code, e.Code(), err.Error())
			require.ErrorIs(t, err, c.kind)
			require.NotEmpty(t, e.Hint())
			for _, r := range d.Records() {
				require.Zero(t, r.Received, "no image byte may reach the device")
				require.Zero(t, r.Size)
			}
			require.NotContains(t, err.Error(), "right")
			require.NotContains(t, err.Error(), testKey)
		})
	}
}

func TestPartitionTypes(t *testing.T) {
	table := appImage(3072)
	d := startSim(t, esphomesim.Config{PartitionAccess: true})
	res, err := Upload(context.Background(), targetOf(d), table, Options{Type: TypePartitionTable, AllowRisky: true})
	require.NoError(t, err)
	require.Equal(t, TypePartitionTable, res.Type)
	rec := lastRecord(t, d, 1)
	require.Equal(t, byte(TypePartitionTable), rec.Type)
	require.Equal(t, table, rec.Image)
}

func TestRetry(t *testing.T) {
	image := appImage(6 * blockSize)
	t.Run("drop before the last block is retried", func(t *testing.T) {
		d := startSim(t, esphomesim.Config{DropAfter: 2 * blockSize, FaultSessions: 1})
		res, err := Upload(context.Background(), targetOf(d), image, Options{Retries: 2, RetryDelay: time.Millisecond})
		require.NoError(t, err)
		require.Equal(t, 2, res.Attempts)
		lastRecord(t, d, 2)
		recs := d.Records()
		require.Len(t, recs, 2)
		require.Equal(t, image, recs[1].Image)
	})
	t.Run("drop after the last block is not retried", func(t *testing.T) {
		d := startSim(t, esphomesim.Config{DropAfterAll: true})
		_, err := Upload(context.Background(), targetOf(d), image, Options{Retries: 2, RetryDelay: time.Millisecond})
		var e *Error
		require.ErrorAs(t, err, &e)
		require.ErrorIs(t, err, ErrTransfer)
		require.True(t, e.Committed)
		require.Len(t, lastRecordsAfter(t, d), 1, "one session only")
	})
	t.Run("v1 drop after all bytes is not retried", func(t *testing.T) {
		d := startSim(t, esphomesim.Config{Version: 1, DropAfterAll: true})
		_, err := Upload(context.Background(), targetOf(d), image, Options{Retries: 2, RetryDelay: time.Millisecond})
		require.ErrorIs(t, err, ErrTransfer)
		require.Len(t, lastRecordsAfter(t, d), 1)
	})
	t.Run("unreachable is retried then reported", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		var attempts []int
		_, err = Upload(context.Background(), Target{Host: "127.0.0.1", Port: port}, image,
			Options{Retries: 2, RetryDelay: time.Millisecond, OnProgress: func(p Progress) {
				if p.Stage == StageConnect {
					attempts = append(attempts, p.Attempt)
				}
			}})
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "unreachable", e.Code())
		require.Equal(t, []int{1, 2, 3}, attempts)
	})
}

// lastRecordsAfter waits for the one session and returns all records.
func lastRecordsAfter(t *testing.T, d *esphomesim.Device) []esphomesim.Record {
	lastRecord(t, d, 1)
	return d.Records()
}

// TestPrepareTimeout: a device that never finishes erasing is reported as
// stalled in the prepare stage once DataTimeout passes.
func TestPrepareTimeout(t *testing.T) {
	d := startSim(t, esphomesim.Config{EraseDelay: time.Hour})
	_, err := Upload(context.Background(), targetOf(d), appImage(blockSize),
		fast(Options{DataTimeout: 200 * time.Millisecond, Retries: -1}))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "stalled", e.Code(), err.Error())
	require.Equal(t, StagePrepare, e.Stage)
}

func TestStall(t *testing.T) {
	for _, v := range []byte{1, 2} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			d := startSim(t, esphomesim.Config{Version: v, StallAfter: blockSize, ReceiveWindow: 8192})
			_, err := Upload(context.Background(), targetOf(d), appImage(64*blockSize),
				fast(Options{DataTimeout: 300 * time.Millisecond, Retries: -1}))
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, "stalled", e.Code(), err.Error())
			require.ErrorIs(t, err, ErrTransfer)
		})
	}
}

// TestCancel cancels at every stage; the device is made to wait in that
// stage, so the upload cannot finish first, and Upload returns the
// context's error.
func TestCancel(t *testing.T) {
	image := appImage(64 * blockSize)
	for _, stage := range []Stage{StageConnect, StageHandshake, StageAuth, StagePrepare, StageTransfer, StageFinalize} {
		t.Run(string(stage), func(t *testing.T) {
			var addr string
			switch stage {
			case StageHandshake, StageAuth:
				// A scripted port: silent after accepting, or asking for a
				// SHA-256 password and then waiting for ever.
				var script []byte
				if stage == StageAuth {
					script = append([]byte{0x00, 0x02, 0x48, 0x00, 0x02}, bytes.Repeat([]byte("a"), 64)...)
				}
				addr = testnet.Serve(t, func(c net.Conn) {
					c.Write(script)
					io.Copy(io.Discard, c)
				}).String()
			default:
				cfg := esphomesim.Config{EraseDelay: time.Hour}
				switch stage {
				case StageTransfer:
					cfg = esphomesim.Config{StallAfter: 2 * blockSize}
				case StageFinalize:
					cfg = esphomesim.Config{EndDelay: time.Hour}
				}
				addr = startSim(t, cfg).Addr().String()
			}
			host, port, _ := net.SplitHostPort(addr)
			var p int
			fmt.Sscan(port, &p)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if stage == StageConnect {
				cancel() // before the connection exists
			}
			opts := Options{Password: "pw", OnProgress: func(pr Progress) {
				if pr.Stage == stage || (stage == StageHandshake && pr.Stage == StageConnect) ||
					(stage == StageTransfer && pr.Stage == StageTransfer && pr.Done > 0) {
					cancel()
				}
			}}
			_, err := Upload(ctx, Target{Host: host, Port: p}, image, opts)
			require.ErrorIs(t, err, context.Canceled)
		})
	}
}

// TestNoLeaks: after uploads that succeed and fail, no goroutine and no
// socket of ours is left.
func TestNoLeaks(t *testing.T) {
	d := startSim(t, esphomesim.Config{APIKey: testKey})
	bad := startSim(t, esphomesim.Config{StallAfter: blockSize})
	image := appImage(4 * blockSize)
	// Warm up whatever the runtime keeps (resolver, timers).
	_, err := Upload(context.Background(), targetOf(d), image, Options{APIKey: testKey})
	require.NoError(t, err)
	lastRecord(t, d, 1)
	g0, f0 := runtime.NumGoroutine(), openFDs(t)
	for i := range 3 {
		_, err := Upload(context.Background(), targetOf(d), image, Options{APIKey: testKey})
		require.NoError(t, err)
		lastRecord(t, d, i+2)
	}
	_, err = Upload(context.Background(), targetOf(bad), image, fast(Options{DataTimeout: 200 * time.Millisecond, Retries: -1}))
	require.Error(t, err)
	bad.Close()
	// Goroutines of the simulator may still be winding down; wait for
	// the count to come back, bounded.
	var g1, f1 int
	for range 1000 {
		runtime.Gosched()
		g1, f1 = runtime.NumGoroutine(), openFDs(t)
		if g1 <= g0 && f1 <= f0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, g1, g0, "goroutines")
	if f0 >= 0 {
		require.LessOrEqual(t, f1, f0, "open files")
	}
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestProgress: events come in stage order and transfer progress reaches
// the total only through the device's acknowledgements.
func TestProgress(t *testing.T) {
	d := startSim(t, esphomesim.Config{Password: "pw"})
	image := appImage(5*blockSize + 1)
	var mu sync.Mutex
	var stages []Stage
	var last Progress
	_, err := Upload(context.Background(), targetOf(d), image, Options{Password: "pw", OnProgress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if len(stages) == 0 || stages[len(stages)-1] != p.Stage {
			stages = append(stages, p.Stage)
		}
		if p.Stage == StageTransfer || p.Stage == StageFinalize {
			require.GreaterOrEqual(t, p.Done, last.Done)
			last = p
		}
	}})
	require.NoError(t, err)
	require.Equal(t, []Stage{StageConnect, StageAuth, StagePrepare, StageTransfer, StageFinalize}, stages)
	require.Equal(t, int64(len(image)), last.Done)
	require.Equal(t, SchemeSHA256, last.Session.AuthScheme)
}

func TestSecretRedaction(t *testing.T) {
	s := Secret("hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s), fmt.Sprintf("%+v", Options{Password: s, APIKey: s})} {
		require.NotContains(t, out, "hunter2")
	}
	_, err := ParseAPIKey(Secret("not-base64-hunter2"))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

// TestOneClientAtATime: two uploads to the same device both succeed, one
// after the other (the device serves one client at a time).
func TestOneClientAtATime(t *testing.T) {
	d := startSim(t, esphomesim.Config{NextVersion: "2026.12.0"})
	image := appImage(3 * blockSize)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = Upload(context.Background(), targetOf(d), image, Options{}) }()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	lastRecord(t, d, 2)
	require.Equal(t, 2, d.Updates())
	require.Equal(t, "2026.12.0", d.FirmwareVersion())
}

// TestClosedInEncryptedHandshake: a device that drops the connection on
// our first Noise message, with part of it unread (the kernel then sends
// a reset, not a close), is a rejected handshake: the API key is the
// next thing to check, not the Wi-Fi.
func TestClosedInEncryptedHandshake(t *testing.T) {
	port := testnet.Serve(t, func(c net.Conn) {
		var b [len(magic)]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		c.Write([]byte{0x00, 0x02}) // OK, version 2
		if _, err := io.ReadFull(c, b[:1]); err != nil {
			return // our features
		}
		c.Write([]byte{respFeatureFlags, serverNoise})
		io.ReadFull(c, b[:1]) // the first byte of our Noise frame; the rest stays unread
	}).Port
	_, err := Upload(context.Background(), Target{Host: "127.0.0.1", Port: port}, appImage(100),
		Options{APIKey: testKey, HandshakeTimeout: time.Minute, Retries: -1})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "noise_rejected", e.Code(), err.Error())
	require.ErrorIs(t, err, ErrAuth)
	require.Contains(t, e.Hint(), "API key")
}

// TestSilentAndClosingPorts: a port that accepts and says nothing ends in
// a handshake timeout; one that closes at once (busy, or not ESPHome) says
// so; neither is mistaken for an authentication problem.
func TestSilentAndClosingPorts(t *testing.T) {
	for _, c := range []struct {
		name  string
		serve func(net.Conn)
		code  string
	}{
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }, "handshake_timeout"},
		{"closes", func(c net.Conn) { c.Close() }, "closed_by_device"},
		// Closing with our bytes unread resets the connection; that is
		// still the device closing it.
		{"greets then closes", func(c net.Conn) { c.Write([]byte{0x00, 0x02}); c.Close() }, "closed_by_device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := testnet.Serve(t, c.serve).Port
			_, err := Upload(context.Background(), Target{Host: "127.0.0.1", Port: port}, appImage(100),
				Options{HandshakeTimeout: 300 * time.Millisecond, Retries: -1})
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Contains(t, strings.Split(c.code, "|"), e.Code(), err.Error())
			require.ErrorIs(t, err, ErrTransfer)
		})
	}
}
