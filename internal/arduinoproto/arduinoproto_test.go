package arduinoproto

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestServeTrimsSkipsBlanksAndStopsAtQuit(t *testing.T) {
	var got []string
	err := Serve(t.Context(), strings.NewReader("  HELLO 1 \"x\"  \r\n\n   \nLIST\nQUIT\nNEVER\n"), func(line string) bool {
		got = append(got, line)
		return line == "QUIT"
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`HELLO 1 "x"`, "LIST", "QUIT"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("handled %q, want %q", got, want)
	}
}

func TestServeEndsAtTheEndOfInput(t *testing.T) {
	n := 0
	if err := Serve(t.Context(), strings.NewReader("A\nB"), func(string) bool { n++; return false }); err != nil || n != 2 {
		t.Fatalf("err %v after %d commands", err, n)
	}
	tooLong := strings.Repeat("x", 70_000) + "\n"
	if err := Serve(t.Context(), strings.NewReader(tooLong), func(string) bool { return false }); err == nil {
		t.Fatal("a line beyond the scanner's limit must end the session with an error")
	}
}

func TestServeEndsWithTheContext(t *testing.T) {
	pr, pw := io.Pipe() // input that never ends
	defer pw.Close()
	ctx, cancel := context.WithCancel(t.Context())
	handled := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, pr, func(string) bool { close(handled); return false })
	}()
	if _, err := pw.Write([]byte("LIST\n")); err != nil {
		t.Fatal(err)
	}
	<-handled
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestParseHello(t *testing.T) {
	for line, want := range map[string]string{
		`HELLO 1 "arduino-cli 1.2.0"`: "1|arduino-cli 1.2.0",
		`hello 22 ""`:                 "22|",
		`HELLO   3   "ide"  `:         "3|ide",
		`HELLO 1`:                     "",
		`HELLO x "ide"`:               "",
		`HELLO -1 "ide"`:              "",
		`HELLO 1 "a"b"`:               "",
		`HELLOX 1 "ide"`:              "",
		`LIST 1 "ide"`:                "",
	} {
		v, a, ok := ParseHello(line)
		got := ""
		if ok {
			got = v + "|" + a
		}
		if got != want {
			t.Errorf("ParseHello(%q) = %q, want %q", line, got, want)
		}
	}
}

func FuzzParseHello(f *testing.F) {
	f.Add(`HELLO 1 "arduino-cli"`)
	f.Add(`hello 0 ""`)
	f.Add(`HELLO 1 "a"b"`)
	f.Fuzz(func(t *testing.T, line string) {
		v, a, ok := ParseHello(line)
		if !ok {
			return
		}
		if v == "" || strings.Trim(v, "0123456789") != "" || strings.Contains(a, `"`) {
			t.Fatalf("ParseHello(%q) accepted version %q agent %q", line, v, a)
		}
	})
}

// Answers and events written from many goroutines at once come out as
// whole lines, each one JSON object, none lost; HTML characters are
// written as they are.
func TestWriterLinesNeverInterleave(t *testing.T) {
	var buf strings.Builder
	w := NewWriter(&buf)
	const writers, each = 8, 200
	long := strings.Repeat("<&>", 2000) // several writes' worth of bytes per object
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range each {
				w.Write(map[string]any{"writer": i, "n": j, "message": long})
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	for _, l := range lines {
		var m struct{ Message string }
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Message != long {
			t.Fatalf("line is not one whole object (%v): %.80q", err, l)
		}
		if !strings.Contains(l, `"<&>`) {
			t.Fatalf("HTML characters escaped: %.80q", l)
		}
	}
}
