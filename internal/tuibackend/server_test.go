package tuibackend_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/pki"
	"github.com/espdeck/espdeck/internal/tuibackend"
)

// The server pane's state is the running server's: its loopback URL, the
// fingerprint of the CA it was issued by, the published image, and a row
// per client download with the bytes and ranges it really sent.
func TestPullServerStateFollowsDownloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, pdir := t.TempDir(), t.TempDir()
	img := demo.BuildApp(demo.App{Chip: firmware.ChipESP32, Project: "bench-fixture", Version: "v2.8.0", Size: 64 << 10})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "app.bin"), img, 0o644))
	ps, err := tuibackend.StartServer(ctx, tuibackend.ServerConfig{Dir: dir, Listen: "127.0.0.1:0", PKIDir: pdir})
	require.NoError(t, err)
	defer ps.Close()

	st := ps.ServerState()
	require.Len(t, st.URLs, 1)
	require.True(t, strings.HasPrefix(st.URLs[0], "https://127.0.0.1:"), st.URLs[0])
	require.NotContains(t, st.URLs[0], ":0", "the real port, not the one asked for")
	ca, err := pki.Load(pdir)
	require.NoError(t, err)
	require.Equal(t, ca.Fingerprint(), st.CAFingerprint)
	require.Len(t, st.Images, 1)
	require.Equal(t, "app.bin", st.Images[0].Name)
	require.Equal(t, "v2.8.0", st.Images[0].Version)
	require.Empty(t, st.Downloads)

	// A board's download in two ranges, over TLS trusting the bench CA only.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.ClientPool()}}}
	half := len(img) / 2
	for _, rg := range []string{"bytes=0-" + itoa(half-1), "bytes=" + itoa(half) + "-"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.URLs[0]+"/app.bin", nil)
		require.NoError(t, err)
		req.Header.Set("Range", rg)
		req.Header.Set("x-ESP32-STA-MAC", "24:0A:C4:12:34:56")
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusPartialContent, resp.StatusCode)
	}
	require.Eventually(t, func() bool {
		ds := ps.ServerState().Downloads
		return len(ds) == 1 && ds[0].Covered == int64(len(img))
	}, 30*time.Second, 10*time.Millisecond, "the download shows every byte sent")
	d := ps.ServerState().Downloads[0]
	require.Equal(t, "app.bin", d.Image)
	require.Equal(t, 2, d.Ranges)
	require.Equal(t, int64(len(img)), d.Size)
	require.Contains(t, d.Client, "127.0.0.1")

	// Close ends the session: it is listed as done and complete.
	ps.Close()
	d = ps.ServerState().Downloads[0]
	require.True(t, d.Done)
	require.True(t, d.Complete)
}

func itoa(n int) string { return strconv.Itoa(n) }

// A folder that does not exist is refused with the reason, before any CA
// is created in the PKI folder.
func TestPullServerRefusesAMissingFolder(t *testing.T) {
	pdir := filepath.Join(t.TempDir(), "pki")
	_, err := tuibackend.StartServer(context.Background(), tuibackend.ServerConfig{Dir: filepath.Join(t.TempDir(), "nope"), Listen: "127.0.0.1:0", PKIDir: pdir})
	require.Error(t, err)
	require.Contains(t, err.Error(), "nope")
	_, statErr := os.Stat(pdir)
	require.True(t, os.IsNotExist(statErr), "no CA made for a server that cannot start")
}
