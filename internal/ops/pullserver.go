package ops

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/pki"
	"github.com/espdeck/espdeck/serve"
)

// DefaultPullListen is where a pull server listens when nobody said.
const DefaultPullListen = ":8443"

// PullServerOptions say what StartPullServer serves, where and to whom.
type PullServerOptions struct {
	// Dir is the folder of images; the URL path is the file name.
	Dir string
	// Listen are ADDR:PORT addresses (default DefaultPullListen); Hosts are
	// extra names boards use for this computer (put in the certificate).
	Listen, Hosts []string
	// PlainHTTP serves without TLS (anyone on the LAN can read and alter
	// the images); the default is HTTPS from the bench CA in PKIDir
	// (pki.DefaultDir() when empty), created when missing.
	PlainHTTP bool
	PKIDir    string
	// Keys, AllowMACs and CloseAfterRange are serve.Options'.
	Keys            []crypto.PublicKey
	AllowMACs       []string
	CloseAfterRange bool
	// Poll is how often the folder is rescanned (default 2 s).
	Poll time.Duration
	// Audit receives one record per download (kind download). Nil writes
	// none; the CLI and the TUI always give one.
	Audit *audit.Log
	// Notify sees every record as it is made.
	Notify func(audit.Record)
	Logger *slog.Logger
}

// PullServer is a running pull server.
type PullServer struct {
	// Server is the catalogue and the download sessions.
	Server *serve.Server
	// URLs are the base URLs boards fetch from, one per address.
	URLs []string
	// TLS is false for a plain-HTTP server; CAFingerprint is the bench
	// CA's SHA-256 fingerprint; CACreated and CertReissuedFor say what
	// StartPullServer created (for the person to be told).
	TLS             bool
	CAFingerprint   string
	PKIDir          string
	CACreated       bool
	CertReissuedFor []string

	errc chan error
	stop func()
}

// StartPullServer checks the folder, the addresses and the CA, then serves
// Dir until ctx ends or Close. Every choice 'espdeck serve' and the TUI's
// server pane share is made here: the folder is checked before a CA is
// created; the certificate names every address listened on; a listen
// address that cannot be had releases the others.
func StartPullServer(ctx context.Context, o PullServerOptions) (*PullServer, error) {
	if err := CheckServeDir(o.Dir); err != nil {
		return nil, err
	}
	listen := o.Listen
	if len(listen) == 0 {
		listen = []string{DefaultPullListen}
	}
	var eps []serve.Endpoint
	var names pki.Names
	for _, l := range listen {
		ep, err := serve.ResolveListen(l, o.Hosts)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
		names.IPs = append(names.IPs, ep.Names.IPs...)
		names.Hosts = append(names.Hosts, ep.Names.Hosts...)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sopts := serve.Options{Dir: o.Dir, Keys: o.Keys, AllowMACs: o.AllowMACs, CloseAfterRange: o.CloseAfterRange,
		Notify: o.Notify, Logger: log}
	if o.Audit != nil {
		sopts.Audit = o.Audit
	}
	srv, err := serve.New(ctx, sopts)
	if err != nil {
		return nil, err
	}
	ps := &PullServer{Server: srv, TLS: !o.PlainHTTP, errc: make(chan error, len(eps))}
	var tlsConf *tls.Config
	scheme := "http"
	if !o.PlainHTTP {
		ps.PKIDir = o.PKIDir
		if ps.PKIDir == "" {
			if ps.PKIDir, err = pki.DefaultDir(); err != nil {
				return nil, err
			}
		}
		ca, created, err := pki.Init(ps.PKIDir)
		if err != nil {
			return nil, err
		}
		cert, reissued, err := ca.ServerCertificate(names)
		if err != nil {
			return nil, err
		}
		ps.CACreated, ps.CAFingerprint = created, ca.Fingerprint()
		if reissued {
			for _, ip := range cert.Leaf.IPAddresses {
				ps.CertReissuedFor = append(ps.CertReissuedFor, ip.String())
			}
			ps.CertReissuedFor = append(ps.CertReissuedFor, cert.Leaf.DNSNames...)
		}
		tlsConf = pki.TLSConfig(cert)
		scheme = "https"
	}
	var lns []net.Listener
	var lc net.ListenConfig
	for i, ep := range eps {
		ln, err := lc.Listen(ctx, "tcp", ep.Listen)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, Errorf(CodeListen, "pick another port with --listen :PORT, or stop the program using it", "listen on %s: %w", ep.Listen, err)
		}
		lns = append(lns, serve.CountingListener(ln))
		if _, port, err := net.SplitHostPort(ln.Addr().String()); err == nil {
			eps[i].Port = port // :0 picks a port; report the real one
		}
		ps.URLs = append(ps.URLs, eps[i].URLs(scheme)...)
	}

	// Run (rescans, idle sessions) outlives the HTTP server: sessions end
	// only after the last request was answered, so a download that
	// finished during shutdown is recorded as complete.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hs := serve.HTTPServer(srv, tlsConf, log)
	var serving, running sync.WaitGroup
	running.Go(func() { srv.Run(rctx, o.Poll) })
	for _, ln := range lns {
		serving.Go(func() {
			var err error
			if tlsConf != nil {
				err = hs.ServeTLS(ln, "", "")
			} else {
				err = hs.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				ps.errc <- fmt.Errorf("serving: %w", err)
			}
		})
	}
	var once sync.Once
	ps.stop = func() {
		once.Do(func() {
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer scancel()
			if err := hs.Shutdown(sctx); err != nil {
				_ = hs.Close() // a board still waited on after 5 s is recorded as it stands
			}
			serving.Wait()
			cancel()
			running.Wait() // unfinished downloads are recorded as incomplete
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

// CheckServeDir refuses a folder to serve that is not one; callers that
// set things up before StartPullServer (an audit log) check it first.
func CheckServeDir(dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return Errorf(CodeBadInput, "give the folder the build writes its .bin files to", "%s is not a folder", dir)
	}
	return nil
}

// Failed delivers an error when serving stopped on its own (not by Close).
func (p *PullServer) Failed() <-chan error { return p.errc }

// Close stops serving, gives downloads in flight 5 s, records the rest as
// incomplete and returns when all is done. It may be called more than once.
func (p *PullServer) Close() { p.stop() }
