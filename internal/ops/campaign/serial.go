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
	boot, err := BootSlot(img, wr.Slot, st, b.Address)
	if err != nil {
		return res, err
	}
	res.Confirmation, res.Running, res.Note = boot.Confirmation, boot.Running, boot.Note
	if !s.NoReset {
		if err := f.HardReset(ctx); err != nil {
			res.Note += "; the reset failed (" + serialflash.Message(err) + "): press the board's reset button"
		}
	}
	return res, nil
}

// BootSlot is how a serial board ends once its partitions st were read
// back after img was written into slot written ("" when the table has no
// OTA slots), before the board is reset: Uploaded with ConfirmBootSlot
// when the app that boots next is that slot and holds img's version,
// else a not_selected error that says what boots instead. The result's
// Confirmation, Running and Note are set; its hints name the command
// line's next step for the board on port.
func BootSlot(img Image, written string, st *ops.PartitionState, port string) (FlashResult, error) {
	var res FlashResult
	boots, ok := st.Row(st.BootsNext)
	switch {
	case st.BootsNext == "" || !ok || boots.App == nil:
		return res, &FlashError{code: "not_selected", msg: fmt.Sprintf("the image was written, but the board's otadata selects no app to boot (%s)", cmpOr(written, "no slot")),
			hint: "read the board with 'espdeck partitions show --port " + port + "' before resetting it"}
	case written != "" && boots.Name != written:
		return res, &FlashError{code: "not_selected", msg: fmt.Sprintf("the image was written to %s, but %s boots next", written, boots.Name),
			hint: "select it with 'espdeck slot switch --port " + port + " --to " + written + "', or resume the campaign"}
	case img.Version != "" && boots.App.Version != img.Version:
		return res, &FlashError{code: "not_selected", msg: fmt.Sprintf("%s boots next but holds %q, not %q", boots.Name, boots.App.Version, img.Version),
			hint: "read the board with 'espdeck partitions show --port " + port + "'"}
	}
	res.Confirmation, res.Running = ConfirmBootSlot, boots.App.Version
	res.Note = fmt.Sprintf("%s boots next and holds %s (read back over serial)", boots.Name, cmpOr(boots.App.Version, "an app without a version"))
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
