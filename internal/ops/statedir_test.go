package ops

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultStateDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	d, err := DefaultStateDir(env(map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/ada"}))
	require.NoError(t, err)
	require.Equal(t, filepath.FromSlash("/x/state/espdeck/audit.jsonl"), d.AuditLog(), "XDG_STATE_HOME wins over HOME")
	require.Equal(t, filepath.FromSlash("/x/state/espdeck/campaigns/c-1.json"), d.Campaign("c-1"))
	require.Equal(t, filepath.Dir(d.Campaign("c-1")), d.Campaigns())

	d, err = DefaultStateDir(env(map[string]string{"HOME": "/home/ada"}))
	require.NoError(t, err)
	require.Equal(t, filepath.FromSlash("/home/ada/.local/state/espdeck/audit.jsonl"), d.AuditLog())

	_, err = DefaultStateDir(env(nil))
	require.Error(t, err)
	require.Equal(t, CodeUsage, CodeOf(err))
	require.Contains(t, HintOf(err), "XDG_STATE_HOME")
}
