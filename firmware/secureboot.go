package firmware

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"math/big"
)

// Secure Boot V2 signature sector layout (flash-formats.md §6).
const (
	sigBlockMagic   = 0xE7
	sigBlockSize    = 1216
	sigBlocksMax    = 3
	sigCRCOffset    = 1196
	sigVersionRSA   = 0x02
	sigVersionECDSA = 0x03
)

// SignatureScheme is the algorithm of a Secure Boot V2 signature block.
type SignatureScheme int

// Schemes espsecure produces.
const (
	SchemeRSA3072 SignatureScheme = iota + 1
	SchemeECDSAP192
	SchemeECDSAP256
	SchemeECDSAP384
)

func (s SignatureScheme) String() string {
	switch s {
	case SchemeRSA3072:
		return "RSA-3072 PSS"
	case SchemeECDSAP192:
		return "ECDSA P-192"
	case SchemeECDSAP256:
		return "ECDSA P-256"
	case SchemeECDSAP384:
		return "ECDSA P-384"
	}
	return "unknown scheme"
}

// SignatureBlock is one valid signature block of a signature sector.
type SignatureBlock struct {
	Index     int // 0, 1 or 2: the key slot
	Scheme    SignatureScheme
	Digest    []byte           // image digest the block signs (32 or 48 bytes)
	PublicKey crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey (P-256, P-384) or *P192PublicKey
	// KeyDigest is SHA-256 over the key fields as stored, the value the
	// eFuse SECURE_BOOT_DIGESTx blocks hold.
	KeyDigest [32]byte
	sig       []byte   // RSA: big-endian signature
	r, s      *big.Int // ECDSA
}

// SignatureSector is the 4 KB sector after a signed image.
type SignatureSector struct {
	Offset int // file offset of the sector = length of the signed data
	Blocks []SignatureBlock
}

// ParseSignatureSector decodes the valid signature blocks of a 4 KB
// signature sector. Blocks with a wrong magic, version or CRC are skipped,
// as the ROM skips them. An error means no valid block was found.
func ParseSignatureSector(sector []byte) (*SignatureSector, error) {
	if len(sector) < sigBlocksMax*sigBlockSize {
		return nil, fmt.Errorf("%w: a signature sector is %d bytes, got %d", ErrUnsigned, SectorSize, len(sector))
	}
	ss := &SignatureSector{}
	for i := 0; i < sigBlocksMax; i++ {
		b := sector[i*sigBlockSize : (i+1)*sigBlockSize]
		if blk, ok := parseSigBlock(b); ok {
			blk.Index = i
			ss.Blocks = append(ss.Blocks, blk)
		}
	}
	if len(ss.Blocks) == 0 {
		return nil, fmt.Errorf("%w: no valid signature block (magic E7 with a matching CRC)", ErrUnsigned)
	}
	return ss, nil
}

func parseSigBlock(b []byte) (SignatureBlock, bool) {
	var blk SignatureBlock
	if b[0] != sigBlockMagic || crc32.ChecksumIEEE(b[:sigCRCOffset]) != binary.LittleEndian.Uint32(b[sigCRCOffset:]) {
		return blk, false
	}
	switch b[1] {
	case sigVersionRSA:
		blk.Scheme = SchemeRSA3072
		blk.Digest = append([]byte(nil), b[4:36]...)
		n := new(big.Int).SetBytes(reversed(b[36:420]))
		e := binary.LittleEndian.Uint32(b[420:424])
		// A real RSA modulus is odd and 3072 bits; anything else cannot
		// be a key the ROM accepts.
		if n.Bit(0) == 0 || n.BitLen() != 3072 || e < 3 || e > 1<<31-1 {
			return blk, false
		}
		blk.PublicKey = &rsa.PublicKey{N: n, E: int(e)}
		blk.sig = reversed(b[812:1196])
		blk.KeyDigest = sha256.Sum256(b[36:812])
	case sigVersionECDSA:
		if b[2] == 1 { // SHA-384, P-384
			if b[52] != 3 {
				return blk, false
			}
			blk.Scheme = SchemeECDSAP384
			blk.Digest = append([]byte(nil), b[4:52]...)
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), uncompressed(b[53:101], b[101:149]))
			if err != nil {
				return blk, false // not a point of the curve: no key
			}
			blk.PublicKey = pub
			blk.r, blk.s = leInt(b[149:197]), leInt(b[197:245])
			blk.KeyDigest = sha256.Sum256(b[52:149])
			break
		}
		blk.Digest = append([]byte(nil), b[4:36]...)
		klen := 0
		var err error
		switch b[36] {
		case 1:
			klen = 24
			blk.Scheme = SchemeECDSAP192
			blk.PublicKey, err = ParseP192PublicKey(uncompressed(b[37:61], b[61:85]))
		case 2:
			klen = 32
			blk.Scheme = SchemeECDSAP256
			blk.PublicKey, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), uncompressed(b[37:69], b[69:101]))
		default:
			return blk, false
		}
		if err != nil {
			return blk, false // an off-curve point is no key
		}
		blk.r, blk.s = leInt(b[101:101+klen]), leInt(b[101+klen:101+2*klen])
		blk.KeyDigest = sha256.Sum256(b[36:101])
	default:
		return blk, false
	}
	return blk, true
}

// findSignatureSector looks for a signature sector right after the image
// rounded up to a whole sector (where espsecure puts it).
func findSignatureSector(data []byte, imageLen int) (*SignatureSector, error) {
	off := (imageLen + SectorSize - 1) / SectorSize * SectorSize
	if len(data) < off+SectorSize {
		return nil, ErrUnsigned
	}
	ss, err := ParseSignatureSector(data[off : off+SectorSize])
	if err != nil {
		return nil, err
	}
	ss.Offset = off
	return ss, nil
}

// SignatureResult says which block verified with which key.
type SignatureResult struct {
	Block     int // key slot (0–2) of the block that verified
	KeyIndex  int // index into the keys passed to VerifySignature
	Scheme    SignatureScheme
	KeyDigest [32]byte
}

// LocateSignature finds the signature sector of a signed image: after the
// parsed image rounded up to a sector, or else (as espsecure does) in the
// last 4 KB of data when its length is a multiple of 4 KB.
func LocateSignature(data []byte) (*SignatureSector, error) {
	if im, err := ParseImage(data); err == nil && im.Signature != nil {
		return im.Signature, nil
	}
	if len(data) >= 2*SectorSize && len(data)%SectorSize == 0 {
		ss, err := ParseSignatureSector(data[len(data)-SectorSize:])
		if err != nil {
			return nil, err
		}
		ss.Offset = len(data) - SectorSize
		return ss, nil
	}
	return nil, fmt.Errorf("%w: no signature sector after the image", ErrUnsigned)
}

// VerifySignature checks data (a signed image, as flashed) against the
// given public keys, the way espsecure verify_signature --version 2 does:
// every valid block must sign the digest of the data before the signature
// sector, and the image verifies if any block verifies with any key. It
// returns a *SignatureError (ErrUnsigned or ErrSignature) otherwise.
func VerifySignature(data []byte, keys []crypto.PublicKey) (SignatureResult, error) {
	ss, err := LocateSignature(data)
	if err != nil {
		return SignatureResult{}, &SignatureError{Reason: "no Secure Boot V2 signature block found after the image", Err: ErrUnsigned}
	}
	signed := data[:ss.Offset]
	sha256Digest := sha256.Sum256(signed)
	var sha384Digest []byte
	digests := make([][32]byte, 0, len(ss.Blocks))
	for _, blk := range ss.Blocks {
		digests = append(digests, blk.KeyDigest)
	}
	for _, blk := range ss.Blocks {
		want := sha256Digest[:]
		if blk.Scheme == SchemeECDSAP384 {
			if sha384Digest == nil {
				d := sha512.Sum384(signed)
				sha384Digest = d[:]
			}
			want = sha384Digest
		}
		if string(want) != string(blk.Digest) {
			return SignatureResult{}, &SignatureError{Blocks: len(ss.Blocks), KeyDigests: digests, Err: ErrSignature,
				Reason: fmt.Sprintf("signature block %d signs digest %x but the image before the signature hashes to %x (the image was changed after signing)", blk.Index, blk.Digest, want)}
		}
	}
	if len(keys) == 0 {
		return SignatureResult{}, &SignatureError{Blocks: len(ss.Blocks), KeyDigests: digests, Err: ErrSignature, Reason: "no public key given to verify with"}
	}
	for _, blk := range ss.Blocks {
		for ki, k := range keys {
			if blk.verify(k) {
				return SignatureResult{Block: blk.Index, KeyIndex: ki, Scheme: blk.Scheme, KeyDigest: blk.KeyDigest}, nil
			}
		}
	}
	return SignatureResult{}, &SignatureError{Blocks: len(ss.Blocks), KeyDigests: digests, Err: ErrSignature,
		Reason: fmt.Sprintf("none of the %d signature block(s) verifies with the given key(s): the image is signed by another key", len(ss.Blocks))}
}

func (blk *SignatureBlock) verify(key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if blk.Scheme != SchemeRSA3072 {
			return false
		}
		return rsa.VerifyPSS(k, crypto.SHA256, blk.Digest, blk.sig, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}) == nil
	case *ecdsa.PublicKey:
		want := elliptic.P256()
		switch blk.Scheme {
		case SchemeECDSAP256:
		case SchemeECDSAP384:
			want = elliptic.P384()
		default:
			return false
		}
		if blk.r == nil || k.Curve != want {
			return false
		}
		// Verify reports an invalid (off-curve) key as a failed check.
		return ecdsa.Verify(k, blk.Digest, blk.r, blk.s)
	case *P192PublicKey:
		return blk.Scheme == SchemeECDSAP192 && verifyP192(k, blk.Digest, blk.r, blk.s)
	}
	return false
}

// uncompressed returns 0x04 || X || Y (big-endian) for the little-endian
// coordinates of a signature block.
func uncompressed(xLE, yLE []byte) []byte {
	out := make([]byte, 0, 1+len(xLE)+len(yLE))
	out = append(out, 4)
	out = append(out, reversed(xLE)...)
	return append(out, reversed(yLE)...)
}

// PublicKeyDigest computes the Secure Boot V2 key digest of pub (what
// espsecure digest_sbv2_public_key prints and the eFuse holds).
func PublicKeyDigest(pub crypto.PublicKey) ([32]byte, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() != 3072 || k.N.Bit(0) == 0 {
			return [32]byte{}, fmt.Errorf("%w: Secure Boot V2 RSA keys are 3072 bits with an odd modulus, this one has %d bits", ErrKey, k.N.BitLen())
		}
		buf := rsaKeyFields(k)
		return sha256.Sum256(buf), nil
	case *P192PublicKey:
		return ecKeyDigest(1, 65, k.Bytes()), nil // 16 zero bytes follow X and Y
	case *ecdsa.PublicKey:
		pt, err := k.Bytes()
		if err != nil {
			return [32]byte{}, fmt.Errorf("%w: %v", ErrKey, err)
		}
		switch k.Curve {
		case elliptic.P256():
			return ecKeyDigest(2, 65, pt), nil
		case elliptic.P384():
			return ecKeyDigest(3, 97, pt), nil
		}
		return [32]byte{}, fmt.Errorf("%w: Secure Boot V2 uses ECDSA P-192, P-256 or P-384, not %s", ErrKey, k.Curve.Params().Name)
	}
	return [32]byte{}, fmt.Errorf("%w: %T is not a Secure Boot V2 key type", ErrKey, pub)
}

// ecKeyDigest hashes an ECDSA key as a signature block stores it: the curve
// id, then X and Y little-endian, zero-padded to size bytes in all; pt is
// the uncompressed point 0x04 || X || Y.
func ecKeyDigest(id byte, size int, pt []byte) [32]byte {
	n := (len(pt) - 1) / 2
	buf := make([]byte, size)
	buf[0] = id
	copy(buf[1:], reversed(pt[1:1+n]))
	copy(buf[1+n:], reversed(pt[1+n:]))
	return sha256.Sum256(buf)
}

// rsaKeyFields encodes an RSA key as a signature block stores it: n, e,
// rinv = 2^6144 mod n and M' = -n^-1 mod 2^32, little-endian (776 bytes).
func rsaKeyFields(k *rsa.PublicKey) []byte {
	buf := make([]byte, 0, 776)
	buf = append(buf, leBytes(k.N, 384)...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(k.E))
	rinv := new(big.Int).Exp(big.NewInt(2), big.NewInt(2*3072), k.N)
	buf = append(buf, leBytes(rinv, 384)...)
	m32 := new(big.Int).Lsh(big.NewInt(1), 32)
	inv := new(big.Int).ModInverse(new(big.Int).Mod(k.N, m32), m32)
	mprime := new(big.Int).Sub(m32, inv)
	mprime.Mod(mprime, m32)
	return binary.LittleEndian.AppendUint32(buf, uint32(mprime.Uint64()))
}

// ParsePublicKeyPEM reads a Secure Boot V2 verification key from PEM: a
// public key (PKIX "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY") or a private
// key, whose public half is used. RSA-3072 and ECDSA P-192/P-256/P-384
// keys are accepted.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, fmt.Errorf("%w: no PEM public or private key found (expected -----BEGIN PUBLIC KEY-----, e.g. from espsecure.py extract_public_key --version 2)", ErrKey)
		}
		var pub crypto.PublicKey
		var err error
		switch blk.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				if p, ok := parseP192SPKI(blk.Bytes); ok {
					pub, err = p, nil
				}
			}
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			var k *rsa.PrivateKey
			if k, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
				pub = &k.PublicKey
			}
		case "EC PRIVATE KEY":
			var k *ecdsa.PrivateKey
			if k, err = x509.ParseECPrivateKey(blk.Bytes); err == nil {
				pub = &k.PublicKey
			} else if p, ok := parseP192ECPrivate(blk.Bytes); ok {
				pub, err = p, nil
			}
		case "PRIVATE KEY":
			var k any
			if k, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
				if s, ok := k.(crypto.Signer); ok {
					pub = s.Public()
				}
			}
		default:
			continue // e.g. "EC PARAMETERS" before an EC key
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrKey, blk.Type, err)
		}
		switch k := pub.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() != 3072 {
				return nil, fmt.Errorf("%w: Secure Boot V2 uses RSA-3072, this key has %d bits", ErrKey, k.N.BitLen())
			}
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
				return nil, fmt.Errorf("%w: Secure Boot V2 uses ECDSA P-192, P-256 or P-384, not %s", ErrKey, k.Curve.Params().Name)
			}
		case *P192PublicKey:
		default:
			return nil, fmt.Errorf("%w: %T keys are not used by Secure Boot V2 (RSA-3072 or ECDSA)", ErrKey, pub)
		}
		return pub, nil
	}
}

// OIDs for id-ecPublicKey and secp192r1 (functions: no mutable globals).
func oidECPublicKey() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1} }
func oidP192() asn1.ObjectIdentifier        { return asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1} }

// parseP192SPKI handles the one curve crypto/x509 refuses: secp192r1,
// which ESP32-C2 Secure Boot V2 uses.
func parseP192SPKI(der []byte) (*P192PublicKey, bool) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) != 0 {
		return nil, false
	}
	if !spki.Algorithm.Algorithm.Equal(oidECPublicKey()) {
		return nil, false
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil || !curve.Equal(oidP192()) {
		return nil, false
	}
	pub, err := ParseP192PublicKey(spki.PublicKey.RightAlign())
	return pub, err == nil
}

// parseP192ECPrivate reads the public half of a SEC 1 P-192 private key:
// the stored public key, or else d·G.
func parseP192ECPrivate(der []byte) (*P192PublicKey, bool) {
	var key struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
	if _, err := asn1.Unmarshal(der, &key); err != nil || !key.Curve.Equal(oidP192()) {
		return nil, false
	}
	if len(key.PublicKey.Bytes) > 0 {
		pub, err := ParseP192PublicKey(key.PublicKey.RightAlign())
		return pub, err == nil
	}
	return p192FromScalar(key.PrivateKey)
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

func leInt(b []byte) *big.Int { return new(big.Int).SetBytes(reversed(b)) }

func leBytes(v *big.Int, n int) []byte {
	be := v.FillBytes(make([]byte, n))
	return reversed(be)
}
