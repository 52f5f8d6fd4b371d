package firmware

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// ImageSpec describes an image for BuildImage. It exists so tests (ours and
// the simulators') can make realistic images for any chip without a
// toolchain; espdeck itself never builds firmware.
type ImageSpec struct {
	Chip          Chip
	FlashMode     FlashMode
	FlashSizeCode uint8
	FlashFreqCode uint8
	Entry         uint32
	MinRevLegacy  uint8
	MinRevFull    uint16
	MaxRevFull    uint16
	// AppDesc, when set, becomes the first segment at the chip's flash data
	// address (an ESP-IDF app); nil makes a RAM-only image (a bootloader).
	AppDesc  *AppDesc
	Segments []SegmentSpec
	NoHash   bool // leave out the appended SHA-256 (ESP32 family)
}

// SegmentSpec is one segment for BuildImage.
type SegmentSpec struct {
	LoadAddr uint32
	Data     []byte
}

// BuildImage lays out an image as esptool elf2image does (header, extended
// header, segments, checksum, SHA-256), without flash-page alignment of
// mapped segments.
func BuildImage(spec ImageSpec) []byte {
	segs := spec.Segments
	if spec.AppDesc != nil {
		addr := uint32(0x3C000020)
		if w := flashWindows(spec.Chip); len(w) > 0 {
			addr = w[len(w)-1][0] + 0x20
		}
		segs = append([]SegmentSpec{{LoadAddr: addr, Data: spec.AppDesc.MarshalBinary()}}, segs...)
	}
	out := []byte{ImageMagic, byte(len(segs)), byte(spec.FlashMode), spec.FlashSizeCode<<4 | spec.FlashFreqCode&0x0F}
	out = binary.LittleEndian.AppendUint32(out, spec.Entry)
	esp8266 := spec.Chip == ChipESP8266
	if !esp8266 {
		x := make([]byte, 16)
		x[0] = WPPinDisabled
		binary.LittleEndian.PutUint16(x[4:], uint16(spec.Chip))
		x[6] = spec.MinRevLegacy
		binary.LittleEndian.PutUint16(x[7:], spec.MinRevFull)
		binary.LittleEndian.PutUint16(x[9:], spec.MaxRevFull)
		if !spec.NoHash {
			x[15] = 1
		}
		out = append(out, x...)
	}
	sum := byte(checksumSeed)
	for _, s := range segs {
		out = binary.LittleEndian.AppendUint32(out, s.LoadAddr)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(s.Data)))
		out = append(out, s.Data...)
		sum ^= xorBytes(s.Data)
	}
	for len(out)%16 != 15 {
		out = append(out, 0)
	}
	out = append(out, sum)
	if !esp8266 && !spec.NoHash {
		h := sha256.Sum256(out)
		out = append(out, h[:]...)
	}
	return out
}

// MarshalBinary encodes the description as esp_app_desc_t (256 bytes).
func (d *AppDesc) MarshalBinary() []byte {
	b := make([]byte, AppDescSize)
	binary.LittleEndian.PutUint32(b, AppDescMagic)
	binary.LittleEndian.PutUint32(b[4:], d.SecureVersion)
	copy(b[16:47], d.Version)
	copy(b[48:79], d.ProjectName)
	copy(b[80:95], d.Time)
	copy(b[96:111], d.Date)
	copy(b[112:143], d.IDFVersion)
	copy(b[144:176], d.ELFSHA256[:])
	binary.LittleEndian.PutUint16(b[176:], d.MinEfuseBlk)
	binary.LittleEndian.PutUint16(b[178:], d.MaxEfuseBlk)
	for p := byte(0); p < 32; p++ {
		if d.MMUPageSize != 0 && d.MMUPageSize == 1<<p {
			b[180] = p
		}
	}
	return b
}

// SignImage appends a Secure Boot V2 signature sector to image (padded with
// FF to a whole sector first), signing with key in block slot 0, as
// espsecure sign_data --version 2 does. key is an RSA-3072 or ECDSA
// P-192/P-256/P-384 private key. rnd may be nil for crypto/rand.
func SignImage(image []byte, key crypto.Signer, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	signed := append([]byte(nil), image...)
	for len(signed)%SectorSize != 0 {
		signed = append(signed, 0xFF)
	}
	digest := sha256.Sum256(signed)
	blk := make([]byte, sigBlockSize)
	blk[0] = sigBlockMagic
	copy(blk[4:36], digest[:])
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() != 3072 {
			return nil, fmt.Errorf("%w: RSA key has %d bits, Secure Boot V2 needs 3072", ErrKey, k.N.BitLen())
		}
		blk[1] = sigVersionRSA
		sig, err := rsa.SignPSS(rnd, k, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
		if err != nil {
			return nil, err
		}
		// The key fields are the ones PublicKeyDigest hashes.
		fields := rsaKeyFields(&k.PublicKey)
		copy(blk[36:812], fields)
		copy(blk[812:1196], reversed(sig))
	case *ecdsa.PrivateKey:
		blk[1] = sigVersionECDSA
		if k.Curve.Params().Name == "P-384" {
			// SHA-384 variant: a 48-byte digest moves every later field.
			d384 := sha512.Sum384(signed)
			blk[2] = 1
			clear(blk[4:36])
			copy(blk[4:52], d384[:])
			blk[52] = 3
			copy(blk[53:], leBytes(k.X, 48))
			copy(blk[101:], leBytes(k.Y, 48))
			r, s, err := ecdsa.Sign(rnd, k, d384[:])
			if err != nil {
				return nil, err
			}
			copy(blk[149:], leBytes(r, 48))
			copy(blk[197:], leBytes(s, 48))
			break
		}
		klen, id := 32, byte(2)
		switch k.Curve.Params().Name {
		case "P-256":
		case "P-192":
			klen, id = 24, 1
		default:
			return nil, fmt.Errorf("%w: signing supports P-192, P-256 and P-384, not %s", ErrKey, k.Curve.Params().Name)
		}
		blk[36] = id
		copy(blk[37:], leBytes(k.X, klen))
		copy(blk[37+klen:], leBytes(k.Y, klen))
		r, s, err := ecdsa.Sign(rnd, k, digest[:])
		if err != nil {
			return nil, err
		}
		copy(blk[101:], leBytes(r, klen))
		copy(blk[101+klen:], leBytes(s, klen))
	default:
		return nil, fmt.Errorf("%w: cannot sign with %T", ErrKey, key)
	}
	binary.LittleEndian.PutUint32(blk[sigCRCOffset:], crc32.ChecksumIEEE(blk[:sigCRCOffset]))
	sector := make([]byte, SectorSize)
	for i := range sector {
		sector[i] = 0xFF
	}
	copy(sector, blk)
	return append(signed, sector...), nil
}
