package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFullFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "espdeck", "config.toml")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(`
[defaults]
baud = 921600
concurrency = 4
signing_key = "keys/fleet_pub.pem"

[[device]]
name = "greenhouse"
host = "192.168.1.40"
password_env = "GREENHOUSE_OTA_PW"

[[device]]
name = "bench-3"
port = "/dev/ttyUSB0"
`), 0o600))
	cfg, err := Load("", env(map[string]string{"XDG_CONFIG_HOME": dir}))
	require.NoError(t, err)
	require.Equal(t, path, cfg.Path)
	require.Equal(t, 921600, cfg.Defaults.Baud)
	require.Equal(t, filepath.Join(dir, "espdeck", "keys/fleet_pub.pem"), cfg.Defaults.SigningKey, "relative key paths are relative to the file")
	require.Len(t, cfg.Devices, 2)

	d, ok := cfg.Lookup("192.168.1.40")
	require.True(t, ok)
	pw, err := d.Password(env(map[string]string{"GREENHOUSE_OTA_PW": "s3cret"}))
	require.NoError(t, err)
	require.Equal(t, "s3cret", pw)

	_, err = d.Password(env(nil))
	require.ErrorContains(t, err, "GREENHOUSE_OTA_PW")

	d, _ = cfg.Lookup("bench-3")
	_, err = d.Password(env(nil))
	require.ErrorIs(t, err, ErrNoPassword)
}

func TestMissingDefaultFileIsFineExplicitIsNot(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"XDG_CONFIG_HOME": t.TempDir()}))
	require.NoError(t, err)
	require.Empty(t, cfg.Path)

	_, err = Load(filepath.Join(t.TempDir(), "nope.toml"), env(nil))
	require.Error(t, err)
}

func TestEnvironmentOverridesBaud(t *testing.T) {
	cfg, err := Load("", env(map[string]string{"ESPDECK_BAUD": "230400"}))
	require.NoError(t, err)
	require.Equal(t, 230400, cfg.Defaults.Baud)
	_, err = Load("", env(map[string]string{"ESPDECK_BAUD": "fast"}))
	require.ErrorContains(t, err, "ESPDECK_BAUD")
}

func TestParseRejects(t *testing.T) {
	for name, text := range map[string]string{
		"unknown key":       "[defaults]\nsigning_kye = \"k.pem\"\n",
		"device no address": "[[device]]\nname = \"x\"\n",
		"two pw sources":    "[[device]]\nhost = \"h\"\npassword_env = \"A\"\npassword_file = \"f\"\n",
		"negative":          "[defaults]\nbaud = -1\n",
		"not toml":          "[defaults\n",
	} {
		var cfg Config
		require.Error(t, Parse([]byte(text), &cfg), name)
	}
}

func TestPasswordFileTrimsOneNewline(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(p, []byte("pa ss\n"), 0o600))
	pw, err := ReadPasswordFile(p)
	require.NoError(t, err)
	require.Equal(t, "pa ss", pw)
	require.NoError(t, os.WriteFile(p, []byte("\n"), 0o600))
	_, err = ReadPasswordFile(p)
	require.Error(t, err)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[defaults]\nbaud = 115200\n[[device]]\nhost = \"h\"\n"))
	f.Add([]byte("x = 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg Config
		if err := Parse(data, &cfg); err == nil {
			for _, d := range cfg.Devices {
				if d.Host == "" && d.Port == "" {
					t.Fatal("accepted a device without an address")
				}
			}
		}
	})
}

// Defect 11: a TOML syntax error echoed the start of an unquoted password.
func TestSyntaxErrorDoesNotEchoTheText(t *testing.T) {
	var cfg Config
	err := Parse([]byte("[[device]]\nname = \"x\"\nhost = \"h\"\npassword_env = hunter2-secret\n"), &cfg)
	if err == nil {
		t.Fatal("want a syntax error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error repeats the secret: %v", err)
	}
	if !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("the error should name the line: %v", err)
	}
}
