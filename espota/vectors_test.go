package espota

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// specImage is the 1024-byte image of protocol-network-ota.md §7.1.
func specImage(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	b[0] = 0xE9
	return b
}

// §7.1 common inputs.
const (
	vecPassword = "esp32"
	vecCnonceIn = "firmware.bin1024faaaf8b9bc279c65e87f39dbc272842a192.168.1.50"
)

func TestSpecCommonInputs(t *testing.T) {
	img := specImage(1024)
	require.Equal(t, "faaaf8b9bc279c65e87f39dbc272842a", md5hex(string(img)))
	require.Equal(t, "c6b5befeae22359c789ed7ce4703c69d2ef4c10f5b9faedf017a2579d554f946", sha256hex(string(img)))
	require.Equal(t, "eb3b564b7150aa15ba8351c7365a90c9", md5hex(vecPassword))
	require.Equal(t, "e2952694dec272e5ab5bbdc6e69c11d9927b76d8d18eedaf3562826c8a812f90", sha256hex(vecPassword))
}

func TestSpecInvitation(t *testing.T) {
	inv := invitation(cmdFlash, 41234, 1024, "faaaf8b9bc279c65e87f39dbc272842a")
	require.Equal(t, "0 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n", string(inv))
	require.Len(t, inv, 46)
	require.Equal(t, "3020343132333420313032342066616161663862396263323739633635653837663339646263323732383432610a", hex.EncodeToString(inv))
	require.Equal(t, "100 41234 1024 faaaf8b9bc279c65e87f39dbc272842a\n",
		string(invitation(cmdFilesystem, 41234, 1024, "faaaf8b9bc279c65e87f39dbc272842a")))
}

func TestSpecMD5Auth(t *testing.T) {
	nonce := md5hex("123456")
	require.Equal(t, "e10adc3949ba59abbe56e057f20f883e", nonce)
	cnonce := md5hex(vecCnonceIn)
	require.Equal(t, "13d1312bcb358e3995a1dd951e6811da", cnonce)
	resp := md5Response(vecPassword, nonce, cnonce)
	require.Equal(t, "590b0644b6b340f1d25f0c5704292780", resp)
	dg := authDatagram(cnonce, resp)
	require.Equal(t, "200 13d1312bcb358e3995a1dd951e6811da 590b0644b6b340f1d25f0c5704292780\n", string(dg))
	require.Len(t, dg, 70)

	require.Equal(t, "9bbce478114cfe805dd7b64e0b2c0b2c",
		md5Response(vecPassword, "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"))
}

func TestSpecPBKDF2Auth(t *testing.T) {
	nonce := sha256hex("123456")
	require.Equal(t, "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92", nonce)
	cnonce := sha256hex(vecCnonceIn)
	require.Equal(t, "455e53cea7681ecc66118f446bacd76412ef0252a0b922d129cf3acbcb2a722c", cnonce)

	key := func(h, n, c string) string {
		k, err := pbkdf2.Key(sha256.New, h, []byte(n+":"+c), 10000, 32)
		require.NoError(t, err)
		return hex.EncodeToString(k)
	}
	for _, tc := range []struct{ name, h, k, resp string }{
		{"sha256 secret", sha256hex(vecPassword),
			"50a2a8ff53aa6395d570bc3d84808e1de6a69bd54a7345c0f95f5fbc3f6bfa4c",
			"1cb26a2d6d614b357f24756286bc441ff4cc2a4c3b1976824a0c42e46de669f4"},
		{"md5 secret", md5hex(vecPassword),
			"93ced2417bf149053e7008c55046e5ec17f8e09f13a741a82a5ece0a1a2bc7f3",
			"bef4f04f80f256c2b0f01d16b46cd4dc6ae44f0618a3d0c4367d3fc815e44988"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.k, key(tc.h, nonce, cnonce))
			resp, err := pbkdf2Response(tc.h, nonce, cnonce)
			require.NoError(t, err)
			require.Equal(t, tc.resp, resp)
		})
	}
	resp, _ := pbkdf2Response(sha256hex(vecPassword), nonce, cnonce)
	dg := authDatagram(cnonce, resp)
	require.Len(t, dg, 134)
	require.Equal(t, "200 455e53cea7681ecc66118f446bacd76412ef0252a0b922d129cf3acbcb2a722c 1cb26a2d6d614b357f24756286bc441ff4cc2a4c3b1976824a0c42e46de669f4\n", string(dg))

	// Simple-input variants.
	sn, sc := strings.Repeat("0123456789abcdef", 4), strings.Repeat("fedcba9876543210", 4)
	require.Equal(t, "1b5d748dd49ccf6f24e4c1c23e45c9b30ce26912f2c5f81a6b1904d12ca30419", key(sha256hex(vecPassword), sn, sc))
	r1, _ := pbkdf2Response(sha256hex(vecPassword), sn, sc)
	require.Equal(t, "840fec86dd310bef3a859337365cae0007feda49173760f51039c392cc9007e7", r1)
	require.Equal(t, "45496d273bc84e87aa0c246bdb16567341c244a7187e09c769a126397bb6859e", key(md5hex(vecPassword), sn, sc))
	r2, _ := pbkdf2Response(md5hex(vecPassword), sn, sc)
	require.Equal(t, "57582aa9de4954f503c996961930fc076dddb9b54da80a5c2bfcc414ac5e92c0", r2)

	// Negative: an uppercase stored secret gives another key (compared as
	// text). The spec's value is for the simple-input nonce and cnonce.
	require.Equal(t, "a359f9fa41f21ab3041a0979227126e7cc452b0c1ca16e23a565d525bca43f22",
		key(strings.ToUpper(sha256hex(vecPassword)), sn, sc))

	// Third-party vector (a password, so H = SHA256hex of it) and the
	// RFC-style sanity check.
	require.Equal(t, "b7a2bf1029f505602abfc2362e593d50150a2407c9095f96f5c6efe9789e21d6",
		key(sha256hex("a-real-password"), strings.Repeat("ab", 32), strings.Repeat("cd", 32)))
	r3, _ := pbkdf2Response(sha256hex("a-real-password"), strings.Repeat("ab", 32), strings.Repeat("cd", 32))
	require.Equal(t, "4d63ba8b1efa8949a0c5caefe7e8bc77db582e5531bdf2667c663394b4551b93", r3)
	k1, err := pbkdf2.Key(sha256.New, "password", []byte("salt"), 1, 32)
	require.NoError(t, err)
	require.Equal(t, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b", hex.EncodeToString(k1))
}

func TestSecretRedacts(t *testing.T) {
	s := Secret("hunter2-very-secret")
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %#v", s, s, s, s),
		fmt.Sprintf("%+v", Options{Password: s}), fmt.Sprintf("%#v", Options{Password: s}),
	} {
		require.NotContains(t, out, "hunter2")
	}
	b, err := json.Marshal(struct{ P Secret }{s})
	require.NoError(t, err)
	require.NotContains(t, string(b), "hunter2")
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "password", s, "opts", Options{Password: s})
	require.NotContains(t, buf.String(), "hunter2")
	require.Equal(t, "hunter2-very-secret", s.reveal())
}

func TestReplyStream(t *testing.T) {
	for _, tc := range []struct {
		in       []string
		ok       bool
		msg      string
		complete bool
	}{
		{in: []string{"1024", "1024", "952OK"}, ok: true},
		{in: []string{"14601460", "146", "0", "O", "K"}, ok: true},
		{in: []string{"OK"}, ok: true},
		{in: []string{"1460", "MD5 Check Failed\r\n"}, msg: "MD5 Check Failed", complete: true},
		{in: []string{"1460ERROR[7]: MD5 verification failed: expected: a, calculated: b\n"}, msg: "ERROR[7]: MD5 verification failed: expected: a, calculated: b", complete: true},
		{in: []string{"Wrong Ma", "gic Byte\r", "\n"}, msg: "Wrong Magic Byte", complete: true},
		{in: []string{"12Out of memory"}, msg: "Out of memory"},
		{in: []string{"1460", "O"}},
		{in: []string{"Not Enough Space\r\nOK"}, msg: "Not Enough Space", complete: true},
	} {
		var r replyStream
		for _, part := range tc.in {
			r.feed([]byte(part))
		}
		require.Equal(t, tc.ok, r.success(), "%q", tc.in)
		msg, complete := r.failed()
		require.Equal(t, tc.msg, msg, "%q", tc.in)
		require.Equal(t, tc.complete, complete, "%q", tc.in)
		require.False(t, r.success() && msg != "", "never both success and an error")
	}
}

// FuzzReplyStream: the parser never panics, never reports both success and
// an error, does not depend on how the stream is split, and counts alone
// are never success.
func FuzzReplyStream(f *testing.F) {
	for _, s := range []string{"1024952OK", "MD5 Check Failed\r\n", "14601460", "OOK", "O", "12ERROR[4]: Not Enough Space\n", "", strings.Repeat("x", 600)} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		var whole, parts replyStream
		whole.feed(data)
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		parts.feed(data[:cut])
		parts.feed(data[cut:])
		require.Equal(t, whole.success(), parts.success())
		wm, wc := whole.failed()
		pm, pc := parts.failed()
		require.Equal(t, wm, pm)
		require.Equal(t, wc, pc)
		require.False(t, whole.success() && wm != "")
		require.LessOrEqual(t, len(whole.text), maxDeviceText, "the reply buffer is bounded")
		if len(whole.text) == maxDeviceText {
			require.True(t, wc, "a message that fills the buffer is complete")
		}
		if whole.success() {
			require.Contains(t, string(data), "OK")
		}
	})
}
