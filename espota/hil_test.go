//go:build hil

package espota

// Opt-in test against a real board (never in CI):
//
//	ESPDECK_OTA_HOST=192.168.1.40[:3232] ESPDECK_OTA_FILE=build/app.bin \
//	ESPDECK_PASSWORD=… go test -tags hil -run HIL -v ./espota

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestHILUpload(t *testing.T) {
	hostPort, file := os.Getenv("ESPDECK_OTA_HOST"), os.Getenv("ESPDECK_OTA_FILE")
	if hostPort == "" || file == "" {
		t.Skip("set ESPDECK_OTA_HOST and ESPDECK_OTA_FILE to upload to a real board")
	}
	target := Target{Host: hostPort}
	if h, p, err := net.SplitHostPort(hostPort); err == nil {
		target.Host = h
		target.Port, _ = strconv.Atoi(p)
	}
	image, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	last := time.Now()
	res, err := Upload(ctx, target, image, Options{
		Password: Secret(os.Getenv("ESPDECK_PASSWORD")),
		OnProgress: func(p Progress) {
			if p.Stage != StageTransfer || time.Since(last) > time.Second {
				last = time.Now()
				t.Logf("%s %d/%d %.0f B/s", p.Stage, p.Done, p.Total, p.Rate)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("uploaded %d bytes in %s (transfer %s), auth %s", res.Bytes, res.Duration, res.Transfer, res.AuthScheme)
}
