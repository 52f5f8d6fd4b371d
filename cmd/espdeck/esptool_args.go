package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/espdeck/espdeck/firmware"
)

// esptool's command line, verbatim: the upload lines of the Arduino cores
// and PlatformIO put global options before the verb, use v4 spellings
// (write_flash, --flash_mode, default_reset) or v5 ones (write-flash,
// --flash-mode, default-reset), and pass options espdeck decides by
// itself (-z). translateEsptool turns such a line into espdeck's own
// arguments, so the serial command parses one grammar only.

// esptoolVerbs maps esptool's (and espflash's) verbs to espdeck's
// arguments. v4 spellings use '_', v5 ones '-'; both are listed.
var esptoolVerbs = map[string][]string{
	"write_flash": {"serial", "write"}, "write-flash": {"serial", "write"},
	"read_flash": {"serial", "read"}, "read-flash": {"serial", "read"},
	"erase_flash": {"serial", "erase", "--all"}, "erase-flash": {"serial", "erase", "--all"},
	"erase_region": {"serial", "erase"}, "erase-region": {"serial", "erase"},
	"chip_id": {"serial", "info"}, "chip-id": {"serial", "info"},
	"flash_id": {"serial", "info"}, "flash-id": {"serial", "info"},
	"read_mac": {"serial", "info"}, "read-mac": {"serial", "info"},
	"read_flash_status": {"serial", "info"}, "read-flash-status": {"serial", "info"},
	"get_security_info": {"serial", "info"}, "get-security-info": {"serial", "info"},
	"board-info": {"serial", "info"}, // espflash
	"image_info": {"image", "info"}, "image-info": {"image", "info"},
	"verify_flash": {"serial", "verify"}, "verify-flash": {"serial", "verify"},
	"run": {"serial", "reset"},
}

// esptoolValueOptions take a value; the key is how espdeck spells it ("" =
// accepted and dropped, with a note saying why).
var esptoolValueOptions = map[string]string{
	"--chip": "--chip", "-c": "--chip",
	"--port": "--port", "-p": "--port",
	"--baud": "--baud", "-b": "--baud",
	"--before": "--before", "--after": "--after",
	"--flash_mode": "", "--flash-mode": "", "-fm": "",
	"--flash_freq": "", "--flash-freq": "", "-ff": "",
	"--flash_size": "", "--flash-size": "", "-fs": "",
	"--connect-attempts": "", "--connect_attempts": "",
	"--spi-connection": "", "--spi_connection": "",
}

// esptoolFlags take no value; same convention.
var esptoolFlags = map[string]string{
	"-u": "--no-compress", "--no-compress": "--no-compress",
	"-z": "", "--compress": "",
	"--no-stub": "", "--trace": "", "-t": "",
	"--verify": "", "--no-progress": "",
	"--erase-all": "", "-e": "",
	"--force":        "--force",
	"--skip-flashed": "",
}

var esptoolBefore = map[string]string{
	"default_reset": "default", "default-reset": "default",
	"usb_reset": "usb-jtag", "usb-reset": "usb-jtag",
	"no_reset": "no-reset", "no-reset": "no-reset",
	"no_reset_no_sync": "no-reset", "no-reset-no-sync": "no-reset",
}

var esptoolAfter = map[string]string{
	"hard_reset": "hard-reset", "hard-reset": "hard-reset",
	"soft_reset": "hard-reset", "soft-reset": "hard-reset",
	"watchdog_reset": "hard-reset", "watchdog-reset": "hard-reset",
	"no_reset": "no-reset", "no-reset": "no-reset",
	"no_reset_stay": "no-reset", "no-reset-stay": "no-reset",
}

// esptoolLine is a translated esptool command line.
type esptoolLine struct {
	// steps are espdeck argument lists to run in order (an --erase-all
	// write is an erase, then the write).
	steps [][]string
	// notes say what was taken differently from esptool.
	notes []string
	// temp lists files made for the run (patched bootloader copies).
	temp []string
}

// isEsptoolLine reports whether args look like an esptool command line:
// an esptool verb first, or esptool's global options before a verb.
func isEsptoolLine(args []string) bool {
	if len(args) == 0 {
		return false
	}
	if _, ok := esptoolVerbs[args[0]]; ok {
		return true
	}
	if _, ok := esptoolValueOptions[args[0]]; ok && args[0] != "--port" && args[0] != "-p" {
		return true
	}
	// --port P / --baud B before an esptool verb.
	for i, a := range args {
		if _, ok := esptoolVerbs[a]; ok {
			return i > 0 && strings.HasPrefix(args[0], "-")
		}
	}
	return false
}

// translateEsptool turns an esptool command line into espdeck's
// arguments. getenv supplies ESPTOOL_PORT, ESPTOOL_BAUD and ESPTOOL_CHIP,
// used when neither the line nor espdeck's own variables give them.
func translateEsptool(args []string, getenv func(string) string) (*esptoolLine, error) {
	l := &esptoolLine{}
	var verb []string
	var opts, pos []string
	have := map[string]bool{}
	flashParams := map[string]string{}
	eraseAll := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		if v, ok := esptoolVerbs[a]; ok && verb == nil {
			verb = v
			continue
		}
		if to, ok := esptoolValueOptions[name]; ok {
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("%s needs a value", name)
				}
				i++
				value = args[i]
			}
			switch {
			case to == "--before":
				b, ok := esptoolBefore[value]
				if !ok {
					return nil, fmt.Errorf("--before %s: not an esptool value (%s)", value, keys(esptoolBefore))
				}
				if strings.Contains(value, "no_sync") || strings.Contains(value, "no-sync") {
					l.notes = append(l.notes, "--before "+value+": espdeck still syncs with the ROM (it talks to the ROM only, never to a stub already running)")
				}
				value = b
			case to == "--after":
				af, ok := esptoolAfter[value]
				if !ok {
					return nil, fmt.Errorf("--after %s: not an esptool value (%s)", value, keys(esptoolAfter))
				}
				if strings.HasPrefix(value, "soft") || strings.HasPrefix(value, "watchdog") {
					l.notes = append(l.notes, "--after "+value+": espdeck resets through EN (hard reset) instead; the ROM loader has no soft reset, and a watchdog reset needs the stub")
				}
				value = af
			case to == "":
				switch {
				case strings.Contains(name, "mode"):
					flashParams["mode"] = value
				case strings.Contains(name, "freq"):
					flashParams["freq"] = value
				case strings.Contains(name, "size"):
					flashParams["size"] = value
				}
				continue
			}
			have[to] = true
			opts = append(opts, to, value)
			continue
		}
		if to, ok := esptoolFlags[a]; ok {
			switch a {
			case "--erase-all", "-e":
				eraseAll = true
			case "-z", "--compress":
				l.notes = append(l.notes, a+": espdeck compresses where that cannot change a byte outside the written regions, and writes small structures plain")
			case "--skip-flashed":
				// espdeck writes only changed sectors by default.
			}
			if to != "" {
				opts = append(opts, to)
			}
			continue
		}
		pos = append(pos, a)
	}
	if verb == nil {
		return nil, fmt.Errorf("no esptool command in %q%s", strings.Join(args, " "), didYouMeanEsptool(pos))
	}
	for env, opt := range map[string]string{"ESPTOOL_PORT": "--port", "ESPTOOL_BAUD": "--baud", "ESPTOOL_CHIP": "--chip"} {
		own := strings.Replace(env, "ESPTOOL", "ESPDECK", 1)
		if v := getenv(env); v != "" && !have[opt] && getenv(own) == "" {
			opts = append(opts, opt, v)
		}
	}
	// esptool's verify_flash patches the bootloader the same way before
	// comparing, so a verify after a write with these options matches.
	if len(flashParams) > 0 && verb[0] == "serial" && (verb[1] == "write" || verb[1] == "verify") {
		var err error
		pos, err = l.applyFlashParams(pos, flashParams, chipOf(opts))
		if err != nil {
			l.removeTemp() // copies made before the failing one
			return nil, err
		}
	}
	if verb[0] == "image" {
		// Offline: only the file matters; --chip and the link are moot.
		l.steps = append(l.steps, append([]string{"image", "info"}, pos...))
		return l, nil
	}
	if eraseAll && verb[1] == "write" {
		erase := append([]string{"serial", "erase", "--all", "--yes", "--after", "no-reset"}, withoutAfter(opts)...)
		l.steps = append(l.steps, erase)
	}
	l.steps = append(l.steps, append(append(append([]string(nil), verb...), pos...), opts...))
	return l, nil
}

// applyFlashParams applies --flash_mode/--flash_freq/--flash_size to the
// bootloader image, as esptool does: only the image written at the chip's
// bootloader offset, on a copy. "keep" leaves a field as it is; "detect"
// for the size is kept too (the header's size is what the build chose).
func (l *esptoolLine) applyFlashParams(pos []string, params map[string]string, chip firmware.Chip) ([]string, error) {
	out := append([]string(nil), pos...)
	for i := 0; i+1 < len(out); i += 2 {
		addr, err := parseUint(out[i])
		if err != nil {
			continue
		}
		data, err := os.ReadFile(out[i+1])
		if err != nil || len(data) < 24 || data[0] != firmware.ImageMagic {
			continue
		}
		c := chip
		if c == firmware.ChipUnknown {
			if im, err := firmware.ParseImage(data); err == nil {
				c = im.Chip
			}
		}
		ci, ok := c.Info()
		if !ok || uint32(addr) != ci.BootloaderOffset {
			continue
		}
		fp, notes, err := flashParamsFor(params)
		if err != nil {
			return nil, err
		}
		l.notes = append(l.notes, notes...)
		if fp.Mode == nil && fp.FreqCode == nil && fp.SizeCode == nil {
			continue
		}
		patched, err := firmware.PatchFlashParams(data, fp)
		if err != nil {
			return nil, fmt.Errorf("apply --flash_mode/--flash_freq/--flash_size to %s: %w", out[i+1], err)
		}
		name, err := l.writeTemp(filepath.Base(out[i+1]), patched)
		if err != nil {
			return nil, fmt.Errorf("apply --flash_mode/--flash_freq/--flash_size to %s: %w", out[i+1], err)
		}
		out[i+1] = name
	}
	return out, nil
}

// writeTemp writes data to a new temporary file and remembers it for
// removal. A short write must fail here: the copy is what gets flashed,
// and a truncated bootloader leaves the board unable to boot.
func (l *esptoolLine) writeTemp(base string, data []byte) (string, error) {
	tmp, err := os.CreateTemp("", "espdeck-"+base+"-*")
	if err != nil {
		return "", err
	}
	l.temp = append(l.temp, tmp.Name())
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", werr
	}
	return tmp.Name(), nil
}

// removeTemp removes the files writeTemp made.
func (l *esptoolLine) removeTemp() {
	for _, f := range l.temp {
		os.Remove(f)
	}
	l.temp = nil
}

// flashParamsFor maps esptool's values to header fields.
func flashParamsFor(p map[string]string) (firmware.FlashParams, []string, error) {
	var fp firmware.FlashParams
	var notes []string
	if v, ok := p["mode"]; ok && v != "keep" {
		m, ok := map[string]firmware.FlashMode{"qio": firmware.FlashQIO, "qout": firmware.FlashQOUT, "dio": firmware.FlashDIO, "dout": firmware.FlashDOUT}[strings.ToLower(v)]
		if !ok {
			return fp, nil, fmt.Errorf("--flash_mode %s: use keep, qio, qout, dio or dout", v)
		}
		fp.Mode = &m
	}
	if v, ok := p["freq"]; ok && v != "keep" {
		f, ok := map[string]byte{"40m": 0x0, "26m": 0x1, "20m": 0x2, "80m": 0xF}[strings.ToLower(v)]
		if !ok {
			notes = append(notes, "--flash_freq "+v+": kept as the image has it (espdeck knows 20m, 26m, 40m and 80m)")
		} else {
			fp.FreqCode = &f
		}
	}
	if v, ok := p["size"]; ok && v != "keep" {
		if v == "detect" {
			notes = append(notes, "--flash_size detect: the bootloader header keeps the size the build gave it")
		} else {
			s, ok := map[string]byte{"1mb": 0, "2mb": 1, "4mb": 2, "8mb": 3, "16mb": 4, "32mb": 5, "64mb": 6, "128mb": 7}[strings.ToLower(v)]
			if !ok {
				return fp, nil, fmt.Errorf("--flash_size %s: use keep, detect or 1MB…128MB", v)
			}
			fp.SizeCode = &s
		}
	}
	return fp, notes, nil
}

func chipOf(opts []string) firmware.Chip {
	for i := 0; i+1 < len(opts); i++ {
		if opts[i] == "--chip" {
			if c, err := firmware.ParseChip(opts[i+1]); err == nil {
				return c
			}
		}
	}
	return firmware.ChipUnknown
}

func withoutAfter(opts []string) []string {
	var out []string
	for i := 0; i < len(opts); i++ {
		if opts[i] == "--after" {
			i++
			continue
		}
		out = append(out, opts[i])
	}
	return out
}

func keys(m map[string]string) string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return strings.Join(k, ", ")
}

// didYouMeanEsptool suggests the esptool verb closest to the first word.
func didYouMeanEsptool(words []string) string {
	if len(words) == 0 {
		return ""
	}
	if v := closestEsptoolVerb(words[0]); v != "" {
		return fmt.Sprintf(": did you mean %q?", v)
	}
	return ""
}

// closestEsptoolVerb is the esptool verb within three edits of word, or "".
func closestEsptoolVerb(word string) string { return closestKey(word, esptoolVerbs) }

// closestKey is the key of m within three edits of word, or "" (the
// alphabetically first of equally close ones, so the answer is stable).
func closestKey[V any](word string, m map[string]V) string {
	best, dist := "", 4
	for k := range m {
		if d := editDistance(word, k); d < dist || (d == dist && k < best) {
			best, dist = k, d
		}
	}
	return best
}

// runEsptoolLine runs an esptool command line through espdeck's own
// commands, saying what it takes differently.
func runEsptoolLine(c *cli, args []string) int {
	l, err := translateEsptool(args, c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "espdeck: %v\n  espdeck understands esptool's command lines (see 'espdeck serial --help')\n", err)
		return exitUsage
	}
	defer l.removeTemp()
	for _, n := range l.notes {
		fmt.Fprintf(c.stderr, "espdeck: note: %s\n", n)
	}
	for _, step := range l.steps {
		if code := run(c.ctx, step, c.stdin, c.stdout, c.stderr, c.getenv); code != exitOK {
			return code
		}
	}
	return exitOK
}
