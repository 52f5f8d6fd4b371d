package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"github.com/espdeck/espdeck/internal/humanize"
	"os"
	"path/filepath"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/tui"
)

type images struct{ b *Backend }

// Inspect reads an image file and runs the same pre-flight checks the CLI
// runs for the route the device implies.
func (s images) Inspect(ctx context.Context, path string, target tui.Device) (tui.ImageFacts, tui.Verdict, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tui.ImageFacts{}, tui.Verdict{}, fmt.Errorf("read %s: %w", path, errors.Unwrap(err))
	}
	facts := factsOf(path, data)
	t := s.b.targetFor(target, data)
	v, err := ops.Preflight(data, t, s.b.cfg.Policy)
	return facts, convertVerdict(v, err), nil
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
		t.Address = defaultSerialAddress(t.Chip, data)
		b.mu.Lock()
		f := b.learned[dev.ID]
		b.mu.Unlock()
		t.FlashSize = f.flashSize
		// The same slot choice the flash job makes, from the last table read.
		if f.parts != nil && firmware.Classify(data) == firmware.ContentApp {
			if row, ok := nextSlot(f.parts); ok {
				t.Address, t.SlotSize = row.Offset, row.Size
			}
		}
	}
	return t
}

// defaultSerialAddress is where an image of this kind belongs when the user
// did not say: the bootloader offset for a bootloader, 0x8000 for a
// partition table, 0x0 for a merged image, the first app slot (0x10000)
// for an app.
func defaultSerialAddress(chip firmware.Chip, data []byte) uint32 {
	switch firmware.Classify(data) {
	case firmware.ContentPartitionTable:
		return firmware.DefaultTableOffset
	case firmware.ContentMerged:
		return 0 // a merged factory image starts at the beginning of flash
	case firmware.ContentBootloader, firmware.ContentRAMImage:
		// A RAM-only image is most often a bootloader; the preflight
		// names it a RAM-only app if it is written elsewhere.
		if ci, ok := chip.Info(); ok {
			return ci.BootloaderOffset
		}
		return 0x1000
	}
	return 0x10000
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
