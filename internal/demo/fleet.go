package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/esphomeota/esphomesim"
	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/monitor"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/serialflash/romsim"
)

// Password is the OTA password of the demo devices that ask for one.
const Password = otasim.DemoPassword

// Fleet is a running simulated fleet.
type Fleet struct {
	// Devices are handed to discovery as static devices (no mDNS).
	Devices []discovery.Device
	// Files are sample images written for the demo, newest first.
	Files []string
	// SerialPath is the pseudo-terminal of the simulated serial board.
	SerialPath string
	// ROM is the simulated serial board.
	ROM *romsim.ROM

	ota []*otasim.Device
	// otaNames are the board names of ota, in the same order.
	otaNames []string
	// esphome are the simulated ESPHome boards, by board name.
	esphome map[string]*esphomesim.Device
	// apiKeys are the ESPHome boards' API encryption keys, by device ID.
	apiKeys map[string]string
	stop    func()
	once    sync.Once
}

// otaBoard names and dresses up one of otasim's demo configurations.
type otaBoard struct {
	sim   string // otasim.Demo() name
	name  string
	board string
	// rate is how fast the board takes an image, in bytes per second, as
	// a real board on Wi-Fi does (writing flash as it goes): a visitor
	// sees an upload's progress instead of a 0.1 s blink. 0 keeps the
	// simulator's own setting (the slow board's is slower still).
	rate int
}

var otaBoards = [...]otaBoard{
	{"esp32-pbkdf2", "greenhouse-ctl", "esp32", 110 << 10},
	{"esp8266-md5", "sensor-attic", "d1_mini", 64 << 10},
	{"esp32-open", "porch-light", "esp32", 90 << 10},
	{"esp32-firewalled", "garage-door", "esp32", 100 << 10},
	{"esp32-slow", "weather-station", "esp32", 0},
}

// esphomeBoard names and dresses up one of esphomesim's demo configurations.
type esphomeBoard struct {
	sim  string // esphomesim.Demo() name
	name string
	mac  string // as ESPHome's TXT has it: 12 lower-case hex digits
	rate int    // bytes per second the board writes, as otaBoard.rate
	// board replaces the simulator's board id: the demo's sample images
	// are built for a plain ESP32, and a visitor should be able to send
	// one to each ESPHome board.
	board string
}

var esphomeBoards = [...]esphomeBoard{
	{"esphome-plain", "kitchen-plug", "a0b765112201", 100 << 10, ""},
	{"esphome-sha256", "hall-sensor", "a0b765112202", 90 << 10, ""},
	{"esphome-noise", "front-door-lock", "f412fa334403", 80 << 10, "esp32dev"},
}

// APIKey is the API encryption key of the demo ESPHome board that
// encrypts its OTA sessions (a demo value, never a real board's).
const APIKey = esphomesim.DemoAPIKey

// Start starts the fleet: the simulated OTA devices on loopback, a
// simulated ESP32 in its ROM bootloader on a pseudo-terminal holding a
// realistic flash layout, and sample images in dir. Close stops it all.
func Start(ctx context.Context, dir string, log *slog.Logger) (*Fleet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{}
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	byName := map[string]otasim.Config{}
	for _, c := range otasim.Demo() {
		byName[c.Name] = c
	}
	for _, b := range otaBoards {
		cfg, found := byName[b.sim]
		if !found {
			return nil, fmt.Errorf("demo: simulator has no %q device", b.sim)
		}
		cfg.Logger = log
		if b.rate > 0 && cfg.Faults.ReadRate == 0 {
			cfg.Faults.ReadRate = b.rate
		}
		d, err := otasim.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", b.name, err)
		}
		if err := d.Start(ctx); err != nil {
			return nil, fmt.Errorf("demo: start %s: %w", b.name, err)
		}
		f.ota = append(f.ota, d)
		f.otaNames = append(f.otaNames, b.name)
		addr := d.Addr()
		auth := "no"
		if cfg.Password != "" {
			auth = "yes"
		}
		f.Devices = append(f.Devices, discovery.Device{
			ID: "demo/" + b.name, Name: b.name, Protocol: discovery.ProtocolArduinoOTA,
			Host: b.name + ".local", Addrs: []netip.Addr{addr.Addr()}, Port: int(addr.Port()),
			Board: b.board, AuthUpload: cfg.Password != "", Interface: "lo",
			TXT: map[string]string{"board": b.board, "auth_upload": auth, "tcp_check": "no", "ssh_upload": "no"},
		})
	}

	if err := f.startESPHome(ctx, log); err != nil {
		return nil, err
	}

	flash, err := ops.DemoFlash(firmware.ChipESP32,
		ops.DemoApp{Slot: "factory", Project: "bench-fixture", Version: "v1.0.0", Size: 160 << 10},
		ops.DemoApp{Slot: "ota_0", Project: "bench-fixture", Version: "v2.6.3", Size: 200 << 10},
		ops.DemoApp{Slot: "ota_1", Project: "bench-fixture", Version: "v2.7.0", Size: 210 << 10},
	)
	if err != nil {
		return nil, fmt.Errorf("demo: flash layout: %w", err)
	}
	if err := pendingUpdate(flash); err != nil {
		return nil, fmt.Errorf("demo: flash layout: %w", err)
	}
	path, rom, stop, err := romsim.StartPTY(ctx, romsim.Config{
		Chip: firmware.ChipESP32, FlashImage: flash, AppLog: []byte(BootLog), Pace: true,
		EraseSectorTime: 2e6, ProgramByteTime: 0, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: simulated serial board: %w", err)
	}
	f.SerialPath, f.ROM, f.stop = path, rom, stop
	f.Devices = append(f.Devices, discovery.Device{
		ID: "demo/bench-3", Name: "bench-3", Protocol: discovery.ProtocolSerial, Path: path,
		VID: 0x10c4, PID: 0xea60, Bridge: "CP210x", ChipFamily: "ESP32",
	})

	if err := f.writeFiles(dir); err != nil {
		return nil, err
	}
	ok = true
	return f, nil
}

// startESPHome starts the ESPHome boards on loopback and lists them as
// discovery would from their _esphomelib._tcp answers, except that the
// port is the OTA port itself (ESPHome advertises its API port): there is
// no mDNS responder to ask, and the simulator's port is not the default.
func (f *Fleet) startESPHome(ctx context.Context, log *slog.Logger) error {
	byName := map[string]esphomesim.Config{}
	for _, c := range esphomesim.Demo() {
		byName[c.Name] = c
	}
	f.esphome = map[string]*esphomesim.Device{}
	f.apiKeys = map[string]string{}
	for _, b := range esphomeBoards {
		cfg, found := byName[b.sim]
		if !found {
			return fmt.Errorf("demo: ESPHome simulator has no %q device", b.sim)
		}
		cfg.Name, cfg.Logger = b.name, log
		if b.board != "" {
			cfg.Board = b.board
		}
		if b.rate > 0 && cfg.ByteDelay == 0 {
			cfg.ByteDelay = time.Second / time.Duration(b.rate)
		}
		d, err := esphomesim.New(cfg)
		if err != nil {
			return fmt.Errorf("demo: %s: %w", b.name, err)
		}
		if err := d.Start(ctx); err != nil {
			return fmt.Errorf("demo: start %s: %w", b.name, err)
		}
		f.esphome[b.name] = d
		addr := d.Addr().AddrPort()
		id := "demo/" + b.name
		if cfg.APIKey != "" {
			f.apiKeys[id] = cfg.APIKey
		}
		platform := cfg.Platform
		if platform == "" {
			platform = esphomesim.PlatformESP32
		}
		f.Devices = append(f.Devices, discovery.Device{
			ID: id, Name: b.name, Protocol: discovery.ProtocolESPHome,
			Host: b.name + ".local", Addrs: []netip.Addr{addr.Addr().Unmap()}, Port: int(addr.Port()),
			Board: cfg.Board, Platform: platform, ESPHomeVersion: cfg.FirmwareVersion, MAC: b.mac, Interface: "lo",
			TXT: map[string]string{"platform": platform, "board": cfg.Board, "version": cfg.FirmwareVersion, "mac": b.mac, "network": "wifi"},
		})
	}
	return nil
}

// APIKeyFor returns the API encryption key of the demo device with the
// given discovery ID, for the backend's encrypted ESPHome sessions.
func (f *Fleet) APIKeyFor(id string) (string, bool) {
	k, ok := f.apiKeys[id]
	return k, ok
}

// ESPHome returns the simulated ESPHome board called name (nil if the
// fleet has none): tests read what it received from it.
func (f *Fleet) ESPHome(name string) *esphomesim.Device { return f.esphome[name] }

// pendingUpdate makes the serial board's otadata say that ota_1 (v2.7.0)
// was just installed and has not been tried yet (copy 1: sequence 2, state
// NEW) while ota_0 (v2.6.3) is the known-good slot (copy 0: sequence 1,
// VALID): ota_1 boots next, and a visitor can let it or roll back to ota_0.
func pendingUpdate(flash []byte) error {
	tab, err := firmware.ParsePartitionCSV([]byte(ops.DemoLayoutCSV), firmware.CSVOptions{})
	if err != nil {
		return err
	}
	otaP, ok := tab.OTAData()
	if !ok {
		return errors.New("the demo table has no otadata partition")
	}
	d := firmware.OTAData{Copies: [2]firmware.OTAEntry{
		firmware.NewOTAEntry(1, firmware.OTAStateValid),
		firmware.NewOTAEntry(2, firmware.OTAStateNew),
	}}
	b := d.Encode()
	if int(otaP.Offset)+len(b) > len(flash) || uint32(len(b)) > otaP.Size {
		return errors.New("otadata does not fit where the demo table puts it")
	}
	copy(flash[otaP.Offset:], b)
	return nil
}

// writeFiles puts sample images in dir: ones that fit the fleet and one
// built for another chip, to show a refusal.
func (f *Fleet) writeFiles(dir string) error {
	files := []struct {
		name string
		app  App
	}{
		{"bench-fixture-v2.8.0.bin", App{Chip: firmware.ChipESP32, Project: "bench-fixture", Version: "v2.8.0", Date: "Nov 22 2026", Size: 220 << 10}},
		{"greenhouse-v2.7.1.bin", App{Chip: firmware.ChipESP32, Project: "greenhouse", Version: "v2.7.1", Date: "Nov 21 2026", Size: 900 << 10}},
		{"sensor-attic-v1.4.0.bin", App{Chip: firmware.ChipESP8266, Project: "sensor-attic", Version: "v1.4.0", Size: 380 << 10}},
		{"greenhouse-v2.7.1-esp32c3.bin", App{Chip: firmware.ChipESP32C3, Project: "greenhouse", Version: "v2.7.1", Date: "Nov 21 2026", Size: 300 << 10}},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, file := range files {
		p := filepath.Join(dir, file.name)
		if err := os.WriteFile(p, BuildApp(file.app), 0o644); err != nil {
			return fmt.Errorf("demo: write sample image: %w", err)
		}
		f.Files = append(f.Files, p)
	}
	return nil
}

// Sessions returns the upload sessions the simulated OTA board called name
// has received (what it was sent, and how each ended); nil for a name the
// fleet does not have. Tests check with it which boards a flash reached.
func (f *Fleet) Sessions(name string) []otasim.Session {
	for i, n := range f.otaNames {
		if n == name {
			return f.ota[i].Sessions()
		}
	}
	return nil
}

// Close stops every simulated device. It is safe to call more than once.
func (f *Fleet) Close() error {
	var errs []error
	f.once.Do(func() {
		for _, d := range f.ota {
			errs = append(errs, d.Close())
		}
		for _, d := range f.esphome {
			errs = append(errs, d.Close())
		}
		if f.stop != nil {
			f.stop()
		}
	})
	return errors.Join(errs...)
}

// OpenSerialPort opens a port for the ROM loader. The demo board's pty
// carries no DTR/RTS, so for it the lines are forwarded to the simulator,
// as the auto-reset circuit of a dev board would carry them.
func (f *Fleet) OpenSerialPort(ctx context.Context, name string) (serialflash.Port, error) {
	p, err := serialflash.OpenPort(ctx, name)
	if err != nil || name != f.SerialPath {
		return p, err
	}
	return &linesToROM{Port: p, lines: &romLines{rom: f.ROM}}, nil
}

// OpenMonitorPort is OpenSerialPort for the monitor.
func (f *Fleet) OpenMonitorPort(ctx context.Context, name string, baud int) (monitor.Port, error) {
	p, err := monitor.OpenSerial(ctx, name, baud)
	if err != nil || name != f.SerialPath {
		return p, err
	}
	return &monitorLines{Port: p, lines: &romLines{rom: f.ROM}}, nil
}

// romLines carries DTR/RTS to the simulated board, as a dev board's
// auto-reset circuit would; a pty cannot carry them itself.
type romLines struct {
	rom      *romsim.ROM
	mu       sync.Mutex
	dtr, rts bool
}

func (l *romLines) set(dtr, rts *bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dtr != nil {
		l.dtr = *dtr
	}
	if rts != nil {
		l.rts = *rts
	}
	l.rom.SetLines(l.dtr, l.rts)
	return nil
}

// linesToROM is a ROM-loader port whose modem lines reach the simulator.
type linesToROM struct {
	serialflash.Port
	lines *romLines
}

func (p *linesToROM) SetDTR(on bool) error { return p.lines.set(&on, nil) }
func (p *linesToROM) SetRTS(on bool) error { return p.lines.set(nil, &on) }

// monitorLines is the same for the monitor's port.
type monitorLines struct {
	monitor.Port
	lines *romLines
}

func (p *monitorLines) SetDTR(on bool) error { return p.lines.set(&on, nil) }
func (p *monitorLines) SetRTS(on bool) error { return p.lines.set(nil, &on) }

// BootLog is what the simulated board's application prints after a normal
// boot: an ESP-IDF boot, some app logs at each level, and a crash.
const BootLog = "I (29) boot: ESP-IDF v5.5.1 2nd stage bootloader\r\n" +
	"I (29) boot: compile time Nov 21 2026 14:07:12\r\n" +
	"I (33) boot: Multicore bootloader\r\n" +
	"I (41) boot: chip revision: v3.0\r\n" +
	"I (72) boot: Partition Table:\r\n" +
	"I (80) boot:  0 nvs              WiFi data        01 02 00009000 00004000\r\n" +
	"I (95) boot:  1 otadata          OTA data         01 00 0000d000 00002000\r\n" +
	"I (110) boot:  3 factory          factory app      00 00 00010000 00100000\r\n" +
	"I (118) boot:  4 ota_0            OTA app          00 10 00110000 00100000\r\n" +
	"I (125) boot:  5 ota_1            OTA app          00 11 00210000 00100000\r\n" +
	"I (140) boot: Loaded app from partition at offset 0x110000\r\n" +
	"\x1b[0;32mI (302) cpu_start: Pro cpu start user code\x1b[0m\r\n" +
	"\x1b[0;32mI (315) app_init: Project name:     bench-fixture\x1b[0m\r\n" +
	"\x1b[0;32mI (320) app_init: App version:      v2.6.3\x1b[0m\r\n" +
	"\x1b[0;32mI (512) wifi:mode : sta (24:0a:c4:12:34:56)\x1b[0m\r\n" +
	"\x1b[0;33mW (1530) bench: sensor on I2C 0x44 did not answer, retrying\x1b[0m\r\n" +
	"D (1610) bench: retry 1\r\n" +
	"\x1b[0;31mE (2010) bench: sensor read failed: ESP_ERR_TIMEOUT\x1b[0m\r\n" +
	"\r\n" +
	"Guru Meditation Error: Core  1 panic'ed (LoadProhibited). Exception was unhandled.\r\n" +
	"\r\n" +
	"Core  1 register dump:\r\n" +
	"PC      : 0x400d1f2a  PS      : 0x00060730  A0      : 0x800d2c4e  A1      : 0x3ffb1f50\r\n" +
	"EXCVADDR: 0x00000000\r\n" +
	"\r\n" +
	"Backtrace: 0x400d1f27:0x3ffb1f50 0x400d2c4b:0x3ffb1f70 0x40089f8e:0x3ffb1f90\r\n" +
	"\r\n" +
	"ELF file SHA256: 6f5d0e7b9a1c2d3e\r\n" +
	"\r\n" +
	"Rebooting...\r\n"
