// Package esphomeyaml reads what an upload needs from an ESPHome device
// configuration: the OTA password, the API encryption key, the OTA port,
// the node name and the platform. "!secret NAME" values are resolved from
// the secrets.yaml beside the file, as ESPHome does. Other tags (!lambda,
// !include, …) are left alone; substitutions ("${…}") in the values read
// here are refused with a clear error rather than guessed.
package esphomeyaml

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Device is what the configuration says about the board. Password and
// APIKey are secrets: callers wrap them in their secret types at once.
type Device struct {
	Name     string // esphome: name:
	Platform string // ESP32, ESP8266, RP2040, BK72XX, … (the top-level platform section)
	Board    string // <platform>: board:
	Variant  string // esp32: variant: (ESP32S3, ESP32C3, …), when set
	Password string // ota: (platform: esphome) password:
	APIKey   string // api: encryption: key:
	OTAPort  int    // ota: (platform: esphome) port:; 0 when not set
}

// Load reads path (and, for !secret values, secrets.yaml in the same
// directory). Errors name the file and the key, never a secret's value.
func Load(path string) (Device, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Device{}, fmt.Errorf("cannot read the ESPHome config: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Device{}, fmt.Errorf("%s is not valid YAML: %w", path, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return Device{}, fmt.Errorf("%s is not an ESPHome config (no top-level mapping)", path)
	}
	r := &resolver{dir: filepath.Dir(path), file: path}
	top := root.Content[0]
	var d Device
	if n := get(top, "esphome"); n != nil {
		if d.Name, err = r.scalar(get(n, "name"), "esphome: name"); err != nil {
			return Device{}, err
		}
	}
	for _, p := range []string{"esp32", "esp8266", "rp2040", "bk72xx", "rtl87xx", "ln882x", "libretiny"} {
		if n := get(top, p); n != nil {
			d.Platform = strings.ToUpper(p)
			if d.Board, err = r.scalar(get(n, "board"), p+": board"); err != nil {
				return Device{}, err
			}
			if d.Variant, err = r.scalar(get(n, "variant"), p+": variant"); err != nil {
				return Device{}, err
			}
			break
		}
	}
	if api := get(top, "api"); api != nil {
		if enc := get(api, "encryption"); enc != nil {
			if d.APIKey, err = r.scalar(get(enc, "key"), "api: encryption: key"); err != nil {
				return Device{}, err
			}
		}
	}
	if ota := get(top, "ota"); ota != nil {
		// Current form: a list of platforms; older form: one mapping.
		var entries []*yaml.Node
		switch ota.Kind {
		case yaml.SequenceNode:
			for _, e := range ota.Content {
				p, _ := r.scalar(get(e, "platform"), "ota: platform")
				if p == "esphome" {
					entries = append(entries, e)
				}
			}
		case yaml.MappingNode:
			entries = append(entries, ota)
		}
		for _, e := range entries {
			if d.Password, err = r.scalar(get(e, "password"), "ota: password"); err != nil {
				return Device{}, err
			}
			port, err := r.scalar(get(e, "port"), "ota: port")
			if err != nil {
				return Device{}, err
			}
			if port != "" {
				n, err := strconv.Atoi(port)
				if err != nil || n < 1 || n > 65535 {
					return Device{}, fmt.Errorf("%s: ota: port %q is not a port number", path, port)
				}
				d.OTAPort = n
			}
		}
	}
	return d, nil
}

// get returns the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

type resolver struct {
	dir, file string
	secrets   *yaml.Node
}

// scalar returns n's text, resolving !secret. A nil n is "".
func (r *resolver) scalar(n *yaml.Node, what string) (string, error) {
	if n == nil {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s: %s is not a single value", r.file, what)
	}
	v := n.Value
	if n.Tag == "!secret" {
		s, err := r.secret(v, what)
		if err != nil {
			return "", err
		}
		v = s
	}
	if strings.Contains(v, "${") {
		return "", fmt.Errorf("%s: %s uses a substitution, which espdeck does not expand; give the value with a flag instead", r.file, what)
	}
	return v, nil
}

func (r *resolver) secret(name, what string) (string, error) {
	path := filepath.Join(r.dir, "secrets.yaml")
	if r.secrets == nil {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %s is !secret %s, but %s cannot be read: %w", r.file, what, name, path, errors.Unwrap(err))
		}
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
			return "", fmt.Errorf("%s is not a YAML mapping of secrets", path)
		}
		r.secrets = root.Content[0]
	}
	n := get(r.secrets, name)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s: %s is !secret %s, which %s does not define", r.file, what, name, path)
	}
	return n.Value, nil
}
