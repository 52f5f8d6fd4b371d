package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/demo"
	"github.com/espdeck/espdeck/internal/ops"
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
  espdeck --elf build/app.elf      decode crash backtraces in the monitor
  espdeck --serve ./firmware       also serve a folder of images over HTTPS (S shows it)`

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
	serveDir := fs.String("serve", "", "also serve the images of `DIR` over HTTPS, as 'espdeck serve' does; S shows the server")
	serveListen := fs.String("serve-listen", ":8443", "`ADDR:PORT` the server listens on (with --serve)")
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
	tcfg := tui.Config{Concurrency: cfg.Defaults.Concurrency, ASCII: *ascii, Logger: log, ExitReport: c.stderr}
	wopts := discovery.Options{Static: static, DisableMDNS: *noMDNS || c.mdnsOff(), Logger: log}

	state, cleanup, warning, err := c.tuiState(*demoMode)
	if err != nil {
		fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
		return exitInternal
	}
	defer cleanup()
	if warning != "" {
		tcfg.Warnings = append(tcfg.Warnings, warning)
	}
	if state != "" {
		bcfg.AuditLog, bcfg.CampaignDir = state.AuditLog(), state.Campaigns()
	}
	var demoDir string
	if *demoMode {
		// The demo's images, like its audit log and CA, live in the run's
		// own state folder, removed at exit.
		demoDir = filepath.Join(string(state), "images")
		if err := os.Mkdir(demoDir, 0o700); err != nil {
			fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
			return exitInternal
		}
		fleet, err := demo.Start(c.ctx, demoDir, log)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: %v\n", err)
			return exitInternal
		}
		defer fleet.Close()
		// The demo never browses or polls the real world: its devices are static.
		wopts = discovery.Options{Static: append(fleet.Devices, static...), DisableMDNS: true, DisableSerial: true, Logger: log}
		bcfg.OpenSerialPort = fleet.OpenSerialPort
		bcfg.OpenMonitorPort = fleet.OpenMonitorPort
		// The demo's boards are static: nothing re-announces them after a
		// reboot, so a campaign does not wait for a confirmation.
		bcfg.CampaignConfirm = -1
		// The demo's encrypting ESPHome board takes the demo key; the
		// other boards take ESPDECK_API_KEY as outside the demo.
		envKey := bcfg.APIKey
		bcfg.APIKey = func(d tui.Device) (string, bool) {
			if k, ok := fleet.APIKeyFor(d.ID); ok {
				return k, true
			}
			return envKey(d)
		}
		tcfg.Demo, tcfg.DemoPassword, tcfg.RecentFiles = true, demo.Password, fleet.Files
	}
	bcfg.Watcher = discovery.New(wopts)
	backend := tuibackend.New(bcfg)
	be := backend.TUI()
	if *serveDir != "" || *demoMode {
		scfg := tuibackend.ServerConfig{Dir: *serveDir, Listen: *serveListen, Logger: log}
		if *demoMode {
			// The demo serves its own sample images on loopback only,
			// with a throwaway bench CA in the run's own state folder.
			scfg.Dir, scfg.Listen = demoDir, "127.0.0.1:0"
			scfg.PKIDir = filepath.Join(string(state), "pki")
		}
		// Outside the demo ops.StartPullServer checks the folder and uses
		// the bench CA of 'espdeck pki' (its default folder).
		// Downloads go to the TUI's audit log (the demo's is temporary);
		// without a state folder the warning above already says so.
		if state != "" {
			alog, err := audit.Open(state.AuditLog())
			if err != nil {
				fmt.Fprintf(c.stderr, "espdeck: --serve: %v\n", err)
				return exitUsage
			}
			defer alog.Close()
			scfg.Audit = alog
		}
		ps, err := tuibackend.StartServer(c.ctx, scfg)
		if err != nil {
			fmt.Fprintf(c.stderr, "espdeck: --serve: %v\n", err)
			var h interface{ Hint() string }
			if errors.As(err, &h) && h.Hint() != "" {
				fmt.Fprintf(c.stderr, "  %s\n", h.Hint())
			}
			return exitUsage
		}
		defer ps.Close()
		be.Server = ps
	}
	runErr := tui.Run(c.ctx, tcfg, be)
	// Quitting cancelled any campaign still running: let it save its file
	// and audit records (bounded: its uploads end when cancelled).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 15*time.Second)
	interrupted, werr := backend.Wait(wctx)
	cancel()
	if werr != nil {
		fmt.Fprintf(c.stderr, "espdeck: a campaign did not finish saving its state: %v\n", werr)
	}
	if *demoMode {
		// The demo's campaign files go with its folder: nothing to resume.
		interrupted = nil
	}
	for _, f := range interrupted {
		fmt.Fprintf(c.stderr, "espdeck: campaign interrupted; 'espdeck campaign resume %s' goes on where it stopped\n", f)
	}
	if runErr != nil {
		if errors.Is(runErr, tea.ErrInterrupted) || errors.Is(runErr, tui.ErrJobsCancelled) || c.ctx.Err() != nil {
			// Quitting cut flash jobs short: the report on stderr says
			// what each board was left with, and the status says so too.
			return exitInterrupted
		}
		fmt.Fprintf(c.stderr, "espdeck: %v\n", runErr)
		return exitInternal
	}
	if len(interrupted) > 0 {
		return exitInterrupted
	}
	return exitOK
}

// tuiState is where the TUI writes its audit log and campaign files: the
// state folder of the command line, so that 'espdeck audit' lists the
// TUI's updates and 'espdeck campaign resume' takes its campaigns. The
// demo's simulated boards are audited too, but into a folder of this run
// that cleanup removes, so that none of them enters the user's own log.
// Without a state folder the TUI runs unaudited and warning says why.
func (c *cli) tuiState(demo bool) (dir ops.StateDir, cleanup func(), warning string, err error) {
	if demo {
		tmp, err := os.MkdirTemp("", "espdeck-demo-")
		if err != nil {
			return "", nil, "", err
		}
		return ops.StateDir(tmp), func() { os.RemoveAll(tmp) }, "", nil
	}
	d, err := c.stateDir()
	if err != nil {
		return "", func() {}, "updates are not audited and campaigns are not saved: " + err.Error() + "; " + ops.HintOf(err), nil
	}
	return d, func() {}, "", nil
}

// manualDevice turns "host[:port]" into a static discovery device.
func manualDevice(hostport, name string) (discovery.Device, error) {
	// The one host[:port] parser: "[fe80::1]" loses its brackets.
	host, port, err := ops.ParseHostPort(hostport)
	if err != nil {
		return discovery.Device{}, err
	}
	if port == 0 {
		port = 3232
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
		// The order the command line uses (ops.PasswordSources), without
		// the flags: the config's [[device]], then ESPDECK_PASSWORD.
		d, _ := ops.ConfigDevice(cfg, dev.Name, dev.Address)
		pw, _, warnings, err := ops.ResolvePassword(ops.PasswordSources{Device: d, Getenv: getenv})
		for _, w := range warnings {
			log.Warn("stored password", "device", dev.Name, "warning", w)
		}
		if err != nil {
			log.Warn("stored password unavailable", "device", dev.Name, "err", err)
			return "", false
		}
		return string(pw), pw != ""
	}
}
