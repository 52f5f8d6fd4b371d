package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/espdeck/espdeck/esphomeota"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/internal/ops/campaign"
	"github.com/espdeck/espdeck/tui"
)

// esphomeAPIPort is the native API port ESPHome advertises over mDNS; its
// OTA port is a different one, derived from the platform.
const esphomeAPIPort = 6053

// flashESPHome uploads to an ESPHome board with its native OTA protocol.
// The job's notes name the protocol version, the auth scheme and
// "encrypted" once they are known.
func (b *Backend) flashESPHome(ctx context.Context, req tui.FlashRequest, data []byte, progress func(tui.Progress)) (tui.FlashResult, session) {
	host, portStr, err := net.SplitHostPort(req.Device.Address)
	if err != nil {
		return tui.FlashResult{Error: fmt.Sprintf("device address %q is not host:port", req.Device.Address), Code: ops.CodeUsage,
			Hint: "give the board as HOST:PORT"}, session{}
	}
	port, _ := strconv.Atoi(portStr)
	platform := req.Device.TXT["platform"]
	if port == esphomeAPIPort || port == 0 {
		port = ops.ESPHomePort(platform)
	}
	// The chip from ESPHome's TXT, not the generic guess (which takes the
	// platform "ESP32" for a plain ESP32 even on an ESP32-S3 board).
	chip, _ := ops.ChipFromESPHome(platform, req.Device.Board)
	password := req.Password.Reveal()
	if password == "" && b.cfg.Password != nil {
		if pw, ok := b.cfg.Password(req.Device); ok {
			password = pw
		}
	}
	var key string
	if b.cfg.APIKey != nil {
		key, _ = b.cfg.APIKey(req.Device)
	}
	pol := b.cfg.Policy
	pol.Force = req.Force
	r, err := ops.UploadESPHome(ctx, ops.ESPHomeUpload{
		Target: esphomeota.Target{Host: host, Port: port}, Image: data, Chip: chip, Policy: pol,
		Password: esphomeota.Secret(password), APIKey: esphomeota.Secret(key), Logger: b.log,
		OnProgress: func(p esphomeota.Progress) {
			progress(tui.Progress{Stage: string(p.Stage), Note: esphomeNote(p), Done: p.Done, Total: p.Total, Rate: p.Rate})
		},
	})
	if err != nil && errors.Is(err, ops.ErrRefused) {
		return errorResult(err), session{}
	}
	sess := session{bytes: r.Upload.Bytes}
	if r.Upload.AuthScheme != "" || r.Upload.Encrypted {
		sess.auth = campaign.AuthLabel(r.Upload.AuthScheme, r.Upload.Encrypted)
	}
	res := tui.FlashResult{Bytes: int64(len(data)), Duration: r.Upload.Duration}
	if img, perr := firmware.ParseImage(data); perr == nil && img.AppDesc != nil {
		res.Version = img.AppDesc.Version
	}
	if err != nil {
		er := errorResult(err)
		res.Error, res.Hint, res.Code = err.Error(), er.Hint, er.Code
		var e *esphomeota.Error
		errors.As(err, &e)
		// Only a password problem makes the UI ask for one again; a key
		// problem is explained (the TUI has no key prompt).
		res.AuthFailed = e != nil && (e.Code() == "auth_invalid" || e.Code() == "password_required")
		return res, sess
	}
	scheme := esphomeSchemeWord(r.Upload.AuthScheme)
	if r.Upload.Encrypted {
		scheme += ", encrypted"
	}
	asked := r.Upload.AuthScheme == esphomeota.SchemeSHA256 || r.Upload.AuthScheme == esphomeota.SchemeMD5
	b.learn(req.Device.ID, func(f *learnedFacts) { f.authScheme, f.authRequired = scheme, asked })
	return res, sess
}

// esphomeNote is the job row's detail: "ESPHome v2 · SHA-256 · encrypted".
func esphomeNote(p esphomeota.Progress) string {
	if p.Session.Version == 0 {
		if p.Attempt > 1 {
			return fmt.Sprintf("ESPHome, attempt %d", p.Attempt)
		}
		return "ESPHome"
	}
	parts := []string{fmt.Sprintf("ESPHome v%d", p.Session.Version)}
	if p.Session.AuthScheme != "" {
		parts = append(parts, esphomeSchemeWord(p.Session.AuthScheme))
	}
	if p.Session.Encrypted {
		parts = append(parts, "encrypted")
	}
	if p.Session.Gzip {
		parts = append(parts, "gzip")
	}
	return strings.Join(parts, " · ")
}

func esphomeSchemeWord(s string) string {
	switch s {
	case esphomeota.SchemeSHA256:
		return "SHA-256"
	case esphomeota.SchemeMD5:
		return "MD5"
	}
	return "no password"
}
