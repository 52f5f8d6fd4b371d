package espota

import "strings"

// maxDeviceText bounds a device's error message. Known firmware sends
// well under 100 characters; a line that reaches the bound is cut there and
// taken as complete, so a device that floods text without a newline ends in
// a device error instead of being read for ever.
const maxDeviceText = 512

// replyStream parses what the device sends on the TCP connection during the
// data phase: decimal byte counts run together without separators (one per
// device read, not cumulative, so "14601460" cannot be split reliably),
// then "OK" on success — possibly glued to the last count ("952OK") — or,
// on failure, a line of text such as "MD5 Check Failed\r\n" (ESP32) or
// "ERROR[7]: MD5 verification failed: …\n" (ESP8266).
//
// Counts are used only as a sign of life; success is the text OK and
// nothing else. Any other text is a device error, kept verbatim.
type replyStream struct {
	pendO     bool // saw 'O', waiting to see whether 'K' follows
	ok        bool // "OK" seen
	text      []byte
	inText    bool  // a non-count, non-OK byte arrived: the rest is a message
	textEnd   bool  // the message line ended ('\n') or reached maxDeviceText
	truncated bool  // the message reached maxDeviceText without a line end
	counts    int64 // digits received (sign-of-life bytes)
}

// feed consumes bytes in arrival order, split anywhere.
func (r *replyStream) feed(b []byte) {
	for _, c := range b {
		switch {
		case r.ok || r.textEnd:
			return
		case r.inText:
			if c == '\n' {
				r.textEnd = true
				return
			}
			r.text = append(r.text, c)
			if len(r.text) >= maxDeviceText {
				r.textEnd, r.truncated = true, true
				return
			}
		case r.pendO:
			r.pendO = false
			if c == 'K' {
				r.ok = true
				return
			}
			r.startText('O')
			r.feed([]byte{c})
		case c >= '0' && c <= '9':
			// A count: a sign of life only.
			r.counts++
		case c == 'O':
			r.pendO = true
		case c == ' ' || c == '\r' || c == '\n' || c == '\t':
			// Not sent by known firmware between counts; harmless.
		default:
			r.startText(c)
		}
	}
}

func (r *replyStream) startText(c byte) {
	r.inText = true
	r.text = append(r.text, c)
}

// success reports whether the device said OK (and nothing else before it).
func (r *replyStream) success() bool { return r.ok }

// failed reports whether the device sent an error message; complete says
// whether the message line has ended (otherwise more may follow).
func (r *replyStream) failed() (msg string, complete bool) {
	if !r.inText {
		return "", false
	}
	return r.message(), r.textEnd
}

// message returns the device's text without the line ending; a message
// cut at maxDeviceText ends in "…".
func (r *replyStream) message() string {
	m := strings.TrimRight(string(r.text), "\r\n \t")
	if r.truncated {
		m += "…"
	}
	return m
}

// inviteVerdict is what the device's UDP answer to an invitation means.
type inviteVerdict int

const (
	inviteOK      inviteVerdict = iota // "OK": no password, the device connects back
	inviteAuth                         // "AUTH <nonce>": a challenge
	inviteRefused                      // anything else ("ERR: …", other text): the device's reason
)

// readInviteReply classifies the answer to an invitation (the reply text
// without its line ending) and returns the challenge's nonce for inviteAuth.
func readInviteReply(reply string) (inviteVerdict, string) {
	switch {
	case reply == "OK":
		return inviteOK, ""
	case strings.HasPrefix(reply, "AUTH "):
		return inviteAuth, strings.TrimSpace(strings.TrimPrefix(reply, "AUTH "))
	}
	return inviteRefused, ""
}

// challengeScheme names the scheme a nonce asks for: 32 hex characters are
// the legacy MD5 digest, 64 the PBKDF2 challenge (answered with the
// SHA-256 secret unless md5Secret). "" means a challenge espdeck does not
// know.
func challengeScheme(nonce string, md5Secret bool) string {
	switch {
	case len(nonce) == 32 && isHex(nonce):
		return SchemeMD5
	case len(nonce) == 64 && isHex(nonce):
		if md5Secret {
			return SchemePBKDF2MD5
		}
		return SchemePBKDF2SHA256
	}
	return ""
}

// authVerdict is what the device's UDP answer to the authentication
// datagram means.
type authVerdict int

const (
	authOK       authVerdict = iota // "OK": accepted
	authSilent                      // no answer in time
	authRejected                    // "Authentication Failed"
	authOther                       // any other text: the device's reason
)

func readAuthReply(reply string) authVerdict {
	switch {
	case reply == "OK":
		return authOK
	case reply == "":
		return authSilent
	case strings.HasPrefix(reply, "Authentication Failed"):
		return authRejected
	}
	return authOther
}
