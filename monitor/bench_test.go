package monitor

import (
	"bufio"
	"bytes"
	"os"
	"testing"
	"time"
)

// BenchmarkParseLog measures how fast the monitor turns a boot log into
// parsed lines (split, clean, classify, crash state), next to the baseline
// of only splitting it into lines with bufio.Scanner. A 115200-baud UART
// delivers 11.5 KB/s; the parser must never be the bottleneck. Run:
//
//	go test -run '^$' -bench ParseLog ./monitor
func BenchmarkParseLog(b *testing.B) {
	var log []byte
	for _, name := range []string{"idf.log", "arduino.log", "esp8266.log"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			b.Fatal(err)
		}
		log = append(log, data...)
	}
	log = bytes.Repeat(log, 64)
	now := time.Unix(0, 0)

	b.Run("espdeck", func(b *testing.B) {
		b.SetBytes(int64(len(log)))
		n := 0
		m := New("bench", Options{OnLine: func(Line) { n++ }, Now: func() time.Time { return now }})
		for b.Loop() {
			m.feed(log, now)
		}
		if n == 0 {
			b.Fatal("no lines")
		}
	})
	b.Run("baseline-bufio-split", func(b *testing.B) {
		b.SetBytes(int64(len(log)))
		n := 0
		for b.Loop() {
			sc := bufio.NewScanner(bytes.NewReader(log))
			for sc.Scan() {
				n++
			}
		}
		if n == 0 {
			b.Fatal("no lines")
		}
	})
}
