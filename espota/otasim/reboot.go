package otasim

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"
)

// RebootOutcome says what a board runs after it rebooted into a new image.
type RebootOutcome int

const (
	// BootNew: the new image boots; the board announces its version.
	BootNew RebootOutcome = iota
	// BootRollback: the bootloader rejects the new image (or the app never
	// marks itself valid) and the old one boots again: the board comes back
	// announcing its old version.
	BootRollback
	// BootNever: the board never comes back (a boot loop, a brick).
	BootNever
)

// Reboot makes the device restart after an accepted application image, as
// ArduinoOTA does (ESP.restart() after Update.end): it stops answering,
// disappears for Down, and comes back running the image's version — or
// the old one, or never, per Outcome. Announcements go to OnAnnounce, so a
// test can feed its own discovery source; the simulator itself never
// advertises on mDNS.
type Reboot struct {
	// Version is what the board runs and announces at start.
	Version string
	// Down is how long the board is away (default 100 ms).
	Down    time.Duration
	Outcome RebootOutcome
	// OnAnnounce is called when the board goes away (up false) and when
	// it is back (up true) with the version it runs. It runs on a
	// goroutine of the device; it may be nil.
	OnAnnounce func(up bool, version string)
}

// Version is what the device runs now ("" without Config.Reboot).
func (d *Device) Version() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.version == "" && d.cfg.Reboot != nil {
		return d.cfg.Reboot.Version
	}
	return d.version
}

// Up reports whether the device is running (not rebooting, not gone).
func (d *Device) Up() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.down
}

func (d *Device) isDown() bool { return !d.Up() }

// afterAccepted reboots the device after an accepted app image, when
// Config.Reboot asks for it.
func (d *Device) afterAccepted(ctx context.Context, s Session) {
	rb := d.cfg.Reboot
	if rb == nil || s.State != StateSuccess || s.Command != 0 {
		return
	}
	old := d.Version()
	next := appVersion(s.Received)
	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	d.log.Info("rebooting into the new image", "from", old, "to", next)
	announce := func(up bool, v string) {
		if rb.OnAnnounce != nil {
			rb.OnAnnounce(up, v)
		}
	}
	announce(false, "")
	down := rb.Down
	if down <= 0 {
		down = 100 * time.Millisecond
	}
	go func() {
		if rb.Outcome == BootNever || sleepCtx(ctx, down) != nil {
			return
		}
		v := next
		if rb.Outcome == BootRollback {
			v = old
		}
		d.mu.Lock()
		d.version, d.down = v, false
		d.mu.Unlock()
		announce(true, v)
	}()
}

// appVersion reads the version from the app description that ESP-IDF puts
// at the start of the first segment (image offset 0x20: 24-byte header,
// 8-byte segment header), as esp_ota_get_app_description reads it; "" when
// there is none.
func appVersion(img []byte) string {
	const at = 32
	if len(img) < at+48 || binary.LittleEndian.Uint32(img[at:]) != 0xABCD5432 {
		return ""
	}
	v := img[at+16 : at+48]
	if n := bytes.IndexByte(v, 0); n >= 0 {
		v = v[:n]
	}
	return string(v)
}
