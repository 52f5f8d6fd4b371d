package ops

import (
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/humanize"
)

// Route says how an image is going to reach the board.
type Route int

const (
	// RouteOTAApp is a network OTA upload of an application image.
	RouteOTAApp Route = iota
	// RouteOTAFilesystem is a network OTA upload of a filesystem image (not checked).
	RouteOTAFilesystem
	// RouteSerial is a write through the ROM bootloader at Target.Address.
	RouteSerial
)

func (r Route) String() string {
	switch r {
	case RouteOTAApp:
		return "OTA app upload"
	case RouteOTAFilesystem:
		return "OTA filesystem upload"
	case RouteSerial:
		return "serial write"
	}
	return fmt.Sprintf("route %d", int(r))
}

// Target is what is known about where an image is going. Zero values mean
// "unknown"; a check that needs an unknown value is skipped, not failed.
type Target struct {
	Route        Route
	Chip         firmware.Chip // firmware.ChipUnknown when not known
	ChipRevision int           // major*100+minor; negative when not known
	FlashSize    uint32        // bytes; 0 when not known
	Address      uint32        // serial: the write address
	SlotSize     uint32        // bytes available for the image; 0 when not known
	// Table is the board's partition table (or the one written in the same
	// command), nil when not known: a serial write is then checked against
	// the partition it lands in (an app partition gets an app image for
	// this chip, a data partition gets no app or bootloader image).
	Table *firmware.PartitionTable
	// TableOffset is where that table lives (0: 0x8000).
	TableOffset uint32
}

// NewTarget returns a Target for route with nothing known: the chip
// unknown (firmware.ChipUnknown — the zero Chip is ESP32, so a literal
// Target{Route: r} claims an ESP32) and the revision unknown.
func NewTarget(r Route) Target {
	return Target{Route: r, Chip: firmware.ChipUnknown, ChipRevision: -1}
}

// Policy is what the user configured for pre-flight checks.
type Policy struct {
	// Force turns failed checks into warnings — except a failed signature
	// check under a signing-key policy, which is never overridable.
	Force bool
	// SigningKeys, when non-empty, require images to carry a Secure Boot V2
	// signature by one of these public keys.
	SigningKeys []crypto.PublicKey
}

// CheckStatus is the outcome of one pre-flight check.
type CheckStatus int

const (
	CheckPassed  CheckStatus = iota
	CheckFailed              // the image must not be sent
	CheckForced              // failed, but Policy.Force overrode it
	CheckSkipped             // not applicable, or a needed fact is unknown
)

func (s CheckStatus) String() string {
	switch s {
	case CheckPassed:
		return "pass"
	case CheckFailed:
		return "fail"
	case CheckForced:
		return "forced"
	case CheckSkipped:
		return "skipped"
	}
	return "unknown"
}

// Check is one line of the pre-flight report, for the CLI and the TUI.
type Check struct {
	Name   string // "content", "chip", "integrity", "revision", "fit", "placement", "signature", "partition table"
	Status CheckStatus
	// Detail says what was found: for a pass the fact checked ("ESP32-S3"),
	// for a failure the reason (the error's message), for a skip why.
	Detail string
	// Err is the typed firmware error of a failed or forced check.
	Err error
	// Overridable is false for a failure that Force cannot override.
	Overridable bool
}

// Verdict is the outcome of the pre-flight checks.
type Verdict struct {
	// Warnings are failed checks that Force overrode, and notes worth showing.
	Warnings []string
	// Content is what the data appears to be.
	Content firmware.Content
	// Image is the parsed image; nil when the data is not an image.
	Image *firmware.Image
	// Checks lists every check in the order run, with its status.
	Checks []Check
	// Signature is the verified signature when a key policy was applied and
	// the image passed it.
	Signature *firmware.SignatureResult
}

// Failed returns the checks that failed (not counting forced ones).
func (v Verdict) Failed() []Check {
	var out []Check
	for _, c := range v.Checks {
		if c.Status == CheckFailed {
			out = append(out, c)
		}
	}
	return out
}

// ErrRefused is what every pre-flight refusal matches with errors.Is.
var ErrRefused error = newError(CodeRefused, "pre-flight check refused the image", "fix the image or the target; --force sends it anyway (at your own risk)")

// RefusedError is Preflight's error: the checks that failed. errors.Is
// and errors.As reach the firmware errors of each failed check (e.g.
// firmware.ErrChipMismatch, *firmware.TooLargeError).
type RefusedError struct {
	Failed []Check
	// Forceable is true when --force would let the image through (no
	// failed check is a signature failure under a key policy).
	Forceable bool
}

func (e *RefusedError) Error() string {
	msgs := make([]string, 0, len(e.Failed))
	for _, c := range e.Failed {
		msgs = append(msgs, c.Detail)
	}
	return strings.Join(msgs, "; ")
}

// Unwrap exposes ErrRefused and every failed check's error.
func (e *RefusedError) Unwrap() []error {
	out := []error{ErrRefused}
	for _, c := range e.Failed {
		if c.Err != nil {
			out = append(out, c.Err)
		}
	}
	return out
}

// Code is the stable machine word: wrong_chip or too_big when that is the
// only kind of failure, else refused.
func (e *RefusedError) Code() string {
	code := ""
	for _, c := range e.Failed {
		k := CodeRefused
		switch {
		case errors.Is(c.Err, firmware.ErrChipMismatch):
			k = CodeWrongChip
		case errors.Is(c.Err, firmware.ErrTooLarge):
			k = CodeTooBig
		}
		if code != "" && code != k {
			return CodeRefused
		}
		code = k
	}
	if code == "" {
		return CodeRefused
	}
	return code
}

// Hint is the next step for a person.
func (e *RefusedError) Hint() string {
	for _, c := range e.Failed {
		if !c.Overridable && c.Name == "fit" {
			return "check the address and the file; if the flash size was detected wrongly, give it with --flash-size (--force cannot write past the end of the flash)"
		}
	}
	if e.Forceable {
		return "fix the image or the target; --force sends it anyway (at your own risk)"
	}
	return "the image must be signed with the configured signing key; --force cannot override a signature policy"
}

// Preflight checks image against target before any byte is sent. It returns
// a non-nil error (a *RefusedError wrapping firmware's typed errors) when
// the image must not be sent; the Verdict is filled in either way.
func Preflight(image []byte, t Target, p Policy) (Verdict, error) {
	pf := &preflight{data: image, t: t, p: p}
	switch t.Route {
	case RouteOTAFilesystem:
		pf.v.Content = firmware.Classify(image)
		switch pf.v.Content {
		case firmware.ContentApp, firmware.ContentBootloader, firmware.ContentRAMImage, firmware.ContentMerged, firmware.ContentPartitionTable:
			// The device would write it over its filesystem partition.
			pf.fail("content", fmt.Errorf("this is %s, not a filesystem image: --fs writes it over the device's filesystem partition", contentPhrase(pf.v.Content)), true)
		default:
			pf.skip("content", "filesystem images are not checked further")
		}
	case RouteOTAApp:
		pf.otaApp()
	case RouteSerial:
		pf.serial()
	default:
		return pf.v, fmt.Errorf("preflight: unknown route %d", int(t.Route))
	}
	return pf.finish()
}

type preflight struct {
	data []byte
	t    Target
	p    Policy
	v    Verdict
}

func (pf *preflight) pass(name, detail string) {
	pf.v.Checks = append(pf.v.Checks, Check{Name: name, Status: CheckPassed, Detail: detail})
}

func (pf *preflight) skip(name, why string) {
	pf.v.Checks = append(pf.v.Checks, Check{Name: name, Status: CheckSkipped, Detail: why})
}

func (pf *preflight) fail(name string, err error, overridable bool) {
	c := Check{Name: name, Status: CheckFailed, Detail: err.Error(), Err: err, Overridable: overridable}
	if overridable && pf.p.Force {
		c.Status = CheckForced
		pf.v.Warnings = append(pf.v.Warnings, "forced past a failed "+name+" check: "+c.Detail)
	}
	pf.v.Checks = append(pf.v.Checks, c)
}

// check records err as a failure of name, or a pass with detail.
func (pf *preflight) check(name string, err error, detail string) {
	if err != nil {
		pf.fail(name, err, true)
		return
	}
	pf.pass(name, detail)
}

func (pf *preflight) finish() (Verdict, error) {
	failed := pf.v.Failed()
	if len(failed) == 0 {
		return pf.v, nil
	}
	forceable := true
	for _, c := range failed {
		forceable = forceable && c.Overridable
	}
	return pf.v, &RefusedError{Failed: failed, Forceable: forceable}
}

// otaApp: the data must be an app image for the target's chip, intact,
// fitting the slot, and signed when a key policy is set.
func (pf *preflight) otaApp() {
	pf.v.Content = firmware.Classify(pf.data)
	im, err := firmware.ParseImageFor(pf.data, pf.t.Chip)
	if err == nil {
		pf.v.Image = im
	}
	switch pf.v.Content {
	case firmware.ContentApp:
		pf.pass("content", "application image")
	case firmware.ContentESP8266V2:
		pf.pass("content", "ESP8266 v2 image")
		pf.v.Warnings = append(pf.v.Warnings, "ESP8266 v2 (EA) image: its checksum is not checked")
	case firmware.ContentPartitionTable:
		pf.fail("content", &firmware.NotAnAppError{Found: "a partition table (it starts with AA 50)",
			Hint: "partition tables are written over serial at 0x8000 (espdeck serial write 0x8000 FILE); OTA takes the app .bin"}, true)
	case firmware.ContentMerged:
		pf.fail("content", &firmware.NotAnAppError{Found: "a merged image that starts with " + mergedWhat(pf.data),
			Hint: "OTA takes the app .bin alone (e.g. build/PROJECT.bin, not *.merged.bin or *.factory.bin); write merged images over serial at 0x0"}, true)
	case firmware.ContentBootloader:
		pf.fail("content", &firmware.NotAnAppError{Found: "an " + im.Chip.String() + " bootloader (it carries a bootloader description)",
			Hint: "OTA takes the app .bin; bootloaders are written over serial at the chip's bootloader offset"}, true)
	case firmware.ContentRAMImage:
		pf.pass("content", "RAM-only app image")
		pf.v.Warnings = append(pf.v.Warnings, ramOnlyWarning)
	default:
		if err == nil {
			err = &firmware.NotAnAppError{Found: "data that is not an ESP image"}
		}
		pf.fail("content", err, true)
	}
	if pf.v.Image == nil {
		pf.signature(false)
		return
	}
	pf.chip(im)
	pf.integrity(im)
	if pf.t.SlotSize > 0 {
		pf.check("fit", im.CheckFits(int64(pf.t.SlotSize), "the OTA slot"), fmt.Sprintf("%d of %d bytes", im.FileSize, pf.t.SlotSize))
	} else {
		pf.skip("fit", "the OTA slot size is not known")
	}
	pf.signature(true)
}

// ramOnlyWarning says what a RAM-only app image means in an app slot.
const ramOnlyWarning = "a RAM-only app image: every segment loads into RAM and nothing runs from flash; the bootloader loads it from an app slot like any app as long as its segments stay clear of the bootloader's own RAM, but such images are usually meant for esptool's load-ram"

// serial decides by write address: the bootloader offset, the partition
// table, or anything else (an app image when it starts with E9).
func (pf *preflight) serial() {
	pf.v.Content = firmware.Classify(pf.data)
	addr := pf.t.Address
	bootOff, bootKnown := uint32(0), false
	if ci, ok := pf.t.Chip.Info(); ok {
		bootOff, bootKnown = ci.BootloaderOffset, true
	}
	im, imgErr := firmware.ParseImageFor(pf.data, pf.t.Chip)
	if imgErr == nil {
		pf.v.Image = im
		if !bootKnown {
			if ci, ok := im.Chip.Info(); ok {
				bootOff, bootKnown = ci.BootloaderOffset, true
			}
		}
	}

	switch {
	case addr == 0x8000:
		pf.partitionTable()
	case pf.v.Content == firmware.ContentMerged:
		pf.merged()
	case bootKnown && addr == bootOff && imgErr == nil:
		pf.imageAt(im, "bootloader")
	case imgErr == nil:
		pf.imageAt(im, "app")
	case len(pf.data) > 0 && pf.data[0] == firmware.ImageMagic:
		// Starts like an image but does not parse: a corrupt image.
		pf.fail("integrity", imgErr, true)
	case bootKnown && addr == bootOff && !allFF(pf.data):
		// Anything but a bootloader here leaves the board unbootable.
		pf.fail("content", fmt.Errorf("expected a bootloader image at 0x%x (the bootloader offset) but found %s: write the bootloader .bin here, or give the right address", addr, pf.v.Content), true)
	case pf.v.Content == firmware.ContentPartitionTable:
		pf.v.Warnings = append(pf.v.Warnings, fmt.Sprintf("a partition table written at 0x%x, not 0x8000: the bootloader finds it only if it was built with CONFIG_PARTITION_TABLE_OFFSET=0x%x", addr, addr))
		pf.pass("content", "partition table")
	default:
		pf.skip("content", fmt.Sprintf("raw data (%s) at 0x%x is written as it is", pf.v.Content, addr))
	}
	pf.partitionFit()
	pf.endOfFlash()
}

// partitionFit checks a serial write against the partition it lands in:
// an app partition must get a valid app image (for this chip: the chip
// check runs separately), a data partition no app or bootloader image,
// and the data must end inside the partition.
func (pf *preflight) partitionFit() {
	t := pf.t.Table
	if t == nil || pf.v.Content == firmware.ContentMerged || pf.t.Address == pf.tableOffset() {
		return
	}
	addr, end := uint64(pf.t.Address), uint64(pf.t.Address)+uint64(len(pf.data))
	var in *firmware.Partition
	for i, p := range t.Partitions {
		if addr >= uint64(p.Offset) && addr < p.End() {
			in = &t.Partitions[i]
			break
		}
	}
	if in == nil {
		return
	}
	where := fmt.Sprintf("partition %q (%s/%s at 0x%x)", in.Name, in.TypeName(), in.SubTypeName(), in.Offset)
	isApp := pf.v.Image != nil && pf.v.Image.IsApp()
	switch {
	case in.IsApp() && addr != uint64(in.Offset):
		pf.fail("partition", fmt.Errorf("0x%x is inside app %s, not at its start: the bootloader looks for the image at 0x%x", addr, where, in.Offset), true)
	case in.IsApp() && !isApp:
		pf.fail("partition", &firmware.NotAnAppError{Found: describeData(pf.data, pf.v.Content) + " for app " + where,
			Hint: "an app partition takes the app .bin (build/PROJECT.bin); check the file and the address"}, true)
	case in.Type == firmware.TypeData && pf.v.Image != nil:
		pf.fail("partition", fmt.Errorf("%s would go into data %s, which holds no firmware: check the file and the address", contentPhrase(pf.v.Content), where), true)
	default:
		pf.pass("partition", where)
	}
	if end > in.End() {
		pf.fail("partition", fmt.Errorf("%d bytes at 0x%x run past the end of %s (0x%x) into what follows", len(pf.data), addr, where, in.End()), true)
	}
}

func (pf *preflight) tableOffset() uint32 {
	if pf.t.TableOffset != 0 {
		return pf.t.TableOffset
	}
	return firmware.DefaultTableOffset
}

// contentPhrase names a kind of data with its article.
func contentPhrase(c firmware.Content) string {
	switch c {
	case firmware.ContentApp:
		return "an app image"
	case firmware.ContentBootloader:
		return "a bootloader image"
	case firmware.ContentRAMImage:
		return "a RAM-only image (a bootloader or a RAM-only app)"
	case firmware.ContentMerged:
		return "a merged image (bootloader, table and app)"
	case firmware.ContentPartitionTable:
		return "a partition table"
	case firmware.ContentESP8266V2:
		return "an ESP8266 v2 image"
	}
	return "data that is not an ESP image"
}

// describeData says what data is, for a refusal: the kind, and for text
// its first line.
func describeData(data []byte, c firmware.Content) string {
	if c != firmware.ContentUnknown {
		return contentPhrase(c)
	}
	n := min(len(data), 64)
	text := true
	for _, b := range data[:n] {
		if b < 0x09 || (b > 0x0d && b < 0x20) || b == 0x7f {
			text = false
		}
	}
	if text && n > 0 {
		line := string(data[:n])
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		return fmt.Sprintf("a text file (%q…), not an ESP image", line)
	}
	if n > 0 {
		return fmt.Sprintf("data that is not an ESP image (first byte 0x%02x, an image starts with 0xe9)", data[0])
	}
	return "empty data"
}

// imageAt runs the image checks for a serial write, where role is what the
// address says the image should be.
func (pf *preflight) imageAt(im *firmware.Image, role string) {
	addr := pf.t.Address
	isApp := im.IsApp() && pf.v.Content != firmware.ContentMerged
	switch {
	case role == "bootloader" && isApp && im.Format == firmware.FormatESP32:
		pf.fail("placement", &firmware.NotAnAppError{Found: fmt.Sprintf("an app image at 0x%x, the bootloader offset", addr),
			Hint: "apps go to their partition (usually 0x10000); write the bootloader .bin here"}, true)
	case role == "bootloader":
		// A RAM-only image here is a bootloader: the offset is what makes one.
		pf.pass("placement", fmt.Sprintf("bootloader at the bootloader offset 0x%x", addr))
	case isApp && addr%0x10000 != 0 && im.Format == firmware.FormatESP32:
		pf.fail("placement", fmt.Errorf("an app image at 0x%x, which is not 64 KiB aligned: app partitions start on 64 KiB boundaries (usually 0x10000)", addr), true)
	case !isApp && im.Format == firmware.FormatESP32 && pf.t.Chip != firmware.ChipUnknown && im.Chip != pf.t.Chip:
		// The chip check names the mismatch; say where this board's goes.
		what := "bootloader image"
		if im.BootloaderDesc == nil {
			what = "RAM-only image (a bootloader or a RAM-only app)"
		}
		pf.fail("placement", fmt.Errorf("an %s %s at 0x%x; this board is %s, whose bootloader lives at 0x%x: write the %s bootloader there", im.Chip, what, addr, pf.t.Chip, bootloaderOffset(pf.t.Chip), pf.t.Chip), true)
	case !isApp && im.Format == firmware.FormatESP32 && im.BootloaderDesc != nil:
		pf.fail("placement", fmt.Errorf("a bootloader image (it carries a bootloader description) at 0x%x, but the %s bootloader lives at 0x%x: write it there", addr, im.Chip, bootloaderOffset(im.Chip)), true)
	case !isApp && im.Format == firmware.FormatESP32:
		pf.pass("placement", fmt.Sprintf("RAM-only app image at 0x%x", addr))
		pf.v.Warnings = append(pf.v.Warnings, ramOnlyWarning+fmt.Sprintf("; if it is a bootloader, it belongs at 0x%x", bootloaderOffset(im.Chip)))
	default:
		pf.pass("placement", fmt.Sprintf("%s at 0x%x", im.Kind(), addr))
	}
	pf.chip(im)
	if pf.t.ChipRevision >= 0 && pf.t.Chip != firmware.ChipUnknown {
		pf.check("revision", im.CheckRevision(pf.t.ChipRevision), fmt.Sprintf("chip v%d.%d", pf.t.ChipRevision/100, pf.t.ChipRevision%100))
	} else {
		pf.skip("revision", "the chip revision is not known")
	}
	pf.integrity(im)
	pf.signature(true)
}

func (pf *preflight) merged() {
	off := 0
	for _, o := range []int{0x1000, 0x2000} {
		if len(pf.data) > o && pf.data[o] == firmware.ImageMagic && pf.data[0] != firmware.ImageMagic {
			off = o
			break
		}
	}
	boot, err := firmware.ParseImage(pf.data[off:])
	if err != nil {
		pf.fail("integrity", err, true)
		return
	}
	// A merged file starts either at flash 0 (with padding before a
	// bootloader at 0x1000/0x2000) or at the bootloader offset itself.
	want := uint32(0)
	if off == 0 {
		want = bootloaderOffset(boot.Chip)
	}
	if pf.t.Address != want {
		pf.fail("placement", fmt.Errorf("a merged image (bootloader, partition table and app in one file) at 0x%x: this one must be written at 0x%x", pf.t.Address, want), true)
	} else {
		pf.pass("placement", fmt.Sprintf("merged image at 0x%x", want))
	}
	pf.chip(boot)
	pf.integrity(boot)
}

func (pf *preflight) partitionTable() {
	if len(pf.data) > 0 && pf.data[0] == firmware.ImageMagic {
		pf.fail("content", fmt.Errorf("an ESP image at 0x8000, where the partition table lives: write the partition table .bin (partition-table.bin) here"), true)
		return
	}
	if _, err := firmware.ParsePartitionTable(pf.data); err != nil {
		pf.fail("partition table", err, true)
		return
	}
	pf.pass("partition table", "valid partition table")
}

func (pf *preflight) chip(im *firmware.Image) {
	if pf.t.Chip == firmware.ChipUnknown {
		pf.skip("chip", "the target chip is not known (image is for "+im.Chip.String()+")")
		return
	}
	pf.check("chip", im.CheckChip(pf.t.Chip), im.Chip.String())
}

func (pf *preflight) integrity(im *firmware.Image) {
	if im.Format == firmware.FormatESP8266V2 {
		pf.skip("integrity", "ESP8266 v2 images carry no checksum espdeck reads")
		return
	}
	detail := "checksum ok"
	if im.HashAppended {
		detail = "checksum and SHA-256 ok"
	}
	pf.check("integrity", im.Verify(), detail)
}

// signature applies the key policy; a failure here is never overridable.
func (pf *preflight) signature(isImage bool) {
	if len(pf.p.SigningKeys) == 0 {
		if pf.v.Image != nil && pf.v.Image.Signature != nil {
			pf.skip("signature", "the image is signed but no signing key is configured to check it")
		} else {
			pf.skip("signature", "no signing key configured")
		}
		return
	}
	if !isImage {
		pf.fail("signature", &firmware.SignatureError{Reason: "the data is not a signed image", Err: firmware.ErrUnsigned}, false)
		return
	}
	res, err := firmware.VerifySignature(pf.data, pf.p.SigningKeys)
	if err != nil {
		pf.fail("signature", err, false)
		return
	}
	pf.v.Signature = &res
	pf.pass("signature", fmt.Sprintf("%s, block %d, key digest %x", res.Scheme, res.Block, res.KeyDigest[:8]))
}

func (pf *preflight) endOfFlash() {
	if pf.t.FlashSize == 0 {
		pf.skip("fit", "the flash size is not known")
		return
	}
	end := int64(pf.t.Address) + int64(len(pf.data))
	if end > int64(pf.t.FlashSize) {
		avail := max(int64(pf.t.FlashSize)-int64(pf.t.Address), 0)
		// Not overridable: the chip wraps the address and would overwrite
		// the bootloader. A wrongly detected size is fixed with --flash-size.
		pf.fail("fit", &firmware.TooLargeError{Image: int64(len(pf.data)), Slot: avail, SlotName: fmt.Sprintf("the flash from 0x%x to its end (%s chip)", pf.t.Address, sizeWord(pf.t.FlashSize)), EndOfFlash: true}, false)
		return
	}
	pf.pass("fit", fmt.Sprintf("ends at 0x%x of 0x%x", end, pf.t.FlashSize))
}

func mergedWhat(data []byte) string {
	off := 0
	for _, o := range []int{0x1000, 0x2000} {
		if len(data) > o && data[0] != firmware.ImageMagic && data[o] == firmware.ImageMagic {
			off = o
		}
	}
	if im, err := firmware.ParseImage(data[off:]); err == nil {
		return "the " + im.Chip.String() + " bootloader"
	}
	return "a bootloader"
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}

func sizeWord(n uint32) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20) // flash sizes are 1024-based
	}
	return humanize.Bytes(int64(n))
}

func bootloaderOffset(c firmware.Chip) uint32 {
	ci, _ := c.Info()
	return ci.BootloaderOffset
}
