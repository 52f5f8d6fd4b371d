package serve

import (
	"context"
	"crypto"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/espdeck/espdeck/firmware"
)

// MaxImageSize bounds one served file: the largest ESP app slot is 16 MB,
// and every served file is held in memory as an immutable snapshot.
const MaxImageSize = 32 << 20

// Image is one published file: an immutable snapshot of its bytes taken
// when it was published, with what was computed from them then.
type Image struct {
	Name    string // file name = URL path
	Data    []byte // never modified after publishing
	MD5     string // hex, what Arduino's x-MD5 carries
	SHA256  string // hex
	ModTime time.Time

	// From the image, when it is an ESP app image.
	Chip      firmware.Chip
	IsApp     bool
	Project   string
	Version   string
	SignedBy  int // index of the policy key that verified it; -1 when unchecked
	Signed    bool
	AppMD5    string // MD5 of the image without its signature sector, when signed
	Refused   string // why policy refuses to serve it; empty when served
	Published time.Time
}

// Size is the number of bytes served for the whole file.
func (im *Image) Size() int64 { return int64(len(im.Data)) }

// fileStamp is what tells a changed file from an unchanged one.
type fileStamp struct {
	size int64
	mod  time.Time
}

// publish reads path into a snapshot and applies the signing policy.
func publish(ctx context.Context, path string, keys []crypto.PublicKey) (*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxImageSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a firmware image can be", fi.Name(), fi.Size(), MaxImageSize)
	}
	// Read through a limit: the file may grow while it is read.
	data, err := io.ReadAll(io.LimitReader(f, MaxImageSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxImageSize {
		return nil, fmt.Errorf("%s grew past %d bytes while being read", fi.Name(), MaxImageSize)
	}
	md := md5.Sum(data)
	sh := sha256.Sum256(data)
	im := &Image{Name: fi.Name(), Data: data, MD5: hex.EncodeToString(md[:]), SHA256: hex.EncodeToString(sh[:]),
		ModTime: fi.ModTime(), Chip: firmware.ChipUnknown, SignedBy: -1, Published: time.Now()}
	if p, err := firmware.ParseImage(data); err == nil {
		im.Chip = p.Chip
		if p.AppDesc != nil {
			im.IsApp = true
			im.Project, im.Version = p.AppDesc.ProjectName, p.AppDesc.Version
		}
		if p.Signature != nil {
			im.Signed = true
			am := md5.Sum(data[:p.Signature.Offset])
			im.AppMD5 = hex.EncodeToString(am[:])
		}
	}
	if len(keys) > 0 {
		res, err := firmware.VerifySignature(data, keys)
		if err != nil {
			var se *firmware.SignatureError
			if errors.As(err, &se) && errors.Is(err, firmware.ErrUnsigned) {
				im.Refused = "not signed, and a signing key policy is set"
			} else {
				im.Refused = "not signed by the configured key: " + err.Error()
			}
		} else {
			im.SignedBy = res.KeyIndex
		}
	}
	return im, nil
}

// scanDir lists the regular, visible files of dir with their stamps.
func scanDir(dir string) (map[string]fileStamp, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]fileStamp{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed between ReadDir and Info
			}
			return nil, err
		}
		out[e.Name()] = fileStamp{size: fi.Size(), mod: fi.ModTime()}
	}
	return out, nil
}

// Catalog is a published set of images; a new scan makes a new Catalog and
// never changes an old one, so a request holding a Catalog or an Image sees
// consistent bytes.
type Catalog struct {
	images map[string]*Image
	stamps map[string]fileStamp
	errs   map[string]string // files that could not be published, and why
}

// Images lists the catalog's images by name.
func (c *Catalog) Images() []*Image {
	out := make([]*Image, 0, len(c.images))
	for _, im := range c.images {
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Problems lists files that could not be published, by name.
func (c *Catalog) Problems() map[string]string { return c.errs }

// Lookup finds an image by its URL path (a file name).
func (c *Catalog) Lookup(name string) (*Image, bool) {
	im, ok := c.images[name]
	return im, ok
}

// rescan builds the next catalog from old, re-reading only files whose
// size or modification time changed.
func rescan(ctx context.Context, dir string, keys []crypto.PublicKey, old *Catalog) (*Catalog, []string, error) {
	stamps, err := scanDir(dir)
	if err != nil {
		return nil, nil, err
	}
	next := &Catalog{images: map[string]*Image{}, stamps: stamps, errs: map[string]string{}}
	var changed []string
	for name, st := range stamps {
		if old != nil {
			if prev, ok := old.stamps[name]; ok && prev == st {
				if im, ok := old.images[name]; ok {
					next.images[name] = im
					continue
				}
				if e, ok := old.errs[name]; ok {
					next.errs[name] = e
					continue
				}
			}
		}
		changed = append(changed, name)
		im, err := publish(ctx, filepath.Join(dir, name), keys)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			next.errs[name] = err.Error()
			continue
		}
		next.images[name] = im
	}
	if old != nil {
		for name := range old.stamps {
			if _, ok := stamps[name]; !ok {
				changed = append(changed, name)
			}
		}
	}
	sort.Strings(changed)
	return next, changed, nil
}
