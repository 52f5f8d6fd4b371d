package tuibackend

import (
	"context"
	"log/slog"
	"sort"

	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/tui"
)

// ServerConfig starts a pull server beside the TUI, as `espdeck serve`
// does (ops.StartPullServer): the images of Dir over HTTPS with the bench
// CA of PKIDir, every download recorded in Audit.
type ServerConfig struct {
	Dir    string
	Listen string // ADDR:PORT; the demo uses 127.0.0.1:0
	// PKIDir holds the bench CA and server certificate (created when missing).
	PKIDir string
	// Audit receives one record per download (nil: none).
	Audit  *audit.Log
	Logger *slog.Logger
}

// PullServer is a running pull server; its state feeds the server pane.
type PullServer struct {
	ps  *ops.PullServer
	dir string
}

// StartServer publishes cfg.Dir and serves it until ctx ends or Close.
func StartServer(ctx context.Context, cfg ServerConfig) (*PullServer, error) {
	o := ops.PullServerOptions{Dir: cfg.Dir, PKIDir: cfg.PKIDir, Audit: cfg.Audit, Logger: cfg.Logger}
	if cfg.Listen != "" {
		o.Listen = []string{cfg.Listen}
	}
	ps, err := ops.StartPullServer(ctx, o)
	if err != nil {
		return nil, err
	}
	return &PullServer{ps: ps, dir: cfg.Dir}, nil
}

// Close stops the server and waits for it.
func (p *PullServer) Close() { p.ps.Close() }

// URLs are the base URLs boards fetch from.
func (p *PullServer) URLs() []string { return p.ps.URLs }

// ServerState implements tui.ServerSource.
func (p *PullServer) ServerState() tui.ServerState {
	st := tui.ServerState{Dir: p.dir, URLs: p.ps.URLs, CAFingerprint: p.ps.CAFingerprint}
	cat := p.ps.Server.Catalog()
	for _, im := range cat.Images() {
		st.Images = append(st.Images, tui.ServedImage{Name: im.Name, Version: im.Version, Size: im.Size(), Refused: im.Refused})
	}
	sort.Slice(st.Images, func(i, j int) bool { return st.Images[i].Name < st.Images[j].Name })
	if pr := cat.Problems(); len(pr) > 0 {
		st.Problems = map[string]string{}
		for k, v := range pr {
			st.Problems[k] = v
		}
	}
	for _, d := range p.ps.Server.Downloads() {
		st.Downloads = append(st.Downloads, tui.Download{Client: d.Client, MAC: d.MAC, Image: d.Image, Size: d.Size, Bytes: d.Bytes,
			Covered: d.Covered, Ranges: d.Ranges, Rate: d.Rate, Done: d.Done, Complete: d.Complete})
	}
	return st
}
