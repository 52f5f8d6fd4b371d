package campaign

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/espdeck/espdeck/discovery"
	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/audit"
	"github.com/espdeck/espdeck/internal/ops"
)

// LoadImage reads an app image and learns what a campaign needs from it:
// its chip, its version and project (from the app description) and its
// SHA-256. A file that is not an app image is refused here, before any
// board is touched.
func LoadImage(p string) (Image, []byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return Image{}, nil, &Error{code: "usage", msg: fmt.Sprintf("cannot read the image: %v", err),
			hint: "check the path given with --image", err: err}
	}
	im, err := firmware.ParseImage(data)
	if err != nil {
		return Image{}, nil, &Error{code: "refused", msg: fmt.Sprintf("%s is not an app image: %v", p, err),
			hint: "a campaign sends the app .bin of a build (not a merged, bootloader or filesystem image)", err: err}
	}
	if !im.IsApp() {
		return Image{}, nil, &Error{code: "refused", msg: fmt.Sprintf("%s is a %s, not an app image", p, im.Kind()),
			hint: "a campaign sends the app .bin of a build"}
	}
	sum := sha256.Sum256(data)
	img := Image{Path: p, Chip: ops.ChipKey(im.Chip), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	if im.AppDesc != nil {
		img.Version, img.Project = im.AppDesc.Version, im.AppDesc.ProjectName
	}
	return img, data, nil
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// BoardFromDevice turns a discovered device into a campaign board.
func BoardFromDevice(d discovery.Device) Board {
	proto := string(d.Protocol)
	if d.Protocol == discovery.ProtocolManual {
		proto = string(discovery.ProtocolArduinoOTA)
	}
	return Board{
		ID: d.ID, Name: d.Name, Protocol: proto, Address: DeviceAddress(d), MAC: d.MAC,
		Chip: AnnouncedChip(d), Version: AnnouncedVersion(d), Project: d.TXT["project_name"], Auth: d.AuthUpload,
	}
}

// HostBoard is a hand-named ArduinoOTA host ("192.168.1.40" or
// "name.local:8266"); port 0 means the ESP32 default 3232. chip may be "".
func HostBoard(hostport, chip string) (Board, error) {
	host, port := hostport, 3232
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Board{}, fmt.Errorf("bad port in %q", hostport)
		}
		host, port = h, n
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return Board{}, fmt.Errorf("%q is not a host name or address", hostport)
	}
	if chip != "" {
		c, err := firmware.ParseChip(chip)
		if err != nil {
			return Board{}, err
		}
		chip = ops.ChipKey(c)
	}
	addr := joinHostPort(host, port)
	return Board{ID: "manual/" + addr, Name: hostport, Protocol: string(discovery.ProtocolArduinoOTA), Address: addr, Chip: chip}, nil
}

// SerialBoard is a board on a serial port (/dev/ttyUSB0, COM3, or
// socket://HOST:PORT), updated through its ROM loader; chip may be "".
func SerialBoard(port, chip string) (Board, error) {
	if strings.TrimSpace(port) == "" {
		return Board{}, fmt.Errorf("empty port name")
	}
	if chip != "" {
		c, err := firmware.ParseChip(chip)
		if err != nil {
			return Board{}, err
		}
		chip = ops.ChipKey(c)
	}
	return Board{ID: "serial/" + port, Name: port, Protocol: string(discovery.ProtocolSerial), Address: port, Chip: chip}, nil
}

// Selector picks discovered devices. Terms are separated by commas and all
// must match: "name=GLOB" (a bare GLOB means a name), "board=X",
// "platform=X", "protocol=X", "chip=X", "txt.KEY=VALUE". Globs use path.Match
// (*, ?, [a-z]); values compare case-insensitively.
type Selector []selTerm

type selTerm struct{ key, value string }

// ParseSelector parses a --select expression; "" selects everything.
func ParseSelector(expr string) (Selector, error) {
	var s Selector
	for _, part := range strings.Split(expr, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			key, value = "name", part
		}
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		switch {
		case key == "name", key == "board", key == "platform", key == "protocol", key == "chip":
		case strings.HasPrefix(key, "txt.") && len(key) > 4:
		default:
			return nil, fmt.Errorf("unknown selector key %q (use name, board, platform, protocol, chip or txt.KEY)", key)
		}
		if _, err := path.Match(strings.ToLower(value), ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %v", value, err)
		}
		s = append(s, selTerm{key, value})
	}
	return s, nil
}

// Names reports whether s has a protocol term that matches p, so that
// boards of a protocol a campaign does not take by default (USB serial
// ports) join only when asked for by name.
func (s Selector) Names(p discovery.Protocol) bool {
	for _, t := range s {
		if t.key == "protocol" {
			if ok, _ := path.Match(strings.ToLower(t.value), string(p)); ok {
				return true
			}
		}
	}
	return false
}

// Match reports whether d passes every term.
func (s Selector) Match(d discovery.Device) bool {
	for _, t := range s {
		var got string
		switch {
		case t.key == "name":
			got = d.Name
		case t.key == "board":
			got = d.Board
		case t.key == "platform":
			got = d.Platform
		case t.key == "protocol":
			got = string(d.Protocol)
		case t.key == "chip":
			got = AnnouncedChip(d)
		default:
			got = d.TXT[strings.TrimPrefix(t.key, "txt.")]
		}
		if ok, _ := path.Match(strings.ToLower(t.value), strings.ToLower(got)); !ok {
			return false
		}
	}
	return true
}

// Plan builds a new campaign: one row per board, each with the image of its
// chip. A board whose chip matches no image is skipped, never sent another
// chip's image; a board whose chip is unknown gets the image only when the
// campaign has exactly one (as 'ota upload' without --chip does).
func Plan(boards []Board, images []Image, s Settings, now time.Time) (*File, error) {
	if len(images) == 0 {
		return nil, &Error{code: "usage", msg: "a campaign needs an image", hint: "give one with --image FILE (one per chip family)"}
	}
	byChip := map[string]Image{}
	for _, im := range images {
		if prev, dup := byChip[im.Chip]; dup {
			return nil, &Error{code: "usage", msg: fmt.Sprintf("two images for %s: %s and %s", im.Chip, prev.Path, im.Path),
				hint: "give one image per chip family"}
		}
		byChip[im.Chip] = im
	}
	if len(boards) == 0 {
		return nil, &Error{code: "no_targets", msg: "no boards to update",
			hint: "check --select, or name boards with --host or --hosts-file; 'espdeck list' shows what discovery sees"}
	}
	f := &File{ID: newID(now), Created: now.UTC(), Settings: s.withDefaults(), Images: images}
	seen := map[string]bool{}
	for _, b := range boards {
		if seen[b.ID] {
			continue
		}
		seen[b.ID] = true
		r := Row{Board: b, State: Queued, FromVersion: b.Version, Updated: now.UTC()}
		im, ok := byChip[b.Chip]
		switch {
		case ok:
		case b.Chip == "" && len(images) == 1:
			im, ok = images[0], true
		case b.Chip == "":
			r.State, r.Code = Skipped, "chip_unknown"
			r.Message = "the board does not announce its chip and the campaign has images for several"
			r.Hint = "name its chip (TXT chip=…, or --host HOST --chip CHIP), or run a campaign per chip"
		default:
			r.State, r.Code = Skipped, "no_image_for_chip"
			r.Message = fmt.Sprintf("no image for its chip (%s)", b.Chip)
			r.Hint = "add an image built for " + b.Chip + " with another --image"
		}
		if ok {
			r.Image, r.ToVersion = im.SHA256, im.Version
		}
		f.Rows = append(f.Rows, r)
	}
	return f, nil
}

func newID(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// ReadHostsFile reads one HOST[:PORT] per line, with an optional chip after
// whitespace ("192.168.1.40 esp32s3"); # starts a comment.
func ReadHostsFile(p string) ([]Board, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read the hosts file: %w", err)
	}
	var out []Board
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		chip := ""
		if len(fields) > 1 {
			chip = fields[1]
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("%s:%d: want HOST[:PORT] [CHIP]", filepath.Base(p), i+1)
		}
		bd, err := HostBoard(fields[0], chip)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", filepath.Base(p), i+1, err)
		}
		out = append(out, bd)
	}
	return out, nil
}

// LastWrites indexes update records by board: for each board (by MAC,
// else by name and address) the latest attempt that ended "ok". Runner
// uses it to know what a board runs when it announces no version.
func LastWrites(recs []audit.Record) func(Board) (audit.Record, bool) {
	byMAC, byAddr := map[string]audit.Record{}, map[string]audit.Record{}
	for _, r := range recs {
		if r.Kind != audit.KindUpdate || r.Result != "ok" {
			continue
		}
		if m := normalMAC(r.MAC); m != "" {
			byMAC[m] = r
		}
		byAddr[r.Board+"\x00"+r.Address] = r
	}
	return func(b Board) (audit.Record, bool) {
		if m := normalMAC(b.MAC); m != "" {
			r, ok := byMAC[m]
			return r, ok
		}
		r, ok := byAddr[b.Name+"\x00"+b.Address]
		return r, ok
	}
}

func normalMAC(s string) string {
	var out []byte
	for _, c := range strings.ToLower(s) {
		if (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') {
			out = append(out, byte(c))
		}
	}
	return string(out)
}
