package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseImage: the parser must never panic or read out of bounds, and
// whatever it accepts must be self-consistent.
func FuzzParseImage(f *testing.F) {
	v1, _ := hex.DecodeString(specVector1)
	f.Add(v1)
	// Seeds stay small: the fuzzer minimises every new input it finds, and
	// that costs time quadratic in the input length.
	f.Add(BuildImage(ImageSpec{Chip: ChipESP32C3, AppDesc: &AppDesc{Version: "1"}}))
	f.Add(BuildImage(ImageSpec{Chip: ChipESP8266, Segments: []SegmentSpec{{LoadAddr: 0x40100000, Data: []byte{1, 2, 3, 4}}}}))
	f.Add([]byte{0xEA, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xAA, 0x50, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ParseImage(data)
		Classify(data)
		if _, err := LocateSignature(data); err == nil {
			VerifySignature(data, []crypto.PublicKey{nil})
		}
		if err != nil {
			return
		}
		if im.Length > len(data) || im.FileSize != len(data) {
			t.Fatalf("length %d beyond data %d", im.Length, len(data))
		}
		for _, s := range im.Segments {
			if s.DataOffset()+int(s.Length) > len(data) {
				t.Fatalf("segment beyond data: %+v", s)
			}
		}
		_ = im.Verify()
		_ = im.EsptoolReport()
		_ = im.Summary("x")
		_ = im.CheckRevision(100)
	})
}

// sigFields is how much of a signature block FuzzParseSignatureSector lets
// the fuzzer choose: everything the decoder reads to accept a key (version,
// hash type, digest, curve, key fields; for RSA, n and e). The rest of the
// block (signatures, RSA rinv/M') is copied, never checked by the decoder.
const sigFields = 424

// FuzzParseSignatureSector: arbitrary signature blocks must not panic the
// decoder, and an accepted block always has a key and a digest.
//
// The input is the block's fields after the magic (at most sigFields
// bytes), not a whole 4 KB sector: the target stamps the magic and CRC and
// places the block in each of the three slots. With whole sectors as input
// the fuzzer spent its time minimising every new 4 KB input it found
// (execs/s fell to 0 for tens of seconds, about a dozen inputs a second on
// average); small inputs minimise in milliseconds.
func FuzzParseSignatureSector(f *testing.F) {
	f.Add([]byte{sigVersionRSA})
	f.Add([]byte{sigVersionECDSA, 0})
	f.Add([]byte{sigVersionECDSA, 1})
	for _, name := range []string{"bootloader_signed_v2_rsa.bin", "bootloader_signed_v2_ecdsa256.bin"} {
		if signed, err := os.ReadFile(filepath.Join(fixtureRoot, "secure", name)); err == nil && len(signed) > SectorSize {
			f.Add(signed[len(signed)-SectorSize+1 : len(signed)-SectorSize+sigFields])
		}
	}
	f.Add(sigFieldsWithGenerator(1))
	f.Add(sigFieldsWithGenerator(3))
	f.Fuzz(func(t *testing.T, fields []byte) {
		if len(fields) > sigFields {
			return // beyond what the decoder reads: nothing new to find
		}
		for slot := range sigBlocksMax {
			sector := make([]byte, SectorSize)
			blk := sector[slot*sigBlockSize : (slot+1)*sigBlockSize]
			blk[0] = sigBlockMagic
			copy(blk[1:], fields)
			binary.LittleEndian.PutUint32(blk[sigCRCOffset:], crc32.ChecksumIEEE(blk[:sigCRCOffset]))
			// Only the decoder runs here: signature arithmetic is
			// unit-tested with hostile keys and signatures.
			ss, err := ParseSignatureSector(sector)
			if err != nil {
				continue
			}
			if len(ss.Blocks) != 1 || ss.Blocks[0].Index != slot {
				t.Fatalf("one block in slot %d, decoded %+v", slot, ss.Blocks)
			}
			for _, b := range ss.Blocks {
				if b.PublicKey == nil || len(b.Digest) == 0 {
					t.Fatalf("block %d decoded without key or digest", b.Index)
				}
				// The block's KeyDigest hashes the stored bytes (padding,
				// RSA rinv and M' included), so it may differ from the
				// digest of the decoded key; computing it must not fail.
				if _, err := PublicKeyDigest(b.PublicKey); err != nil {
					t.Fatalf("block %d: decoded key has no digest: %v", b.Index, err)
				}
			}
		}
	})
}

// sigFieldsWithGenerator returns signature block fields (after the magic)
// whose key is the curve's generator, a point on the curve: curve 1 is
// P-192, 3 is P-384 (the ECDSA layouts of flash-formats.md §6).
func sigFieldsWithGenerator(curve byte) []byte {
	blk := make([]byte, sigBlockSize)
	blk[1] = sigVersionECDSA
	if curve == 3 {
		c := elliptic.P384().Params()
		blk[2], blk[52] = 1, 3
		copy(blk[53:], leBytes(c.Gx, 48))
		copy(blk[101:], leBytes(c.Gy, 48))
		return blk[1:245]
	}
	c := p192Params()
	blk[36] = 1
	copy(blk[37:], leBytes(c.gx, 24))
	copy(blk[61:], leBytes(c.gy, 24))
	return blk[1:149]
}

// FuzzParsePublicKeyPEM: a --key file of any content never panics the key
// reader; what it accepts is a Secure Boot V2 key type whose digest can be
// computed (or is refused with ErrKey), and anything else is ErrKey.
func FuzzParsePublicKeyPEM(f *testing.F) {
	for _, name := range []string{"ecdsa256_secure_boot_signing_pubkey.pem", "rsa_secure_boot_signing_pubkey.pem"} {
		if b, err := os.ReadFile(filepath.Join(fixtureRoot, "secure", name)); err == nil {
			f.Add(b)
		}
	}
	// A P-192 public key (our own SPKI decoding) and a P-192 private key
	// without its public half (our own d·G).
	g := sigFieldsWithGenerator(1)
	pt := append([]byte{4}, reversed(g[36:60])...)
	pt = append(pt, reversed(g[60:84])...)
	alg := []byte{0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01}
	bits := append([]byte{0x03, byte(len(pt) + 1), 0x00}, pt...)
	body := append(append([]byte(nil), alg...), bits...)
	spki := append([]byte{0x30, byte(len(body))}, body...)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	f.Add(p192PrivatePEM(bytes.Repeat([]byte{0x11}, 24)))
	f.Add([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := ParsePublicKeyPEM(data)
		if err != nil {
			if !errors.Is(err, ErrKey) {
				t.Fatalf("error not ErrKey: %v", err)
			}
			return
		}
		switch k := pub.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() != 3072 {
				t.Fatalf("RSA key of %d bits accepted", k.N.BitLen())
			}
		case *ecdsa.PublicKey, *P192PublicKey:
		default:
			t.Fatalf("accepted a %T", pub)
		}
		if _, err := PublicKeyDigest(pub); err != nil && !errors.Is(err, ErrKey) {
			t.Fatalf("digest error not ErrKey: %v", err)
		}
	})
}

// p192PrivatePEM encodes the P-192 private scalar d (24 bytes) as a SEC 1
// "EC PRIVATE KEY" without the optional public key:
// SEQUENCE { 1, OCTET STRING d, [0] secp192r1 }.
func p192PrivatePEM(d []byte) []byte {
	ec := []byte{0x02, 0x01, 0x01, 0x04, byte(len(d))}
	ec = append(ec, d...)
	ec = append(ec, 0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01)
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: append([]byte{0x30, byte(len(ec))}, ec...)})
}
