package tuibackend

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/tui"
)

func TestConvertDevice(t *testing.T) {
	ota := convertDevice(discovery.Device{ID: "arduino-ota/esp32-a1", Name: "esp32-a1", Protocol: discovery.ProtocolArduinoOTA,
		Host: "esp32-a1.local", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.4")}, Port: 3232, Board: "esp32s3", AuthUpload: true,
		TXT: map[string]string{"board": "esp32s3"}})
	require.Equal(t, tui.KindArduinoOTA, ota.Kind)
	require.Equal(t, "192.0.2.4:3232", ota.Address, "the IP, not the .local name, so uploads need no resolver")
	require.True(t, ota.AuthRequired)
	require.Equal(t, "ESP32-S3", ota.Chip)

	home := convertDevice(discovery.Device{ID: "esphome/kitchen", Name: "kitchen", Protocol: discovery.ProtocolESPHome,
		Host: "kitchen.local", Port: 6053, MAC: "A1B2C3D4E5F6", FriendlyName: "Kitchen Sensor", Platform: "ESP8266"})
	require.Equal(t, tui.KindESPHome, home.Kind)
	require.Equal(t, "Kitchen Sensor", home.Name)
	require.Equal(t, "a1:b2:c3:d4:e5:f6", home.MAC, "MACs tie sightings together, so one spelling")
	require.Equal(t, "ESP8266", home.Chip)
	require.Equal(t, "kitchen.local:6053", home.Address)

	usb := convertDevice(discovery.Device{ID: "usb/10c4:ea60/0001", Name: "CP2102", Protocol: discovery.ProtocolSerial,
		Path: "/dev/ttyUSB0", VID: 0x10c4, PID: 0xea60, SerialNumber: "0001", Bridge: "CP210x"})
	require.Equal(t, tui.KindSerial, usb.Kind)
	require.Equal(t, "/dev/ttyUSB0", usb.Port)
	require.Empty(t, usb.Address)
	require.Equal(t, "10c4:ea60", usb.TXT["usb"])

	// A hand-added serial port from the config file is a serial device too.
	cfg := convertDevice(discovery.Device{ID: "manual//dev/pts/7", Protocol: discovery.ProtocolManual, Path: "/dev/pts/7"})
	require.Equal(t, tui.KindSerial, cfg.Kind)
	require.Equal(t, "/dev/pts/7", cfg.Port)
	require.Equal(t, tui.PresenceOnline, cfg.Presence, "a port that is listed is there")
}

// A typed host is not online because it was typed: it is unchecked until
// it answers an upload's invitation.
func TestHandAddedHostIsUncheckedUntilItAnswers(t *testing.T) {
	b := New(Config{})
	d := convertDevice(discovery.Device{ID: "manual/192.0.2.5:3232", Name: "192.0.2.5", Protocol: discovery.ProtocolManual,
		Host: "192.0.2.5", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.5")}, Port: 3232, LastSeen: time.Now()})
	require.Equal(t, tui.PresenceUnchecked, d.Presence)
	require.True(t, d.LastSeen.IsZero(), "no answer, so no time of one")
	require.Equal(t, tui.PresenceUnchecked, b.decorate(d).Presence)

	at := time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	b.learn(d.ID, func(f *learnedFacts) { f.answered = at })
	got := b.decorate(d)
	require.Equal(t, tui.PresenceOnline, got.Presence)
	require.Equal(t, at, got.LastSeen)
}

func TestChipFromBoard(t *testing.T) {
	for _, c := range []struct {
		board, platform string
		want            firmware.Chip
		ok              bool
	}{
		{"esp32s3", "", firmware.ChipESP32S3, true},
		{"d1_mini", "", firmware.ChipESP8266, true},
		{"esp01_1m", "ESP8266", firmware.ChipESP8266, true},
		{"esp32dev", "ESP32", firmware.ChipESP32, true},
		{"my_custom_board", "", firmware.ChipUnknown, false},
	} {
		got, ok := chipFromBoard(c.board, c.platform)
		require.Equal(t, c.ok, ok, c.board)
		if ok {
			require.Equal(t, c.want, got, c.board)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	h, p, err := splitHostPort(" 192.0.2.9 ")
	require.NoError(t, err)
	require.Equal(t, "192.0.2.9", h)
	require.Equal(t, 3232, p)
	h, p, err = splitHostPort("attic.local:8266")
	require.NoError(t, err)
	require.Equal(t, "attic.local", h)
	require.Equal(t, 8266, p)
	h, _, err = splitHostPort("[fe80::1]:3232")
	require.NoError(t, err)
	require.Equal(t, "fe80::1", h)
	_, _, err = splitHostPort("host:99999")
	require.ErrorContains(t, err, "not a port number")
	_, _, err = splitHostPort("")
	require.Error(t, err)
}

func TestIsoDate(t *testing.T) {
	require.Equal(t, "2026-11-21", isoDate("Nov 21 2026"))
	require.Equal(t, "2026-01-05", isoDate("Jan  5 2026"))
	require.Equal(t, "yesterday", isoDate("yesterday"))
	require.Equal(t, "Foo 21 2026", isoDate("Foo 21 2026"))
}

func TestNextSlotKeepsTheRunningFirmware(t *testing.T) {
	st := &ops.PartitionState{Rows: []ops.PartitionRow{
		{Name: "factory", OTASlot: -1}, {Name: "ota_0", OTASlot: 0}, {Name: "ota_1", OTASlot: 1},
	}, BootsNext: "ota_0", Running: "ota_0"}
	st.OTAData = &ops.OTADataState{}
	for i := range st.Rows {
		st.Rows[i].App = &ops.SlotImage{Valid: true}
	}
	s, err := ops.ChooseAppSlot(st)
	require.NoError(t, err)
	require.Equal(t, "ota_1", s.Row.Name)

	st.BootsNext, st.Running = "ota_1", "ota_1"
	s, _ = ops.ChooseAppSlot(st)
	require.Equal(t, "ota_0", s.Row.Name)

	// Defect 2: ota_0 runs, ota_1 boots next: no slot, never ota_0.
	st.BootsNext, st.Running = "ota_1", "ota_0"
	_, err = ops.ChooseAppSlot(st)
	require.ErrorIs(t, err, ops.ErrNoFreeSlot)

	s, err = ops.ChooseAppSlot(&ops.PartitionState{Rows: []ops.PartitionRow{{Name: "factory", OTASlot: -1, App: &ops.SlotImage{}}}})
	require.NoError(t, err)
	require.False(t, s.SwitchAfter, "a single-app table: the factory app is replaced, no switch")
}

func TestConvertVerdict(t *testing.T) {
	v := convertVerdict(ops.Verdict{Checks: []ops.Check{
		{Name: "fit", Status: ops.CheckSkipped, Detail: "the OTA slot size is not known"},
		{Name: "signature", Status: ops.CheckSkipped, Detail: "no signing key configured"},
	}}, nil)
	require.Equal(t, tui.VerdictOK, v.Kind)
	require.Equal(t, []string{"fit not checked: the OTA slot size is not known"}, v.Warnings, "only the skipped check that matters is shown")

	chip := ops.Check{Name: "chip", Status: ops.CheckFailed, Detail: "built for ESP32-C3, this board is ESP32", Overridable: true}
	v = convertVerdict(ops.Verdict{}, &ops.RefusedError{Failed: []ops.Check{chip}, Forceable: true})
	require.Equal(t, tui.VerdictForceable, v.Kind)
	require.Equal(t, "built for ESP32-C3, this board is ESP32", v.Reason)

	v = convertVerdict(ops.Verdict{}, &ops.RefusedError{Failed: []ops.Check{{Name: "signature", Detail: "not signed by the configured key"}}})
	require.Equal(t, tui.VerdictRefused, v.Kind)

	v = convertVerdict(ops.Verdict{}, errors.New("boom"))
	require.Equal(t, tui.VerdictRefused, v.Kind)
	require.Equal(t, "boom", v.Reason)
}

func TestDefaultSerialAddress(t *testing.T) {
	app := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32S3, AppDesc: &firmware.AppDesc{Version: "1"},
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x42000020, Data: make([]byte, 256)}}})
	require.Equal(t, uint32(0x10000), ops.DefaultAddress(firmware.ChipESP32S3, app))
	boot := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32, Entry: 0x40080400,
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x3FFF0000, Data: make([]byte, 64)}}})
	require.Equal(t, uint32(0x1000), ops.DefaultAddress(firmware.ChipESP32, boot), "an ESP32 bootloader lives at 0x1000")
}

func TestSerialTargetUsesWhatWasLearned(t *testing.T) {
	b := New(Config{})
	dev := tui.Device{ID: "demo/bench-3", Kind: tui.KindSerial, Port: "/dev/pts/9", Chip: "ESP32"}
	app := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32, AppDesc: &firmware.AppDesc{Version: "1"},
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x400D0020, Data: make([]byte, 256)}}})

	before := b.targetFor(dev, app)
	require.Equal(t, ops.RouteSerial, before.Route)
	require.Zero(t, before.FlashSize, "nothing learned yet")

	b.learn(dev.ID, func(l *learnedFacts) {
		l.flashSize = 4 << 20
		l.parts = &ops.PartitionState{BootsNext: "ota_0", Running: "ota_0", OTAData: &ops.OTADataState{}, Rows: []ops.PartitionRow{
			{Name: "ota_0", OTASlot: 0, Offset: 0x110000, Size: 1 << 20, App: &ops.SlotImage{Valid: true}},
			{Name: "ota_1", OTASlot: 1, Offset: 0x210000, Size: 1 << 20, App: &ops.SlotImage{Valid: true}},
		}}
	})
	after := b.targetFor(dev, app)
	require.Equal(t, firmware.ChipESP32, after.Chip)
	require.Equal(t, uint32(4<<20), after.FlashSize)
	require.Equal(t, uint32(0x210000), after.Address, "the slot the flash job will write")
	require.Equal(t, uint32(1<<20), after.SlotSize)
}

func TestDiscoveryStatusBecomesAStatusEvent(t *testing.T) {
	b := New(Config{})
	ev, keep := b.convertEvent(discovery.Event{Kind: discovery.StatusChanged, Status: discovery.Status{Message: "UDP port 5353 is held"}})
	require.True(t, keep)
	require.Equal(t, tui.DeviceSourceStatus, ev.Kind)
	require.Equal(t, "UDP port 5353 is held", ev.Status)
}
