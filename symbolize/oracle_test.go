package symbolize

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/internal/fixture"
)

// TestAgreesWithAddr2line compares file:line and the depth of inlining with
// GNU addr2line (an independent DWARF reader) on a sample of addresses.
func TestAgreesWithAddr2line(t *testing.T) {
	s := openFixture(t)
	tool, err := exec.LookPath("addr2line")
	if err != nil {
		fixture.MissingTool(t, "GNU addr2line not installed (binutils); skipping the cross-check")
	}
	code := execSections(t)
	var addrs []uint64
	for _, sym := range fixtureSymbols(t) {
		if elf.ST_TYPE(sym.Info) == elf.STT_FUNC && sym.Size >= 8 && code[sym.Section] {
			addrs = append(addrs, sym.Value+sym.Size/3)
		}
		if len(addrs) == 400 {
			break
		}
	}
	args := []string{"-a", "-i", "-e", fixtureELF}
	for _, a := range addrs {
		args = append(args, fmt.Sprintf("0x%x", a))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := execCommand(ctx, tool, args...)
	if err != nil {
		t.Skipf("addr2line cannot read this ELF here: %v", err)
	}
	// -a prints "0x…" then one "file:line" per inlining level.
	want := map[uint64][]string{}
	var cur uint64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "0x") {
			cur, _ = strconv.ParseUint(l[2:], 16, 64)
			continue
		}
		file, line, _ := strings.Cut(l, ":")
		line, _, _ = strings.Cut(line, " ")
		want[cur] = append(want[cur], path.Base(file)+":"+line)
	}
	require.Len(t, want, len(addrs))
	mismatches := 0
	for _, a := range addrs {
		var got []string
		for _, f := range s.Lookup(a) {
			got = append(got, fmt.Sprintf("%s:%d", path.Base(f.File), f.Line))
		}
		if fmt.Sprint(got) != fmt.Sprint(want[a]) {
			mismatches++
			t.Logf("0x%x: ours %v, addr2line %v", a, got, want[a])
		}
	}
	require.Zero(t, mismatches)
}

func execCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).Output()
}
