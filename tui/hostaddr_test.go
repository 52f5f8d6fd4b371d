package tui

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckHostInput(t *testing.T) {
	good := map[string]string{
		"192.168.1.40":          "192.168.1.40:3232",
		" 192.168.1.40:8266 ":   "192.168.1.40:8266",
		"greenhouse-ctl.local":  "greenhouse-ctl.local:3232",
		"greenhouse-ctl.local.": "greenhouse-ctl.local.:3232",
		"fe80::1":               "[fe80::1]:3232",
		"[fe80::1]:8266":        "[fe80::1]:8266",
		"localhost:4000":        "localhost:4000",
	}
	for in, want := range good {
		got, err := checkHostInput(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	bad := map[string]string{
		"not a host!!":          "not a host name",
		"":                      "nothing typed",
		"host:0":                "not a port number",
		"host:99999":            "not a port number",
		"host:http":             "not a port number",
		"-bad.local":            "hyphen",
		"a..b":                  "two dots",
		"0.0.0.0":               "not the address of one board",
		"224.0.0.251":           "not the address of one board",
		"[fe80::1":              "IPv6",
		"fe80::zz":              "not an IPv6 address",
		"under_score.local":     "letters, digits",
		strings.Repeat("a", 64): "63 characters",
	}
	for in, want := range bad {
		_, err := checkHostInput(in)
		require.Error(t, err, in)
		require.Contains(t, err.Error(), want, in)
	}
}

// FuzzCheckHostInput: whatever is typed, the check ends with an error or
// with an address that splits into a host and a port.
func FuzzCheckHostInput(f *testing.F) {
	for _, s := range []string{"192.168.1.40", "a.local:1", "[::1]:3232", "not a host!!", "::", "x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := checkHostInput(s)
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		h, p, err := net.SplitHostPort(got)
		require.NoError(t, err, "%q -> %q", s, got)
		require.NotEmpty(t, h)
		require.NotEmpty(t, p)
	})
}
