package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/humanize"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/tui"
)

type images struct{ b *Backend }

// Inspect reads an image file and runs the same pre-flight checks the CLI
// runs for the route the device implies.
func (s images) Inspect(ctx context.Context, path string, target tui.Device) (tui.ImageFacts, tui.Verdict, error) {
	data, err := ops.ReadInputFile(path, ops.MaxImageFile)
	if err != nil {
		return tui.ImageFacts{}, tui.Verdict{}, err
	}
	facts := factsOf(path, data)
	t := s.b.targetFor(target, data)
	if err := s.b.slotRefusal(target, data); err != nil {
		// The flash job would refuse: say so now, the same way.
		return facts, tui.Verdict{Kind: tui.VerdictRefused, Reason: refusal(err)}, nil
	}
	if t.Route != ops.RouteSerial {
		// The check the upload makes (ops.UploadOTA), chip from the same facts.
		v, _, err := ops.PreflightOTA(data, ops.OTAOptions{Chip: t.Chip, Policy: s.b.cfg.Policy})
		return facts, convertVerdict(v, err), nil
	}
	v, err := ops.Preflight(data, t, s.b.cfg.Policy)
	return facts, convertVerdict(v, err), nil
}

// slotRefusal is why an app could not go to a serial board whose table
// was read: no OTA slot neither runs nor boots next (ops.ChooseAppSlot).
func (b *Backend) slotRefusal(dev tui.Device, data []byte) error {
	if dev.Kind != tui.KindSerial || firmware.Classify(data) != firmware.ContentApp {
		return nil
	}
	b.mu.Lock()
	parts := b.learned[dev.ID].parts
	b.mu.Unlock()
	if parts == nil {
		return nil
	}
	_, err := ops.ChooseAppSlot(parts)
	return err
}

// targetFor is what is known about where data would go on dev.
func (b *Backend) targetFor(dev tui.Device, data []byte) ops.Target {
	t := ops.Target{Route: ops.RouteOTAApp, Chip: firmware.ChipUnknown, ChipRevision: -1}
	if dev.Chip != "" {
		if c, err := firmware.ParseChip(dev.Chip); err == nil {
			t.Chip = c
		}
	} else if c, ok := chipFromBoard(dev.Board, ""); ok {
		t.Chip = c
	}
	if dev.Kind == tui.KindSerial {
		t.Route = ops.RouteSerial
		t.Address = ops.DefaultAddress(t.Chip, data)
		b.mu.Lock()
		f := b.learned[dev.ID]
		b.mu.Unlock()
		t.FlashSize = f.flashSize
		// The same slot choice the flash job makes, from the last table read.
		if f.parts != nil {
			t.Table, t.TableOffset = f.parts.Table, f.parts.TableOffset
			if firmware.Classify(data) == firmware.ContentApp {
				if s, err := ops.ChooseAppSlot(f.parts); err == nil {
					t.Address, t.SlotSize = s.Row.Offset, s.Row.Size
				}
			}
		}
	}
	return t
}

// factsOf describes an image file for the flash screen.
func factsOf(path string, data []byte) tui.ImageFacts {
	f := tui.ImageFacts{Path: path, Size: int64(len(data)), Kind: "unknown"}
	content := firmware.Classify(data)
	f.Kind = contentWord(content)
	img, err := firmware.ParseImage(data)
	if err == nil && img != nil {
		f.Summary = img.Summary(filepath.Base(path))
		f.Chip = img.Chip.String()
		if img.AppDesc != nil {
			f.Project = img.AppDesc.ProjectName
			f.Version = img.AppDesc.Version
		}
		f.SHAKnown = img.HashAppended
		f.SHAOK = img.HashAppended && img.SHA256Valid()
		return f
	}
	f.Summary = fmt.Sprintf("%s · %s · %s", filepath.Base(path), f.Kind, humanize.Bytes(int64(len(data))))
	return f
}

func contentWord(c firmware.Content) string {
	s := strings.ToLower(c.String())
	if s == "" {
		return "unknown"
	}
	return s
}

// convertVerdict maps ops' pre-flight outcome to the TUI's three-way verdict.
func convertVerdict(v ops.Verdict, err error) tui.Verdict {
	out := tui.Verdict{Kind: tui.VerdictOK, Warnings: v.Warnings}
	for _, c := range v.Checks {
		// Of the skipped checks only "fit" matters to a person: an ESP32
		// accepts an image too big for its slot and fails only at the end.
		if c.Status == ops.CheckSkipped && c.Name == "fit" && c.Detail != "" {
			out.Warnings = append(out.Warnings, "fit not checked: "+c.Detail)
		}
	}
	if err == nil {
		return out
	}
	var refused *ops.RefusedError
	if errors.As(err, &refused) {
		var reasons []string
		for _, c := range refused.Failed {
			reasons = append(reasons, c.Detail)
		}
		out.Reason = strings.Join(reasons, "; ")
		if refused.Forceable {
			out.Kind = tui.VerdictForceable
		} else {
			out.Kind = tui.VerdictRefused
		}
		return out
	}
	out.Kind = tui.VerdictRefused
	out.Reason = err.Error()
	return out
}
