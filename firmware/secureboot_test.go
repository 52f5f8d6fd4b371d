//lint:file-ignore SA1019 P-192 keys from the generic curve are encoded by hand; X and Y are the only way to read them

package firmware

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"hash/crc32"
	"math/big"
	"testing"
)

func fixtureKey(t *testing.T, name string) crypto.PublicKey {
	t.Helper()
	k, err := ParsePublicKeyPEM(fixture(t, "secure/"+name))
	if err != nil {
		t.Fatalf("ParsePublicKeyPEM(%s): %v", name, err)
	}
	return k
}

func TestSignedFixtures(t *testing.T) {
	rsaKey := fixtureKey(t, "rsa_secure_boot_signing_pubkey.pem")
	ecKey := fixtureKey(t, "ecdsa256_secure_boot_signing_pubkey.pem")
	cases := []struct {
		file, keyDigest string
		scheme          SignatureScheme
		own, other      crypto.PublicKey
	}{
		{"bootloader_signed_v2_rsa.bin", "cb2791a371b0c0322bf7370478ba0962224cab1cf2287879e429673e7da84463", SchemeRSA3072, rsaKey, ecKey},
		{"bootloader_signed_v2_ecdsa256.bin", "f35cc5dbdde67f94a7bbcb5723371ba91822193582308f84cb95b4531219056d", SchemeECDSAP256, ecKey, rsaKey},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data := fixture(t, "secure/"+tc.file)
			im := mustParse(t, data)
			if im.Signature == nil || im.Signature.Offset != 32768 || len(im.Signature.Blocks) != 1 {
				t.Fatalf("signature sector %+v", im.Signature)
			}
			blk := im.Signature.Blocks[0]
			if blk.Scheme != tc.scheme || hex.EncodeToString(blk.KeyDigest[:]) != tc.keyDigest {
				t.Errorf("block: %v digest %x", blk.Scheme, blk.KeyDigest)
			}
			if hex.EncodeToString(blk.Digest) != "41e8df85bcf9632d97f97d3716e09e403c4acece1ccc25749241be2b6ddd21de" {
				t.Errorf("signed digest %x", blk.Digest)
			}
			res, err := VerifySignature(data, []crypto.PublicKey{tc.other, tc.own})
			if err != nil || res.Block != 0 || res.KeyIndex != 1 || res.Scheme != tc.scheme {
				t.Errorf("own key: %+v, %v", res, err)
			}
			_, err = VerifySignature(data, []crypto.PublicKey{tc.other})
			var se *SignatureError
			if !errors.As(err, &se) || !errors.Is(err, ErrSignature) || se.Blocks != 1 {
				t.Errorf("other key: %v", err)
			}
			// The digest of the supplied key equals the block's key digest.
			d, err := PublicKeyDigest(tc.own)
			if err != nil || hex.EncodeToString(d[:]) != tc.keyDigest {
				t.Errorf("PublicKeyDigest = %x, %v", d, err)
			}
			// One flipped bit in the signed area: the digest no longer matches.
			bad := append([]byte(nil), data...)
			bad[100] ^= 1
			if _, err := VerifySignature(bad, []crypto.PublicKey{tc.own}); !errors.Is(err, ErrSignature) {
				t.Errorf("tampered image: %v", err)
			}
			// A flipped bit inside the block breaks its CRC: the block is skipped.
			bad = append([]byte(nil), data...)
			bad[32768+900] ^= 1
			if _, err := VerifySignature(bad, []crypto.PublicKey{tc.own}); !errors.Is(err, ErrUnsigned) {
				t.Errorf("broken block CRC: %v", err)
			}
		})
	}
	t.Run("crc field", func(t *testing.T) {
		data := fixture(t, "secure/bootloader_signed_v2_rsa.bin")
		if got := binary.LittleEndian.Uint32(data[32768+1196:]); got != 0x0E3F620C {
			t.Errorf("CRC field 0x%08X", got)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		data := fixture(t, "secure/bootloader_unsigned_v2.bin")
		_, err := VerifySignature(data, []crypto.PublicKey{rsaKey})
		if !errors.Is(err, ErrUnsigned) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSignAndVerifyGenerated(t *testing.T) {
	app := BuildImage(ImageSpec{Chip: ChipESP32C2, AppDesc: &AppDesc{Version: "1.0", ProjectName: "p"}})
	p192Key, err := ecdsa.GenerateKey(p192CurveParams(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p256Key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384Key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		other  crypto.PublicKey
		scheme SignatureScheme
	}{
		{"P-192", p192Key, p256Key.Public(), SchemeECDSAP192},
		{"P-256", p256Key, p192Key.Public(), SchemeECDSAP256},
		{"P-384", p384Key, p256Key.Public(), SchemeECDSAP384},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signed, err := SignImage(app, tc.key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(signed) != 2*SectorSize {
				t.Fatalf("signed length %d", len(signed))
			}
			// The key as a user gives it: PEM (P-192 needs our own SPKI
			// decoding and comes back as a *P192PublicKey).
			der := marshalSPKI(t, tc.key.Public().(*ecdsa.PublicKey))
			pub, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			if err != nil {
				t.Fatalf("PEM: %v", err)
			}
			res, err := VerifySignature(signed, []crypto.PublicKey{pub})
			if err != nil || res.Scheme != tc.scheme {
				t.Fatalf("%+v %v", res, err)
			}
			if _, err := VerifySignature(signed, []crypto.PublicKey{tc.other}); !errors.Is(err, ErrSignature) {
				t.Errorf("other key: %v", err)
			}
			d, err := PublicKeyDigest(pub)
			if err != nil || d != res.KeyDigest {
				t.Errorf("key digest %x vs block %x (%v)", d, res.KeyDigest, err)
			}
			// A changed signature no longer verifies.
			bad := append([]byte(nil), signed...)
			sig := bad[len(bad)-SectorSize:]
			idx := 140 // inside s of a P-192 or P-256 block
			if tc.scheme == SchemeECDSAP384 {
				idx = 200
			}
			sig[idx] ^= 1
			binary.LittleEndian.PutUint32(sig[sigCRCOffset:], crc32.ChecksumIEEE(sig[:sigCRCOffset]))
			if _, err := VerifySignature(bad, []crypto.PublicKey{pub}); !errors.Is(err, ErrSignature) {
				t.Errorf("a changed signature verified: %v", err)
			}
		})
	}
}

func TestSignRSAGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("RSA-3072 key generation is slow")
	}
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	app := BuildImage(ImageSpec{Chip: ChipESP32S3, AppDesc: &AppDesc{Version: "2.0"}})
	signed, err := SignImage(app, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	im := mustParse(t, signed)
	if im.Signature == nil || im.Signature.Blocks[0].Scheme != SchemeRSA3072 {
		t.Fatalf("signature %+v", im.Signature)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifySignature(signed, []crypto.PublicKey{pub}); err != nil {
		t.Errorf("verify: %v", err)
	}
	d, _ := PublicKeyDigest(pub)
	if d != im.Signature.Blocks[0].KeyDigest {
		t.Error("rinv/M' encoding differs between signing and digest")
	}
}

func TestParsePublicKeyPEMRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":    "",
		"garbage":  "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
		"cert-ish": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		if _, err := ParsePublicKeyPEM([]byte(in)); !errors.Is(err, ErrKey) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	if _, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); !errors.Is(err, ErrKey) {
		t.Errorf("RSA-1024 accepted: %v", err)
	}
}

// marshalSPKI encodes an ECDSA key as SubjectPublicKeyInfo, by hand for
// P-192 which crypto/x509 does not marshal.
func marshalSPKI(t *testing.T, k *ecdsa.PublicKey) []byte {
	t.Helper()
	if k.Curve.Params().Name != "P-192" {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// SEQUENCE { SEQUENCE { ecPublicKey, secp192r1 }, BIT STRING 04||X||Y }
	pt := append([]byte{4}, k.X.FillBytes(make([]byte, 24))...)
	pt = append(pt, k.Y.FillBytes(make([]byte, 24))...)
	alg := []byte{0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01}
	bits := append([]byte{0x03, byte(len(pt) + 1), 0x00}, pt...)
	body := append(alg, bits...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func TestPatchRefusesSigned(t *testing.T) {
	data := fixture(t, "secure/bootloader_signed_v2_rsa.bin")
	mode := FlashQIO
	if _, err := PatchFlashParams(data, FlashParams{Mode: &mode}); !errors.Is(err, ErrSignedImage) {
		t.Errorf("err = %v", err)
	}
}

// TestMultipleBlocks: three key slots, each signed by a different key; a
// key verifies its own slot only, and a block whose CRC is broken is
// skipped while the others still count.
func TestMultipleBlocks(t *testing.T) {
	app := BuildImage(ImageSpec{Chip: ChipESP32C6, AppDesc: &AppDesc{Version: "9"}})
	var keys []*ecdsa.PrivateKey
	var sectors [][]byte
	for i := 0; i < 3; i++ {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		signed, err := SignImage(app, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		sectors = append(sectors, signed[SectorSize:])
	}
	multi, _ := SignImage(app, keys[0], nil)
	copy(multi[SectorSize+sigBlockSize:], sectors[1][:sigBlockSize])
	copy(multi[SectorSize+2*sigBlockSize:], sectors[2][:sigBlockSize])
	im := mustParse(t, multi)
	if im.Signature == nil || len(im.Signature.Blocks) != 3 {
		t.Fatalf("blocks: %+v", im.Signature)
	}
	for i, k := range keys {
		res, err := VerifySignature(multi, []crypto.PublicKey{k.Public()})
		if err != nil || res.Block != i {
			t.Errorf("key %d: %+v %v", i, res, err)
		}
	}
	multi[SectorSize+sigBlockSize+50] ^= 1 // break block 1's CRC
	if _, err := VerifySignature(multi, []crypto.PublicKey{keys[1].Public()}); !errors.Is(err, ErrSignature) {
		t.Errorf("key 1 after its block broke: %v", err)
	}
	if res, err := VerifySignature(multi, []crypto.PublicKey{keys[2].Public()}); err != nil || res.Block != 2 {
		t.Errorf("key 2: %+v %v", res, err)
	}
}

// TestHostileBlocks: blocks with a valid CRC but impossible keys (an even
// RSA modulus, an ECDSA point off its curve) are skipped, never a panic.
func TestHostileBlocks(t *testing.T) {
	stamp := func(b []byte) []byte {
		b[0] = sigBlockMagic
		binary.LittleEndian.PutUint32(b[sigCRCOffset:], crc32.ChecksumIEEE(b[:sigCRCOffset]))
		return b
	}
	rsaEven := make([]byte, SectorSize)
	rsaEven[1] = sigVersionRSA
	for i := 36; i < 420; i++ {
		rsaEven[i] = 0xFE // even, 3072 bits
	}
	binary.LittleEndian.PutUint32(rsaEven[420:], 65537)
	p192Off := make([]byte, SectorSize)
	p192Off[1], p192Off[36] = sigVersionECDSA, 1
	p192Off[37], p192Off[61] = 7, 9 // (7, 9) is not on P-192
	for name, sector := range map[string][]byte{"even RSA modulus": stamp(rsaEven), "P-192 point off the curve": stamp(p192Off)} {
		if _, err := ParseSignatureSector(sector); !errors.Is(err, ErrUnsigned) {
			t.Errorf("%s: %v", name, err)
		}
	}
	even := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 3071), E: 65537}
	if _, err := PublicKeyDigest(even); !errors.Is(err, ErrKey) {
		t.Errorf("PublicKeyDigest(even modulus) = %v", err)
	}
}
