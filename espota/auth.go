package espota

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Authentication scheme names as they appear in Result.AuthScheme.
const (
	SchemeNone         = "none"
	SchemeMD5          = "md5"           // legacy digest (ESP8266, ESP32 ≤ 3.3.0)
	SchemePBKDF2SHA256 = "pbkdf2-sha256" // ESP32 ≥ 3.3.1, SHA-256 stored secret
	SchemePBKDF2MD5    = "pbkdf2-md5"    // ESP32 ≥ 3.3.1, MD5 stored secret (setPasswordHash)
)

// pbkdf2Rounds is fixed by the device firmware.
const pbkdf2Rounds = 10000

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sha256hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// md5Response answers a legacy 32-hex nonce: MD5hex(MD5hex(pw):nonce:cnonce).
func md5Response(password, nonce, cnonce string) string {
	return md5hex(md5hex(password) + ":" + nonce + ":" + cnonce)
}

// pbkdf2Response answers a 64-hex nonce given the secret H the device
// stores (SHA256hex(pw), or MD5hex(pw) for sketches using setPasswordHash):
// K = PBKDF2-HMAC-SHA256(H, nonce:cnonce, 10000, 32);
// response = SHA256hex(hex(K):nonce:cnonce).
func pbkdf2Response(secretH, nonce, cnonce string) (string, error) {
	salt := nonce + ":" + cnonce
	k, err := pbkdf2.Key(sha256.New, secretH, []byte(salt), pbkdf2Rounds, 32)
	if err != nil {
		return "", fmt.Errorf("pbkdf2: %w", err)
	}
	return sha256hex(hex.EncodeToString(k) + ":" + nonce + ":" + cnonce), nil
}

// randomHex returns n random lowercase hex characters (n even) for a
// cnonce. The device does not check how the cnonce was made.
func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b) // never fails (crypto/rand contract since Go 1.24)
	return hex.EncodeToString(b)
}

// isHex reports whether s is non-empty hexadecimal text.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
