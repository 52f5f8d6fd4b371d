package monitor

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/symbolize"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const fixtureELF = "../../shared/fixtures/elf/esp32-app-template.elf"

// markupTheme makes styling visible in golden text: {red}…{/red}.
func markupTheme() Theme {
	tag := func(name string) Paint {
		return func(s string) string { return "{" + name + "}" + s + "{/" + name + "}" }
	}
	return Theme{Error: tag("red"), Warn: tag("yellow"), Info: tag("green"), Faint: tag("faint"),
		Tag: tag("bold"), Crash: tag("crash"), Decoded: tag("cyan"), Notice: tag("notice"), Time: tag("time")}
}

// feedAll runs raw bytes through the monitor's line splitter and parser,
// exactly as bytes from a port would go.
func feedAll(t *testing.T, sym *symbolize.Symbolizer, data []byte) []Line {
	t.Helper()
	var lines []Line
	now := time.Date(2026, 11, 22, 14, 3, 7, 250e6, time.UTC)
	m := New("test", Options{Symbolizer: sym, OnLine: func(l Line) { lines = append(lines, l) }, Now: func() time.Time { return now }})
	m.feed(data, now)
	m.flushPending(true)
	return lines
}

func goldenReport(lines []Line) string {
	var b strings.Builder
	r := Renderer{Theme: markupTheme()}
	for _, l := range lines {
		fmt.Fprintf(&b, "%-8s %-1s crash=%d tag=%q msg=%q\n", l.Format, l.Level.String(), l.Crash, l.Tag, l.Message)
		for _, s := range r.Render(l) {
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	return b.String()
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./monitor -run Golden -update to create it")
	require.Equal(t, string(want), got, "golden %s differs (review, then -update)", path)
}

func TestGoldenLogFormats(t *testing.T) {
	for _, name := range []string{"idf", "arduino", "esp8266"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name+".log"))
			require.NoError(t, err)
			checkGolden(t, name+".golden", goldenReport(feedAll(t, nil, data)))
		})
	}
}

func TestGoldenDecodedCrash(t *testing.T) {
	if _, err := os.Stat(fixtureELF); err != nil {
		fixture.Missing(t, "fixture %s not present (%v); crash decoding needs the shared fixtures", fixtureELF, err)
	}
	sym, err := symbolize.Open(fixtureELF)
	require.NoError(t, err)
	data, err := os.ReadFile("testdata/crash_esp32.log")
	require.NoError(t, err)
	lines := feedAll(t, sym, data)
	var b strings.Builder
	for _, l := range lines {
		for _, s := range Plain(l, false) {
			b.WriteString(s + "\n")
		}
	}
	checkGolden(t, "crash_esp32.golden", b.String())
	checkGolden(t, "crash_esp32.markup.golden", goldenReport(lines))
}
