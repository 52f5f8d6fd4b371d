package main

import (
	tea "charm.land/bubbletea/v2"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/tuibackend"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

const tuiUsage = `Usage: espdeck [--demo] [flags]

Opens the workbench: devices found on the network (mDNS) and on USB, flashing
with live progress, partitions and rollback for serial boards, and a monitor.

  espdeck                          discover and work with real boards
  espdeck --demo                   a simulated fleet on this machine (password: demo)
  espdeck --host 192.168.1.40      also show a board mDNS cannot see
  espdeck --elf build/app.elf      decode crash backtraces in the monitor`

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runTUI(c *cli, args []string) int {
	fs, cm := c.newFlags("", tuiUsage)
	demoMode := fs.Bool("demo", false, "run on a simulated fleet (no hardware, no network traffic)")
	var hosts stringList
	fs.Var(&hosts, "host", "add a network device by `HOST[:PORT]` (repeatable)")
	elf := fs.String("elf", "", "application `ELF` for backtrace decoding in the monitor")
	hostIP := fs.String("host-ip", "", "local `IP` the OTA device connects back to (default: the route to it)")
	hostPort := fs.Int("host-port", 0, "local TCP `PORT` for the OTA connect-back (default: random; fix it to open one firewall port)")
	baud := fs.Int("baud", 0, "serial rate after sync (default 460800, or the config file's)")
	noMDNS := fs.Bool("no-mdns", false, "do not browse mDNS (hand-added hosts and USB only)")
	ascii := fs.Bool("ascii", false, "plain ASCII instead of glyphs some fonts lack")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) > 0 {
		fmt.Fprintf(c.stderr, "espdeck: unexpected argument %q; run 'espdeck help' for the commands\n", pos[0])
		return exitUsage
	}
	cfg, err := config.Load(cm.config, c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
		return exitUsage
	}
	// The TUI owns the terminal: logs go to --log FILE or nowhere.
	log := slog.New(slog.DiscardHandler)
	if cm.logFile != "" {
		l, closeLog, err := c.logger(cm)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
			return exitUsage
		}
		defer closeLog()
		log = l
	}

	policy, err := signingPolicy(cfg.Defaults.SigningKey)
	if err != nil {
		fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
		return exitUsage
	}
	var static []discovery.Device
	for _, h := range hosts {
		d, err := manualDevice(h, "")
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: --host %s: %v\n", h, err)
			return exitUsage
		}
		static = append(static, d)
	}
	for _, d := range cfg.Devices {
		if d.Port != "" {
			static = append(static, discovery.Device{Name: d.Name, Path: d.Port, Protocol: discovery.ProtocolSerial, Board: d.Board})
			continue
		}
		sd, err := manualDevice(d.Host, d.Name)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: config device %q: %v\n", d.Name, err)
			return exitUsage
		}
		sd.Board = d.Board
		static = append(static, sd)
	}

	serialOpts := serialflash.Options{Baud: 460800}
	if cfg.Defaults.Baud > 0 {
		serialOpts.Baud = cfg.Defaults.Baud
	}
	if *baud > 0 {
		serialOpts.Baud = *baud
	}
	bcfg := tuibackend.Config{Policy: policy, HostIP: *hostIP, HostPort: *hostPort, Serial: serialOpts, ELF: *elf, Logger: log,
		Password: storedPassword(cfg, c.getenv, log),
		// ESPHome boards' API key for encrypted OTA (one key for all; a
		// per-device key from the config file is for later).
		APIKey: func(tui.Device) (string, bool) { k := c.getenv("ESPDECK_API_KEY"); return k, k != "" }}
	tcfg := tui.Config{Concurrency: cfg.Defaults.Concurrency, ASCII: *ascii, Logger: log}
	wopts := discovery.Options{Static: static, DisableMDNS: *noMDNS || c.mdnsOff(), Logger: log}

	if *demoMode {
		dir, err := os.MkdirTemp("", "espdeck-demo-")
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
			return exitInternal
		}
		defer os.RemoveAll(dir)
		fleet, err := demo.Start(c.ctx, dir, log)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
			return exitInternal
		}
		defer fleet.Close()
		// The demo never browses or polls the real world: its devices are static.
		wopts = discovery.Options{Static: append(fleet.Devices, static...), DisableMDNS: true, DisableSerial: true, Logger: log}
		bcfg.OpenSerialPort = fleet.OpenSerialPort
		bcfg.OpenMonitorPort = fleet.OpenMonitorPort
		tcfg.Demo, tcfg.DemoPassword, tcfg.RecentFiles = true, demo.Password, fleet.Files
	}
	bcfg.Watcher = discovery.New(wopts)
	backend := tuibackend.New(bcfg)
	if err := tui.Run(c.ctx, tcfg, backend.TUI()); err != nil {
		if errors.Is(err, tea.ErrInterrupted) || c.ctx.Err() != nil {
			return exitInterrupted
		}
		fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
		return exitInternal
	}
	return exitOK
}

// manualDevice turns "host[:port]" into a static discovery device.
func manualDevice(hostport, name string) (discovery.Device, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	port := 3232
	if err != nil {
		host = hostport
	} else if port, err = strconv.Atoi(portStr); err != nil || port <= 0 || port > 65535 {
		return discovery.Device{}, fmt.Errorf("%q is not a port number", portStr)
	}
	if host == "" {
		return discovery.Device{}, fmt.Errorf("no host given")
	}
	d := discovery.Device{Name: name, Host: host, Port: port, Protocol: discovery.ProtocolManual}
	if ip, err := netip.ParseAddr(host); err == nil {
		d.Addrs = []netip.Addr{ip}
	}
	return d, nil
}

// storedPassword finds a device's OTA password without asking: the config
// file's password_env or password_file for that host, else ESPDECK_PASSWORD.
// Failures are logged (never the password) and the TUI then asks.
func storedPassword(cfg config.Config, getenv func(string) string, log *slog.Logger) func(tui.Device) (string, bool) {
	return func(dev tui.Device) (string, bool) {
		host, _, err := net.SplitHostPort(dev.Address)
		if err != nil {
			host = dev.Address
		}
		for _, key := range []string{dev.Name, host, dev.Address} {
			d, ok := cfg.Lookup(key)
			if !ok {
				continue
			}
			pw, err := d.Password(getenv)
			if err == nil {
				return pw, true
			}
			if !errors.Is(err, config.ErrNoPassword) {
				log.Warn("stored password unavailable", "device", dev.Name, "err", err)
			}
			break
		}
		if pw := getenv("ESPDECK_PASSWORD"); pw != "" {
			return pw, true
		}
		return "", false
	}
}
