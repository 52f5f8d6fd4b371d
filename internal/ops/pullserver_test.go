package ops

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/pki"
)

// A wrong folder is refused before a bench CA is made, with a usage class.
func TestPullServerChecksTheFolderFirst(t *testing.T) {
	pdir := filepath.Join(t.TempDir(), "pki")
	_, err := StartPullServer(context.Background(), PullServerOptions{Dir: filepath.Join(t.TempDir(), "missing"), PKIDir: pdir, Listen: []string{"127.0.0.1:0"}})
	require.Error(t, err)
	require.Equal(t, CodeBadInput, CodeOf(err))
	_, statErr := os.Stat(pdir)
	require.True(t, os.IsNotExist(statErr), "no CA is created for a server that cannot start")
}

// An address that cannot be had fails the start and releases the ones
// already opened.
func TestPullServerReleasesItsAddressesWhenOneIsTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	freeAddr := free.Addr().String()
	free.Close()
	_, err = StartPullServer(context.Background(), PullServerOptions{Dir: t.TempDir(), PKIDir: t.TempDir(),
		Listen: []string{freeAddr, taken.Addr().String()}})
	require.Error(t, err)
	require.Equal(t, CodeListen, Class(err))
	again, err := net.Listen("tcp", freeAddr)
	require.NoError(t, err, "the first address was released")
	again.Close()
}

// A board pinned to the bench CA downloads an image; the download is one
// audit record, written before Close returns.
func TestPullServerServesOverTheBenchCAAndAudits(t *testing.T) {
	dir, pdir := t.TempDir(), t.TempDir()
	img := app(firmware.ChipESP32, "2.0.0", 4096)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.bin"), img, 0o644))
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	alog, err := audit.Open(logPath)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ps, err := StartPullServer(ctx, PullServerOptions{Dir: dir, PKIDir: pdir, Listen: []string{"127.0.0.1:0"}, Audit: alog})
	require.NoError(t, err)
	require.True(t, ps.TLS)
	require.True(t, ps.CACreated)
	require.Len(t, ps.URLs, 1)
	ca, err := pki.Load(pdir)
	require.NoError(t, err)
	require.Equal(t, ca.Fingerprint(), ps.CAFingerprint)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.ClientPool()}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ps.URLs[0]+"/app.bin", nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, img, body)
	client.CloseIdleConnections()
	ps.Close()
	require.NoError(t, alog.Close())

	fh, err := os.Open(logPath)
	require.NoError(t, err)
	defer fh.Close()
	recs, skipped, err := audit.Read(fh, audit.Filter{Kind: audit.KindDownload})
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Len(t, recs, 1)
	require.Equal(t, "app.bin", recs[0].Image)
	require.Equal(t, int64(len(img)), recs[0].Bytes)
}
