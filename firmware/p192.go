package firmware

import (
	"crypto"
	"crypto/subtle"
	"errors"
	"math/big"
)

// NIST P-192 (secp192r1) is the curve ESP32-C2 Secure Boot V2 signs with.
// The standard library has no P-192, and its generic elliptic.CurveParams
// arithmetic is deprecated. Verification only handles public values (key,
// digest, signature), so plain math/big arithmetic in affine coordinates,
// which is not constant time, is adequate here; nothing in this file signs
// or touches a private scalar.

// p192Curve holds the domain parameters of secp192r1 (SEC 2 §2.2.2, FIPS
// 186-4 D.1.2.1). The curve is y² = x³ - 3x + b over GF(p).
type p192Curve struct {
	p, n, b, gx, gy *big.Int
}

// p192Params returns the curve parameters; a new value each call keeps the
// package free of mutable globals.
func p192Params() *p192Curve {
	hex := func(s string) *big.Int {
		v, _ := new(big.Int).SetString(s, 16)
		return v
	}
	return &p192Curve{
		p:  hex("fffffffffffffffffffffffffffffffeffffffffffffffff"),
		n:  hex("ffffffffffffffffffffffff99def836146bc9b1b4d22831"),
		b:  hex("64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1"),
		gx: hex("188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012"),
		gy: hex("07192b95ffc8da78631011ed6b24cdd573f977a11e794811"),
	}
}

// p192Point is an affine point; inf marks the point at infinity.
type p192Point struct {
	x, y *big.Int
	inf  bool
}

// onCurve reports whether (x, y) is a point of the curve with both
// coordinates reduced (0 ≤ x, y < p).
func (c *p192Curve) onCurve(x, y *big.Int) bool {
	if x.Sign() < 0 || y.Sign() < 0 || x.Cmp(c.p) >= 0 || y.Cmp(c.p) >= 0 {
		return false
	}
	// y² = x³ - 3x + b (mod p)
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, c.p)
	rhs := new(big.Int).Mul(x, x)
	rhs.Mul(rhs, x)
	threeX := new(big.Int).Lsh(x, 1)
	threeX.Add(threeX, x)
	rhs.Sub(rhs, threeX)
	rhs.Add(rhs, c.b)
	rhs.Mod(rhs, c.p)
	return y2.Cmp(rhs) == 0
}

// add returns a + b.
func (c *p192Curve) add(a, b p192Point) p192Point {
	switch {
	case a.inf:
		return b
	case b.inf:
		return a
	}
	var lambda *big.Int
	if a.x.Cmp(b.x) == 0 {
		if a.y.Cmp(b.y) != 0 || a.y.Sign() == 0 {
			return p192Point{inf: true} // a = -b
		}
		// Doubling: λ = (3x² - 3) / 2y
		num := new(big.Int).Mul(a.x, a.x)
		num.Mul(num, big.NewInt(3))
		num.Sub(num, big.NewInt(3))
		den := new(big.Int).Lsh(a.y, 1)
		lambda = c.div(num, den)
	} else {
		// λ = (y2 - y1) / (x2 - x1)
		num := new(big.Int).Sub(b.y, a.y)
		den := new(big.Int).Sub(b.x, a.x)
		lambda = c.div(num, den)
	}
	// x3 = λ² - x1 - x2; y3 = λ(x1 - x3) - y1
	x3 := new(big.Int).Mul(lambda, lambda)
	x3.Sub(x3, a.x)
	x3.Sub(x3, b.x)
	x3.Mod(x3, c.p)
	y3 := new(big.Int).Sub(a.x, x3)
	y3.Mul(y3, lambda)
	y3.Sub(y3, a.y)
	y3.Mod(y3, c.p)
	return p192Point{x: x3, y: y3}
}

// div returns num / den mod p; den is never 0 mod p where it is called
// (distinct x, or a doubling of a point with y ≠ 0).
func (c *p192Curve) div(num, den *big.Int) *big.Int {
	den = new(big.Int).Mod(den, c.p)
	inv := new(big.Int).ModInverse(den, c.p)
	r := new(big.Int).Mul(num, inv)
	return r.Mod(r, c.p)
}

// mul returns k·pt by double-and-add, most significant bit first.
func (c *p192Curve) mul(pt p192Point, k *big.Int) p192Point {
	acc := p192Point{inf: true}
	for i := k.BitLen() - 1; i >= 0; i-- {
		acc = c.add(acc, acc)
		if k.Bit(i) == 1 {
			acc = c.add(acc, pt)
		}
	}
	return acc
}

func (c *p192Curve) generator() p192Point { return p192Point{x: c.gx, y: c.gy} }

// P192PublicKey is an ECDSA public key on NIST P-192, as ESP32-C2 Secure
// Boot V2 uses. ParsePublicKeyPEM and ParseSignatureSector return it for
// P-192 keys; the coordinates are checked to lie on the curve.
type P192PublicKey struct {
	x, y *big.Int
}

// ParseP192PublicKey decodes an uncompressed point (0x04 || X || Y, 49
// bytes, big-endian) and checks that it lies on the curve.
func ParseP192PublicKey(uncompressed []byte) (*P192PublicKey, error) {
	if len(uncompressed) != 49 || uncompressed[0] != 4 {
		return nil, errors.New("a P-192 public key is 49 bytes: 0x04, X, Y")
	}
	x := new(big.Int).SetBytes(uncompressed[1:25])
	y := new(big.Int).SetBytes(uncompressed[25:49])
	if !p192Params().onCurve(x, y) {
		return nil, errors.New("the point is not on the P-192 curve")
	}
	return &P192PublicKey{x: x, y: y}, nil
}

// p192FromScalar returns the public key d·G of the private scalar d (for
// reading the public half of a private key file), or false when d is not
// in [1, n-1].
func p192FromScalar(d []byte) (*P192PublicKey, bool) {
	c := p192Params()
	k := new(big.Int).SetBytes(d)
	if k.Sign() <= 0 || k.Cmp(c.n) >= 0 {
		return nil, false
	}
	pt := c.mul(c.generator(), k)
	if pt.inf {
		return nil, false
	}
	return &P192PublicKey{x: pt.x, y: pt.y}, true
}

// Bytes returns the key as an uncompressed point: 0x04 || X || Y.
func (k *P192PublicKey) Bytes() []byte {
	out := make([]byte, 49)
	out[0] = 4
	k.x.FillBytes(out[1:25])
	k.y.FillBytes(out[25:49])
	return out
}

// Equal reports whether x is the same P-192 key (crypto.PublicKey contract).
func (k *P192PublicKey) Equal(x crypto.PublicKey) bool {
	o, ok := x.(*P192PublicKey)
	return ok && subtle.ConstantTimeCompare(k.Bytes(), o.Bytes()) == 1
}

// verifyP192 checks an ECDSA signature (r, s) over digest with pub, as FIPS
// 186-4 §6.4.2 says: r, s in [1, n-1]; e the leftmost 192 bits of the
// digest; w = s⁻¹; X = (e·w)·G + (r·w)·Q; valid when X is not infinity and
// X.x ≡ r (mod n).
func verifyP192(pub *P192PublicKey, digest []byte, r, s *big.Int) bool {
	c := p192Params()
	if pub == nil || r == nil || s == nil {
		return false
	}
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(c.n) >= 0 || s.Cmp(c.n) >= 0 {
		return false
	}
	if !c.onCurve(pub.x, pub.y) {
		return false
	}
	e := new(big.Int).SetBytes(digest[:min(len(digest), 24)])
	w := new(big.Int).ModInverse(s, c.n)
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, c.n)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, c.n)
	pt := c.add(c.mul(c.generator(), u1), c.mul(p192Point{x: pub.x, y: pub.y}, u2))
	if pt.inf {
		return false
	}
	v := new(big.Int).Mod(pt.x, c.n)
	return v.Cmp(r) == 0
}
