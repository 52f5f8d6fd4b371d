package discovery

import "strings"

// ParseTXT turns the character strings of a DNS-SD TXT record into a map.
// Following RFC 6763 §6: each string is split on its first '=' only (values
// may contain '='), keys are case-insensitive (stored lowercased), a string
// without '=' is a present attribute with an empty value, a string starting
// with '=' has no key and is ignored, and when a key repeats the first one
// wins. It never fails: a device's odd TXT record must not hide the device.
func ParseTXT(fields []string) map[string]string {
	if len(fields) == 0 {
		return nil
	}
	out := make(map[string]string, len(fields))
	for _, f := range fields {
		key, value, _ := strings.Cut(f, "=")
		if key == "" {
			continue
		}
		key = strings.ToLower(key)
		if _, dup := out[key]; dup {
			continue
		}
		out[key] = value
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
