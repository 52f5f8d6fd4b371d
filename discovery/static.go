package discovery

import (
	"context"
	"errors"
)

// AddStatic adds a hand-entered device (a host typed into the TUI) while the
// Watcher runs. Like Options.Static it never expires. Adding a device whose
// ID is already known is an error, so a typo twice does not make two rows.
// When Watch is running, an Added event is sent (bounded by ctx).
func (w *Watcher) AddStatic(ctx context.Context, d Device) (Device, error) {
	if d.Host == "" && d.Path == "" && len(d.Addrs) == 0 {
		return Device{}, errors.New("a hand-added device needs a host, an address or a port path")
	}
	d = normalizeStatic(d)
	now := w.opts.Now()
	d.FirstSeen, d.LastSeen = now, now
	w.mu.Lock()
	if _, dup := w.devices[d.ID]; dup {
		w.mu.Unlock()
		return Device{}, errors.New(d.Target() + " is already in the list")
	}
	w.devices[d.ID] = &cached{dev: d.clone(), src: fromStatic}
	status := w.status.clone()
	w.mu.Unlock()
	w.emit(ctx, []Event{{Kind: Added, Device: d.clone(), Status: status}})
	return d, nil
}
