package serialflash_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The flasher imports no UI library, and the simulator shares nothing with
// the client it fakes except the SLIP codec (a shared bug would pass its
// own test otherwise).
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not on PATH")
	}
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, d := range deps("github.com/espdeck/espdeck/serialflash") {
		if strings.HasPrefix(d, "charm.land/") || strings.Contains(d, "charmbracelet") {
			t.Errorf("serialflash depends on %s", d)
		}
	}
	for _, d := range deps("github.com/espdeck/espdeck/serialflash/romsim") {
		if d == "github.com/espdeck/espdeck/serialflash" {
			t.Error("romsim imports the client it simulates")
		}
	}
}
