package demo

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/espdeck/espdeck/firmware"
)

// App describes a sample application image for the demo.
type App struct {
	Chip    firmware.Chip
	Project string
	Version string
	Date    string // __DATE__ style: "Nov 21 2026"
	Size    int    // approximate size in bytes
}

// BuildApp returns a structurally valid app image whose filler compresses
// about as well as real code, so the demo's serial transfer times are honest.
func BuildApp(a App) []byte {
	rng := rand.New(rand.NewPCG(uint64(len(a.Project))<<32|uint64(a.Size), uint64(len(a.Version))))
	filler := func(n int) []byte {
		b := make([]byte, n&^3)
		var dict [48]uint32
		for i := range dict {
			dict[i] = rng.Uint32()
		}
		for i := 0; i+4 <= len(b); i += 4 {
			w := dict[rng.IntN(len(dict))]
			if rng.IntN(4) == 0 {
				w = rng.Uint32()
			}
			binary.LittleEndian.PutUint32(b[i:], w)
		}
		return b
	}
	spec := firmware.ImageSpec{Chip: a.Chip, FlashMode: firmware.FlashDIO, FlashSizeCode: 2, MaxRevFull: 0xFFFF}
	if a.Chip == firmware.ChipESP8266 {
		spec.Entry = 0x40100004
		spec.Segments = []firmware.SegmentSpec{
			{LoadAddr: 0x40100000, Data: filler(a.Size / 4)},
			{LoadAddr: 0x3FFE8000, Data: filler(a.Size - a.Size/4 - 64)},
		}
		return firmware.BuildImage(spec)
	}
	spec.Entry = 0x40080404
	spec.AppDesc = &firmware.AppDesc{Version: a.Version, ProjectName: a.Project, Time: "14:07:12", Date: a.Date, IDFVersion: "v5.5.1", MMUPageSize: 64 << 10}
	spec.Segments = []firmware.SegmentSpec{
		{LoadAddr: 0x40080000, Data: filler(16 << 10)},
		{LoadAddr: 0x400D0020, Data: filler(max(a.Size-(16<<10)-512, 1024))},
	}
	return firmware.BuildImage(spec)
}
