package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/internal/ops/campaign"
)

// campaignDemo is a simulated fleet for 'campaign run --demo': ArduinoOTA
// and ESPHome boards on loopback that reboot after an update and announce
// themselves to the campaign's roster (never on mDNS).
type campaignDemo struct {
	boards   []campaign.Board
	password string
	sims     []*otasim.Device
	esphome  []*esphomesim.Device
}

// demoESPHomeBoards: ESPHome boards with the demo password; one comes back
// on the image's version, one on its old one (as a board whose new
// firmware the bootloader rejected would).
var demoESPHomeBoards = []struct {
	name, board string
	takes       bool // comes back on the image's version
}{
	{"esphome-porch", "esp32dev", true},
	{"esphome-cellar", "esp32dev", false},
}

// demoCampaignBoards: most boards take the update; one already runs the
// version of 'espdeck sim ota --image' (1.0.0), one announces no version,
// one rolls back, one never comes back, one is an ESP32-S3 (no image for
// it unless one is given).
var demoCampaignBoards = []struct {
	name, chip, version string
	flavour             otasim.Flavour
	outcome             otasim.RebootOutcome
}{
	{"kitchen-1", "esp32", "0.9.0", otasim.ESP32, otasim.BootNew},
	{"kitchen-2", "esp32", "1.0.0", otasim.ESP32, otasim.BootNew},
	{"hallway", "esp32", "0.9.0", otasim.ESP32, otasim.BootNew},
	{"attic", "esp32", "", otasim.ESP32, otasim.BootNew},
	{"porch", "esp32", "0.9.0", otasim.ESP32, otasim.BootRollback},
	{"garage", "esp32", "0.9.0", otasim.ESP32, otasim.BootNever},
	{"office", "esp32", "0.9.2", otasim.ESP32, otasim.BootNew},
	{"lab-s3", "esp32s3", "0.9.0", otasim.ESP32, otasim.BootNew},
}

// startCampaignDemo starts the demo fleet; version is the version of the
// campaign's ESP32 image, which the ESPHome boards that take the update
// announce after their reboot.
func startCampaignDemo(ctx context.Context, roster *campaign.Roster, version string, log *slog.Logger) (*campaignDemo, error) {
	d := &campaignDemo{password: otasim.DemoPassword}
	for i, b := range demoCampaignBoards {
		id := "demo/" + b.name
		addr := ""
		cfg := otasim.Config{Name: b.name, Flavour: b.flavour, Password: otasim.DemoPassword, Scheme: otasim.SchemePBKDF2,
			ReceiveTimeout: 5 * time.Second, Logger: log,
			Reboot: &otasim.Reboot{Version: b.version, Down: 300 * time.Millisecond, Outcome: b.outcome,
				OnAnnounce: func(up bool, v string) {
					if !up {
						roster.Gone(id)
						return
					}
					if b.version == "" {
						v = "" // this board publishes no version
					}
					roster.Seen(id, addr, v)
				}}}
		sim, err := otasim.New(cfg)
		if err == nil {
			err = sim.Start(ctx)
		}
		if err != nil {
			d.close()
			return nil, fmt.Errorf("demo: start %s: %w", b.name, err)
		}
		d.sims = append(d.sims, sim)
		addr = sim.Addr().String()
		roster.Seen(id, addr, b.version)
		d.boards = append(d.boards, campaign.Board{ID: id, Name: b.name, Protocol: "arduino-ota", Address: addr,
			Chip: b.chip, Version: b.version, Auth: true, MAC: fmt.Sprintf("24:6f:28:de:00:%02x", i+1)})
	}
	for i, b := range demoESPHomeBoards {
		id := "demo/" + b.name
		addr := ""
		cfg := esphomesim.Config{Name: b.name, Platform: esphomesim.PlatformESP32, Board: b.board, Password: esphomesim.DemoPassword,
			FirmwareVersion: "0.9.0", RebootDelay: 300 * time.Millisecond, Logger: log,
			OnAnnounce: func(up bool, v string) {
				if !up {
					roster.Gone(id)
					return
				}
				roster.Seen(id, addr, v)
			}}
		if b.takes {
			cfg.NextVersion = version
		}
		sim, err := esphomesim.New(cfg)
		if err == nil {
			err = sim.Start(ctx)
		}
		if err != nil {
			d.close()
			return nil, fmt.Errorf("demo: start %s: %w", b.name, err)
		}
		d.esphome = append(d.esphome, sim)
		addr = sim.Addr().String()
		roster.Seen(id, addr, cfg.FirmwareVersion)
		d.boards = append(d.boards, campaign.Board{ID: id, Name: b.name, Protocol: "esphome", Address: addr,
			Chip: "esp32", Version: cfg.FirmwareVersion, MAC: fmt.Sprintf("24:6f:28:de:01:%02x", i+1)})
	}
	return d, nil
}

func (d *campaignDemo) close() {
	for _, s := range d.sims {
		s.Close()
	}
	for _, s := range d.esphome {
		s.Close()
	}
}
