package serialflash

import (
	"context"
	"fmt"
	"time"
)

// ResetMode is what Open does before syncing (esptool's --before).
type ResetMode int

const (
	// ResetDefault tries the DTR/RTS strategies for a USB-UART bridge, or
	// the USB-Serial/JTAG sequence when the port is Espressif's 303a:1001.
	ResetDefault ResetMode = iota
	// ResetUSBJTAG forces the USB-Serial/JTAG sequence.
	ResetUSBJTAG
	// ResetNone does not touch the lines: the chip is already in download
	// mode (BOOT held while tapping EN).
	ResetNone
)

func (m ResetMode) String() string {
	switch m {
	case ResetUSBJTAG:
		return "usb-jtag"
	case ResetNone:
		return "no-reset"
	}
	return "default"
}

// ParseResetMode accepts default, usb-jtag (usb_reset), no-reset (no_reset).
func ParseResetMode(s string) (ResetMode, error) {
	switch s {
	case "", "default", "default-reset", "default_reset":
		return ResetDefault, nil
	case "usb-jtag", "usb_jtag", "usb-reset", "usb_reset":
		return ResetUSBJTAG, nil
	case "no-reset", "no_reset":
		return ResetNone, nil
	}
	return 0, fmt.Errorf("--before %q: want default, usb-jtag or no-reset", s)
}

// ResetStrategy puts the chip into download mode through the port's lines.
type ResetStrategy interface {
	Name() string
	Reset(ctx context.Context, p Port) error
}

// line is one step of a reset sequence: set DTR, set RTS, or wait.
type line struct {
	kind byte // 'D', 'R' or 'W'
	on   bool
	wait time.Duration
}

func setD(on bool) line         { return line{kind: 'D', on: on} }
func setR(on bool) line         { return line{kind: 'R', on: on} }
func wait(d time.Duration) line { return line{kind: 'W', wait: d} }
func setDR(d, r bool) []line    { return []line{setD(d), setR(r)} }
func join(parts ...[]line) []line {
	var out []line
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// run plays a sequence. After every RTS change DTR is written again with
// its current value (Windows usbser.sys needs it; harmless elsewhere).
func run(ctx context.Context, p Port, seq []line) error {
	dtr := false
	for _, s := range seq {
		switch s.kind {
		case 'D':
			dtr = s.on
			if err := p.SetDTR(dtr); err != nil {
				return err
			}
		case 'R':
			if err := p.SetRTS(s.on); err != nil {
				return err
			}
			if err := p.SetDTR(dtr); err != nil {
				return err
			}
		default:
			if err := sleep(ctx, s.wait); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClassicReset is esptool's ClassicReset (§4.2): IO0 high, EN low, wait,
// IO0 low, EN high (boot into download mode), wait Delay, IO0 high.
type ClassicReset struct{ Delay time.Duration }

func (r ClassicReset) Name() string { return fmt.Sprintf("classic reset (%v)", r.Delay) }
func (r ClassicReset) Reset(ctx context.Context, p Port) error {
	return run(ctx, p, []line{setD(false), setR(true), wait(100 * time.Millisecond), setD(true), setR(false), wait(r.Delay), setD(false)})
}

// UnixTightReset is the tighter POSIX variant (§4.2). go.bug.st/serial has
// no call that sets both lines in one ioctl, so each pair is two calls in
// the order that never passes through "EN low and IO0 low".
type UnixTightReset struct{ Delay time.Duration }

func (r UnixTightReset) Name() string { return fmt.Sprintf("tight reset (%v)", r.Delay) }
func (r UnixTightReset) Reset(ctx context.Context, p Port) error {
	return run(ctx, p, join(setDR(false, false), setDR(true, true), setDR(false, true), []line{wait(100 * time.Millisecond)},
		setDR(true, false), []line{wait(r.Delay)}, setDR(false, false), []line{setD(false)}))
}

// USBJTAGReset is the sequence for the built-in USB-Serial/JTAG peripheral
// (VID:PID 303a:1001), which decodes the lines itself.
type USBJTAGReset struct{}

func (USBJTAGReset) Name() string { return "USB-Serial/JTAG reset" }
func (USBJTAGReset) Reset(ctx context.Context, p Port) error {
	ms := 100 * time.Millisecond
	return run(ctx, p, []line{setR(false), setD(false), wait(ms), setD(true), setR(false), wait(ms),
		setR(true), setD(false), setR(true), wait(ms), setD(false), setR(false)})
}

// NoReset leaves the lines alone.
type NoReset struct{}

func (NoReset) Name() string                      { return "no reset" }
func (NoReset) Reset(context.Context, Port) error { return nil }

// strategies returns the reset strategies to cycle through.
func strategies(mode ResetMode, usb string) []ResetStrategy {
	switch {
	case mode == ResetNone:
		return []ResetStrategy{NoReset{}}
	case mode == ResetUSBJTAG || usb == "303a:1001":
		return []ResetStrategy{USBJTAGReset{}}
	}
	return []ResetStrategy{
		UnixTightReset{Delay: 50 * time.Millisecond}, UnixTightReset{Delay: 550 * time.Millisecond},
		ClassicReset{Delay: 50 * time.Millisecond}, ClassicReset{Delay: 550 * time.Millisecond},
	}
}

// hardReset pulses EN (RTS) to run the app (§4.10).
func hardReset(ctx context.Context, p Port, usbOTG bool) error {
	if usbOTG {
		return run(ctx, p, []line{setR(true), wait(200 * time.Millisecond), setR(false), wait(200 * time.Millisecond)})
	}
	return run(ctx, p, []line{setD(false), setR(true), wait(100 * time.Millisecond), setR(false)})
}
