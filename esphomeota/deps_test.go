package esphomeota

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries keeps the client free of UI libraries and of the
// rest of espdeck, and the simulator from importing the client it fakes.
func TestImportBoundaries(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH; cannot list dependencies")
	}
	for pkg, forbidden := range map[string][]string{
		".":             {"charm.land/", "github.com/charmbracelet/", "github.com/espdeck/espdeck/espota", "github.com/espdeck/espdeck/internal/", "github.com/espdeck/espdeck/tui"},
		"./esphomesim/": {"charm.land/", "github.com/charmbracelet/", "github.com/espdeck/espdeck/esphomeota\n"},
	} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := string(out) + "\n"
		for _, f := range forbidden {
			if strings.Contains(deps, f) {
				t.Errorf("%s must not depend on %q", pkg, strings.TrimSpace(f))
			}
		}
	}
}
