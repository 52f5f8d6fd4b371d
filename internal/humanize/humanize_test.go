package humanize

import "testing"

func TestBytesAndRate(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 225120: "219.8 KiB", 1268736: "1.21 MiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	for bps, want := range map[float64]string{900: "900 B/s", 412 * 1024: "412 KiB/s", 1.3 * (1 << 20): "1.3 MiB/s"} {
		if got := Rate(bps); got != want {
			t.Errorf("Rate(%v) = %q, want %q", bps, got, want)
		}
	}
}
