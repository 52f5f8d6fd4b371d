package espota

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzInviteAndAuthReplies: whatever a device (or anything answering on its
// port) sends in reply to the invitation and to the authentication
// datagram, the client classifies it without panicking, takes only the
// exact text "OK" as acceptance, and answers only challenges it knows with
// a well-formed datagram.
func FuzzInviteAndAuthReplies(f *testing.F) {
	for _, s := range []string{
		"OK", "OK\r", "AUTH 0123456789abcdef0123456789abcdef",
		"AUTH " + strings.Repeat("ab", 32), "AUTH ", "AUTH xyz", "ERR: ERROR[4]: Not Enough Space",
		"Authentication Failed", "", "OKAY", "AUTH  " + strings.Repeat("F", 32) + "  ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, reply string) {
		verdict, nonce := readInviteReply(reply)
		if (verdict == inviteOK) != (reply == "OK") {
			t.Fatalf("%q: verdict %d", reply, verdict)
		}
		if verdict != inviteAuth && nonce != "" {
			t.Fatalf("%q: a nonce without a challenge", reply)
		}
		if verdict == inviteAuth {
			if !strings.HasPrefix(reply, "AUTH ") {
				t.Fatalf("%q taken for a challenge", reply)
			}
			for _, md5Secret := range []bool{false, true} {
				scheme := challengeScheme(nonce, md5Secret)
				switch scheme {
				case "":
					if (len(nonce) == 32 || len(nonce) == 64) && isHex(nonce) {
						t.Fatalf("%q: a known challenge refused", nonce)
					}
				case SchemeMD5:
					if len(nonce) != 32 || !isHex(nonce) {
						t.Fatalf("%q answered as MD5", nonce)
					}
					resp := md5Response("pw", nonce, randomHex(32))
					if len(resp) != 32 || !isHex(resp) {
						t.Fatalf("MD5 response %q", resp)
					}
				case SchemePBKDF2SHA256, SchemePBKDF2MD5:
					// PBKDF2 itself (10000 rounds) is unit-tested against
					// vectors; running it per input would stall the fuzzer.
					if len(nonce) != 64 || !isHex(nonce) || (scheme == SchemePBKDF2MD5) != md5Secret {
						t.Fatalf("%q answered as %s", nonce, scheme)
					}
				default:
					t.Fatalf("unknown scheme %q", scheme)
				}
				if scheme != "" {
					d := authDatagram(randomHex(2*len(nonce)/2), nonce)
					if !bytes.HasPrefix(d, []byte("200 ")) || !bytes.HasSuffix(d, []byte("\n")) || bytes.Count(d, []byte(" ")) != 2 {
						t.Fatalf("authentication datagram %q", d)
					}
				}
			}
		}
		av := readAuthReply(reply)
		if (av == authOK) != (reply == "OK") || (av == authSilent) != (reply == "") {
			t.Fatalf("%q: auth verdict %d", reply, av)
		}
	})
}
