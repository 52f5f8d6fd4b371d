package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
)

func TestImageKeygenSignVerify(t *testing.T) {
	dir := t.TempDir()
	key, other := filepath.Join(dir, "fleet.pem"), filepath.Join(dir, "other.pem")
	r := runCLI(t, nil, "image", "keygen", key, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	fi, err := os.Stat(key)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the private key must be 0600")
	priv, _ := os.ReadFile(key)
	body := strings.Join(strings.Split(string(priv), "\n")[1:3], "")
	require.NotContains(t, r.stdout+r.stderr, body, "private key material in the output")

	r = runCLI(t, nil, "image", "keygen", key)
	require.Equal(t, exitUsage, r.code, "an existing key must never be overwritten")
	again, _ := os.ReadFile(key)
	require.Equal(t, priv, again)
	require.Equal(t, exitOK, runCLI(t, nil, "image", "keygen", other, "--scheme", "rsa3072").code)

	app := filepath.Join(dir, "app.bin")
	require.NoError(t, os.WriteFile(app, firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32C6, Entry: 0x40800000,
		AppDesc: &firmware.AppDesc{Version: "1.0"}}), 0o644))
	signed := filepath.Join(dir, "app.signed.bin")
	r = runCLI(t, nil, "image", "sign", app, "--key", key, "-o", signed, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout+r.stderr, body)
	require.Equal(t, exitOK, runCLI(t, nil, "image", "verify", signed, "--key", filepath.Join(dir, "fleet.pub.pem")).code)
	require.Equal(t, exitRefused, runCLI(t, nil, "image", "verify", signed, "--key", filepath.Join(dir, "other.pub.pem")).code)

	// Re-signing without --append is refused; with it a second block is added.
	two := filepath.Join(dir, "app.2.bin")
	require.Equal(t, exitUsage, runCLI(t, nil, "image", "sign", signed, "--key", other, "-o", two).code)
	r = runCLI(t, nil, "image", "sign", signed, "--key", other, "--append", "-o", two)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, pub := range []string{"fleet.pub.pem", "other.pub.pem"} {
		require.Equal(t, exitOK, runCLI(t, nil, "image", "verify", two, "--key", filepath.Join(dir, pub)).code, pub)
	}
	data, _ := os.ReadFile(two)
	data[100] ^= 1
	require.NoError(t, os.WriteFile(two, data, 0o644))
	require.Equal(t, exitRefused, runCLI(t, nil, "image", "verify", two, "--key", filepath.Join(dir, "fleet.pub.pem")).code)

	// A public key cannot sign; the message says so.
	r = runCLI(t, nil, "image", "sign", app, "--key", filepath.Join(dir, "fleet.pub.pem"), "-o", filepath.Join(dir, "x.bin"))
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "private key")
}

func TestPKIInitShow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	r := runCLI(t, nil, "pki", "init", "--pki", dir, "--listen", "127.0.0.1:8443", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ca_created"])
	r = runCLI(t, nil, "pki", "show", "--pki", dir, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res = lastResult(t, r.stdout)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(res["ca_pem"].(string))))
	require.Contains(t, res["c_string"], `"-----BEGIN CERTIFICATE-----\n"`)
	require.NotContains(t, r.stdout, "PRIVATE KEY")
	r = runCLI(t, nil, "pki", "show", "--pki", filepath.Join(t.TempDir(), "none"))
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "espdeck pki init")
}

// TestServeCommand runs espdeck serve in-process, reads its URL from the
// listening event, downloads over the pinned CA and checks the audit record.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs")
	require.NoError(t, os.Mkdir(imgs, 0o755))
	img := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32S3, Entry: 0x40375000, AppDesc: &firmware.AppDesc{Version: "9.9"}})
	require.NoError(t, os.WriteFile(filepath.Join(imgs, "fw.bin"), img, 0o644))
	auditPath := filepath.Join(dir, "audit.jsonl")
	pkiDir := filepath.Join(dir, "pki")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"serve", imgs, "--listen", "127.0.0.1:0", "--pki", pkiDir, "--audit-log", auditPath, "--json"},
			strings.NewReader(""), pw, io.Discard, func(string) string { return "" })
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	var listening map[string]any
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		if ev["event"] == "listening" {
			listening = ev
			break
		}
	}
	require.NotNil(t, listening, "no listening event")
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	urls := listening["urls"].([]any)
	require.Len(t, urls, 1)
	base := urls[0].(string)
	require.True(t, strings.HasPrefix(base, "https://127.0.0.1:"), base)

	caPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/fw.bin")
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, img, got)

	cancel()
	require.Equal(t, exitOK, <-done)
	f, err := os.Open(auditPath)
	require.NoError(t, err)
	defer f.Close()
	recs, _, err := audit.Read(f, audit.Filter{Kind: audit.KindDownload})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.True(t, recs[0].Complete && recs[0].TLS && recs[0].ToVersion == "9.9", "%+v", recs[0])
}
