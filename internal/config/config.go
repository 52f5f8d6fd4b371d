// Package config reads espdeck's optional configuration file
// ($XDG_CONFIG_HOME/espdeck/config.toml) and the environment variables that
// override it. It never holds a secret: devices name an environment
// variable or a file that holds their OTA password, and the password is
// read only when a command needs it.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration. The zero value is valid: every field is
// optional.
type Config struct {
	Defaults Defaults `toml:"defaults"`
	Devices  []Device `toml:"device"`
	// Path is the file it was read from ("" when no file exists).
	Path string `toml:"-"`
}

// Defaults are the values commands use when a flag does not say otherwise.
type Defaults struct {
	// Baud is the serial rate after sync (0: the command's own default).
	Baud int `toml:"baud"`
	// Concurrency bounds how many boards a group flash handles at once.
	Concurrency int `toml:"concurrency"`
	// SigningKey is a PEM public key; when set, images not signed by it are
	// refused. A relative path is relative to the config file.
	SigningKey string `toml:"signing_key"`
}

// Device is a hand-added or remembered device.
type Device struct {
	Name         string `toml:"name"`
	Host         string `toml:"host"` // network: host or host:port
	Port         string `toml:"port"` // serial: device path
	Board        string `toml:"board"`
	PasswordEnv  string `toml:"password_env"`  // name of an environment variable
	PasswordFile string `toml:"password_file"` // path to a file holding the password
}

// DefaultPath returns where the config file lives according to the XDG
// rules, using getenv for the environment.
func DefaultPath(getenv func(string) string) string {
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "espdeck", "config.toml")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "espdeck", "config.toml")
	}
	return ""
}

// Load reads the config file at path, or the default path when path is
// empty, then applies the environment overrides (ESPDECK_BAUD). A missing
// default file is not an error; a missing explicit file is.
func Load(path string, getenv func(string) string) (Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultPath(getenv)
	}
	var cfg Config
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := Parse(data, &cfg); err != nil {
				return Config{}, fmt.Errorf("config file %s: %w", path, err)
			}
			cfg.Path = path
			if cfg.Defaults.SigningKey != "" && !filepath.IsAbs(cfg.Defaults.SigningKey) {
				cfg.Defaults.SigningKey = filepath.Join(filepath.Dir(path), cfg.Defaults.SigningKey)
			}
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		default:
			return Config{}, fmt.Errorf("read config file: %w", err)
		}
	}
	if v := getenv("ESPDECK_BAUD"); v != "" {
		baud, err := strconv.Atoi(v)
		if err != nil || baud <= 0 {
			return Config{}, fmt.Errorf("ESPDECK_BAUD=%q is not a baud rate", v)
		}
		cfg.Defaults.Baud = baud
	}
	return cfg, nil
}

// Parse decodes TOML into cfg and checks it. Unknown keys are errors, so a
// typo does not silently disable a signing-key policy.
func Parse(data []byte, cfg *Config) error {
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// The parser's message quotes the text it choked on, which may
			// be an unquoted password: give the place, never the text.
			return fmt.Errorf("TOML syntax error at line %d, column %d (the text there is not repeated, in case it is a secret; values need quotes: password_env = \"VAR\")",
				pe.Position.Line, pe.Position.Col)
		}
		return errors.New("the file is not valid TOML (check quotes and brackets)")
	}
	if undec := md.Undecoded(); len(undec) > 0 {
		keys := make([]string, len(undec))
		for i, k := range undec {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown setting %s", strings.Join(keys, ", "))
	}
	if cfg.Defaults.Baud < 0 || cfg.Defaults.Concurrency < 0 {
		return errors.New("baud and concurrency must not be negative")
	}
	for i, d := range cfg.Devices {
		if d.Host == "" && d.Port == "" {
			return fmt.Errorf("device %d (%q) has neither host nor port", i+1, d.Name)
		}
		if d.PasswordEnv != "" && d.PasswordFile != "" {
			return fmt.Errorf("device %q sets both password_env and password_file; keep one", d.Name)
		}
	}
	return nil
}

// maxPasswordFile bounds a password file (a password or key is a line).
const maxPasswordFile = 4 << 10

// ErrNoPassword means a device's configured password source is empty.
var ErrNoPassword = errors.New("no password configured")

// Password reads the device's password from its environment variable or
// file. It returns ErrNoPassword when the device names no source. The
// returned error never contains the password.
func (d Device) Password(getenv func(string) string) (string, error) {
	switch {
	case d.PasswordEnv != "":
		v := getenv(d.PasswordEnv)
		if v == "" {
			return "", fmt.Errorf("device %q: environment variable %s is empty or unset", d.Name, d.PasswordEnv)
		}
		return v, nil
	case d.PasswordFile != "":
		return ReadPasswordFile(d.PasswordFile)
	}
	return "", ErrNoPassword
}

// ReadPasswordFile reads a password from a file, dropping one trailing
// newline (editors add one). It warns about nothing: callers decide.
func ReadPasswordFile(path string) (string, error) {
	// A password file is small and regular: check before reading whole.
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxPasswordFile {
		return "", fmt.Errorf("password file %s is not a regular file of at most %d bytes", path, maxPasswordFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile))
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return s, nil
}

// Lookup finds a configured device by name, host or serial port.
func (c Config) Lookup(nameOrAddr string) (Device, bool) {
	for _, d := range c.Devices {
		if d.Name == nameOrAddr || d.Host == nameOrAddr || d.Port == nameOrAddr {
			return d, true
		}
	}
	return Device{}, false
}
