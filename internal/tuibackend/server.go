package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/espdeck/espdeck/internal/pki"
	"github.com/espdeck/espdeck/serve"
	"github.com/espdeck/espdeck/tui"
)

// ServerConfig starts a pull server beside the TUI, as `espdeck serve`
// does: the images of Dir over HTTPS with the bench CA of PKIDir.
type ServerConfig struct {
	Dir    string
	Listen string // ADDR:PORT; the demo uses 127.0.0.1:0
	// PKIDir holds the bench CA and server certificate (created when missing).
	PKIDir string
	Logger *slog.Logger
}

// PullServer is a running pull server; its state feeds the server pane.
type PullServer struct {
	srv  *serve.Server
	urls []string
	fp   string
	dir  string
	stop func()
}

// StartServer publishes cfg.Dir and serves it until ctx ends or Close.
func StartServer(ctx context.Context, cfg ServerConfig) (*PullServer, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The folder first: a wrong path is refused before a CA is created.
	srv, err := serve.New(ctx, serve.Options{Dir: cfg.Dir, Logger: log})
	if err != nil {
		return nil, err
	}
	ep, err := serve.ResolveListen(cfg.Listen, nil)
	if err != nil {
		return nil, err
	}
	ca, _, err := pki.Init(cfg.PKIDir)
	if err != nil {
		return nil, err
	}
	cert, _, err := ca.ServerCertificate(ep.Names)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", ep.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w; pick another address or port", ep.Listen, err)
	}
	if _, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		ep.Port = port
	}
	// Run (rescans, idle sessions) outlives the HTTP server, so that a
	// download that ends during shutdown is recorded as complete.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hs := serve.HTTPServer(srv, pki.TLSConfig(cert), log)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Run(rctx, 0) })
	wg.Go(func() {
		if err := hs.ServeTLS(serve.CountingListener(ln), "", ""); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pull server", "err", err)
		}
	})
	var once sync.Once
	ps := &PullServer{srv: srv, urls: ep.URLs("https"), fp: ca.Fingerprint(), dir: cfg.Dir}
	ps.stop = func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer scancel()
			hs.Shutdown(sctx)
			cancel()
			wg.Wait()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			ps.stop()
		case <-rctx.Done():
		}
	}()
	return ps, nil
}

// Close stops the server and waits for it.
func (p *PullServer) Close() { p.stop() }

// URLs are the base URLs boards fetch from.
func (p *PullServer) URLs() []string { return p.urls }

// ServerState implements tui.ServerSource.
func (p *PullServer) ServerState() tui.ServerState {
	st := tui.ServerState{Dir: p.dir, URLs: p.urls, CAFingerprint: p.fp}
	cat := p.srv.Catalog()
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
	for _, d := range p.srv.Downloads() {
		st.Downloads = append(st.Downloads, tui.Download{Client: d.Client, MAC: d.MAC, Image: d.Image, Size: d.Size, Bytes: d.Bytes,
			Covered: d.Covered, Ranges: d.Ranges, Rate: d.Rate, Done: d.Done, Complete: d.Complete})
	}
	return st
}
