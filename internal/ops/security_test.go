package ops

import (
	"strings"
	"testing"
)

func TestSecurityWarnings(t *testing.T) {
	if w := SecurityWarnings(false, false); len(w) != 0 {
		t.Fatalf("no security, no warning: %q", w)
	}
	w := SecurityWarnings(true, true)
	if len(w) != 2 || !strings.Contains(w[0], "flash encryption is on") || !strings.Contains(w[1], "secure boot is on") {
		t.Fatalf("want both warnings, got %q", w)
	}
}
