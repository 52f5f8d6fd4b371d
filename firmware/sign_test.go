package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"os"
	"testing"
)

// replaySigner has a real public key and answers Sign with a signature made
// earlier, so signing known data reproduces a known file byte for byte even
// though RSA-PSS salts and ECDSA nonces are random.
type replaySigner struct {
	pub crypto.PublicKey
	sig []byte
}

func (r replaySigner) Public() crypto.PublicKey { return r.pub }
func (r replaySigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return r.sig, nil
}

// blockSignature returns what a signer returned for block i of the
// signature sector at the end of data: the big-endian RSA signature or the
// ASN.1 ECDSA signature.
func blockSignature(t *testing.T, data []byte, i int) (crypto.PublicKey, []byte) {
	t.Helper()
	ss, err := ParseSignatureSector(data[len(data)-SectorSize:])
	if err != nil || len(ss.Blocks) <= i {
		t.Fatalf("signature sector: %v", err)
	}
	blk := ss.Blocks[i]
	if blk.sig != nil {
		return blk.PublicKey, blk.sig
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{blk.r, blk.s})
	if err != nil {
		t.Fatal(err)
	}
	return blk.PublicKey, der
}

// TestSignReproducesEspsecure rebuilds espsecure's own signed test files
// from the unsigned one: with the signature values taken from espsecure's
// output, every other byte (padding, digest, key fields, CRC, FF tail) must
// come out identical, so the block layout is espsecure's.
func TestSignReproducesEspsecure(t *testing.T) {
	unsigned := fixture(t, "secure/bootloader_unsigned_v2.bin")
	for _, name := range []string{"bootloader_signed_v2_rsa.bin", "bootloader_signed_v2_ecdsa256.bin"} {
		t.Run(name, func(t *testing.T) {
			want := fixture(t, "secure/"+name)
			pub, sig := blockSignature(t, want, 0)
			got, err := Sign(unsigned, []crypto.Signer{replaySigner{pub, sig}}, SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("signed file differs from espsecure's (%d vs %d bytes, first difference at %d)", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

// TestSignFixedVector: a file signed once by two keys (ECDSA P-256, then
// RSA-3072 appended) and committed under testdata. It still verifies with
// both committed keys, and Sign rebuilds it byte for byte, so a change in
// the block layout or in the append rules fails here.
func TestSignFixedVector(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile("testdata/sign/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	app, signed := read("app.bin"), read("app.signed.bin")
	ec, err := ParseSigningKeyPEM(read("test_only_ecdsa256.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseSigningKeyPEM(read("test_only_rsa3072.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []crypto.Signer{ec, rs} {
		res, err := VerifySignature(signed, []crypto.PublicKey{k.Public()})
		if err != nil || res.Block != i {
			t.Fatalf("key %d: %+v %v", i, res, err)
		}
	}
	_, sig0 := blockSignature(t, signed, 0)
	_, sig1 := blockSignature(t, signed, 1)
	one, err := Sign(app, []crypto.Signer{replaySigner{ec.Public(), sig0}}, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Sign(one, []crypto.Signer{replaySigner{rs.Public(), sig1}}, SignOptions{Append: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(two, signed) {
		t.Fatalf("re-signing differs from the committed vector at byte %d", firstDiff(two, signed))
	}
	if len(signed) != 2*SectorSize || !bytes.Equal(signed[:len(app)], app) || signed[len(app)] != 0xFF {
		t.Errorf("layout: %d bytes, app prefix kept %v", len(signed), bytes.Equal(signed[:len(app)], app))
	}
}

func TestSignRoundTrip(t *testing.T) {
	app := BuildImage(ImageSpec{Chip: ChipESP32C3, Entry: 0x40380000, AppDesc: &AppDesc{Version: "2.0"},
		Segments: []SegmentSpec{{LoadAddr: 0x3FC80000, Data: bytes.Repeat([]byte{7}, 5000)}}})
	keys := map[SigningScheme]crypto.Signer{}
	for _, s := range []SigningScheme{SigningECDSA256, SigningECDSA384, SigningRSA3072} {
		p, err := GenerateSigningKey(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if keys[s], err = ParseSigningKeyPEM(p); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for s, k := range keys {
		t.Run(string(s), func(t *testing.T) {
			signed, err := Sign(app, []crypto.Signer{k}, SignOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifySignature(signed, []crypto.PublicKey{k.Public()}); err != nil {
				t.Fatalf("own key refused: %v", err)
			}
			if _, err := VerifySignature(signed, []crypto.PublicKey{other.Public()}); !errors.Is(err, ErrSignature) {
				t.Fatalf("another key accepted: %v", err)
			}
			for _, at := range []int{0, len(app) / 2, len(signed) - SectorSize - 1} {
				bad := bytes.Clone(signed)
				bad[at] ^= 1
				if _, err := VerifySignature(bad, []crypto.PublicKey{k.Public()}); err == nil {
					t.Errorf("accepted after flipping byte %d", at)
				}
			}
			im, err := ParseImage(signed)
			if err != nil || im.Signature == nil || len(im.Signature.Blocks) != 1 {
				t.Fatalf("ParseImage does not see the signature: %v", err)
			}
		})
	}
}

func TestSignBlocks(t *testing.T) {
	app := BuildImage(ImageSpec{Chip: ChipESP32C6, Entry: 0x40800000, AppDesc: &AppDesc{Version: "3"}})
	var ks []crypto.Signer
	for i := 0; i < 4; i++ {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ks = append(ks, k)
	}
	two, err := Sign(app, ks[:2], SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	three, err := Sign(two, ks[2:3], SignOptions{Append: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(three) != len(two) {
		t.Fatalf("appending grew the file from %d to %d bytes", len(two), len(three))
	}
	for i, k := range ks[:3] {
		res, err := VerifySignature(three, []crypto.PublicKey{k.Public()})
		if err != nil || res.Block != i {
			t.Errorf("key %d: %+v %v", i, res, err)
		}
	}
	var se *SignError
	if _, err := Sign(three, ks[3:], SignOptions{Append: true}); !errors.As(err, &se) || se.Code() == "" || se.Hint() == "" {
		t.Errorf("a fourth block: %v", err)
	}
	if _, err := Sign(two, ks[2:3], SignOptions{}); !errors.As(err, &se) {
		t.Errorf("re-signing a signed image without Append: %v", err)
	}
	if _, err := Sign(app, ks, SignOptions{}); !errors.Is(err, ErrSign) {
		t.Errorf("four keys at once: %v", err)
	}
}

func TestSignRefusesUnusableKeys(t *testing.T) {
	app := BuildImage(ImageSpec{Chip: ChipESP32C3, Entry: 0x40380000, AppDesc: &AppDesc{}})
	small, _ := rsa.GenerateKey(rand.Reader, 2048)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	for name, k := range map[string]crypto.Signer{"rsa2048": small, "p224": p224} {
		if _, err := Sign(app, []crypto.Signer{k}, SignOptions{}); !errors.Is(err, ErrSign) {
			t.Errorf("%s: %v", name, err)
		}
	}
	pub, _ := os.ReadFile("../../shared/fixtures/secure/ecdsa256_secure_boot_signing_pubkey.pem")
	if _, err := ParseSigningKeyPEM(pub); !errors.Is(err, ErrSign) {
		t.Errorf("a public key as signing key: %v", err)
	}
	if _, err := ParseSigningKeyPEM([]byte("garbage")); !errors.Is(err, ErrSign) {
		t.Errorf("garbage: %v", err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// FuzzParseSigningKeyPEM: any input gives a key or a SignError, never a
// panic, and an error never repeats the input (it may be key material).
func FuzzParseSigningKeyPEM(f *testing.F) {
	for _, name := range []string{"test_only_ecdsa256.pem", "test_only_rsa3072.pem"} {
		if b, err := os.ReadFile("testdata/sign/" + name); err == nil {
			f.Add(b)
			f.Add(b[:len(b)/2])
		}
	}
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseSigningKeyPEM(data)
		if err != nil {
			var se *SignError
			if !errors.As(err, &se) {
				t.Fatalf("untyped error %v", err)
			}
			if len(data) > 40 && bytes.Contains([]byte(err.Error()), data) {
				t.Fatalf("the error repeats the input")
			}
			return
		}
		if k == nil || k.Public() == nil {
			t.Fatal("nil key without an error")
		}
	})
}
