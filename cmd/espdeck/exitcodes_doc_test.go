package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadmeListsEveryExitCode keeps the README's exit-code table (the
// reference for scripts) in step with the codes the commands return,
// campaign's 11 and 12 included, and docs/campaign.md with campaign's own.
func TestReadmeListsEveryExitCode(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(readme), "## Exit codes")
	require.True(t, ok, "README has an Exit codes section")
	table, _, _ = strings.Cut(table, "\n## ")
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(table, -1) {
		listed[m[1]] = true
	}
	for _, code := range []int{exitOK, exitInternal, exitUsage, exitRefused, exitUnreachable, exitAuth, exitNoConnect,
		exitTransfer, exitDevice, exitVerify, exitPermission, exitSomeFailed, exitStopped, exitInterrupted} {
		require.True(t, listed[fmt.Sprint(code)], "README's exit-code table lacks %d", code)
	}

	doc, err := os.ReadFile("../../docs/campaign.md")
	require.NoError(t, err)
	_, sec, ok := strings.Cut(string(doc), "## Exit codes")
	require.True(t, ok)
	sec, _, _ = strings.Cut(sec, "\n## ")
	for _, code := range []int{exitOK, exitUsage, exitRefused, exitSomeFailed, exitStopped, exitInterrupted} {
		require.Regexp(t, fmt.Sprintf(`\b%d\b`, code), sec, "docs/campaign.md's exit codes lack %d", code)
	}
}
