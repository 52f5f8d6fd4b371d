package tuibackend

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/tui"
)

type devices struct{ b *Backend }

// Watch forwards discovery events as tui.DeviceEvents, merged with the
// updates jobs produce (learned auth scheme, chip, MAC).
func (s devices) Watch(ctx context.Context) <-chan tui.DeviceEvent {
	in := s.b.cfg.Watcher.Watch(ctx)
	out := make(chan tui.DeviceEvent, 16)
	go func() {
		defer close(out)
		for {
			var ev tui.DeviceEvent
			select {
			case e, ok := <-in:
				if !ok {
					return
				}
				var keep bool
				ev, keep = s.b.convertEvent(e)
				if !keep {
					continue
				}
			case d := <-s.b.updates:
				ev = tui.DeviceEvent{Kind: tui.DeviceUpdated, Device: d}
			case <-ctx.Done():
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (b *Backend) convertEvent(e discovery.Event) (tui.DeviceEvent, bool) {
	var kind tui.DeviceEventKind
	switch e.Kind {
	case discovery.Added:
		kind = tui.DeviceAdded
	case discovery.Updated:
		kind = tui.DeviceUpdated
	case discovery.Removed:
		kind = tui.DeviceRemoved
	default: // StatusChanged: what discovery cannot see, for the status line
		b.log.Info("discovery", "status", e.Status.Message)
		return tui.DeviceEvent{Kind: tui.DeviceSourceStatus, Status: e.Status.Message}, true
	}
	d := b.decorate(convertDevice(e.Device))
	if d.AuthRequired && b.cfg.Password != nil {
		_, d.PasswordStored = b.cfg.Password(d)
	}
	b.mu.Lock()
	if kind == tui.DeviceRemoved {
		delete(b.latest, d.ID)
		delete(b.raw, d.ID)
	} else {
		b.latest[d.ID] = d
		b.raw[d.ID] = e.Device
	}
	b.mu.Unlock()
	// Campaigns confirm a reboot with the sightings discovery reports.
	if kind == tui.DeviceRemoved {
		b.roster.Gone(e.Device.ID)
	} else {
		b.roster.Seen(e.Device.ID, campaign.DeviceAddress(e.Device), campaign.AnnouncedVersion(e.Device))
	}
	return tui.DeviceEvent{Kind: kind, Device: d}, true
}

// convertDevice maps a discovery.Device to the TUI's view of it.
func convertDevice(d discovery.Device) tui.Device {
	out := tui.Device{
		ID:        d.ID,
		Name:      d.Name,
		Board:     d.Board,
		Interface: d.Interface,
		FirstSeen: d.FirstSeen,
		LastSeen:  d.LastSeen,
		TXT:       map[string]string{},
		Presence:  tui.PresenceOnline,
	}
	for k, v := range d.TXT {
		out.TXT[k] = v
	}
	switch d.Protocol {
	case discovery.ProtocolSerial:
		out.Kind = tui.KindSerial
		out.Port = d.Path
		if d.Bridge != "" {
			out.Board = d.Bridge
		}
		if d.ChipFamily != "" {
			out.Chip = d.ChipFamily
		}
		if d.VID != 0 || d.PID != 0 {
			out.TXT["usb"] = fmt.Sprintf("%04x:%04x", d.VID, d.PID)
		}
		if d.SerialNumber != "" {
			out.TXT["serial number"] = d.SerialNumber
		}
	case discovery.ProtocolESPHome:
		out.Kind = tui.KindESPHome
	default:
		out.Kind = tui.KindArduinoOTA
	}
	if d.Path != "" && out.Port == "" {
		// A hand-added serial port (config file or demo pty).
		out.Kind = tui.KindSerial
		out.Port = d.Path
	}
	if out.Kind != tui.KindSerial {
		host := d.Host
		if a := d.Addr(); a.IsValid() {
			host = a.String()
		}
		port := d.Port
		if port == 0 {
			port = 3232
		}
		out.Address = net.JoinHostPort(host, strconv.Itoa(port))
		out.AuthRequired = d.AuthUpload
		if d.Protocol == discovery.ProtocolManual {
			// Typed by hand: nothing has answered from it yet, so it is
			// not called online until something does (decorate).
			out.Presence = tui.PresenceUnchecked
			out.LastSeen = time.Time{}
		}
	}
	if d.MAC != "" {
		out.MAC = formatMAC(d.MAC)
	}
	if d.FriendlyName != "" {
		out.Name = d.FriendlyName
	}
	if c, ok := chipFromBoard(d.Board, d.Platform); ok && out.Chip == "" {
		out.Chip = c.String()
	}
	return out
}

// formatMAC turns "a1b2c3d4e5f6" into "a1:b2:c3:d4:e5:f6"; other forms pass through lower-cased.
func formatMAC(s string) string {
	s = strings.ToLower(s)
	if len(s) != 12 || strings.ContainsAny(s, ":-") {
		return s
	}
	var parts []string
	for i := 0; i < 12; i += 2 {
		parts = append(parts, s[i:i+2])
	}
	return strings.Join(parts, ":")
}

// chipFromBoard guesses the chip from an Arduino variant / ESPHome board and
// platform. It is a hint for pre-flight checks: only exact family names count.
func chipFromBoard(board, platform string) (firmware.Chip, bool) {
	return ops.ChipFromBoard(board, platform)
}

// AddHost adds a hand-entered network device.
func (s devices) AddHost(ctx context.Context, addr string) error {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return err
	}
	d := discovery.Device{Name: host, Host: host, Port: port, Protocol: discovery.ProtocolManual}
	if ip, err := netip.ParseAddr(host); err == nil {
		d.Addrs = []netip.Addr{ip}
	}
	_, err = s.b.cfg.Watcher.AddStatic(ctx, d)
	return err
}

// splitHostPort accepts "host", "host:port" and "[v6]:port"; the port
// defaults to ArduinoOTA's 3232 on ESP32.
func splitHostPort(addr string) (string, int, error) {
	host, port, err := ops.ParseHostPort(addr)
	if port == 0 {
		port = 3232
	}
	return host, port, err
}

// Refresh asks discovery to query now.
func (s devices) Refresh(ctx context.Context) error {
	s.b.cfg.Watcher.Refresh()
	return nil
}
