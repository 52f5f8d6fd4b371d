package main

import (
	"crypto"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/humanize"
	"github.com/espdeck/espdeck/internal/ops"
)

const defaultListen = ops.DefaultPullListen

const serveUsage = `espdeck serve — an HTTPS firmware server for boards that update themselves

Usage:
  espdeck serve DIR [--listen ADDR:PORT]... [--host NAME]... [--key PUB.pem]...
                    [--allow-mac MAC]... [--close-after-range] [--audit-log FILE]
                    [--pki DIR] [--http] [--json]

Serves the files of DIR over HTTPS (the URL path is the file name) to
Arduino HTTPUpdate, ESP-IDF esp_https_ota (whole, by ranges, resumed),
esp32FOTA and ESPHome, and prints the URLs boards should use. Every
response has a Content-Length and an x-MD5; Arduino boards that report the
served image's MD5 (or version) get 304. A file replaced in DIR is
re-published within a few seconds; a board in the middle of a download
keeps getting the old bytes until it is done.

The certificate comes from the bench CA (espdeck pki init; created here if
missing) and names every address listened on; boards pin the CA (espdeck
pki show). Manifests: /fota/FILE.json (esp32FOTA), /esphome/FILE.json
(ESPHome http_request), / (all images with MD5, SHA-256, version).

  --key PUB.pem       serve only images whose Secure Boot V2 signature
                      verifies with this key (default: signing_key from the
                      config file, when set)
  --allow-mac MAC     only boards sending this MAC (x-ESP32-STA-MAC) may
                      download; others get 403
  --close-after-range close the connection after each range (boards with a
                      4 KiB TLS input buffer)
  --http              plain HTTP instead of HTTPS (anyone on the LAN can read
                      and alter the download)

Every download is one record (kind "download") in the audit log, default
$XDG_STATE_HOME/espdeck/audit.jsonl, else ~/.local/state/espdeck/audit.jsonl.

Examples:
  espdeck serve build/
  espdeck serve build/ --key keys/fleet.pub.pem --allow-mac 24:0a:c4:12:34:56
`

func runServe(c *cli, args []string) int {
	fs, cm := c.newFlags("serve", serveUsage)
	var listen, hosts, keyPaths, macs repeatable
	fs.Var(&listen, "listen", "`ADDR:PORT` to listen on (repeatable; default :8443)")
	fs.Var(&hosts, "host", "an extra host `NAME` boards use for this computer (repeatable)")
	fs.Var(&keyPaths, "key", "serve only images signed for this PEM public `KEY` (repeatable)")
	fs.Var(&macs, "allow-mac", "only this board `MAC` may download (repeatable)")
	closeAfterRange := fs.Bool("close-after-range", false, "close the connection after each 206 response")
	plainHTTP := fs.Bool("http", false, "serve plain HTTP (no TLS)")
	auditPath := fs.String("audit-log", "", "audit log `FILE` (default $XDG_STATE_HOME/espdeck/audit.jsonl)")
	dirFlag := fs.String("pki", "", "PKI `DIR` (default: <config dir>/espdeck/pki)")
	poll := fs.Duration("poll", 2*time.Second, "how often to look for changed files")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 1 {
		fmt.Fprintln(c.stderr, "espdeck serve: give the folder of images to serve (see espdeck serve --help)")
		return exitUsage
	}
	r := c.reporter(cm, "")
	dir := pos[0]
	if err := ops.CheckServeDir(dir); err != nil {
		return r.finish(failureOf(c, err, ""), nil)
	}
	if len(listen) == 0 {
		listen = repeatable{defaultListen}
	}
	log, closeLog, err := c.logger(cm)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_log", message: err.Error()}, nil)
	}
	defer closeLog()

	if len(keyPaths) == 0 {
		if cfg, err := config.Load(cm.config, c.getenv); err == nil && cfg.Defaults.SigningKey != "" {
			keyPaths = repeatable{cfg.Defaults.SigningKey}
		}
	}
	var keys []crypto.PublicKey
	if len(keyPaths) > 0 {
		var f *failure
		if keys, f = loadKeys(keyPaths); f != nil {
			return r.finish(f, nil)
		}
	}

	ap := *auditPath
	if ap == "" {
		dir, err := c.stateDir()
		if err != nil {
			return r.finish(&failure{code: exitUsage, name: "bad_audit_log", message: err.Error(), hint: "pass --audit-log FILE"}, nil)
		}
		ap = dir.AuditLog()
	}
	alog, err := audit.Open(ap)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_audit_log", message: err.Error(), hint: "pass --audit-log FILE"}, nil)
	}
	defer alog.Close()

	fields := map[string]any{"dir": dir, "audit_log": ap, "tls": !*plainHTTP}
	if *plainHTTP {
		r.warn("serving plain HTTP: anyone on the network can read and replace the images in transit; use HTTPS (the default) for anything but a closed bench")
	}
	var printMu sync.Mutex
	ps, err := ops.StartPullServer(c.ctx, ops.PullServerOptions{
		Dir: dir, Listen: listen, Hosts: hosts, PlainHTTP: *plainHTTP, PKIDir: *dirFlag,
		Keys: keys, AllowMACs: macs, CloseAfterRange: *closeAfterRange, Poll: *poll, Audit: alog, Logger: log,
		Notify: func(rec audit.Record) {
			r.event("download", map[string]any{"record": rec})
			printMu.Lock()
			defer printMu.Unlock()
			r.say("%s %s %s: %s (%s, %d range request(s))", rec.Address, nonEmpty(rec.MAC, "-"), rec.Image, rec.Result, humanize.Bytes(rec.Bytes), len(rec.Ranges))
		},
	})
	if err != nil {
		return r.finish(failureOf(c, err, ""), fields)
	}
	defer ps.Close()
	if ps.CACreated {
		r.say("created a bench CA in %s: boards must trust it (espdeck pki show)", ps.PKIDir)
	}
	if len(ps.CertReissuedFor) > 0 {
		r.say("issued a server certificate for %s", strings.Join(ps.CertReissuedFor, ", "))
	}
	if ps.TLS {
		fields["ca_fingerprint_sha256"] = ps.CAFingerprint
	}
	urls := ps.URLs
	fields["urls"] = urls
	cat := ps.Server.Catalog()
	var published []map[string]any
	for _, im := range cat.Images() {
		published = append(published, map[string]any{"name": im.Name, "bytes": len(im.Data), "version": im.Version, "md5": im.MD5, "sha256": im.SHA256, "refused": im.Refused})
	}
	r.event("listening", map[string]any{"urls": urls, "images": published, "problems": cat.Problems(), "ca_fingerprint_sha256": fields["ca_fingerprint_sha256"]})
	if !cm.json {
		fmt.Fprintf(c.stdout, "serving %s on:\n", dir)
		for _, u := range urls {
			fmt.Fprintf(c.stdout, "  %s/\n", u)
		}
		if fp, ok := fields["ca_fingerprint_sha256"]; ok {
			fmt.Fprintf(c.stdout, "CA fingerprint (SHA-256): %s\n", fp)
		}
		for _, im := range cat.Images() {
			state := "served"
			if im.Refused != "" {
				state = "REFUSED: " + im.Refused
			}
			fmt.Fprintf(c.stdout, "  %-28s %9s  %-14s %s\n", im.Name, humanize.Bytes(im.Size()), nonEmpty(im.Version, "-"), state)
		}
		for name, why := range cat.Problems() {
			fmt.Fprintf(c.stdout, "  %-28s not published: %s\n", name, why)
		}
		if len(urls) > 0 {
			fmt.Fprintf(c.stdout, "a board fetches e.g. %s/FILE.bin; audit log: %s; Ctrl-C stops\n", urls[0], ap)
		}
	}
	var serveErr error
	select {
	case <-c.ctx.Done():
	case serveErr = <-ps.Failed():
	}
	ps.Close() // unfinished downloads are recorded as incomplete
	if serveErr != nil {
		return r.finish(&failure{code: exitTransfer, name: "serve_failed", message: serveErr.Error()}, fields)
	}
	return r.finish(nil, fields)
}

func certNames(ips []net.IP, hosts []string) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return append(out, hosts...)
}

func nonEmpty(s, or string) string {
	if s == "" {
		return or
	}
	return s
}
