//lint:file-ignore SA1019 the standard library generic P-192 arithmetic is deliberately the independent oracle here

package firmware

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
)

// p192CurveParams is P-192 for the standard library's generic curve
// arithmetic, which the tests use as an independent oracle for ours (it is
// deprecated for production use, not wrong).
func p192CurveParams() *elliptic.CurveParams {
	c := p192Params()
	return &elliptic.CurveParams{Name: "P-192", BitSize: 192, P: c.p, N: c.n, B: c.b, Gx: c.gx, Gy: c.gy}
}

func TestP192Arithmetic(t *testing.T) {
	c := p192Params()
	oracle := p192CurveParams()
	g := c.generator()
	if !c.onCurve(g.x, g.y) {
		t.Fatal("the generator is not on the curve")
	}
	if pt := c.mul(g, c.n); !pt.inf {
		t.Fatal("n·G is not the point at infinity")
	}
	nm1 := new(big.Int).Sub(c.n, big.NewInt(1))
	if pt := c.mul(g, nm1); pt.inf || pt.x.Cmp(g.x) != 0 || new(big.Int).Add(pt.y, g.y).Cmp(c.p) != 0 {
		t.Fatal("(n-1)·G is not -G")
	}
	for i := range 20 {
		k := make([]byte, 24)
		rand.Read(k)
		if i == 0 {
			k = []byte{2} // a doubling
		}
		got := c.mul(g, new(big.Int).SetBytes(k))
		wx, wy := oracle.ScalarBaseMult(k)
		if got.inf || got.x.Cmp(wx) != 0 || got.y.Cmp(wy) != 0 {
			t.Fatalf("k=%x: ours (%x, %x), oracle (%x, %x)", k, got.x, got.y, wx, wy)
		}
		if !c.onCurve(got.x, got.y) {
			t.Fatalf("k=%x: result off the curve", k)
		}
	}
	if c.onCurve(big.NewInt(7), big.NewInt(9)) || c.onCurve(new(big.Int).Add(g.x, c.p), g.y) {
		t.Fatal("accepted a point off the curve or unreduced coordinates")
	}
}

func TestVerifyP192(t *testing.T) {
	key, err := ecdsa.GenerateKey(p192CurveParams(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("an image"))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	pt := append([]byte{4}, key.X.FillBytes(make([]byte, 24))...)
	pt = append(pt, key.Y.FillBytes(make([]byte, 24))...)
	pub, err := ParseP192PublicKey(pt)
	if err != nil {
		t.Fatal(err)
	}
	if !verifyP192(pub, digest[:], r, s) {
		t.Fatal("a signature made by the standard library does not verify")
	}
	n := p192Params().n
	other := sha256.Sum256([]byte("another image"))
	for name, tc := range map[string]struct {
		d    []byte
		r, s *big.Int
	}{
		"other digest": {other[:], r, s},
		"r+1":          {digest[:], new(big.Int).Add(r, big.NewInt(1)), s},
		"s+1":          {digest[:], r, new(big.Int).Add(s, big.NewInt(1))},
		"r=0":          {digest[:], big.NewInt(0), s},
		"s=n":          {digest[:], r, n},
		"r=r+n":        {digest[:], new(big.Int).Add(r, n), s},
		"nil s":        {digest[:], r, nil},
	} {
		if verifyP192(pub, tc.d, tc.r, tc.s) {
			t.Errorf("%s: verified", name)
		}
	}
	if verifyP192(&P192PublicKey{x: big.NewInt(7), y: big.NewInt(9)}, digest[:], r, s) {
		t.Error("an off-curve key verified")
	}
	if _, err := ParseP192PublicKey(append([]byte{4}, make([]byte, 48)...)); err == nil {
		t.Error("(0, 0) accepted as a P-192 key")
	}
	if !pub.Equal(pub) || pub.Equal(&P192PublicKey{x: big.NewInt(1), y: big.NewInt(2)}) {
		t.Error("Equal")
	}
	// The public half of a private scalar is d·G, as the oracle computes it.
	d := key.D.FillBytes(make([]byte, 24))
	fromD, ok := p192FromScalar(d)
	if !ok || !fromD.Equal(pub) {
		t.Error("d·G differs from the generated public key")
	}
	if _, ok := p192FromScalar(n.Bytes()); ok {
		t.Error("a scalar of n accepted")
	}
	// A private key file without the public half gives d·G too.
	got, err := ParsePublicKeyPEM(p192PrivatePEM(d))
	if err != nil || !pub.Equal(got) {
		t.Errorf("P-192 private key PEM: %v", err)
	}
}
