package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestInitCreatesP256CAOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a, created, err := Init(dir)
	if err != nil || !created {
		t.Fatalf("Init: %v created=%v", err, created)
	}
	c := a.Certificate()
	k, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() || !c.IsCA || c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatalf("CA key %T, IsCA %v, sig %v", c.PublicKey, c.IsCA, c.SignatureAlgorithm)
	}
	if time.Until(c.NotAfter) < 5*365*24*time.Hour || time.Now().Before(c.NotBefore) {
		t.Errorf("CA validity %v – %v", c.NotBefore, c.NotAfter)
	}
	for name, want := range map[string]os.FileMode{caKeyFile: 0o600, CAFile: 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v", name, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v", fi.Mode())
	}
	again, created, err := Init(dir)
	if err != nil || created || again.Fingerprint() != a.Fingerprint() {
		t.Errorf("second Init replaced the CA: %v %v", created, err)
	}
}

func TestLoadMissingAndLooseKey(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	var pe *Error
	if !errors.Is(err, ErrNoCA) || !errors.As(err, &pe) || pe.Code() != "pki_missing" || !strings.Contains(pe.Hint(), "pki init") {
		t.Fatalf("missing CA: %v", err)
	}
	if _, _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, caKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.As(err, &pe) || !strings.Contains(pe.Hint(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
}

func TestServerCertificateSANsAndReissue(t *testing.T) {
	dir := t.TempDir()
	a, _, err := Init(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := Names{IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.168.4.2"), net.ParseIP("::1")}, Hosts: []string{"bench.local", "Bench.Local."}}
	c, reissued, err := a.ServerCertificate(names)
	if err != nil || !reissued {
		t.Fatalf("first issue: %v %v", reissued, err)
	}
	leaf := c.Leaf
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("server key %T", leaf.PublicKey)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "bench.local" || len(leaf.IPAddresses) != 3 {
		t.Errorf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	opts := x509.VerifyOptions{Roots: a.ClientPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range []string{"127.0.0.1", "192.168.4.2", "::1", "bench.local"} {
		o := opts
		o.DNSName = n
		if _, err := leaf.Verify(o); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	o := opts
	o.DNSName = "10.0.0.9"
	if _, err := leaf.Verify(o); err == nil {
		t.Error("the certificate names an address it was not issued for")
	}
	if fi, err := os.Stat(filepath.Join(dir, serverKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("server key mode: %v", err)
	}
	if len(c.Certificate) != 2 {
		t.Errorf("chain has %d certificates, want leaf + CA", len(c.Certificate))
	}

	// Same names in another order: reused.
	same := Names{IPs: []net.IP{net.ParseIP("::1"), net.ParseIP("192.168.4.2"), net.ParseIP("127.0.0.1")}, Hosts: []string{"bench.local"}}
	c2, reissued, err := a.ServerCertificate(same)
	if err != nil || reissued || leaf.SerialNumber.Cmp(c2.Leaf.SerialNumber) != 0 {
		t.Errorf("same names reissued: %v %v", reissued, err)
	}
	// A new address: reissued, and it names it.
	more := same
	more.IPs = append(more.IPs, net.ParseIP("10.0.0.9"))
	c3, reissued, err := a.ServerCertificate(more)
	if err != nil || !reissued {
		t.Fatalf("new address not reissued: %v %v", reissued, err)
	}
	o.DNSName = "10.0.0.9"
	if _, err := c3.Leaf.Verify(o); err != nil {
		t.Errorf("reissued certificate: %v", err)
	}
	if _, _, err := a.ServerCertificate(Names{}); err == nil {
		t.Error("a certificate without names")
	}
}

// A server certificate from another CA in the folder is replaced, never
// served: boards pin the CA.
func TestServerCertificateFromOtherCAReplaced(t *testing.T) {
	dir := t.TempDir()
	a, _, _ := Init(dir)
	other := t.TempDir()
	b, _, _ := Init(other)
	names := Names{IPs: []net.IP{net.ParseIP("127.0.0.1")}}
	if _, _, err := b.ServerCertificate(names); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ServerFile, serverKeyFile} {
		data, _ := os.ReadFile(filepath.Join(other, f))
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, reissued, err := a.ServerCertificate(names)
	if err != nil || !reissued || c.Leaf.CheckSignatureFrom(a.Certificate()) != nil {
		t.Fatalf("foreign certificate kept: %v %v", reissued, err)
	}
}

func TestSnippetsParse(t *testing.T) {
	a, _, err := Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blk, rest := pem.Decode(a.PEM())
	if blk == nil || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatal("PEM does not decode")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	// Undo the C string literal the way a C compiler would and compare.
	c := a.CString("ca_cert_pem")
	if !strings.HasPrefix(c, "static const char ca_cert_pem[] =\n") || !strings.HasSuffix(c, ";\n") {
		t.Fatalf("C snippet:\n%s", c)
	}
	var rebuilt strings.Builder
	for _, m := range regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`).FindAllStringSubmatch(c, -1) {
		s, err := strconv.Unquote(`"` + m[1] + `"`)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt.WriteString(s)
	}
	if rebuilt.String() != string(a.PEM()) {
		t.Errorf("C literal is not the PEM:\n%s", rebuilt.String())
	}
	fp := a.Fingerprint()
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("fingerprint %q", fp)
	}
}

// A Go client that trusts only the bench CA completes a TLS 1.2 handshake
// with a server using TLSConfig, and one that trusts another CA fails.
func TestTLS12Handshake(t *testing.T) {
	a, _, _ := Init(t.TempDir())
	cert, _, err := a.ServerCertificate(Names{IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", TLSConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: a.ClientPool(), MaxVersion: tls.VersionTLS12, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS 1.2 with the pinned CA: %v", err)
	}
	if conn.ConnectionState().Version != tls.VersionTLS12 {
		t.Errorf("version %x", conn.ConnectionState().Version)
	}
	conn.Close()
	// A client that offers only HTTP/1.0 in ALPN is not refused.
	conn, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: a.ClientPool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.0"}})
	if err != nil {
		t.Fatalf("ALPN http/1.0: %v", err)
	}
	conn.Close()
	b, _, _ := Init(t.TempDir())
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: b.ClientPool(), ServerName: "127.0.0.1"}); err == nil {
		c.Close()
		t.Error("a client pinned to another CA connected")
	}
}
