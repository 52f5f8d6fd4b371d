package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/internal/pki"
	"github.com/espdeck/espdeck/serve"
)

const pkiUsage = `espdeck pki — the bench certificate authority boards pin

Usage:
  espdeck pki init [--pki DIR] [--listen ADDR:PORT]... [--host NAME]... [--json]
  espdeck pki show [--pki DIR] [--format pem|c|all] [--json]

init creates a local CA (ECDSA P-256, 10 years) under the user's config
folder (DIR defaults to ~/.config/espdeck/pki; keys 0600) and a server
certificate naming every address espdeck serve will listen on (loopback
included; default :8443 = every address of this computer, its host name
and host name.local). Running it again keeps the CA and re-issues the
server certificate only when the names changed; espdeck serve does the
same at start.

show prints the CA certificate for the boards: the PEM for ESP-IDF's
cert_pem or Arduino's setCACert, the same as a C string literal to paste
into a sketch, and its SHA-256 fingerprint. The CA's private key is never
printed.

Examples:
  espdeck pki init
  espdeck pki show --format c > main/ca_cert.h
`

func runPKI(c *cli, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stderr, pkiUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "init":
		return runPKIInit(c, args[1:])
	case "show":
		return runPKIShow(c, args[1:])
	}
	fmt.Fprintf(c.stderr, "espdeck pki: unknown verb %q (init, show)\n", args[0])
	return exitUsage
}

// repeatable collects the values of a flag given several times.
type repeatable []string

func (s *repeatable) String() string     { return strings.Join(*s, ",") }
func (s *repeatable) Set(v string) error { *s = append(*s, v); return nil }

func pkiDir(flagValue string) (string, *failure) {
	if flagValue != "" {
		return flagValue, nil
	}
	d, err := pki.DefaultDir()
	if err != nil {
		return "", pkiFailure(err)
	}
	return d, nil
}

// pkiFailure turns a pki error into the command's failure.
func pkiFailure(err error) *failure {
	f := &failure{code: exitUsage, name: "pki_failed", message: err.Error()}
	var pe *pki.Error
	if errors.As(err, &pe) {
		f.name, f.hint = pe.Code(), pe.Hint()
	}
	return f
}

// endpointNames resolves listen addresses into the names a certificate
// needs, merged over all endpoints.
func endpointNames(listen, hosts []string) ([]serve.Endpoint, pki.Names, *failure) {
	var eps []serve.Endpoint
	var all pki.Names
	for _, l := range listen {
		ep, err := serve.ResolveListen(l, hosts)
		if err != nil {
			var se *serve.Error
			f := &failure{code: exitUsage, name: "bad_listen", message: err.Error()}
			if errors.As(err, &se) {
				f.hint = se.Hint()
			}
			return nil, pki.Names{}, f
		}
		eps = append(eps, ep)
		all.IPs = append(all.IPs, ep.Names.IPs...)
		all.Hosts = append(all.Hosts, ep.Names.Hosts...)
	}
	return eps, all, nil
}

func runPKIInit(c *cli, args []string) int {
	fs, cm := c.newFlags("pki init", pkiUsage)
	dirFlag := fs.String("pki", "", "PKI `DIR` (default: <config dir>/espdeck/pki)")
	var listen, hosts repeatable
	fs.Var(&listen, "listen", "`ADDR:PORT` the server will listen on (repeatable; default :8443)")
	fs.Var(&hosts, "host", "an extra host `NAME` boards use for this computer (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 0 {
		fmt.Fprintln(c.stderr, "espdeck pki init: takes no arguments, only flags (see espdeck pki --help)")
		return exitUsage
	}
	r := c.reporter(cm, "")
	dir, f := pkiDir(*dirFlag)
	if f != nil {
		return r.finish(f, nil)
	}
	if len(listen) == 0 {
		listen = repeatable{defaultListen}
	}
	_, names, f := endpointNames(listen, hosts)
	if f != nil {
		return r.finish(f, nil)
	}
	ca, created, err := pki.Init(dir)
	if err != nil {
		return r.finish(pkiFailure(err), nil)
	}
	cert, reissued, err := ca.ServerCertificate(names)
	if err != nil {
		return r.finish(pkiFailure(err), nil)
	}
	if !cm.json {
		what := "kept the existing CA"
		if created {
			what = "created a new CA"
		}
		fmt.Fprintf(c.stdout, "%s in %s\nCA SHA-256 fingerprint: %s\n", what, dir, ca.Fingerprint())
		what = "server certificate unchanged"
		if reissued {
			what = "server certificate issued"
		}
		fmt.Fprintf(c.stdout, "%s for: %s (valid until %s)\n", what, strings.Join(certNames(cert.Leaf.IPAddresses, cert.Leaf.DNSNames), ", "), cert.Leaf.NotAfter.Format("2006-01-02"))
		fmt.Fprintln(c.stdout, "Next: espdeck pki show  (the CA for your sketch), then espdeck serve DIR")
	}
	return r.finish(nil, map[string]any{"dir": dir, "ca_created": created, "server_reissued": reissued,
		"fingerprint_sha256": ca.Fingerprint(), "names": certNames(cert.Leaf.IPAddresses, cert.Leaf.DNSNames),
		"not_after": cert.Leaf.NotAfter})
}

func runPKIShow(c *cli, args []string) int {
	fs, cm := c.newFlags("pki show", pkiUsage)
	dirFlag := fs.String("pki", "", "PKI `DIR` (default: <config dir>/espdeck/pki)")
	format := fs.String("format", "all", "what to print: pem, c or all")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 0 || (*format != "pem" && *format != "c" && *format != "all") {
		fmt.Fprintln(c.stderr, "espdeck pki show: takes --format pem|c|all and no arguments (see espdeck pki --help)")
		return exitUsage
	}
	r := c.reporter(cm, "")
	dir, f := pkiDir(*dirFlag)
	if f != nil {
		return r.finish(f, nil)
	}
	ca, err := pki.Load(dir)
	if err != nil {
		return r.finish(pkiFailure(err), nil)
	}
	if !cm.json {
		switch *format {
		case "pem":
			fmt.Fprint(c.stdout, string(ca.PEM()))
		case "c":
			fmt.Fprint(c.stdout, ca.CString("espdeck_ca_pem"))
		default:
			fmt.Fprintf(c.stdout, "# espdeck bench CA (%s), SHA-256 fingerprint %s\n", dir, ca.Fingerprint())
			fmt.Fprintf(c.stdout, "# ESP-IDF: esp_http_client_config_t.cert_pem = espdeck_ca_pem; Arduino: client.setCACert(espdeck_ca_pem);\n\n")
			fmt.Fprint(c.stdout, string(ca.PEM()))
			fmt.Fprintln(c.stdout)
			fmt.Fprint(c.stdout, ca.CString("espdeck_ca_pem"))
		}
	}
	return r.finish(nil, map[string]any{"dir": dir, "ca_pem": string(ca.PEM()), "c_string": ca.CString("espdeck_ca_pem"),
		"fingerprint_sha256": ca.Fingerprint(), "not_after": ca.Certificate().NotAfter})
}
