package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/big"
)

// ErrSign: an image could not be signed (bad key, no free signature slot).
var ErrSign = errors.New("cannot sign the image")

// SignError says why signing failed and what to do next. It never carries
// key material.
type SignError struct {
	Reason string
	Next   string
}

func (e *SignError) Error() string { return fmt.Sprintf("%v: %s", ErrSign, e.Reason) }

// Unwrap lets errors.Is(err, ErrSign) match.
func (e *SignError) Unwrap() error { return ErrSign }

// Code is the stable machine word for the failure.
func (e *SignError) Code() string { return "sign_failed" }

// Hint is the next step.
func (e *SignError) Hint() string { return e.Next }

// SignOptions tune SignImage.
type SignOptions struct {
	// Append keeps the valid signature blocks of an already signed image
	// (data a multiple of 4 KB whose last sector holds valid blocks) and
	// adds one block per key after them, as espsecure sign-data
	// --append-signatures does. Without it an already signed image is
	// refused rather than signed again over its own signature sector.
	Append bool
	// Rand is the randomness for RSA-PSS salts and ECDSA nonces;
	// crypto/rand when nil.
	Rand io.Reader
}

// Sign returns data followed by a Secure Boot V2 signature sector with
// one block per key, byte for byte in the layout espsecure sign-data
// --version 2 writes (flash-formats.md §6): data that is not a multiple of
// 4 KB is padded with FF first; the sector holds the blocks, then FF. Keys
// are RSA-3072 (RSA-PSS, SHA-256, salt 32) or ECDSA P-256/P-384. The result
// verifies with VerifySignature and the public halves of keys.
func Sign(data []byte, keys []crypto.Signer, opt SignOptions) ([]byte, error) {
	if len(keys) == 0 {
		return nil, &SignError{Reason: "no signing key given", Next: "pass --key PRIVATE.pem (make one with espdeck image keygen)"}
	}
	if len(data) == 0 {
		return nil, &SignError{Reason: "the image is empty", Next: "sign the .bin the build wrote"}
	}
	rnd := opt.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var kept [][]byte
	content := data
	if len(data)%SectorSize == 0 && len(data) >= 2*SectorSize {
		if ss, err := ParseSignatureSector(data[len(data)-SectorSize:]); err == nil {
			if !opt.Append {
				return nil, &SignError{Reason: fmt.Sprintf("the image already ends in a signature sector with %d valid block(s)", len(ss.Blocks)),
					Next: "add --append to add a block for another key, or sign the unsigned image"}
			}
			sector := data[len(data)-SectorSize:]
			for _, b := range ss.Blocks {
				kept = append(kept, sector[b.Index*sigBlockSize:(b.Index+1)*sigBlockSize])
			}
			content = data[:len(data)-SectorSize]
		}
	}
	if len(kept)+len(keys) > sigBlocksMax {
		return nil, &SignError{Reason: fmt.Sprintf("a signature sector holds %d blocks; the image has %d and %d more were asked for", sigBlocksMax, len(kept), len(keys)),
			Next: "sign with fewer keys (ESP32 rev 3 accepts only one)"}
	}
	if pad := len(content) % SectorSize; pad != 0 {
		content = append(append(make([]byte, 0, len(content)+SectorSize-pad+SectorSize), content...), bytes.Repeat([]byte{0xFF}, SectorSize-pad)...)
	}
	sector := make([]byte, 0, SectorSize)
	for _, b := range kept {
		sector = append(sector, b...)
	}
	for i, k := range keys {
		blk, err := signatureBlock(content, k, rnd)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		sector = append(sector, blk...)
	}
	sector = append(sector, bytes.Repeat([]byte{0xFF}, SectorSize-len(sector))...)
	out := make([]byte, 0, len(content)+SectorSize)
	return append(append(out, content...), sector...), nil
}

// signatureBlock builds one 1216-byte block signing content with k.
func signatureBlock(content []byte, k crypto.Signer, rnd io.Reader) ([]byte, error) {
	blk := make([]byte, sigBlockSize)
	blk[0] = sigBlockMagic
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() != 3072 {
			return nil, &SignError{Reason: fmt.Sprintf("the RSA key has %d bits; Secure Boot V2 uses RSA-3072", pub.N.BitLen()),
				Next: "make a key with espdeck image keygen --scheme rsa3072"}
		}
		digest := sha256.Sum256(content)
		sig, err := k.Sign(rnd, digest[:], &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
		if err != nil {
			return nil, &SignError{Reason: "RSA-PSS signing failed: " + err.Error(), Next: "check the key file"}
		}
		blk[1] = sigVersionRSA
		copy(blk[4:36], digest[:])
		copy(blk[36:812], rsaKeyFields(pub))
		copy(blk[812:1196], reversed(sig))
	case *ecdsa.PublicKey:
		var digest []byte
		var curveID byte
		klen := 32
		switch pub.Curve {
		case elliptic.P256():
			d := sha256.Sum256(content)
			digest, curveID = d[:], 2
		case elliptic.P384():
			d := sha512.Sum384(content)
			digest, curveID, klen = d[:], 3, 48
		default:
			return nil, &SignError{Reason: fmt.Sprintf("ECDSA curve %s cannot be used for signing here", pub.Curve.Params().Name),
				Next: "use a P-256 key (espdeck image keygen) or sign P-192 images with espsecure"}
		}
		der, err := k.Sign(rnd, digest, crypto.Hash(0))
		if err != nil {
			return nil, &SignError{Reason: "ECDSA signing failed: " + err.Error(), Next: "check the key file"}
		}
		r, s, err := parseECDSASignature(der)
		if err != nil {
			return nil, &SignError{Reason: err.Error(), Next: "check the key file"}
		}
		// The uncompressed point 04 ‖ X ‖ Y, big-endian; the block wants each
		// coordinate little-endian.
		pt, err := pub.Bytes()
		if err != nil || len(pt) != 1+2*klen {
			return nil, &SignError{Reason: "the ECDSA public key cannot be encoded", Next: "check the key file"}
		}
		x, y := reversed(pt[1:1+klen]), reversed(pt[1+klen:])
		blk[1] = sigVersionECDSA
		if klen == 48 {
			blk[2] = 1 // SHA-384
			copy(blk[4:52], digest)
			blk[52] = curveID
			copy(blk[53:101], x)
			copy(blk[101:149], y)
			copy(blk[149:197], leBytes(r, 48))
			copy(blk[197:245], leBytes(s, 48))
		} else {
			copy(blk[4:36], digest)
			blk[36] = curveID
			copy(blk[37:69], x)
			copy(blk[69:101], y)
			copy(blk[101:133], leBytes(r, 32))
			copy(blk[133:165], leBytes(s, 32))
		}
	default:
		return nil, &SignError{Reason: fmt.Sprintf("%T keys are not used by Secure Boot V2", pub),
			Next: "use an RSA-3072 or ECDSA P-256 private key"}
	}
	binary.LittleEndian.PutUint32(blk[sigCRCOffset:], crc32.ChecksumIEEE(blk[:sigCRCOffset]))
	return blk, nil
}

// parseECDSASignature splits an ASN.1 ECDSA signature into r and s.
func parseECDSASignature(der []byte) (r, s *big.Int, err error) {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil || sig.R == nil || sig.S == nil {
		return nil, nil, errors.New("the signer returned a malformed ECDSA signature")
	}
	return sig.R, sig.S, nil
}

// SigningScheme names a key kind GenerateSigningKey makes.
type SigningScheme string

// Schemes GenerateSigningKey makes (espsecure generate-signing-key names).
const (
	SigningECDSA256 SigningScheme = "ecdsa256"
	SigningECDSA384 SigningScheme = "ecdsa384"
	SigningRSA3072  SigningScheme = "rsa3072"
)

// GenerateSigningKey makes a new Secure Boot V2 signing key and returns it
// PEM-encoded the way espsecure writes keys ("EC PRIVATE KEY" or "RSA
// PRIVATE KEY"). The caller stores it 0600; it is a secret.
func GenerateSigningKey(scheme SigningScheme, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	switch scheme {
	case SigningECDSA256, SigningECDSA384, "":
		curve := elliptic.P256()
		if scheme == SigningECDSA384 {
			curve = elliptic.P384()
		}
		k, err := ecdsa.GenerateKey(curve, rnd)
		if err != nil {
			return nil, fmt.Errorf("generate an ECDSA key: %w", err)
		}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode the ECDSA key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	case SigningRSA3072:
		k, err := rsa.GenerateKey(rnd, 3072)
		if err != nil {
			return nil, fmt.Errorf("generate an RSA key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	}
	return nil, &SignError{Reason: fmt.Sprintf("unknown signing scheme %q", scheme), Next: "use ecdsa256, ecdsa384 or rsa3072"}
}

// ParseSigningKeyPEM reads a Secure Boot V2 private key (PKCS#1 RSA, SEC1
// EC or PKCS#8). Errors never include key bytes.
func ParseSigningKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return nil, &SignError{Reason: "no PEM private key found (expected -----BEGIN EC PRIVATE KEY----- or RSA PRIVATE KEY)",
				Next: "pass the private key (espdeck image keygen or espsecure generate-signing-key --version 2 make one); a public key cannot sign"}
		}
		var k any
		var err error
		switch blk.Type {
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "PUBLIC KEY", "RSA PUBLIC KEY":
			return nil, &SignError{Reason: "the key file holds a public key; signing needs the private key", Next: "pass the private key PEM to --key"}
		case "ENCRYPTED PRIVATE KEY":
			return nil, &SignError{Reason: "the private key is encrypted", Next: "decrypt it first (openssl pkey -in KEY -out PLAIN.pem) and keep the result 0600"}
		default:
			continue
		}
		if err != nil {
			// The parser's message names the structure, never the key bytes.
			return nil, &SignError{Reason: fmt.Sprintf("%s does not parse: %v", blk.Type, err), Next: "check that the file is an unencrypted RSA-3072 or ECDSA key"}
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, &SignError{Reason: fmt.Sprintf("%T keys cannot sign", k), Next: "use an RSA-3072 or ECDSA P-256 key"}
		}
		return s, nil
	}
}
