package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
)

// memFlash is flash with NOR semantics: erase sets whole 4 KB sectors to
// FF, programming can only clear bits. It records every erase and write.
type memFlash struct {
	mu     sync.Mutex
	data   []byte
	erases [][2]uint32 // addr, size
	writes [][2]uint32
	// corruptWrite flips a bit in the next programmed byte (a failing flash).
	corruptWrite bool
}

func newMemFlash(data []byte) *memFlash { return &memFlash{data: bytes.Clone(data)} }

func (m *memFlash) ReadFlash(ctx context.Context, addr, size uint32) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if uint64(addr)+uint64(size) > uint64(len(m.data)) {
		return nil, fmt.Errorf("read 0x%x+0x%x beyond the 0x%x-byte flash", addr, size, len(m.data))
	}
	return bytes.Clone(m.data[addr : addr+size]), nil
}

func (m *memFlash) erase(addr, size uint32) error {
	if addr%0x1000 != 0 || size%0x1000 != 0 {
		return fmt.Errorf("erase 0x%x+0x%x is not sector aligned", addr, size)
	}
	if uint64(addr)+uint64(size) > uint64(len(m.data)) {
		return errors.New("erase beyond flash")
	}
	for i := addr; i < addr+size; i++ {
		m.data[i] = 0xFF
	}
	m.erases = append(m.erases, [2]uint32{addr, size})
	return nil
}

func (m *memFlash) EraseRegion(ctx context.Context, addr, size uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.erase(addr, size)
}

func (m *memFlash) WriteFlash(ctx context.Context, addr uint32, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := (addr + uint32(len(data)) + 0xFFF) &^ 0xFFF
	if err := m.erase(addr&^0xFFF, end-addr&^0xFFF); err != nil {
		return err
	}
	for i, b := range data {
		m.data[addr+uint32(i)] &= b // NOR: bits only go from 1 to 0
	}
	if m.corruptWrite {
		m.data[addr] ^= 0x01
		m.corruptWrite = false
	}
	m.writes = append(m.writes, [2]uint32{addr, uint32(len(data))})
	return nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func demo(t *testing.T, apps ...DemoApp) *memFlash {
	t.Helper()
	f, err := DemoFlash(firmware.ChipESP32, apps...)
	require.NoError(t, err)
	return newMemFlash(f)
}

// appSlots returns the bytes of every app partition of the demo layout.
func appSlots(t *testing.T, m *memFlash) map[string][]byte {
	t.Helper()
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, p := range tab.Partitions {
		if p.IsApp() {
			out[p.Name] = bytes.Clone(m.data[p.Offset:p.End()])
		}
	}
	return out
}

func TestReadPartitionStateDemo(t *testing.T) {
	m := demo(t)
	st, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32, FullCheck: true})
	require.NoError(t, err)
	require.Equal(t, uint32(0x8000), st.TableOffset)
	require.Len(t, st.Rows, 6)
	require.Equal(t, "ota_0", st.BootsNext)
	require.Equal(t, "ota_0", st.Running)
	require.Contains(t, st.BootsNextWhy, "copy 0")
	require.False(t, st.Rollback)
	r, ok := st.Row("ota_1")
	require.True(t, ok)
	require.Equal(t, 1, r.OTASlot)
	require.True(t, r.App.Valid, r.App.Problem)
	require.Equal(t, "full", r.App.Checked)
	require.Equal(t, "2.1.0", r.App.Version)
	require.Equal(t, "greenhouse", r.App.Project)
	r0, _ := st.Row("ota_0")
	require.True(t, r0.BootsNext)
	require.Equal(t, "valid", r0.OTAState)
	require.Equal(t, "", r.OTAState, "no copy selects ota_1")
	require.True(t, st.OTAData.Copies[0].CRCOK)
	require.True(t, st.OTAData.Copies[1].Empty)
	nvs, _ := st.Row("nvs")
	require.Nil(t, nvs.App)
	require.Empty(t, m.writes, "reading writes nothing")
	require.Empty(t, m.erases)

	// The wrong chip makes every app invalid.
	st, err = ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32S3})
	require.NoError(t, err)
	r, _ = st.Row("ota_0")
	require.False(t, r.App.Valid)
	require.Contains(t, r.App.Problem, "ESP32-S3")
}

func TestSwitchBootSlotRoundTrip(t *testing.T) {
	m := demo(t)
	before := appSlots(t, m)
	var asked []SlotChange
	o := ChangeOptions{Chip: firmware.ChipESP32, Confirm: func(c SlotChange) bool { asked = append(asked, c); return true }}

	st, ch, err := SwitchBootSlot(ctxT(t), m, 0x8000, "ota_1", o)
	require.NoError(t, err)
	require.Equal(t, "ota_1", st.BootsNext)
	require.Equal(t, "ota_1", ch.BootsNext)
	require.Len(t, asked, 1)
	require.Contains(t, asked[0].Writes, "copy 1 at 0xe000: seq 2")
	// §5.6: the other copy got seq 2; copy 0 untouched.
	e1, _ := firmware.DecodeOTAEntry(m.data[0xE000:])
	require.Equal(t, firmware.NewOTAEntry(2, firmware.OTAStateNew), e1, "the board writes states, so NEW as ESP-IDF would")
	e0, _ := firmware.DecodeOTAEntry(m.data[0xD000:])
	require.Equal(t, firmware.NewOTAEntry(1, firmware.OTAStateValid), e0)
	require.Equal(t, [][2]uint32{{0xE000, 0x1000}}, m.writes)

	// A fresh read agrees.
	st, err = ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	require.Equal(t, "ota_1", st.BootsNext)

	// Switching to the slot that already boots next writes nothing.
	n := len(m.writes)
	st, ch, err = SwitchBootSlot(ctxT(t), m, 0x8000, "ota_1", o)
	require.NoError(t, err)
	require.Contains(t, ch.Writes, "nothing")
	require.Equal(t, "ota_1", st.BootsNext, "the state returned is still the board's")
	require.Equal(t, n, len(m.writes))
	require.Len(t, asked, 1, "and asks nothing")

	// And back: seq 3 into copy 0.
	st, _, err = SwitchBootSlot(ctxT(t), m, 0x8000, "ota_0", o)
	require.NoError(t, err)
	require.Equal(t, "ota_0", st.BootsNext)
	e0, _ = firmware.DecodeOTAEntry(m.data[0xD000:])
	require.Equal(t, uint32(3), e0.Seq)

	// Factory: erases otadata.
	st, ch, err = SwitchBootSlot(ctxT(t), m, 0x8000, "factory", o)
	require.NoError(t, err)
	require.Equal(t, "erase-otadata", ch.Action)
	require.Equal(t, "factory", st.BootsNext)

	require.Equal(t, before, appSlots(t, m), "app slots are never written")
	for _, w := range append(m.writes, m.erases...) {
		require.True(t, w[0] >= 0xD000 && w[0]+w[1] <= 0xF000, "write 0x%x+0x%x outside otadata", w[0], w[1])
	}
}

func TestSwitchRefusesInvalidTarget(t *testing.T) {
	m := demo(t)
	// Corrupt one byte inside ota_1's image: the SHA-256 no longer matches.
	m.data[0x210000+0x300] ^= 0xFF
	before := appSlots(t, m)
	_, _, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Chip: firmware.ChipESP32})
	require.ErrorIs(t, err, ErrInvalidSlotImage)
	var se *SlotImageError
	require.ErrorAs(t, err, &se)
	require.Contains(t, se.Hint(), "--force")
	require.Empty(t, m.writes)
	require.Empty(t, m.erases)

	// --force goes on, with a warning.
	st, ch, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Chip: firmware.ChipESP32, Force: true})
	require.NoError(t, err)
	require.Equal(t, "ota_1", st.BootsNext)
	require.NotEmpty(t, ch.Warnings)
	require.Equal(t, before, appSlots(t, m))

	// An erased slot is refused even with --force.
	m = demo(t, DemoApp{Slot: "ota_0", Project: "p", Version: "1", Size: 4096})
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Force: true})
	require.ErrorIs(t, err, ErrInvalidSlotImage)
	require.ErrorContains(t, err, "erased")

	// The wrong chip.
	m = demo(t)
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Chip: firmware.ChipESP32C3})
	require.ErrorContains(t, err, "built for ESP32, this board is ESP32-C3")

	// Unknown and non-OTA partitions.
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "ota_7", ChangeOptions{})
	require.ErrorIs(t, err, ErrUnknownPartition)
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "nvs", ChangeOptions{})
	require.ErrorIs(t, err, ErrUnknownPartition)
	require.Empty(t, m.writes)
}

func TestSwitchDeclinedWritesNothing(t *testing.T) {
	m := demo(t)
	_, ch, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Confirm: func(SlotChange) bool { return false }})
	require.ErrorIs(t, err, ErrDeclined)
	require.Equal(t, "ota_1", ch.BootsNext)
	require.Empty(t, m.writes)
}

func TestSwitchDetectsBadReadBack(t *testing.T) {
	m := demo(t)
	m.corruptWrite = true
	_, _, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{})
	require.ErrorIs(t, err, ErrReadBack)
}

func TestEraseOtadata(t *testing.T) {
	m := demo(t)
	before := appSlots(t, m)
	st, ch, err := EraseOtadata(ctxT(t), m, 0, ChangeOptions{})
	require.NoError(t, err)
	require.Equal(t, "factory", ch.BootsNext)
	require.Equal(t, "factory", st.BootsNext)
	require.Equal(t, [][2]uint32{{0xD000, 0x2000}}, m.erases)
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 0x2000), m.data[0xD000:0xF000])
	require.Equal(t, before, appSlots(t, m))

	// Without a factory app the bootloader takes ota_0.
	tab, _ := firmware.ParsePartitionCSV([]byte("nvs,data,nvs,,0x4000\notadata,data,ota,,0x2000\nota_0,app,ota_0,,1M\nota_1,app,ota_1,,1M\n"), firmware.CSVOptions{})
	bin, _ := tab.MarshalBinary()
	copy(m.data[0x8000:], bin)
	st, _, err = EraseOtadata(ctxT(t), m, 0, ChangeOptions{})
	require.NoError(t, err)
	require.Equal(t, "ota_0", st.BootsNext)
	require.Contains(t, st.BootsNextWhy, "no factory app")
}

func TestMarkRunning(t *testing.T) {
	m := demo(t)
	// An OTA update to ota_1 that booted and has not confirmed itself:
	// copy 1 seq 2 PENDING_VERIFY (rollback build).
	copy(m.data[0xE000:], firmware.NewOTAEntry(2, firmware.OTAStatePendingVerify).Encode())
	st, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{})
	require.NoError(t, err)
	require.True(t, st.Rollback)
	require.Equal(t, "ota_1", st.Running, "the pending app is the one running")
	require.Equal(t, "ota_0", st.BootsNext, "without a verdict the next reset rolls back")

	st, ch, err := MarkRunning(ctxT(t), m, 0, firmware.OTAStateValid, ChangeOptions{})
	require.NoError(t, err)
	require.Equal(t, "ota_1", st.BootsNext)
	require.Contains(t, ch.Writes, "pending verify → valid")
	e1, _ := firmware.DecodeOTAEntry(m.data[0xE000:])
	require.Equal(t, firmware.NewOTAEntry(2, firmware.OTAStateValid), e1)

	st, _, err = MarkRunning(ctxT(t), m, 0, firmware.OTAStateInvalid, ChangeOptions{})
	require.NoError(t, err)
	require.Equal(t, "ota_0", st.BootsNext)
	r, _ := st.Row("ota_1")
	require.Equal(t, "invalid", r.OTAState)

	_, _, err = MarkRunning(ctxT(t), m, 0, firmware.OTAStateNew, ChangeOptions{})
	require.Error(t, err)

	// Erased otadata: nothing to mark.
	_, _, err = EraseOtadata(ctxT(t), m, 0, ChangeOptions{})
	require.NoError(t, err)
	_, _, err = MarkRunning(ctxT(t), m, 0, firmware.OTAStateInvalid, ChangeOptions{})
	require.ErrorIs(t, err, ErrNothingToMark)
}

func TestBackupPartition(t *testing.T) {
	m := demo(t)
	data, p, err := BackupPartition(ctxT(t), m, 0, "ota_1")
	require.NoError(t, err)
	require.Equal(t, uint32(0x210000), p.Offset)
	require.Equal(t, m.data[0x210000:0x310000], data)
	_, _, err = BackupPartition(ctxT(t), m, 0, "nope")
	require.ErrorIs(t, err, ErrUnknownPartition)
}

func TestReadPartitionStateErrors(t *testing.T) {
	m := newMemFlash(bytes.Repeat([]byte{0xFF}, 0x10000))
	_, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{})
	require.ErrorIs(t, err, firmware.ErrNotPartitionTable)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ReadPartitionState(ctx, demo(t), 0, ReadOptions{})
	require.ErrorIs(t, err, context.Canceled)
}

func TestNonContiguousSlotsWarn(t *testing.T) {
	m := demo(t)
	tab, err := firmware.ParsePartitionCSV([]byte("nvs,data,nvs,,0x4000\notadata,data,ota,,0x2000\nota_0,app,ota_0,,1M\nota_2,app,ota_2,,1M\n"), firmware.CSVOptions{})
	require.NoError(t, err)
	bin, err := tab.MarshalBinary()
	require.NoError(t, err)
	copy(m.data[0x8000:], bin)
	st, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, st.Warnings)
	require.Contains(t, st.Warnings[0], "missing ota_1")
	// seq 1 → slot 0; a switch to ota_2 (slot 2 of 2) is impossible.
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "ota_2", ChangeOptions{})
	require.ErrorContains(t, err, "ota_2 cannot be selected")
	require.Empty(t, m.writes)
}
