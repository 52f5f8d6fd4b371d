package ops

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/serialflash"
)

// Region is data to write at a flash address; Name (the file name) is
// used in messages.
type Region struct {
	Addr uint32
	Data []byte
	Name string
}

// WriteOptions tune WriteRegions and FlashSerial.
type WriteOptions struct {
	// Policy holds --force and the signing keys.
	Policy Policy
	// TableOffset is where the board's partition table lives (0: 0x8000).
	TableOffset uint32
	// OnWarning receives each warning as it is found (may be nil); the
	// result lists them too.
	OnWarning func(string)
}

// RegionResult is one region as written.
type RegionResult struct {
	Addr      uint32 `json:"address"`
	Name      string `json:"file"`
	Size      int    `json:"size"`
	MD5       string `json:"md5"`
	Partition string `json:"partition,omitempty"`
	// What the writer did (zero when the write did not start).
	WrittenBytes    uint32 `json:"written_bytes"`
	SkippedBytes    uint32 `json:"skipped_bytes"`
	CompressedBytes uint32 `json:"compressed_bytes"`
	Resumes         int    `json:"resumes"`
	// Verify is how the region was checked: "md5", "read-back" or
	// "rom-block-check"; VerifiedRange and ErasedRange bound what the
	// check covered and what the write may have erased (nothing outside
	// changed).
	Verify        string `json:"verify,omitempty"`
	VerifiedRange string `json:"verified_range,omitempty"`
	ErasedRange   string `json:"erased_range,omitempty"`
}

// WriteResult is what WriteRegions did.
type WriteResult struct {
	Regions []RegionResult
	// Verified is true when every region was read back (MD5 or read)
	// after writing; NotVerifiedWhy says why not. The ESP8266 ROM cannot
	// read flash at all, nor can a chip in Secure Download Mode.
	Verified       bool
	NotVerifiedWhy string
	Warnings       []string
	// Slot is the app partition FlashSerial chose and selected to boot
	// ("" when the address was given or no slot was involved).
	Slot string
}

// Skipped sums the bytes the flash already held, which were not rewritten.
func (r WriteResult) Skipped() uint64 {
	var n uint64
	for _, rr := range r.Regions {
		n += uint64(rr.SkippedBytes)
	}
	return n
}

// Resumes sums how often the writes continued after a failed block.
func (r WriteResult) Resumes() int {
	n := 0
	for _, rr := range r.Regions {
		n += rr.Resumes
	}
	return n
}

func (r *WriteResult) warn(o WriteOptions, w string) {
	r.Warnings = append(r.Warnings, w)
	if o.OnWarning != nil {
		o.OnWarning(w)
	}
}

// canReadBack reports whether the board's ROM can read flash back.
func canReadBack(info serialflash.ChipInfo) (bool, string) {
	switch {
	case info.Chip == firmware.ChipESP8266:
		return false, "the ESP8266 ROM cannot read flash, so only its per-block write check applies"
	case info.Security.SecureDownloadMode:
		return false, "Secure Download Mode forbids reading flash, so only the ROM's per-block write check applies"
	}
	return true, ""
}

// boardTable is the partition table the regions will land in: one written
// in the same command at the table offset, else the board's own (nil when
// neither can be had — the partition checks are then skipped, with a note).
func boardTable(ctx context.Context, f *serialflash.Flasher, info serialflash.ChipInfo, regions []Region, o WriteOptions, res *WriteResult) (*firmware.PartitionTable, error) {
	off := o.TableOffset
	if off == 0 {
		off = firmware.DefaultTableOffset
	}
	for _, r := range regions {
		if r.Addr == off {
			if t, err := firmware.ParsePartitionTable(r.Data); err == nil {
				return t, nil
			}
		}
	}
	if ok, _ := canReadBack(info); !ok {
		return nil, nil
	}
	raw, err := f.ReadFlash(ctx, off, firmware.TableMaxLength)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		res.warn(o, fmt.Sprintf("could not read the partition table at 0x%x (%v): what each region lands in is not checked", off, serialflash.Message(err)))
		return nil, nil
	}
	t, err := firmware.ParsePartitionTable(raw)
	if err != nil {
		return nil, nil // a blank board: nothing to land in yet
	}
	return t, nil
}

// WriteRegions checks every region against the board (chip, revision,
// flash size, the partition it lands in, the signing policy) before any
// byte is written, then writes and verifies them all. A refused region
// writes nothing at all.
func WriteRegions(ctx context.Context, f *serialflash.Flasher, info serialflash.ChipInfo, regions []Region, o WriteOptions) (WriteResult, error) {
	var res WriteResult
	for _, w := range SecurityWarnings(info.Security.SecureBoot, info.Security.FlashEncryption) {
		res.warn(o, w)
	}
	tab, err := boardTable(ctx, f, info, regions, o, &res)
	if err != nil {
		return res, err
	}
	for _, r := range regions {
		t := Target{Route: RouteSerial, Chip: info.Chip, ChipRevision: info.Revision, FlashSize: f.FlashSize(),
			Address: r.Addr, Table: tab, TableOffset: o.TableOffset}
		v, err := Preflight(r.Data, t, o.Policy)
		for _, w := range v.Warnings {
			res.warn(o, r.Name+": "+w)
		}
		if err != nil {
			return res, fmt.Errorf("%s at 0x%X: %w", r.Name, r.Addr, err)
		}
		sum := md5.Sum(r.Data)
		rr := RegionResult{Addr: r.Addr, Name: r.Name, Size: len(r.Data), MD5: hex.EncodeToString(sum[:])}
		for _, c := range v.Checks {
			if c.Name == "partition" && c.Status == CheckPassed {
				rr.Partition = c.Detail
			}
		}
		res.Regions = append(res.Regions, rr)
	}
	sr := make([]serialflash.Region, len(regions))
	for i, r := range regions {
		sr[i] = serialflash.Region{Addr: r.Addr, Data: r.Data}
	}
	wr, err := f.Write(ctx, sr)
	for i, w := range wr.Regions {
		if i >= len(res.Regions) {
			break
		}
		rr := &res.Regions[i]
		rr.WrittenBytes, rr.SkippedBytes, rr.CompressedBytes, rr.Resumes = w.Written, w.Skipped, w.Compressed, w.Resumes
		rr.Verify = w.Verify
		if w.VerifiedEnd > w.VerifiedStart {
			rr.VerifiedRange = fmt.Sprintf("0x%X-0x%X", w.VerifiedStart, w.VerifiedEnd)
		}
		if w.EraseEnd > w.EraseStart {
			rr.ErasedRange = fmt.Sprintf("0x%X-0x%X", w.EraseStart, w.EraseEnd)
		}
	}
	if err != nil {
		return res, err
	}
	res.Verified, res.NotVerifiedWhy = canReadBack(info)
	return res, nil
}

// VerifyResult is one region compared with the flash.
type VerifyResult struct {
	Addr uint32 `json:"address"`
	Name string `json:"file"`
	Size int    `json:"size"`
	Same bool   `json:"same"`
}

// VerifyRegions compares each region with the flash by the ROM's
// SPI_FLASH_MD5 (esptool's verify-flash) and writes nothing. It fails
// with CodeVerify naming the regions that differ, and with
// CodeNotVerified where the ROM cannot read flash back.
func VerifyRegions(ctx context.Context, f *serialflash.Flasher, info serialflash.ChipInfo, regions []Region) ([]VerifyResult, error) {
	if ok, why := canReadBack(info); !ok {
		return nil, Errorf(CodeNotVerified, "nothing to compare against on this board; write the file again to be sure", "cannot verify: %s", why)
	}
	var out []VerifyResult
	var differ []string
	for _, r := range regions {
		got, err := f.FlashMD5(ctx, r.Addr, uint32(len(r.Data)))
		if err != nil {
			return out, fmt.Errorf("verifying %s: %w", r.Name, err)
		}
		same := got == md5.Sum(r.Data)
		out = append(out, VerifyResult{Addr: r.Addr, Name: r.Name, Size: len(r.Data), Same: same})
		if !same {
			differ = append(differ, fmt.Sprintf("%s at 0x%X", r.Name, r.Addr))
		}
	}
	if len(differ) > 0 {
		return out, Errorf(CodeVerify, "write the file(s) with espdeck serial write (only the sectors that differ are written)",
			"flash differs from %s", strings.Join(differ, ", "))
	}
	return out, nil
}

// FlashSerial writes one image to a serial board. With addr 0 the place
// follows from the image: an app goes into the OTA slot that neither runs
// nor boots next (ChooseAppSlot; refused when there is none) and that slot
// is selected to boot after the write is verified; other kinds go where
// they belong (DefaultAddress).
func FlashSerial(ctx context.Context, f *serialflash.Flasher, info serialflash.ChipInfo, data []byte, name string, addr uint32, o WriteOptions) (WriteResult, error) {
	slot := ""
	if addr == 0 {
		addr = DefaultAddress(info.Chip, data)
		if firmware.Classify(data) == firmware.ContentApp {
			if ok, why := canReadBack(info); !ok {
				return WriteResult{}, Errorf(CodeNoFreeSlot, "give the write address explicitly: espdeck serial write ADDR FILE (an Arduino ESP8266 sketch .bin goes to 0x0, an ESP-IDF app to its partition, usually 0x10000)",
					"cannot choose an app slot: %s, so the partition table and otadata cannot be read", why)
			}
			st, err := ReadPartitionState(ctx, SerialFlashIO(f), o.TableOffset, ReadOptions{Chip: info.Chip})
			if err != nil {
				return WriteResult{}, err
			}
			s, err := ChooseAppSlot(st)
			if err != nil {
				return WriteResult{}, err
			}
			addr = s.Row.Offset
			if s.SwitchAfter {
				slot = s.Row.Name
			}
		}
	}
	res, err := WriteRegions(ctx, f, info, []Region{{Addr: addr, Data: data, Name: name}}, o)
	if err != nil || slot == "" {
		return res, err
	}
	if _, _, err := SwitchBootSlot(ctx, SerialFlashIO(f), o.TableOffset, slot, ChangeOptions{Chip: info.Chip, TargetVerified: true}); err != nil {
		return res, fmt.Errorf("written to %s, but selecting it to boot failed (the board still boots what it did): %w", slot, err)
	}
	res.Slot = slot
	return res, nil
}

// DefaultAddress is where an image of this kind belongs when nobody named
// an address: the table at 0x8000, a merged image at 0, a bootloader at the
// chip's bootloader offset, anything else at 0x10000.
func DefaultAddress(chip firmware.Chip, data []byte) uint32 {
	switch firmware.Classify(data) {
	case firmware.ContentPartitionTable:
		return firmware.DefaultTableOffset
	case firmware.ContentMerged:
		return 0
	case firmware.ContentBootloader, firmware.ContentRAMImage:
		// A RAM-only image is most often a bootloader; the preflight
		// names it a RAM-only app when it is written elsewhere.
		if ci, ok := chip.Info(); ok {
			return ci.BootloaderOffset
		}
		return 0x1000
	}
	return 0x10000
}

// ReadResult is flash read back by ReadRegion.
type ReadResult struct {
	Data []byte
	MD5  string
	// Verified is true when the ROM's own MD5 of the region matched the
	// data read; NotVerifiedWhy says why the check could not be made.
	Verified       bool
	NotVerifiedWhy string
}

// ReadRegion reads flash and cross-checks it with the ROM's MD5 of the
// same region. A check that could not be made is reported as such, never
// as passed; cancellation (Ctrl-C) during the check is an error.
func ReadRegion(ctx context.Context, f *serialflash.Flasher, addr, size uint32) (ReadResult, error) {
	data, err := f.ReadFlash(ctx, addr, size)
	if err != nil {
		return ReadResult{}, err
	}
	sum := md5.Sum(data)
	res := ReadResult{Data: data, MD5: hex.EncodeToString(sum[:])}
	want, err := f.FlashMD5(ctx, addr, size)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("MD5 check of 0x%X..0x%X: %w", addr, addr+size, ctx.Err())
	case errors.Is(err, context.Canceled):
		return res, err
	case err != nil:
		res.NotVerifiedWhy = "the ROM's MD5 of the region could not be had: " + serialflash.Message(err)
		return res, nil
	case want != sum:
		return res, Errorf(CodeVerify, "read again at a lower --baud; check the cable and the board's power",
			"read 0x%X..0x%X: data read (MD5 %x) differs from the chip's MD5 %x", addr, addr+size, sum, want)
	}
	res.Verified = true
	return res, nil
}

// EraseOptions tune EraseFlash.
type EraseOptions struct {
	// Force erases even when secure boot or flash encryption is on.
	Force bool
	// Confirm is asked the question before anything is erased; false
	// aborts with ErrDeclined. Nil means yes.
	Confirm func(question string) bool
}

// EraseFlash erases [addr, addr+size), or the whole flash when all is set.
// A chip with secure boot or flash encryption on is refused unless Force:
// erasing can leave it unable to boot anything espdeck can write.
func EraseFlash(ctx context.Context, f *serialflash.Flasher, info serialflash.ChipInfo, all bool, addr, size uint32, o EraseOptions) error {
	if (info.Security.FlashEncryption || info.Security.SecureBoot) && !o.Force {
		return Errorf(CodeRefused, "pass --force if you know what the chip will boot afterwards",
			"refusing to erase: secure boot or flash encryption is on, and erasing can leave the chip unable to boot")
	}
	if all {
		fs := "flash"
		if n := f.FlashSize(); n != 0 {
			fs = sizeWord(n) + " flash"
		}
		q := fmt.Sprintf("Erase the whole %s of this %s — bootloader, partition table, every app and all data?", fs, info.Chip)
		if o.Confirm != nil && !o.Confirm(q) {
			return ErrDeclined
		}
		return f.EraseAll(ctx)
	}
	return f.EraseRegion(ctx, addr, size)
}
