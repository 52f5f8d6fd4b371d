package esphomeota

import (
	"encoding/json"
	"log/slog"
)

// Secret is an OTA password or an API key. It prints, logs and marshals as
// "[redacted]" so it can travel in option structs without leaking.
type Secret string

const redacted = "[redacted]"

// String redacts the secret (fmt %s and %v).
func (s Secret) String() string { return redacted }

// GoString redacts the secret (fmt %#v).
func (s Secret) GoString() string { return redacted }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the secret in JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText redacts the secret for encoders that use TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// reveal returns the secret text; only the hashing and key code call it.
func (s Secret) reveal() string { return string(s) }
