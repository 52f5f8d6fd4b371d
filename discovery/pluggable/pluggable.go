// Package pluggable speaks the Arduino pluggable discovery protocol
// (arduino-cli docs/pluggable-discovery-specification.md, version 1) on a
// reader and a writer, so that the Arduino IDE 2 and arduino-cli take their
// network ports from espdeck's discovery. Commands arrive one per line
// (HELLO, START, LIST, START_SYNC, STOP, QUIT); every command gets exactly
// one JSON answer, and after START_SYNC the board arrivals and departures
// follow as "add" and "remove" events.
//
// A port is an ArduinoOTA board (_arduino._tcp): protocol "network", the
// board's IP address as the port address, and the properties the IDE's
// upload recipes and board identification read: "port" (the OTA port,
// {upload.port.properties.port}), "board" (matched against boards.txt's
// upload_port.N.board), "auth_upload" (whether the IDE asks for a
// password), "hostname" and every other TXT key.
package pluggable

import (
	"context"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/arduinoproto"
)

// ProtocolVersion is the version of the protocol spoken.
const ProtocolVersion = 1

// Port is one port as the protocol describes it.
type Port struct {
	Address       string            `json:"address"`
	Label         string            `json:"label,omitempty"`
	Protocol      string            `json:"protocol"`
	ProtocolLabel string            `json:"protocolLabel,omitempty"`
	HardwareID    string            `json:"hardwareId,omitempty"`
	Properties    map[string]string `json:"properties,omitempty"`
}

// message is every JSON object the tool writes.
type message struct {
	EventType       string  `json:"eventType"`
	ProtocolVersion int     `json:"protocolVersion,omitempty"`
	Error           bool    `json:"error,omitempty"`
	Message         string  `json:"message,omitempty"`
	Ports           *[]Port `json:"ports,omitempty"`
	Port            *Port   `json:"port,omitempty"`
}

// PortOf maps a discovered device to a network port. ok is false for
// devices the IDE cannot upload to with espota (ESPHome, USB, devices
// without an address).
func PortOf(d discovery.Device) (Port, bool) {
	if d.Protocol != discovery.ProtocolArduinoOTA || d.Port <= 0 {
		return Port{}, false
	}
	addr := d.Addr()
	if !addr.IsValid() {
		return Port{}, false
	}
	props := make(map[string]string, len(d.TXT)+3)
	maps.Copy(props, d.TXT)
	props["port"] = strconv.Itoa(d.Port)
	if d.Host != "" {
		props["hostname"] = d.Host
	}
	props["auth_upload"] = "no"
	if d.AuthUpload {
		props["auth_upload"] = "yes"
	}
	if d.Board != "" {
		props["board"] = d.Board
	}
	return Port{
		Address:       addr.String(),
		Label:         d.Name + " at " + addr.String(),
		Protocol:      "network",
		ProtocolLabel: "Network Port",
		HardwareID:    d.Name,
		Properties:    props,
	}, true
}

// Session is one conversation with an IDE. NewWatcher makes the watcher a
// START or START_SYNC runs; each run gets a fresh one.
type Session struct {
	NewWatcher func() *discovery.Watcher

	out *arduinoproto.Writer

	mu      sync.Mutex
	hello   bool
	state   string // "idle", "started", "syncing"
	cancel  context.CancelFunc
	done    chan struct{}
	ports   map[string]Port // by device ID
	syncing bool
}

// Serve answers the commands read from in on out until QUIT, the end of
// in, or ctx. It returns nil on QUIT and at the end of in.
func (s *Session) Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	s.out = arduinoproto.NewWriter(out)
	s.state = "idle"
	defer s.stop()
	return arduinoproto.Serve(ctx, in, func(line string) bool { return s.handle(ctx, line) })
}

func (s *Session) write(m message) { s.out.Write(m) }

func ok(event string) message { return message{EventType: event, Message: "OK"} }
func fail(event, msg string) message {
	return message{EventType: event, Error: true, Message: msg}
}

// handle runs one command and reports whether it was QUIT.
func (s *Session) handle(ctx context.Context, line string) bool {
	word, _, _ := strings.Cut(line, " ")
	cmd := strings.ToUpper(word)
	if !s.hello && cmd != "HELLO" && cmd != "QUIT" {
		s.write(fail("command_error", "First command must be HELLO"))
		return false
	}
	switch cmd {
	case "HELLO":
		version, _, ok := arduinoproto.ParseHello(line)
		if !ok {
			s.write(fail("command_error", `Invalid HELLO command: expected HELLO <PROTOCOL_VERSION> "<USER_AGENT>"`))
			return false
		}
		if v, err := strconv.Atoi(version); err != nil || v < 1 {
			s.write(fail("command_error", "Invalid protocol version "+version))
			return false
		}
		if s.hello {
			s.write(fail("command_error", "HELLO already received"))
			return false
		}
		s.hello = true
		s.write(message{EventType: "hello", ProtocolVersion: ProtocolVersion, Message: "OK"})
	case "START":
		if s.state != "idle" {
			s.write(fail("start", "Discovery already STARTed"))
			return false
		}
		s.run(ctx, false)
		s.write(ok("start"))
	case "START_SYNC":
		if s.state != "idle" {
			s.write(fail("start_sync", "Discovery already STARTed, cannot START_SYNC"))
			return false
		}
		// The answer goes out before the first add event (run writes
		// events only after syncOK is closed).
		s.runSync(ctx)
	case "LIST":
		switch s.state {
		case "idle":
			s.write(fail("list", "Discovery not STARTed"))
		case "syncing":
			s.write(fail("list", "Discovery already START_SYNCed, LIST not allowed"))
		default:
			ports := s.list()
			s.write(message{EventType: "list", Ports: &ports})
		}
	case "STOP":
		if s.state == "idle" {
			s.write(fail("stop", "Discovery already STOPped"))
			return false
		}
		s.stop()
		s.write(ok("stop"))
	case "QUIT":
		s.stop()
		s.write(ok("quit"))
		return true
	default:
		s.write(fail("command_error", "Unknown command "+word))
	}
	return false
}

// list returns the current ports, sorted by address.
func (s *Session) list() []Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Port, 0, len(s.ports))
	for _, p := range s.ports {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Port) int { return strings.Compare(a.Address+a.HardwareID, b.Address+b.HardwareID) })
	return out
}

// run starts a watcher whose events keep the port map (START).
func (s *Session) run(ctx context.Context, sync bool) {
	wctx, cancel := context.WithCancel(ctx)
	w := s.NewWatcher()
	s.mu.Lock()
	s.ports = map[string]Port{}
	s.syncing = sync
	s.mu.Unlock()
	s.cancel, s.done = cancel, make(chan struct{})
	s.state = "started"
	if sync {
		s.state = "syncing"
	}
	// What the watcher knows already (hand-added boards) is a port at once,
	// so a LIST right after START is not empty by a race; the watcher's own
	// Added events for these are then no change.
	for _, d := range w.Snapshot() {
		s.apply(discovery.Event{Kind: discovery.Added, Device: d})
	}
	events := w.Watch(wctx)
	done := s.done
	go func() {
		defer close(done)
		for ev := range events {
			s.apply(ev)
		}
	}()
}

// runSync answers START_SYNC and starts the watcher; the initial burst of
// add events follows the answer.
func (s *Session) runSync(ctx context.Context) {
	s.write(ok("start_sync"))
	s.run(ctx, true)
}

// apply folds one watcher event into the port map and, when syncing,
// writes the add and remove events. A port whose address changed is
// removed under the old address and added under the new one; any other
// change is a new add for the same address (the protocol's update).
func (s *Session) apply(ev discovery.Event) {
	if ev.Kind == discovery.StatusChanged {
		return
	}
	id := ev.Device.ID
	port, isPort := PortOf(ev.Device)
	s.mu.Lock()
	old, had := s.ports[id]
	var out []message
	switch {
	case ev.Kind == discovery.Removed || !isPort:
		if had {
			delete(s.ports, id)
			out = append(out, removal(old))
		}
	default:
		if had && old.Address != port.Address {
			out = append(out, removal(old))
		}
		if !had || !samePort(old, port) {
			s.ports[id] = port
			p := port
			out = append(out, message{EventType: "add", Port: &p})
		}
	}
	syncing := s.syncing
	s.mu.Unlock()
	if syncing {
		for _, m := range out {
			s.write(m)
		}
	}
}

func removal(p Port) message {
	return message{EventType: "remove", Port: &Port{Address: p.Address, Protocol: p.Protocol}}
}

func samePort(a, b Port) bool {
	return a.Address == b.Address && a.Label == b.Label && a.HardwareID == b.HardwareID && maps.Equal(a.Properties, b.Properties)
}

// stop ends the running watcher, if any, and forgets its ports.
func (s *Session) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.cancel, s.done = nil, nil
	s.mu.Lock()
	s.ports, s.syncing = nil, false
	s.mu.Unlock()
	s.state = "idle"
}
