package campaign

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
)

func TestSelector(t *testing.T) {
	d := discovery.Device{Name: "greenhouse-ctl", Protocol: discovery.ProtocolArduinoOTA, Board: "esp32",
		TXT: map[string]string{"board": "esp32", "version": "1.2.0", "room": "Attic"}}
	for expr, want := range map[string]bool{
		"":                                 true,
		"greenhouse-*":                     true,
		"name=porch-*":                     false,
		"board=ESP32,protocol=arduino-ota": true,
		"txt.room=attic":                   true,
		"txt.room=attic,name=x*":           false,
		"chip=esp32":                       true,
		"txt.missing=*":                    true, // an absent key is the empty value, which * matches
		"txt.missing=?*":                   false,
	} {
		s, err := ParseSelector(expr)
		require.NoError(t, err, expr)
		require.Equal(t, want, s.Match(d), expr)
	}
	for _, bad := range []string{"colour=red", "name=[", "txt.=x"} {
		_, err := ParseSelector(bad)
		require.Error(t, err, bad)
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "a*", "name=x,board=y", "txt.k=v", "=", ",,,", "name=[a-", "txt.=x"} {
		f.Add(s)
	}
	d := discovery.Device{Name: "n", TXT: map[string]string{"k": "v"}}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := ParseSelector(expr)
		if err != nil {
			require.Nil(t, s)
			return
		}
		s.Match(d) // never panics on an accepted expression
	})
}

func TestHostBoardAndHostsFile(t *testing.T) {
	b, err := HostBoard("192.168.1.40", "")
	require.NoError(t, err)
	require.Equal(t, "192.168.1.40:3232", b.Address)
	require.Equal(t, "manual/192.168.1.40:3232", b.ID)
	b, err = HostBoard("attic.local:8266", "ESP8266")
	require.NoError(t, err)
	require.Equal(t, "esp8266", b.Chip)
	for _, bad := range []string{"", ":3232", "h:0", "h:99999", "a b"} {
		_, err := HostBoard(bad, "")
		require.Error(t, err, bad)
	}
	_, err = HostBoard("h", "esp99")
	require.Error(t, err)

	p := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(p, []byte("# bench\n10.0.0.1\n10.0.0.2:8266 esp8266  # attic\n\n"), 0o644))
	bs, err := ReadHostsFile(p)
	require.NoError(t, err)
	require.Len(t, bs, 2)
	require.Equal(t, "esp8266", bs[1].Chip)
	require.NoError(t, os.WriteFile(p, []byte("10.0.0.1 esp32 extra\n"), 0o644))
	_, err = ReadHostsFile(p)
	require.ErrorContains(t, err, "hosts:1")
}

func TestLoadImageRefusesWhatIsNotAnApp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "table.bin")
	require.NoError(t, os.WriteFile(p, []byte{0xAA, 0x50, 1, 2}, 0o644))
	_, _, err := LoadImage(p)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "refused", e.Code())
	_, _, err = LoadImage(filepath.Join(dir, "missing.bin"))
	require.ErrorAs(t, err, &e)
	require.Equal(t, "usage", e.Code())

	p = filepath.Join(dir, "app.bin")
	require.NoError(t, os.WriteFile(p, ops.DemoAppImage(firmware.ChipESP32C3, "proj", "v3.1", 9000), 0o644))
	img, data, err := LoadImage(p)
	require.NoError(t, err)
	require.Equal(t, Image{Path: p, Chip: "esp32c3", Version: "v3.1", Project: "proj", SHA256: img.SHA256, Size: int64(len(data))}, img)
	require.Len(t, img.SHA256, 64)
}

func TestPlanRefusals(t *testing.T) {
	img := Image{Path: "a.bin", Chip: "esp32", SHA256: "1"}
	_, err := Plan([]Board{{ID: "x"}}, nil, Settings{}, time.Now())
	require.Error(t, err)
	_, err = Plan(nil, []Image{img}, Settings{}, time.Now())
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "no_targets", e.Code())
	_, err = Plan([]Board{{ID: "x"}}, []Image{img, {Path: "b.bin", Chip: "esp32", SHA256: "2"}}, Settings{}, time.Now())
	require.ErrorContains(t, err, "two images for esp32")

	f, err := Plan([]Board{{ID: "x", Chip: "esp32"}, {ID: "x", Chip: "esp32"}}, []Image{img}, Settings{}, time.Now())
	require.NoError(t, err)
	require.Len(t, f.Rows, 1, "a board named twice is updated once")
	require.Equal(t, DefaultParallel, f.Settings.Parallel)
}

func FuzzLoad(f *testing.F) {
	good, _ := json.Marshal(File{ID: "x", Rows: []Row{{Board: Board{ID: "b"}, State: Failed}}})
	f.Add(good)
	f.Add([]byte(`{"id":"x","rows":[{"board":{"id":"b"},"state":"weird"}]}`))
	f.Add([]byte("null"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "c.json")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		cf, err := Load(p)
		if err != nil {
			return
		}
		// Whatever a loaded file holds, resuming and summarising it is safe
		// and resume never leaves a row that would be retried un-queued.
		Resume(cf)
		s := cf.Summarize()
		require.Equal(t, len(cf.Rows), s.Total)
		for _, r := range cf.Rows {
			require.False(t, r.State.Retry() && r.State != Queued, "state %q after resume", r.State)
		}
	})
}

func TestAnnouncedVersionAndChip(t *testing.T) {
	esphome := discovery.Device{Protocol: discovery.ProtocolESPHome, Platform: "ESP32",
		TXT: map[string]string{"version": "2025.10.0", "project_version": "1.4.2"}}
	require.Equal(t, "1.4.2", AnnouncedVersion(esphome))
	delete(esphome.TXT, "project_version")
	require.Equal(t, "2025.10.0", AnnouncedVersion(esphome))
	require.Equal(t, "", AnnouncedChip(esphome), "ESPHome's platform ESP32 is every ESP32 variant: the chip stays unknown")
	esphome.TXT["variant"] = "ESP32-S3"
	require.Equal(t, "esp32s3", AnnouncedChip(esphome))

	ard := discovery.Device{Protocol: discovery.ProtocolArduinoOTA, Board: "d1_mini", TXT: map[string]string{"version": "7"}}
	require.Equal(t, "7", AnnouncedVersion(ard))
	require.Equal(t, "", AnnouncedChip(ard), "a board name that is not a chip leaves the chip unknown")
	ard.TXT["chip"] = "esp8266"
	require.Equal(t, "esp8266", AnnouncedChip(ard))
}

func TestUSBBoardsJoinOnlyWhenNamed(t *testing.T) {
	for expr, want := range map[string]bool{"": false, "kitchen-*": false, "protocol=esphome": false,
		"protocol=serial": true, "protocol=ser*,name=lab": true, "protocol=*": true} {
		sel, err := ParseSelector(expr)
		require.NoError(t, err)
		require.Equal(t, want, sel.Names(discovery.ProtocolSerial), expr)
	}
	usb := discovery.Device{ID: "serial/ttyUSB0", Name: "ttyUSB0", Protocol: discovery.ProtocolSerial, Path: "/dev/ttyUSB0"}
	b := BoardFromDevice(usb)
	require.Equal(t, "serial", b.Protocol)
	require.Equal(t, "/dev/ttyUSB0", b.Address, "a USB board is reached at its port")

	sb, err := SerialBoard("/dev/ttyACM1", "ESP32-S3")
	require.NoError(t, err)
	require.Equal(t, Board{ID: "serial//dev/ttyACM1", Name: "/dev/ttyACM1", Protocol: "serial", Address: "/dev/ttyACM1", Chip: "esp32s3"}, sb)
	_, err = SerialBoard(" ", "")
	require.Error(t, err)
	_, err = SerialBoard("/dev/ttyUSB0", "esp99")
	require.Error(t, err)
}
