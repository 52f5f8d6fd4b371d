package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/espdeck/espdeck/internal/humanize"
)

// FakeOptions configures a FakeBackend.
type FakeOptions struct {
	// Step is the time between two progress reports of a fake flash
	// (default 40 ms; a job takes about 40 steps). Tests pass 1 ms.
	Step time.Duration
	// Now stamps the fleet's first/last seen times (default time.Now).
	Now func() time.Time
	// Password is what every protected fake device accepts (default "demo").
	Password string
	// Devices replaces the fleet (default DemoFleet).
	Devices []Device
}

// FakeBackend simulates a fleet for this package's tests and golden screens: network devices that flash fine, one that rejects a
// wrong password, one that never connects back (the firewall case), a slow
// one, and a serial board with two OTA slots whose boot slot can be changed.
// It is safe for concurrent use.
type FakeBackend struct {
	opts FakeOptions

	mu      sync.Mutex
	devices []Device
	subs    []chan DeviceEvent
	board   fakeBoard
	flashes []FlashRequest
	// campaigns and resumed are the campaigns started and resumed.
	campaigns []CampaignRequest
	resumed   []string
	// resumePasswords are the passwords the last resume was given.
	resumePasswords map[string]Secret
	server          ServerState
}

// Fake device IDs of the default fleet, for tests.
const (
	FakeGreenhouse = "mdns:greenhouse-ctl" // ESP32-S3, PBKDF2 password, also on serial by MAC
	FakePorch      = "mdns:porch-light"    // ESPHome ESP32, MD5 password
	FakeAttic      = "mdns:sensor-attic"   // ESP8266, no password
	FakeGarage     = "mdns:garage-door"    // never connects back
	FakePump       = "mdns:pump-house"     // slow
	FakeBench      = "usb:/dev/ttyUSB0"    // serial ESP32 with OTA slots
	FakeGreenUSB   = "usb:/dev/ttyUSB1"    // the greenhouse board's USB port
	FakeNoConnPort = 41234                 // the port the no-connect-back hint names
	fakeBenchMAC   = "24:0a:c4:11:22:33"
	fakeGreenMAC   = "f4:12:fa:5c:9e:01"
)

// DemoFleet is the default fake fleet, seen at now.
func DemoFleet(now time.Time) []Device {
	seen := func(ago time.Duration) time.Time { return now.Add(-ago) }
	since := now.Add(-25 * time.Minute)
	return []Device{
		{ID: FakeGreenhouse, Name: "greenhouse-ctl", Kind: KindArduinoOTA, Address: "127.0.0.1:3232", MAC: fakeGreenMAC,
			Board: "esp32s3", Chip: "ESP32-S3", Interface: "lo", AuthRequired: true, AuthScheme: "PBKDF2-SHA256",
			TXT: map[string]string{"board": "esp32s3", "auth_upload": "yes", "tcp_check": "no", "ssh_upload": "no"}, FirstSeen: since, LastSeen: seen(2 * time.Second)},
		{ID: FakePorch, Name: "porch-light", Kind: KindESPHome, Address: "127.0.0.1:3233", MAC: "a4:cf:12:00:00:52",
			Board: "esp32dev", Chip: "ESP32", Interface: "lo", AuthRequired: true, AuthScheme: "MD5",
			TXT: map[string]string{"board": "esp32dev", "platform": "ESP32", "version": "2026.11.0"}, FirstSeen: since, LastSeen: seen(5 * time.Second)},
		{ID: FakeAttic, Name: "sensor-attic", Kind: KindArduinoOTA, Address: "127.0.0.1:8266", MAC: "5c:cf:7f:00:00:77",
			Board: "esp8266", Chip: "ESP8266", Interface: "lo", TXT: map[string]string{"board": "generic", "auth_upload": "no"}, FirstSeen: since, LastSeen: seen(3 * time.Second)},
		{ID: FakeGarage, Name: "garage-door", Kind: KindArduinoOTA, Address: "127.0.0.1:3234", MAC: "24:6f:28:00:00:13",
			Board: "esp32", Chip: "ESP32", Interface: "lo", TXT: map[string]string{"board": "esp32", "auth_upload": "no"}, FirstSeen: since, LastSeen: seen(9 * time.Second)},
		{ID: FakePump, Name: "pump-house", Kind: KindArduinoOTA, Address: "127.0.0.1:3235", MAC: "24:6f:28:00:00:99",
			Board: "esp32c3", Chip: "ESP32-C3", Interface: "lo", Presence: PresenceStale, TXT: map[string]string{"board": "esp32c3", "auth_upload": "no"}, FirstSeen: since, LastSeen: seen(75 * time.Second)},
		{ID: FakeBench, Name: "bench-3", Kind: KindSerial, Port: "/dev/ttyUSB0", MAC: fakeBenchMAC, Board: "ESP32 rev3", Chip: "ESP32",
			SerialMode: SerialDownload, TXT: map[string]string{"vid:pid": "10c4:ea60", "product": "CP2102N"}, FirstSeen: since, LastSeen: seen(1 * time.Second)},
		{ID: FakeGreenUSB, Name: "USB JTAG/serial", Kind: KindSerial, Port: "/dev/ttyUSB1", MAC: fakeGreenMAC, Chip: "ESP32-S3",
			SerialMode: SerialApp, TXT: map[string]string{"vid:pid": "303a:1001"}, FirstSeen: since, LastSeen: seen(1 * time.Second)},
	}
}

// NewFakeBackend builds a fake fleet.
func NewFakeBackend(opts FakeOptions) *FakeBackend {
	if opts.Step <= 0 {
		opts.Step = 40 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Password == "" {
		opts.Password = "demo"
	}
	devs := opts.Devices
	if devs == nil {
		devs = DemoFleet(opts.Now())
	}
	return &FakeBackend{opts: opts, devices: append([]Device(nil), devs...), board: newFakeBoard()}
}

// Backend returns the fake as the TUI's backend bundle.
func (f *FakeBackend) Backend() Backend {
	return Backend{Devices: f, Flasher: f, Images: f, Partitions: f, Serial: f, Monitor: f, Campaigns: f, Server: f}
}

// SetServer sets what the fake pull server reports.
func (f *FakeBackend) SetServer(st ServerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.server = st
}

// ServerState implements ServerSource.
func (f *FakeBackend) ServerState() ServerState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.server
}

// StartCampaign implements CampaignRunner by recording the request; tests
// send the views a campaign would produce themselves.
func (f *FakeBackend) StartCampaign(ctx context.Context, req CampaignRequest, update func(CampaignView)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.campaigns = append(f.campaigns, req)
	return nil
}

// ResumeCampaign implements CampaignRunner by recording the id.
func (f *FakeBackend) ResumeCampaign(ctx context.Context, id string, passwords map[string]Secret, update func(CampaignView)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resumed = append(f.resumed, id)
	f.resumePasswords = passwords
	return nil
}

// Flashes returns the requests flashed so far (passwords included), for tests.
func (f *FakeBackend) Flashes() []FlashRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FlashRequest(nil), f.flashes...)
}

// Watch implements DeviceSource.
func (f *FakeBackend) Watch(ctx context.Context) <-chan DeviceEvent {
	ch := make(chan DeviceEvent, 64)
	f.mu.Lock()
	initial := append([]Device(nil), f.devices...)
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		for _, d := range initial {
			select {
			case ch <- DeviceEvent{Kind: DeviceAdded, Device: d}:
			case <-ctx.Done():
			}
		}
		<-ctx.Done()
		f.mu.Lock()
		for i, s := range f.subs {
			if s == ch {
				f.subs = append(f.subs[:i], f.subs[i+1:]...)
				break
			}
		}
		f.mu.Unlock()
		close(ch)
	}()
	return ch
}

// AddHost implements DeviceSource: any loopback host is accepted.
func (f *FakeBackend) AddHost(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "3232"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("the demo fleet lives on loopback; try 127.0.0.1:%s", port)
	}
	now := f.opts.Now()
	d := Device{ID: "host:" + net.JoinHostPort(host, port), Name: net.JoinHostPort(host, port), Kind: KindArduinoOTA,
		Address: net.JoinHostPort(host, port), FirstSeen: now, Presence: PresenceUnchecked}
	f.mu.Lock()
	f.devices = append(f.devices, d)
	subs := append([]chan DeviceEvent(nil), f.subs...)
	f.mu.Unlock()
	for _, s := range subs {
		select {
		case s <- DeviceEvent{Kind: DeviceAdded, Device: d}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Refresh implements DeviceSource.
func (f *FakeBackend) Refresh(context.Context) error { return nil }

// fakeImage is what the fake knows about a file name.
type fakeImage struct {
	chip, project, version string
	size                   int64
}

// fakeImages are files the fake knows without them existing on disk.
func fakeImages() map[string]fakeImage {
	return map[string]fakeImage{
		"greenhouse-v2.7.1.bin":   {"ESP32-S3", "greenhouse", "v2.7.1", 1268736},
		"porch-light-esp32c3.bin": {"ESP32-C3", "porch-light", "2026.11.1", 983040},
		"porch-light.bin":         {"ESP32", "porch-light", "2026.11.1", 1003520},
		"sensor-attic.bin":        {"ESP8266", "sensor-attic", "v1.4.0", 412160},
		"blink-esp32.bin":         {"ESP32", "blink", "v0.3.0", 262144},
		"huge-esp32.bin":          {"ESP32", "kitchen-sink", "v9.0.0", 2202009},
		"unsigned-esp32.bin":      {"ESP32", "door", "v1.0.0", 301056},
	}
}

// Inspect implements ImageInspector from the file name: a name the fake
// knows, or any existing file (whose chip is taken to match the target).
func (f *FakeBackend) Inspect(ctx context.Context, path string, target Device) (ImageFacts, Verdict, error) {
	if err := ctx.Err(); err != nil {
		return ImageFacts{}, Verdict{}, err
	}
	base := filepath.Base(path)
	img, known := fakeImages()[base]
	if !known {
		st, err := os.Stat(path)
		if err != nil {
			return ImageFacts{}, Verdict{}, fmt.Errorf("cannot read %s: %w; check the path (tab completes)", path, errors.Unwrap(err))
		}
		if st.IsDir() {
			return ImageFacts{}, Verdict{}, fmt.Errorf("%s is a directory; pick a .bin file in it", path)
		}
		img = fakeImage{chip: target.Chip, project: strings.TrimSuffix(base, filepath.Ext(base)), size: st.Size()}
	}
	facts := ImageFacts{Path: path, Kind: "app", Chip: img.chip, Project: img.project, Version: img.version, Size: img.size, SHAOK: true, SHAKnown: true}
	facts.Summary = fmt.Sprintf("%s · %s app · %s · %s · SHA-256 ok", base, orUnknown(img.chip), orUnknown(img.version), humanize.Bytes(img.size))
	v := Verdict{Kind: VerdictOK}
	switch {
	case strings.HasPrefix(base, "unsigned"):
		v = Verdict{Kind: VerdictRefused, Reason: "the image is not signed and this board only boots signed images"}
	case target.Chip != "" && img.chip != "" && target.Chip != img.chip:
		v = Verdict{Kind: VerdictForceable, Reason: fmt.Sprintf("built for %s, this board is %s", img.chip, target.Chip)}
	case img.size > 0x180000:
		v = Verdict{Kind: VerdictForceable, Reason: fmt.Sprintf("the image is %s, the OTA slot holds %s", humanize.Bytes(img.size), humanize.Bytes(0x180000))}
	}
	return facts, v, nil
}

// Flash implements Flasher with scripted progress.
func (f *FakeBackend) Flash(ctx context.Context, req FlashRequest, progress func(Progress)) FlashResult {
	f.mu.Lock()
	f.flashes = append(f.flashes, req)
	f.mu.Unlock()
	start := time.Now()
	img := fakeImages()[filepath.Base(req.File)]
	total := img.size
	if total == 0 {
		total = 524288
	}
	step := f.opts.Step
	wait := func(n int) bool {
		t := time.NewTimer(time.Duration(n) * step)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	canceled := FlashResult{Error: "cancelled", Canceled: true}
	report := func(stage, note string, done, tot int64) {
		if progress != nil {
			progress(Progress{Stage: stage, Note: note, Done: done, Total: tot})
		}
	}
	stream := func(stage string, steps int) bool {
		for i := 1; i <= steps; i++ {
			if !wait(1) {
				return false
			}
			report(stage, "", total*int64(i)/int64(steps), total)
		}
		return true
	}
	if req.Route == RouteSerial {
		for _, s := range []string{"sync", "erase"} {
			report(s, "", 0, 0)
			if !wait(3) {
				return canceled
			}
		}
		if !stream("write", 30) {
			return canceled
		}
		report("verify", "MD5", 0, 0)
		if !wait(3) {
			return canceled
		}
		report("reset", "", 0, 0)
		f.mu.Lock()
		f.board.flashed(img)
		f.mu.Unlock()
		return FlashResult{Bytes: total, Version: img.version, Duration: time.Since(start)}
	}
	report("invite", "", 0, 0)
	if !wait(2) {
		return canceled
	}
	if req.Device.AuthRequired {
		scheme := map[string]string{"PBKDF2-SHA256": "PBKDF2", "MD5": "MD5"}[req.Device.AuthScheme]
		report("auth", scheme, 0, 0)
		if !wait(2) {
			return canceled
		}
		if req.Password.Reveal() != f.opts.Password {
			return FlashResult{Error: "the device rejected the password", AuthFailed: true,
				Hint: "type the password set in the firmware (ArduinoOTA.setPassword); in the demo it is " + f.opts.Password, Duration: time.Since(start)}
		}
	}
	report("connect", "", 0, 0)
	if req.Device.ID == FakeGarage {
		if !wait(6) {
			return canceled
		}
		return FlashResult{Error: fmt.Sprintf("the device never connected back to 127.0.0.1:%d", FakeNoConnPort),
			Hint: fmt.Sprintf("allow inbound TCP on port %d in the firewall, or pick an open port with --host-port", FakeNoConnPort), Duration: time.Since(start)}
	}
	if !wait(2) {
		return canceled
	}
	steps := 30
	if req.Device.ID == FakePump {
		steps = 120
	}
	if !stream("transfer", steps) {
		return canceled
	}
	report("finalize", "", 0, 0)
	if !wait(2) {
		return canceled
	}
	return FlashResult{Bytes: total, Version: img.version, Duration: time.Since(start)}
}

// ChipInfo implements SerialInfo.
func (f *FakeBackend) ChipInfo(ctx context.Context, dev Device) (ChipInfo, error) {
	if err := ctx.Err(); err != nil {
		return ChipInfo{}, err
	}
	if dev.Chip == "ESP32-S3" {
		return ChipInfo{Chip: "ESP32-S3", Revision: "v0.2", MAC: dev.MAC, FlashID: "0x174020", FlashSize: 8 << 20, Crystal: "40 MHz",
			Features: []string{"WiFi", "BLE", "8 MB PSRAM"}}, nil
	}
	return ChipInfo{Chip: "ESP32-D0WD-V3", Revision: "v3.1", MAC: dev.MAC, FlashID: "0x164020", FlashSize: 4 << 20, Crystal: "40 MHz",
		Features: []string{"WiFi", "BT", "dual core", "240 MHz"}}, nil
}

// ReadPartitions implements PartitionControl.
func (f *FakeBackend) ReadPartitions(ctx context.Context, dev Device) (PartitionState, error) {
	if err := ctx.Err(); err != nil {
		return PartitionState{}, err
	}
	if dev.Kind != KindSerial {
		return PartitionState{}, errors.New("partitions are read over serial; connect the board by USB")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.board.state(), nil
}

// SwitchBoot implements PartitionControl.
func (f *FakeBackend) SwitchBoot(ctx context.Context, dev Device, slot string) (PartitionState, error) {
	if err := ctx.Err(); err != nil {
		return PartitionState{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.board.index(slot)
	if i < 0 || f.board.slots[i].version == "" {
		return PartitionState{}, fmt.Errorf("%s is not an OTA slot with an image", slot)
	}
	f.board.boot(i, "new")
	return f.board.state(), nil
}

// EraseOTAData implements PartitionControl.
func (f *FakeBackend) EraseOTAData(ctx context.Context, dev Device) (PartitionState, error) {
	if err := ctx.Err(); err != nil {
		return PartitionState{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.board.erased = true
	return f.board.state(), nil
}

// MarkInvalid implements PartitionControl.
func (f *FakeBackend) MarkInvalid(ctx context.Context, dev Device, slot string) (PartitionState, error) {
	if err := ctx.Err(); err != nil {
		return PartitionState{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.board.index(slot)
	if i < 0 {
		return PartitionState{}, fmt.Errorf("%s is not an OTA slot", slot)
	}
	f.board.slots[i].state = "invalid"
	if f.board.next() == i {
		other := 1 - i
		if f.board.slots[other].version != "" && f.board.slots[other].state != "invalid" {
			f.board.boot(other, f.board.slots[other].state)
		}
	}
	return f.board.state(), nil
}

// Monitor implements MonitorSource with a boot log, a crash with a decoded
// backtrace, and then a heartbeat line per 20 steps.
func (f *FakeBackend) Monitor(ctx context.Context, dev Device) (<-chan LogLine, error) {
	ch := make(chan LogLine, 16)
	step := f.opts.Step
	now := f.opts.Now
	go func() {
		defer close(ch)
		send := func(l LogLine) bool {
			l.Time = now()
			select {
			case ch <- l:
				return true
			case <-ctx.Done():
				return false
			}
		}
		script := []LogLine{
			{Text: "ets Jun  8 2016 00:22:57"},
			{Text: "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"},
			{Level: 'I', Tag: "boot", Text: "Loaded app from partition at offset 0x1a0000"},
			{Level: 'I', Tag: "cpu_start", Text: "Pro cpu start user code"},
			{Level: 'D', Tag: "wifi", Text: "connecting to greenhouse-net"},
			{Level: 'W', Tag: "sensor", Text: "humidity sensor slow to answer (120 ms)"},
			{Level: 'I', Tag: "ota", Text: "running greenhouse v2.7.0, state VALID"},
			{Level: 'E', Tag: "pump", Text: "Guru Meditation Error: Core 1 panic'ed (LoadProhibited)"},
			{Text: "Backtrace: 0x400d1f2a:0x3ffb1f80 0x400d20b1:0x3ffb1fa0", Backtrace: []Frame{
				{PC: 0x400d1f2a, Function: "pump_read_level", File: "main/pump.c", Line: 88},
				{PC: 0x400d20b1, Function: "app_main", File: "main/main.c", Line: 41}}},
		}
		for _, l := range script {
			if !send(l) {
				return
			}
		}
		for i := 0; ; i++ {
			t := time.NewTimer(20 * step)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if !send(LogLine{Level: 'I', Tag: "main", Text: fmt.Sprintf("heartbeat %d, free heap %d", i, 201344-i*16)}) {
				return
			}
		}
	}()
	return ch, nil
}

// ResetIntoApp implements MonitorSource.
func (f *FakeBackend) ResetIntoApp(ctx context.Context, dev Device) error { return ctx.Err() }

// fakeBoard is the serial board's flash: two OTA slots and otadata.
type fakeBoard struct {
	seq     uint32
	erased  bool
	running int
	slots   [2]struct{ project, version, date, state string }
}

func newFakeBoard() fakeBoard {
	var b fakeBoard
	b.seq = 8 // (8-1) % 2 = 1: ota_1 boots
	b.running = 1
	b.slots[0] = struct{ project, version, date, state string }{"greenhouse", "v2.6.3", "2026-10-30", "valid"}
	b.slots[1] = struct{ project, version, date, state string }{"greenhouse", "v2.7.0", "2026-11-21", "valid"}
	return b
}

func (b *fakeBoard) index(slot string) int {
	switch slot {
	case "ota_0":
		return 0
	case "ota_1":
		return 1
	}
	return -1
}

// next is the slot the bootloader picks.
func (b *fakeBoard) next() int {
	if b.erased {
		return 0
	}
	return int((b.seq - 1) % 2)
}

// boot makes slot i boot next with a new sequence number.
func (b *fakeBoard) boot(i int, state string) {
	b.erased = false
	b.seq++
	for int((b.seq-1)%2) != i {
		b.seq++
	}
	b.slots[i].state = state
}

// flashed writes an image to the slot that is not running and boots it.
func (b *fakeBoard) flashed(img fakeImage) {
	i := 1 - b.running
	b.slots[i].project, b.slots[i].version, b.slots[i].date = img.project, img.version, "2026-11-22"
	b.boot(i, "new")
}

func (b *fakeBoard) state() PartitionState {
	parts := []Partition{
		{Name: "nvs", Type: "data", SubType: "nvs", Offset: 0x9000, Size: 0x6000},
		{Name: "otadata", Type: "data", SubType: "ota", Offset: 0xf000, Size: 0x2000},
		{Name: "phy_init", Type: "data", SubType: "phy", Offset: 0x11000, Size: 0x1000},
	}
	for i, s := range b.slots {
		parts = append(parts, Partition{Name: fmt.Sprintf("ota_%d", i), Type: "app", SubType: fmt.Sprintf("ota_%d", i),
			Offset: []uint32{0x20000, 0x1a0000}[i], Size: 0x180000, AppProject: s.project, AppVersion: s.version, AppDate: s.date, State: s.state})
	}
	parts = append(parts, Partition{Name: "storage", Type: "data", SubType: "spiffs", Offset: 0x320000, Size: 0x80000})
	sort.Slice(parts, func(i, j int) bool { return parts[i].Offset < parts[j].Offset })
	st := PartitionState{TableOffset: 0x8000, Partitions: parts, Running: fmt.Sprintf("ota_%d", b.running)}
	n := b.next()
	st.BootsNext = fmt.Sprintf("ota_%d", n)
	if b.erased {
		st.OTAData = "erased"
		st.BootsNextWhy = "otadata erased: first OTA slot"
	} else {
		st.OTAData = fmt.Sprintf("seq %d (copy %d ✓, copy %d ✓)", b.seq, b.seq%2, 1-b.seq%2)
		st.BootsNextWhy = fmt.Sprintf("seq %d, state %s", b.seq, strings.ToUpper(b.slots[n].state))
	}
	return st
}
