package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/ops"
)

const listUsage = `Usage: espdeck list [--watch] [--timeout D] [--interval D] [--json] [--host HOST[:PORT]]… [--interface NAME]…

Lists ESP32/ESP8266 boards on the network (mDNS: ArduinoOTA _arduino._tcp and
ESPHome _esphomelib._tcp) and on USB (serial ports with a known USB-UART
bridge), plus hand-added devices from --host and the config file's [[device]]
entries.

Without --watch it sends one mDNS query on every interface, listens for
--timeout, lists the USB ports once and prints a table. With --watch it keeps
listening: a board is added when its announcement or an answer arrives and
removed when it says goodbye or its records' TTL runs out (a USB port when it
is unplugged). Browse queries back off from --interval to 60s; a record is
refreshed before its TTL ends.

Examples:
  espdeck list                          one look, a table
  espdeck list --watch                  live: added / updated / removed lines (Ctrl-C ends)
  espdeck list --json                   one JSON object per device, then a result
  espdeck list --json | jq -r 'select(.event=="device") | .target'   addresses and ports for scripts
  espdeck list --timeout 4s             listen longer for slow responders
  espdeck list --host 10.0.7.20:3232    also show a board mDNS cannot reach (other VLAN)
  espdeck list --interface eth1         query one network interface only`

// repeatedFlag collects a repeatable string flag.
type repeatedFlag []string

func (s *repeatedFlag) String() string     { return strings.Join(*s, ",") }
func (s *repeatedFlag) Set(v string) error { *s = append(*s, v); return nil }

func runList(c *cli, args []string) int {
	fs, cm := c.newFlags("list", listUsage)
	watch := fs.Bool("watch", false, "keep running and report devices as they come and go (Ctrl-C ends)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long one look listens for answers after its query (not used with --watch, which keeps listening)")
	interval := fs.Duration("interval", discovery.DefaultInterval, "with --watch, the first pause between browse queries; each later pause doubles, up to 60s")
	var hosts, ifaces repeatedFlag
	fs.Var(&hosts, "host", "add a device by hand: `HOST[:PORT]` (repeatable)")
	fs.Var(&ifaces, "interface", "query only network interface `NAME` (repeatable; default: every usable one)")
	noMDNS := fs.Bool("no-mdns", false, "do not browse the network")
	noUSB := fs.Bool("no-usb", false, "do not list USB serial ports")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	*noMDNS = *noMDNS || c.mdnsOff()
	r := c.reporter(cm, "")
	if len(pos) > 0 {
		fmt.Fprintf(c.stderr, "espdeck list: unexpected argument %q (add a device with --host %s)\n", pos[0], pos[0])
		return exitUsage
	}
	if *timeout <= 0 || *interval <= 0 {
		return r.finish(&failure{code: exitUsage, name: "usage", message: "--timeout and --interval must be positive durations such as 2s"}, nil)
	}
	logger, closeLog, err := c.logger(cm)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "usage", message: err.Error()}, nil)
	}
	defer closeLog()

	cfg, err := config.Load(cm.config, c.getenv)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_config", message: err.Error(),
			hint: "fix the file or point --config at another one"}, nil)
	}
	var static []discovery.Device
	for _, d := range cfg.Devices {
		sd, err := configToDevice(d)
		if err != nil {
			r.warn(fmt.Sprintf("config %s: device %q skipped: %v", cfg.Path, d.Name, err))
			continue
		}
		static = append(static, sd)
	}
	for _, h := range hosts {
		sd, err := hostToDevice(h)
		if err != nil {
			return r.finish(&failure{code: exitUsage, name: "usage", message: fmt.Sprintf("--host %s: %v", h, err),
				hint: "use a host name or address, optionally with :PORT (IPv6 as [ADDR]:PORT)"}, nil)
		}
		static = append(static, sd)
	}

	w := discovery.New(discovery.Options{
		Interfaces:    ifaces,
		Interval:      *interval,
		RoundTimeout:  *timeout,
		Static:        static,
		DisableMDNS:   *noMDNS,
		DisableSerial: *noUSB,
		Logger:        logger,
	})
	if *watch {
		return listWatch(c, r, w, cm.json)
	}
	devs, st := w.Scan(c.ctx)
	if c.ctx.Err() != nil {
		return r.finish(interrupted("list"), nil)
	}
	for _, d := range devs {
		r.event("device", map[string]any{"device": d.ID, "change": "found", "target": listTarget(d), "info": d})
	}
	if !cm.json {
		if len(devs) > 0 {
			printDeviceTable(c.stdout, devs)
		} else {
			explainNoDevices(c.stderr, st, *timeout, *noMDNS, *noUSB)
		}
		if st.Message != "" && len(devs) > 0 {
			fmt.Fprintf(c.stderr, "note: %s\n", st.Message)
		}
	}
	return r.finish(nil, map[string]any{"count": len(devs), "status": st})
}

// listTarget is what a script passes to --host or --port: the serial path,
// or the address with the OTA port, so an ESP8266 (8266) or a board with
// ArduinoOTA.setPort() is reached without guessing the port.
func listTarget(d discovery.Device) string {
	t := d.Target()
	if d.Path != "" {
		return t
	}
	port := d.OTAPort()
	if d.Protocol == discovery.ProtocolManual {
		port = d.Port
	}
	if port <= 0 {
		return t
	}
	return net.JoinHostPort(t, strconv.Itoa(port))
}

// listWatch prints changes until the context ends (Ctrl-C), which is how a
// watch normally stops: it exits 0.
func listWatch(c *cli, r *reporter, w *discovery.Watcher, asJSON bool) int {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	events := w.Watch(ctx)
	// Rows are printed as they happen, so columns have fixed widths (a
	// tabwriter would realign only what it buffers).
	if !asJSON {
		fmt.Fprintln(c.stdout, watchLine("CHANGE\tNAME\tPROTOCOL\tADDRESS\tBOARD\tDETAILS"))
	}
	lastMsg := ""
	for ev := range events {
		switch ev.Kind {
		case discovery.StatusChanged:
			r.event("status", map[string]any{"status": ev.Status})
			if !asJSON && ev.Status.Message != lastMsg {
				if ev.Status.Message != "" {
					fmt.Fprintf(c.stderr, "note: %s\n", ev.Status.Message)
				} else if lastMsg != "" {
					fmt.Fprintln(c.stderr, "note: discovery works again")
				}
				lastMsg = ev.Status.Message
			}
		default:
			r.event("device", map[string]any{"device": ev.Device.ID, "change": ev.Kind.String(), "target": listTarget(ev.Device), "info": ev.Device})
			if !asJSON {
				fmt.Fprintln(c.stdout, watchLine(ev.Kind.String()+"\t"+listRow(ev.Device)))
			}
		}
	}
	return r.finish(nil, map[string]any{"count": len(w.Snapshot()), "status": w.Status()})
}

// watchLine pads tab-separated cells to fixed widths.
func watchLine(row string) string {
	widths := []int{8, 22, 12, 22, 15}
	cells := strings.Split(row, "\t")
	var b strings.Builder
	for i, cell := range cells {
		if i < len(widths) && i < len(cells)-1 {
			fmt.Fprintf(&b, "%-*s ", widths[i], cell)
		} else {
			b.WriteString(cell)
		}
	}
	return strings.TrimRight(b.String(), " ")
}

func printDeviceTable(out io.Writer, devs []discovery.Device) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROTOCOL\tADDRESS\tBOARD\tDETAILS")
	for _, d := range devs {
		fmt.Fprintln(tw, listRow(d))
	}
	tw.Flush()
}

// listRow renders one device as tab-separated cells.
func listRow(d discovery.Device) string {
	addr := d.Target()
	if d.Path == "" && d.Port != 0 && addr != "" {
		if a, err := netip.ParseAddr(addr); err == nil {
			addr = netip.AddrPortFrom(a, uint16(d.Port)).String()
		} else {
			addr = net.JoinHostPort(addr, strconv.Itoa(d.Port))
		}
	}
	board := d.Board
	if d.Platform != "" {
		board = strings.Trim(d.Platform+" "+d.Board, " ")
	}
	var details []string
	switch d.Protocol {
	case discovery.ProtocolArduinoOTA:
		if d.AuthUpload {
			details = append(details, "password")
		} else {
			details = append(details, "no password")
		}
	case discovery.ProtocolESPHome:
		if d.FriendlyName != "" {
			details = append(details, strconv.Quote(d.FriendlyName))
		}
		if d.ESPHomeVersion != "" {
			details = append(details, "ESPHome "+d.ESPHomeVersion)
		}
	case discovery.ProtocolSerial:
		details = append(details, d.Bridge)
		if d.ChipFamily != "" {
			details = append(details, d.ChipFamily)
		}
		if d.SerialNumber != "" {
			details = append(details, "s/n "+d.SerialNumber)
		}
	}
	if d.Interface != "" {
		details = append(details, "via "+d.Interface)
	}
	if d.Static {
		details = append(details, "hand-added")
	}
	return strings.Join([]string{listDash(d.Name), string(d.Protocol), listDash(addr), listDash(board), strings.Join(details, ", ")}, "\t")
}

func listDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// explainNoDevices says what was tried and what to do when nothing was found.
func explainNoDevices(w io.Writer, st discovery.Status, timeout time.Duration, noMDNS, noUSB bool) {
	fmt.Fprintln(w, "No devices found.")
	switch {
	case noMDNS:
		fmt.Fprintln(w, "  mDNS: off (--no-mdns).")
	case len(st.Interfaces) > 0:
		fmt.Fprintf(w, "  mDNS: asked for %s on %s for %s.\n", strings.Join(st.Services, " and "),
			strings.Join(st.Interfaces, ", "), timeout)
	default:
		fmt.Fprintln(w, "  mDNS: no interface was queried.")
	}
	if len(st.Skipped) > 0 {
		fmt.Fprintf(w, "  Skipped interfaces: %s.\n", strings.Join(st.Skipped, "; "))
	}
	if noUSB {
		fmt.Fprintln(w, "  USB: off (--no-usb).")
	} else if st.Serial == discovery.StateOK {
		fmt.Fprintln(w, "  USB: no serial port with a USB bridge is plugged in (a charge-only cable shows nothing).")
	}
	if st.Message != "" {
		fmt.Fprintf(w, "  Problem: %s.\n", st.Message)
	}
	fmt.Fprintln(w, "  mDNS does not cross routers or VLANs, and a board only answers while its sketch runs ArduinoOTA.handle()")
	fmt.Fprintln(w, "  or ESPHome's api. Try --timeout 5s, or add the board by hand:")
	fmt.Fprintln(w, "    espdeck list --host 192.168.1.40:3232")
	fmt.Fprintln(w, "  or put a [[device]] entry with host = \"…\" in the config file (see espdeck help list).")
}

// hostToDevice turns --host HOST[:PORT] into a hand-added device.
func hostToDevice(s string) (discovery.Device, error) {
	host, port, err := ops.ParseHostPort(s) // the one host[:port] parser
	if err != nil {
		return discovery.Device{}, err
	}
	d := discovery.Device{Name: host, Host: host, Port: port, Protocol: discovery.ProtocolManual}
	if a, err := netip.ParseAddr(host); err == nil {
		d.Addrs = []netip.Addr{a}
	}
	return d, nil
}

// configToDevice turns a config file [[device]] into a hand-added device.
func configToDevice(cd config.Device) (discovery.Device, error) {
	switch {
	case cd.Host != "":
		d, err := hostToDevice(cd.Host)
		if err != nil {
			return d, err
		}
		if cd.Name != "" {
			d.Name = cd.Name
		}
		d.Board = cd.Board
		return d, nil
	case cd.Port != "":
		return discovery.Device{Name: listOr(cd.Name, cd.Port), Path: cd.Port, Board: cd.Board,
			Protocol: discovery.ProtocolSerial}, nil
	}
	return discovery.Device{}, errors.New("it has neither host nor port")
}

func listOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

var _ flag.Value = (*repeatedFlag)(nil)
