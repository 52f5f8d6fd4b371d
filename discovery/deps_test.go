package discovery

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The TUI imports discovery for its value types; discovery must not import
// the TUI's libraries (architecture: import directions).
func TestNoCharmDependency(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Fields(string(out)) {
		require.False(t, strings.HasPrefix(dep, "charm.land/") || strings.HasPrefix(dep, "github.com/charmbracelet/"),
			"discovery depends on %s", dep)
		require.False(t, strings.HasPrefix(dep, "github.com/espdeck/espdeck/") && !strings.HasPrefix(dep, "github.com/espdeck/espdeck/discovery"),
			"discovery imports %s", dep)
	}
}
