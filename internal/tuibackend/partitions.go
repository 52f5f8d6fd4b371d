package tuibackend

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
	"github.com/espdeck/espdeck/tui"
)

type partitions struct{ b *Backend }

// withFlash opens dev's ROM loader, runs fn with its flash access and the
// chip, and closes the port again (resetting the board into its app).
func (b *Backend) withFlash(ctx context.Context, dev tui.Device, fn func(io ops.FlashIO, chip firmware.Chip) (*ops.PartitionState, error)) (tui.PartitionState, error) {
	f, closeFn, err := b.openSerial(ctx, dev, nil)
	if err != nil {
		return tui.PartitionState{}, serialError(err)
	}
	defer closeFn()
	st, err := fn(ops.SerialFlashIO(f), f.Chip())
	if err != nil {
		return tui.PartitionState{}, serialError(err)
	}
	b.learn(dev.ID, func(l *learnedFacts) { l.parts = st })
	if err := f.HardReset(ctx); err != nil {
		b.log.Warn("hard reset failed", "port", dev.Port, "err", err)
	}
	return convertState(st), nil
}

// serialError is the error the TUI shows: the sentence and hint the
// command line shows, and the error itself still answers Code() and Hint().
func serialError(err error) error {
	return &shownError{Coded: ops.Classify(err).(ops.Coded), msg: serialflash.Message(err)}
}

// shownError puts the hint into the text (the TUI shows Error()) and keeps
// the classification.
type shownError struct {
	ops.Coded
	msg string
}

func (e *shownError) Error() string {
	if h := e.Hint(); h != "" {
		return e.msg + " — " + h
	}
	return e.msg
}

func (e *shownError) Unwrap() error { return e.Coded }

func (s partitions) ReadPartitions(ctx context.Context, dev tui.Device) (tui.PartitionState, error) {
	return s.b.withFlash(ctx, dev, func(io ops.FlashIO, chip firmware.Chip) (*ops.PartitionState, error) {
		return ops.ReadPartitionState(ctx, io, 0, ops.ReadOptions{Chip: chip})
	})
}

func (s partitions) SwitchBoot(ctx context.Context, dev tui.Device, slot string) (tui.PartitionState, error) {
	return s.b.withFlash(ctx, dev, func(io ops.FlashIO, chip firmware.Chip) (*ops.PartitionState, error) {
		st, _, err := ops.SwitchBootSlot(ctx, io, 0, slot, ops.ChangeOptions{Chip: chip, Confirm: s.b.asShown(dev, func(st *ops.PartitionState) (ops.SlotChange, error) {
			return ops.PlanSwitch(st, slot, ops.ChangeOptions{})
		})})
		return st, changedError(err)
	})
}

func (s partitions) EraseOTAData(ctx context.Context, dev tui.Device) (tui.PartitionState, error) {
	return s.b.withFlash(ctx, dev, func(io ops.FlashIO, chip firmware.Chip) (*ops.PartitionState, error) {
		st, _, err := ops.EraseOtadata(ctx, io, 0, ops.ChangeOptions{Chip: chip, Confirm: s.b.asShown(dev, func(st *ops.PartitionState) (ops.SlotChange, error) {
			return ops.PlanErase(st, ops.ChangeOptions{})
		})})
		return st, changedError(err)
	})
}

func (s partitions) MarkInvalid(ctx context.Context, dev tui.Device, slot string) (tui.PartitionState, error) {
	return s.b.withFlash(ctx, dev, func(io ops.FlashIO, chip firmware.Chip) (*ops.PartitionState, error) {
		st, _, err := ops.MarkSlot(ctx, io, 0, slot, firmware.OTAStateInvalid, ops.ChangeOptions{Chip: chip, Confirm: s.b.asShown(dev, func(st *ops.PartitionState) (ops.SlotChange, error) {
			return ops.PlanMark(st, slot, firmware.OTAStateInvalid, ops.ChangeOptions{})
		})})
		return st, changedError(err)
	})
}

// asShown confirms a change only when it is the one the person agreed to:
// the question computed from the state the TUI showed (the last one read)
// must be the question for the state just read. A board changed in
// between is refused (ErrDeclined, reworded by changedError), never
// changed in a way nobody saw.
func (b *Backend) asShown(dev tui.Device, plan func(*ops.PartitionState) (ops.SlotChange, error)) func(ops.SlotChange) bool {
	b.mu.Lock()
	shown := b.learned[dev.ID].parts
	b.mu.Unlock()
	return func(ch ops.SlotChange) bool {
		if shown == nil {
			return true // nothing was shown to compare with (not from the screen)
		}
		was, err := plan(shown)
		return err == nil && was.Question() == ch.Question()
	}
}

// changedError rewords a declined confirmation: in the TUI it means the
// board's state changed since it was shown.
func changedError(err error) error {
	if errors.Is(err, ops.ErrDeclined) {
		return ops.Errorf(ops.CodeNotConfirmed, "press r to read the partitions again, then choose again",
			"the board's otadata changed since it was shown; nothing was written")
	}
	return err
}

// convertState maps ops' partition state to the TUI's.
func convertState(st *ops.PartitionState) tui.PartitionState {
	out := tui.PartitionState{
		TableOffset:  st.TableOffset,
		Running:      st.Running,
		BootsNext:    st.BootsNext,
		BootsNextWhy: st.BootsNextWhy,
	}
	if st.OTAData != nil {
		out.OTAData = st.OTAData.Summary
	}
	// The confirmation sentences (and refusals) come from ops' plan
	// functions, the ones the command line's questions come from.
	if ch, err := ops.PlanErase(st, ops.ChangeOptions{}); err != nil {
		out.EraseRefused = refusal(err)
	} else {
		out.EraseQuestion = ch.Question()
	}
	for _, r := range st.Rows {
		p := tui.Partition{Name: r.Name, Type: r.Type, SubType: r.SubType, Offset: r.Offset, Size: r.Size, State: r.OTAState}
		if r.App != nil && st.OTAData != nil {
			switch ch, err := ops.PlanSwitch(st, r.Name, ops.ChangeOptions{}); {
			case err != nil:
				p.SwitchRefused = refusal(err)
			case ch.NoChange:
				p.SwitchRefused = r.Name + " boots next already"
			default:
				p.SwitchQuestion = ch.Question()
			}
		}
		if r.OTASlot >= 0 && st.OTAData != nil {
			if ch, err := ops.PlanMark(st, r.Name, firmware.OTAStateInvalid, ops.ChangeOptions{}); err != nil {
				p.MarkInvalidRefused = refusal(err)
			} else {
				p.MarkInvalidQuestion = ch.Question()
			}
		}
		if r.App != nil {
			switch {
			case r.App.Empty:
				p.State = "empty"
			case !r.App.Valid:
				p.State = "invalid image: " + r.App.Problem
			}
			p.AppProject, p.AppVersion, p.AppDate = r.App.Project, r.App.Version, isoDate(r.App.Date)
		}
		out.Partitions = append(out.Partitions, p)
	}
	return out
}

// refusal is an ops error as the TUI shows it: the sentence and the hint.
func refusal(err error) string {
	if h := ops.HintOf(err); h != "" {
		return err.Error() + " — " + h
	}
	return err.Error()
}

// isoDate turns __DATE__ ("Nov 21 2026") into "2026-11-21"; other forms pass through.
func isoDate(d string) string {
	f := strings.Fields(d)
	if len(f) != 3 {
		return d
	}
	months := "JanFebMarAprMayJunJulAugSepOctNovDec"
	i := strings.Index(months, f[0])
	if i < 0 || i%3 != 0 || len(f[1]) > 2 || len(f[2]) != 4 {
		return d
	}
	day := f[1]
	if len(day) == 1 {
		day = "0" + day
	}
	return fmt.Sprintf("%s-%02d-%s", f[2], i/3+1, day)
}

type serialInfo struct{ b *Backend }

func (s serialInfo) ChipInfo(ctx context.Context, dev tui.Device) (tui.ChipInfo, error) {
	f, closeFn, err := s.b.openSerial(ctx, dev, nil)
	if err != nil {
		return tui.ChipInfo{}, serialError(err)
	}
	defer closeFn()
	info, err := f.Info(ctx)
	if err != nil {
		return tui.ChipInfo{}, serialError(err)
	}
	if err := f.HardReset(ctx); err != nil {
		s.b.log.Warn("hard reset failed", "port", dev.Port, "err", err)
	}
	out := tui.ChipInfo{
		Chip:            info.Chip.String(),
		Revision:        info.RevisionString(),
		MAC:             info.MAC,
		FlashSize:       int64(info.FlashSize),
		SecureBoot:      info.Security.SecureBoot,
		FlashEncryption: info.Security.FlashEncryption,
		SecureDownload:  info.Security.SecureDownloadMode,
	}
	if info.FlashID != 0 {
		out.FlashID = fmt.Sprintf("0x%06x", info.FlashID)
	}
	if info.CrystalMHz != 0 {
		out.Crystal = fmt.Sprintf("%d MHz", info.CrystalMHz)
	}
	if info.Security.SecureBootVersion > 0 {
		out.Features = append(out.Features, fmt.Sprintf("secure boot v%d", info.Security.SecureBootVersion))
	}
	if info.Security.JTAGDisabled {
		out.Features = append(out.Features, "JTAG disabled")
	}
	return out, nil
}
