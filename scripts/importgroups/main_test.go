package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCheckAndFix(t *testing.T) {
	const mixed = `package x

import (
	"fmt"
	"github.com/espdeck/espdeck/firmware"
	"os"

	tea "charm.land/bubbletea/v2"
)
`
	const want = `package x

import (
	"fmt"
	"os"

	tea "charm.land/bubbletea/v2"

	"github.com/espdeck/espdeck/firmware"
)
`
	dir := t.TempDir()
	p := filepath.Join(dir, "x.go")
	if err := os.WriteFile(p, []byte(mixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := check(p, false); err != nil || msg == "" {
		t.Fatalf("a mixed group passed the check (%q, %v)", msg, err)
	}
	if _, err := check(p, true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != want {
		t.Fatalf("rewritten as\n%s", got)
	}
	if msg, err := check(p, false); err != nil || msg != "" {
		t.Fatalf("the fixed file fails the check (%q, %v)", msg, err)
	}

	// Our packages before third-party ones, each in its own group, is out
	// of order too; a block with comments is reported, not rewritten.
	const swapped = "package x\n\nimport (\n\t\"os\"\n\n\t\"github.com/espdeck/espdeck/firmware\" // ours\n\n\t\"charm.land/lipgloss/v2\"\n)\n"
	if err := os.WriteFile(p, []byte(swapped), 0o644); err != nil {
		t.Fatal(err)
	}
	msg, err := check(p, true)
	if err != nil || msg == "" {
		t.Fatalf("swapped groups passed (%q, %v)", msg, err)
	}
	if got, _ := os.ReadFile(p); string(got) != swapped {
		t.Fatal("a block with comments was rewritten")
	}
}
