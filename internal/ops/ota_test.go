package ops

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota"
	"github.com/espdeck/espdeck/internal/config"
)

// Item 10: four host[:port] parsers disagreed; the TUI's --host [fe80::1]
// kept the brackets and got no address.
func TestParseHostPort(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port int
	}{
		{"192.168.1.40", "192.168.1.40", 0},
		{"192.168.1.40:8266", "192.168.1.40", 8266},
		{"esp.local", "esp.local", 0},
		{"[fe80::1]", "fe80::1", 0},
		{"[fe80::1]:3232", "fe80::1", 3232},
		{"fe80::1", "fe80::1", 0},
		{" host:1 ", "host", 1},
	} {
		h, p, err := ParseHostPort(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, c.host, h, c.in)
		require.Equal(t, c.port, p, c.in)
	}
	for _, bad := range []string{"", ":3232", "host:0", "host:99999", "host:x", "[fe80::1", "a b", "fe80::zz"} {
		_, _, err := ParseHostPort(bad)
		require.Error(t, err, bad)
		require.Equal(t, CodeUsage, CodeOf(err), bad)
	}
}

func TestResolvePasswordOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(file, []byte("from-file\nsecond line\n"), 0o600))
	env := map[string]string{"FLAG_PW": "from-flag-env", "CFG_PW": "from-config-env", "ESPDECK_PASSWORD": "from-default-env"}
	getenv := func(k string) string { return env[k] }
	dev := &config.Device{Name: "d", Host: "h", PasswordEnv: "CFG_PW"}
	for _, c := range []struct {
		s      PasswordSources
		want   string
		source string
	}{
		{PasswordSources{File: file, Env: "FLAG_PW", Arg: "a", Device: dev}, "from-file", "--password-file"},
		{PasswordSources{Env: "FLAG_PW", Arg: "a", Device: dev}, "from-flag-env", "--password-env"},
		{PasswordSources{Arg: "from-arg", Device: dev}, "from-arg", "-a/--auth"},
		{PasswordSources{Device: dev}, "from-config-env", "config password_env"},
		{PasswordSources{Device: &config.Device{Name: "d", PasswordFile: file}}, "from-file", "config password_file"},
		{PasswordSources{}, "from-default-env", "ESPDECK_PASSWORD"},
	} {
		c.s.Getenv = getenv
		pw, src, _, err := ResolvePassword(c.s)
		require.NoError(t, err)
		require.Equal(t, espota.Secret(c.want), pw)
		require.Equal(t, c.source, src)
	}
	// A named source that is empty is an error, never a fall-through.
	_, _, _, err := ResolvePassword(PasswordSources{Env: "UNSET", Getenv: getenv})
	require.Error(t, err)
	_, _, _, err = ResolvePassword(PasswordSources{Device: &config.Device{Name: "d", PasswordEnv: "UNSET"}, Getenv: getenv})
	require.Error(t, err)
	// Item 11: a world-readable password file is warned about.
	require.NoError(t, os.Chmod(file, 0o644))
	_, _, warnings, err := ResolvePassword(PasswordSources{File: file, Getenv: getenv})
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	require.Contains(t, warnings[0], "chmod 600")
	require.NotContains(t, warnings[0], "from-file")
}

// Item 9: a password file that is a device or huge is refused before it is read.
func TestSecretFileIsBounded(t *testing.T) {
	_, _, err := ReadSecretFile("/dev/zero")
	require.Error(t, err)
	require.Contains(t, err.Error(), "not a regular file")
	big := filepath.Join(t.TempDir(), "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", MaxSecretFile+1)), 0o600))
	_, _, err = ReadSecretFile(big)
	require.Error(t, err)
	_, err = ReadInputFile("/dev/zero", MaxImageFile)
	require.Error(t, err)
	require.Equal(t, CodeBadInput, CodeOf(err))
}

// Item 11: "Magic byte is not 0xE9" from a device after espdeck checked
// the image's first byte blames the device's flash write, not the file.
func TestMagicByteErrorBlamesTheDevice(t *testing.T) {
	dev := &espota.Error{Kind: espota.ErrDeviceError, Msg: "the device rejected the image", Device: "ERR: Magic byte is not 0xE9",
		Next: "check the file is an app image"}
	err := magicHint(dev, []byte{0xE9, 1, 2})
	require.Equal(t, CodeDevice, CodeOf(err))
	require.Contains(t, HintOf(err), "flash write failed")
	require.True(t, errors.Is(err, espota.ErrDeviceError))
	// An image that does not start with E9 keeps the device's own hint.
	require.Equal(t, dev.Hint(), HintOf(magicHint(dev, []byte{0x00})))
}

// FuzzParseHostPort: whatever is typed, the parser never panics, never
// keeps brackets, and a host it accepts joins back into an address that
// parses to the same host and port.
func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"192.168.1.40:3232", "[fe80::1]", "[fe80::1]:8266", "fe80::1", "esp.local", ":1", "[", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, p, err := ParseHostPort(s)
		if err != nil {
			if CodeOf(err) != CodeUsage {
				t.Fatalf("%q: code %s", s, CodeOf(err))
			}
			return
		}
		if h == "" || strings.ContainsAny(h, "[]") || p < 0 || p > 65535 {
			t.Fatalf("%q -> %q %d", s, h, p)
		}
		if p != 0 {
			h2, p2, err := ParseHostPort(net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil || h2 != h || p2 != p {
				t.Fatalf("%q -> %q %d, rejoined -> %q %d %v", s, h, p, h2, p2, err)
			}
		}
	})
}
