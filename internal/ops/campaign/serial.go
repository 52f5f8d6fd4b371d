package campaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
)

// Serial updates boards on a serial port through their ROM loader, the way
// 'serial write' of an app does: ops.FlashSerial writes the image into the
// OTA slot that neither runs nor boots next (or the only app partition of
// a table without OTA slots), checks it, and selects it to boot.
//
// A serial board announces nothing, so discovery cannot confirm it. The
// flasher reads the board back itself before resetting it: the partition
// table and otadata, and the app description of the slot that now boots
// next. When that slot holds the image's version, the board ends as
// uploaded with confirmation ConfirmBootSlot; whether the new app then
// keeps running (marks itself valid under rollback) is not watched. A
// board whose ROM cannot read flash (ESP8266, Secure Download Mode) is
// refused with the reason: the slot could not be chosen safely.
type Serial struct {
	// Options are the serialflash options every port is opened with
	// (baud, reset mode, timeouts); OnProgress is set per board.
	Options serialflash.Options
	Policy  ops.Policy
	// TableOffset is where the boards' partition table lives (0: 0x8000).
	TableOffset uint32
	// NoReset leaves the board in its ROM loader after the write (the
	// new app starts at the next reset).
	NoReset bool
	Logger  *slog.Logger
}

// Flash implements Flasher.
func (s Serial) Flash(ctx context.Context, b Board, img Image, data []byte, progress func(done, total int64)) (FlashResult, error) {
	res := FlashResult{Protocol: "serial", Auth: "none"}
	opts := s.Options
	if opts.Logger == nil {
		opts.Logger = s.Logger
	}
	opts.OnProgress = func(p serialflash.Progress) {
		if progress != nil && p.Stage == "write" {
			progress(p.Done, p.Total)
		}
	}
	f, err := serialflash.Open(ctx, b.Address, opts)
	if err != nil {
		return res, serialError(err, "connecting to "+b.Address)
	}
	defer f.Close()
	info, err := f.Info(ctx)
	if err != nil {
		return res, serialError(err, "reading the chip of "+b.Address)
	}
	wr, err := ops.FlashSerial(ctx, f, info, data, img.Path, 0, ops.WriteOptions{Policy: s.Policy, TableOffset: s.TableOffset})
	if err != nil {
		if errors.Is(err, ops.ErrRefused) {
			return res, &FlashError{code: "refused", msg: "nothing was written: " + err.Error(), hint: hintOf(err), err: err}
		}
		return res, serialError(err, "writing "+b.Address)
	}
	res.Bytes = int64(len(data))

	// Read back what the bootloader will start: the selection and the
	// image in that slot, from the board itself.
	st, err := ops.ReadPartitionState(ctx, ops.SerialFlashIO(f), s.TableOffset, ops.ReadOptions{Chip: info.Chip})
	if err != nil {
		return res, serialError(err, "reading back the partitions of "+b.Address)
	}
	var boots *ops.PartitionRow
	for i := range st.Rows {
		if st.Rows[i].BootsNext {
			boots = &st.Rows[i]
		}
	}
	switch {
	case boots == nil || boots.App == nil:
		return res, &FlashError{code: "not_selected", msg: fmt.Sprintf("the image was written, but the board's otadata selects no app to boot (%s)", cmpOr(wr.Slot, "no slot")),
			hint: "read the board with 'espdeck partitions show --port " + b.Address + "' before resetting it"}
	case wr.Slot != "" && boots.Name != wr.Slot:
		return res, &FlashError{code: "not_selected", msg: fmt.Sprintf("the image was written to %s, but %s boots next", wr.Slot, boots.Name),
			hint: "select it with 'espdeck slot switch --port " + b.Address + " --to " + wr.Slot + "', or resume the campaign"}
	case img.Version != "" && boots.App.Version != img.Version:
		return res, &FlashError{code: "not_selected", msg: fmt.Sprintf("%s boots next but holds %q, not %q", boots.Name, boots.App.Version, img.Version),
			hint: "read the board with 'espdeck partitions show --port " + b.Address + "'"}
	}
	res.Confirmation, res.Running = ConfirmBootSlot, boots.App.Version
	res.Note = fmt.Sprintf("%s boots next and holds %s (read back over serial)", boots.Name, cmpOr(boots.App.Version, "an app without a version"))
	if !s.NoReset {
		if err := f.HardReset(ctx); err != nil {
			res.Note += "; the reset failed (" + serialflash.Message(err) + "): press the board's reset button"
		}
	}
	return res, nil
}

// serialError keeps a classified error's word and hint and names what
// was being done.
func serialError(err error, doing string) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	c := ops.Classify(err).(ops.Coded)
	return &FlashError{code: c.Code(), msg: doing + ": " + serialflash.Message(err), hint: c.Hint(), err: err}
}
