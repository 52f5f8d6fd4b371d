package tui

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProtocolPackagesImportNoCharm keeps the protocol packages free of the
// UI: they must build for the CLI and for other programs without Charm.
func TestProtocolPackagesImportNoCharm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	checked := 0
	for _, pkg := range []string{"espota", "serialflash", "firmware", "discovery"} {
		dir := filepath.Join("..", pkg)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			t.Logf("skip %s: the package does not exist yet", pkg)
			continue
		}
		cmd := exec.Command(goBin, "list", "-deps", "./"+pkg+"/...")
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "matched no packages") {
			t.Logf("skip %s: no Go files yet", pkg)
			continue
		}
		require.NoError(t, err, "go list -deps ./%s/...: %s", pkg, out)
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range []string{"charm.land/", "github.com/charmbracelet/"} {
				require.False(t, strings.HasPrefix(dep, bad), "%s imports %s: protocol packages must not depend on the UI", pkg, dep)
			}
		}
		checked++
	}
	t.Logf("checked %d packages", checked)
}
