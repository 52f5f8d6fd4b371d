package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Two ways of listening at once is a usage error, not a silent choice of
// one of them.
func TestSimSerialOneListener(t *testing.T) {
	r := runCLI(t, nil, "sim", "serial", "--tcp", "127.0.0.1:0", "--rfc2217", "127.0.0.1:0")
	require.Equal(t, exitUsage, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout+r.stderr, "--tcp and --rfc2217")
}
