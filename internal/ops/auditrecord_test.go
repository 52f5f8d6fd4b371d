package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
)

func TestAttemptRecordsWhatWasSentAndHowItEnded(t *testing.T) {
	img := DemoAppImage(firmware.ChipESP32, "rec-app", "3.1.4", 10_000)
	ok := Attempt{Board: "kitchen", Address: "10.0.0.5:3232", Protocol: "arduino-ota", Auth: "pbkdf2-sha256",
		Image: "/build/out/app.bin", Data: img, Bytes: int64(len(img)), Duration: 1500 * time.Millisecond}.Record()
	require.Equal(t, audit.KindUpdate, ok.Kind)
	require.Equal(t, "ok", ok.Result)
	require.Equal(t, "3.1.4", ok.ToVersion, "the version the board should now run, from the app description")
	require.Equal(t, "app.bin", ok.Image)
	require.Len(t, ok.ImageSHA256, 64)
	require.Equal(t, "not-checked", ok.Confirmation, "nothing confirms a single upload")
	require.EqualValues(t, 1500, ok.DurationMS)
	require.Equal(t, 1, ok.Attempt)

	authErr := fmt.Errorf("upload: %w", &espota.Error{Kind: espota.ErrAuthFailed, Msg: "the device refused the password"})
	bad := Attempt{Protocol: "arduino-ota", Data: img, Err: authErr}.Record()
	require.Equal(t, CodeAuthFailed, bad.Result)
	require.Contains(t, bad.Message, "refused the password")

	cancelled := Attempt{Err: fmt.Errorf("send: %w", context.Canceled)}.Record()
	require.Equal(t, "interrupted", cancelled.Result)

	notApp := Attempt{Data: []byte("not an image")}.Record()
	require.Empty(t, notApp.ToVersion)
	require.NotEmpty(t, notApp.ImageSHA256)
}

func TestRecordAttemptAppendsToAPrivateLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "audit.jsonl")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	for i := range 2 {
		require.NoError(t, RecordAttempt(t.Context(), p, Attempt{Board: fmt.Sprint("b", i), Protocol: "serial", Err: errors.New("x")}))
	}
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	fh, err := os.Open(p)
	require.NoError(t, err)
	defer fh.Close()
	recs, skipped, err := audit.Read(fh, audit.Filter{})
	require.NoError(t, err)
	require.Zero(t, skipped)
	require.Len(t, recs, 2)
	require.Equal(t, "b1", recs[1].Board)
}
