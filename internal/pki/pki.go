// Package pki is espdeck's bench certificate authority: one local CA
// (ECDSA P-256) and one server certificate signed by it whose SANs name
// every address and host name the firmware server is reached by. Both are
// kinds of certificate the ESP's mbedTLS accepts (P-256, SHA-256, never
// Ed25519). Everything lives in one folder; private keys are written 0600
// and never leave this package except as a tls.Certificate.
//
// Boards pin the CA (cert_pem in ESP-IDF, setCACert in Arduino), so the
// server certificate can be re-issued when the addresses change without
// touching the boards.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside the PKI folder.
const (
	CAFile        = "ca.pem"
	caKeyFile     = "ca.key"
	ServerFile    = "server.pem"
	serverKeyFile = "server.key"
)

// Validity periods. The CA outlives many server certificates; boards
// without a clock (mbedTLS without MBEDTLS_HAVE_TIME_DATE) ignore dates.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 825 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
	backdate       = time.Hour // tolerate a board or host clock slightly behind
)

// Error is a PKI failure a person can act on.
type Error struct {
	Op   string // what was being done, e.g. "read the CA"
	Path string // the file involved, when there is one
	Next string // the next step
	Err  error
}

func (e *Error) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("%s (%s): %v", e.Op, e.Path, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Code is the stable machine word.
func (e *Error) Code() string {
	if errors.Is(e.Err, ErrNoCA) {
		return "pki_missing"
	}
	return "pki_failed"
}

// Hint is the next step.
func (e *Error) Hint() string { return e.Next }

// ErrNoCA: the folder holds no CA yet.
var ErrNoCA = errors.New("no bench CA yet")

// DefaultDir is <user config dir>/espdeck/pki (e.g. ~/.config/espdeck/pki).
func DefaultDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", &Error{Op: "find the configuration folder", Err: err, Next: "pass --pki DIR"}
	}
	return filepath.Join(d, "espdeck", "pki"), nil
}

// Authority is a loaded bench CA.
type Authority struct {
	dir  string
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// Init loads the CA in dir, creating it (and dir, 0700) when absent. It
// reports whether it created one.
func Init(dir string) (*Authority, bool, error) {
	a, err := Load(dir)
	if err == nil {
		return a, false, nil
	}
	if !errors.Is(err, ErrNoCA) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, &Error{Op: "create the PKI folder", Path: dir, Err: err, Next: "check the folder's permissions or pass --pki DIR"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, &Error{Op: "generate the CA key", Err: err}
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "espdeck bench CA " + host, Organization: []string{"espdeck"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, &Error{Op: "create the CA certificate", Err: err}
	}
	if err := writeKey(filepath.Join(dir, caKeyFile), key); err != nil {
		return nil, false, err
	}
	if err := writeFile(filepath.Join(dir, CAFile), pemCert(der), 0o644); err != nil {
		return nil, false, err
	}
	a, err = Load(dir)
	return a, err == nil, err
}

// Load reads the CA in dir. A missing CA is ErrNoCA.
func Load(dir string) (*Authority, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &Error{Op: "read the bench CA", Path: certPath, Err: ErrNoCA, Next: "run espdeck pki init"}
	}
	if err != nil {
		return nil, &Error{Op: "read the bench CA", Path: certPath, Err: err, Next: "check the file's permissions"}
	}
	cert, der, err := parseCert(certPEM)
	if err != nil {
		return nil, &Error{Op: "read the bench CA", Path: certPath, Err: err, Next: "move the PKI folder away and run espdeck pki init (boards must then get the new CA)"}
	}
	key, err := readKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, &Error{Op: "read the bench CA", Path: keyPath, Err: errors.New("the CA key does not belong to the CA certificate"),
			Next: "restore the matching ca.key, or move the PKI folder away and run espdeck pki init"}
	}
	return &Authority{dir: dir, cert: cert, der: der, key: key}, nil
}

// Dir is the folder the CA lives in.
func (a *Authority) Dir() string { return a.dir }

// Certificate is the CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// PEM is the CA certificate as PEM: what cert_pem / setCACert take.
func (a *Authority) PEM() []byte { return pemCert(a.der) }

// Fingerprint is the SHA-256 of the CA certificate (DER), as colon-separated
// upper-case hex (the form openssl x509 -fingerprint -sha256 prints).
func (a *Authority) Fingerprint() string { return Fingerprint(a.der) }

// Fingerprint formats the SHA-256 of der as AA:BB:….
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// CString is the CA PEM as a C string literal, one quoted line per PEM
// line with its \n, ready to paste into a sketch or an ESP-IDF component.
func (a *Authority) CString(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "static const char %s[] =\n", name)
	lines := strings.Split(strings.TrimRight(string(a.PEM()), "\n"), "\n")
	for i, l := range lines {
		fmt.Fprintf(&b, "    \"%s\\n\"", l)
		if i == len(lines)-1 {
			b.WriteString(";")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Names are the SANs of a server certificate.
type Names struct {
	IPs   []net.IP
	Hosts []string
}

// normal returns the names sorted and without duplicates.
func (n Names) normal() Names {
	var out Names
	seen := map[string]bool{}
	for _, ip := range n.IPs {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if !seen[ip.String()] {
			seen[ip.String()] = true
			out.IPs = append(out.IPs, ip)
		}
	}
	for _, h := range n.Hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h != "" && !seen[h] {
			seen[h] = true
			out.Hosts = append(out.Hosts, h)
		}
	}
	slices.SortFunc(out.IPs, func(a, b net.IP) int { return bytes.Compare(a, b) })
	slices.Sort(out.Hosts)
	return out
}

func (n Names) String() string {
	var parts []string
	for _, ip := range n.IPs {
		parts = append(parts, ip.String())
	}
	return strings.Join(append(parts, n.Hosts...), ", ")
}

// ServerCertificate returns a server certificate for exactly names, reusing
// the stored one when it names the same addresses and hosts, is signed by
// this CA and is not about to expire, and issuing (and storing) a new one
// otherwise. reissued says which happened.
func (a *Authority) ServerCertificate(names Names) (cert tls.Certificate, reissued bool, err error) {
	names = names.normal()
	if len(names.IPs)+len(names.Hosts) == 0 {
		return tls.Certificate{}, false, &Error{Op: "issue the server certificate", Err: errors.New("no address or host name to name in it"), Next: "pass --listen with an address"}
	}
	certPath, keyPath := filepath.Join(a.dir, ServerFile), filepath.Join(a.dir, serverKeyFile)
	if c, err := a.loadServer(certPath, keyPath); err == nil {
		leaf := c.Leaf
		have := Names{IPs: leaf.IPAddresses, Hosts: leaf.DNSNames}.normal()
		if have.String() == names.String() && time.Until(leaf.NotAfter) > renewBefore {
			return c, false, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, false, &Error{Op: "generate the server key", Err: err}
	}
	cn := "espdeck"
	if len(names.Hosts) > 0 {
		cn = names.Hosts[0]
	} else if len(names.IPs) > 0 {
		cn = names.IPs[0].String()
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		// The CN repeats a name: old mbedTLS builds check only the CN.
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"espdeck"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(serverValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: names.IPs,
		DNSNames:    names.Hosts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, false, &Error{Op: "issue the server certificate", Err: err}
	}
	if err := writeKey(keyPath, key); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := writeFile(certPath, pemCert(der), 0o644); err != nil {
		return tls.Certificate{}, false, err
	}
	c, err := a.loadServer(certPath, keyPath)
	return c, err == nil, err
}

// loadServer reads the stored server certificate and checks that this CA
// signed it; the chain sent to clients is leaf + CA.
func (a *Authority) loadServer(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, der, err := parseCert(certPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := leaf.CheckSignatureFrom(a.cert); err != nil {
		return tls.Certificate{}, err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return tls.Certificate{}, errors.New("server key does not match")
	}
	return tls.Certificate{Certificate: [][]byte{der, a.der}, PrivateKey: key, Leaf: leaf}, nil
}

// TLSConfig is the server side TLS configuration boards can talk to: TLS
// 1.2 and 1.3, ECDHE with AES-GCM or ChaCha20 (mbedTLS's defaults include
// ECDHE-ECDSA-AES128-GCM-SHA256). ALPN lists http/1.0 as well as
// http/1.1: a client that offers only http/1.0 (curl -0, an HTTP/1.0
// updater built with ALPN) would otherwise be refused in the handshake.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1", "http/1.0"},
	}
}

// ClientPool is a certificate pool holding only this CA, for a Go client
// that trusts the bench CA and nothing else.
func (a *Authority) ClientPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil || n.Sign() == 0 {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func parseCert(data []byte) (*x509.Certificate, []byte, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, errors.New("no PEM certificate in the file")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return c, blk.Bytes, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return &Error{Op: "encode a private key", Err: err}
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &Error{Op: "read a private key", Path: path, Err: err, Next: "move the PKI folder away and run espdeck pki init"}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, &Error{Op: "read a private key", Path: path, Err: fmt.Errorf("it is readable by others (mode %v)", fi.Mode().Perm()),
			Next: "chmod 600 " + path + " (and consider the key leaked if others used this computer)"}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Op: "read a private key", Path: path, Err: err}
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "EC PRIVATE KEY" {
		return nil, &Error{Op: "read a private key", Path: path, Err: errors.New("no EC PRIVATE KEY in the file"), Next: "move the PKI folder away and run espdeck pki init"}
	}
	k, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, &Error{Op: "read a private key", Path: path, Err: errors.New("the key does not parse"), Next: "move the PKI folder away and run espdeck pki init"}
	}
	return k, nil
}

// writeFile writes data to path atomically with the given mode: a reader
// never sees half a key, and the mode holds from the first byte.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return &Error{Op: "write", Path: path, Err: err, Next: "check the folder's permissions"}
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return &Error{Op: "write", Path: path, Err: err}
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return &Error{Op: "write", Path: path, Err: err}
	}
	if err := tmp.Close(); err != nil {
		return &Error{Op: "write", Path: path, Err: err}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return &Error{Op: "write", Path: path, Err: err}
	}
	return nil
}
