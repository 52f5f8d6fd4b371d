package ops

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
)

// boardWith builds a 4 MB ESP32 flash with tab at 0x8000, a valid app in
// each named slot and otadata copies as given (nil leaves a copy erased).
func boardWith(t testing.TB, tab *firmware.PartitionTable, apps map[string][]byte, copies ...*firmware.OTAEntry) *memFlash {
	t.Helper()
	flash := bytes.Repeat([]byte{0xFF}, 4<<20)
	bin, err := tab.MarshalBinary()
	require.NoError(t, err)
	copy(flash[0x8000:], bin)
	for name, img := range apps {
		p, ok := tab.Find(name)
		require.True(t, ok, name)
		copy(flash[p.Offset:], img)
	}
	if otaP, ok := tab.OTAData(); ok {
		for i, c := range copies {
			if c != nil {
				copy(flash[otaP.Offset+uint32(i)*firmware.OTASectorSize:], c.Encode())
			}
		}
	}
	return newMemFlash(flash)
}

func entry(seq uint32, s firmware.OTAState) *firmware.OTAEntry {
	e := firmware.NewOTAEntry(seq, s)
	return &e
}

func appImg(version string) []byte {
	return DemoAppImage(firmware.ChipESP32, "p", version, 0x3000)
}

// shortOtadataTable is the table of defect 1: a 0x1000-byte otadata right
// before ota_0, so otadata "copy 1" at otadata+0x1000 is ota_0's first sector.
func shortOtadataTable() *firmware.PartitionTable {
	return &firmware.PartitionTable{Partitions: []firmware.Partition{
		{Name: "nvs", Type: firmware.TypeData, SubType: firmware.SubtypeDataNVS, Offset: 0x9000, Size: 0x6000},
		{Name: "factory", Type: firmware.TypeApp, SubType: firmware.SubtypeFactory, Offset: 0x10000, Size: 0xFF000},
		{Name: "otadata", Type: firmware.TypeData, SubType: firmware.SubtypeDataOTA, Offset: 0x10F000, Size: 0x1000},
		{Name: "ota_0", Type: firmware.TypeApp, SubType: 0x10, Offset: 0x110000, Size: 0x100000},
		{Name: "ota_1", Type: firmware.TypeApp, SubType: 0x11, Offset: 0x210000, Size: 0x100000},
	}}
}

// Defect 1: `slot switch --to ota_1 --yes` on a table whose otadata is
// 0x1000 bytes right before ota_0 wrote "copy 1" at 0x110000 (inside ota_0)
// and reported success; `slot erase-otadata --yes` erased ota_0's first
// sector. Now every slot write is refused and nothing is written, with
// --force too.
func TestDefect1SlotWriteIntoAppSlotOfShortOtadataIsRefused(t *testing.T) {
	apps := map[string][]byte{"factory": appImg("1"), "ota_0": appImg("2"), "ota_1": appImg("3")}
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("force=%v", force), func(t *testing.T) {
			m := boardWith(t, shortOtadataTable(), apps, entry(1, firmware.OTAStateValid))
			before := bytes.Clone(m.data)
			o := ChangeOptions{Chip: firmware.ChipESP32, Force: force}
			_, _, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", o)
			require.Error(t, err)
			require.Equal(t, CodeSlotWriteRefuse, CodeOf(err), err.Error())
			_, _, err = EraseOtadata(ctxT(t), m, 0, o)
			require.Error(t, err)
			require.Equal(t, CodeSlotWriteRefuse, CodeOf(err), err.Error())
			_, _, err = MarkSlot(ctxT(t), m, 0, "ota_0", firmware.OTAStateInvalid, o)
			require.Error(t, err)
			_, _, err = SwitchBootSlot(ctxT(t), m, 0, "factory", o)
			require.Error(t, err)
			require.Empty(t, m.writes)
			require.Empty(t, m.erases)
			require.Equal(t, before, m.data, "not a byte changed")
			if !force {
				require.Contains(t, err.Error(), "0x2000")
			}
		})
	}
}

// A table that fails validation for another reason (an overlap of two
// data partitions) refuses every slot write without --force and names the
// problem; with --force the writes go on, confined to otadata.
func TestInvalidTableRefusesSlotWritesNamingTheProblem(t *testing.T) {
	tab := &firmware.PartitionTable{Partitions: []firmware.Partition{
		{Name: "nvs", Type: firmware.TypeData, SubType: firmware.SubtypeDataNVS, Offset: 0x9000, Size: 0x5000},
		{Name: "otadata", Type: firmware.TypeData, SubType: firmware.SubtypeDataOTA, Offset: 0xD000, Size: 0x2000},
		{Name: "phy", Type: firmware.TypeData, SubType: 1, Offset: 0xD000, Size: 0x1000},
		{Name: "ota_0", Type: firmware.TypeApp, SubType: 0x10, Offset: 0x10000, Size: 0x100000},
		{Name: "ota_1", Type: firmware.TypeApp, SubType: 0x11, Offset: 0x110000, Size: 0x100000},
	}}
	m := boardWith(t, tab, map[string][]byte{"ota_0": appImg("1"), "ota_1": appImg("2")}, entry(1, firmware.OTAStateValid))
	_, _, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Chip: firmware.ChipESP32})
	require.Error(t, err)
	require.Equal(t, CodeSlotWriteRefuse, CodeOf(err))
	require.Contains(t, err.Error(), "overlaps")
	require.Empty(t, m.writes)

	st, ch, err := SwitchBootSlot(ctxT(t), m, 0, "ota_1", ChangeOptions{Chip: firmware.ChipESP32, Force: true})
	require.NoError(t, err)
	require.Equal(t, "ota_1", st.BootsNext)
	require.NotEmpty(t, ch.Warnings)
	for _, w := range m.writes {
		require.True(t, w[0] >= 0xD000 && w[0]+w[1] <= 0xF000)
	}
}

// Defect 3: with a text file in factory, `slot switch --to factory --yes`
// and `slot erase-otadata --yes` exited 0 and printed "factory … INVALID …
// [boots next]". Both now check the factory image first and refuse.
func TestDefect3SwitchToInvalidFactoryIsRefused(t *testing.T) {
	text := []byte("# README\nThis is not firmware.\n")
	apps := map[string][]byte{"factory": text, "ota_0": appImg("2"), "ota_1": appImg("3")}
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	m := boardWith(t, tab, apps, entry(1, firmware.OTAStateValid))
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "factory", ChangeOptions{Chip: firmware.ChipESP32})
	require.ErrorIs(t, err, ErrInvalidSlotImage)
	require.Equal(t, CodeInvalidSlot, CodeOf(err))
	require.Contains(t, err.Error(), "factory")
	_, _, err = EraseOtadata(ctxT(t), m, 0, ChangeOptions{Chip: firmware.ChipESP32})
	require.ErrorIs(t, err, ErrInvalidSlotImage)
	require.Empty(t, m.erases)
	require.Empty(t, m.writes)

	// Forced: the question says what will happen.
	var asked SlotChange
	_, _, err = EraseOtadata(ctxT(t), m, 0, ChangeOptions{Chip: firmware.ChipESP32, Force: true,
		Confirm: func(c SlotChange) bool { asked = c; return false }})
	require.ErrorIs(t, err, ErrDeclined)
	require.Contains(t, asked.Question(), "factory")
	require.Contains(t, asked.Question(), "not a valid app")
}

// A factory app with a corrupt body (header fine, SHA-256 wrong) is found
// by the full read before a switch to factory.
func TestSwitchToFactoryReadsTheWholeImage(t *testing.T) {
	bad := appImg("1")
	bad[len(bad)-40] ^= 0xFF
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	m := boardWith(t, tab, map[string][]byte{"factory": bad, "ota_0": appImg("2")}, entry(1, firmware.OTAStateValid))
	_, _, err = SwitchBootSlot(ctxT(t), m, 0, "factory", ChangeOptions{Chip: firmware.ChipESP32})
	require.ErrorIs(t, err, ErrInvalidSlotImage)
	require.Empty(t, m.erases)
}

// Defect 2: with ota_0 running and ota_1 pending (switched, not yet
// rebooted), the TUI's nextSlot fell back to ota_0 — the running app. The
// choice now lives in ops and refuses instead of guessing.
func TestDefect2NoAppSlotWhenOneRunsAndTheOtherBootsNext(t *testing.T) {
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	apps := map[string][]byte{"factory": appImg("1"), "ota_0": appImg("2"), "ota_1": appImg("3")}
	// ota_0 ran (seq 1 valid); ota_1 switched to with state new (seq 2).
	m := boardWith(t, tab, apps, entry(1, firmware.OTAStateValid), entry(2, firmware.OTAStateNew))
	st, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	require.Equal(t, "ota_0", st.Running)
	require.Equal(t, "ota_1", st.BootsNext)
	_, err = ChooseAppSlot(st)
	require.ErrorIs(t, err, ErrNoFreeSlot)
	require.Equal(t, CodeNoFreeSlot, CodeOf(err))

	// (Without rollback states a switch writes UNDEFINED, and otadata
	// cannot tell whether the board has reset since: its newest entry is
	// taken as the running app, as the bootloader would start it.)

	// ota_0 runs and boots next: ota_1 is free.
	m = boardWith(t, tab, apps, entry(1, firmware.OTAStateValid))
	st, err = ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	s, err := ChooseAppSlot(st)
	require.NoError(t, err)
	require.Equal(t, "ota_1", s.Row.Name)
	require.True(t, s.SwitchAfter)

	// otadata erased: factory runs and boots next, ota_0 is free.
	m = boardWith(t, tab, apps)
	st, err = ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	s, err = ChooseAppSlot(st)
	require.NoError(t, err)
	require.Equal(t, "ota_0", s.Row.Name)
}

// ChooseAppSlot never returns the running slot nor the one that boots
// next, for every otadata state of a two-slot table.
func TestChooseAppSlotNeverRunningNorNext(t *testing.T) {
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	apps := map[string][]byte{"factory": appImg("1"), "ota_0": appImg("2"), "ota_1": appImg("3")}
	for _, c := range otadataStates() {
		m := boardWith(t, tab, apps, c[0], c[1])
		st, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
		require.NoError(t, err)
		s, err := ChooseAppSlot(st)
		if err != nil {
			require.ErrorIs(t, err, ErrNoFreeSlot)
			continue
		}
		require.NotEqual(t, st.Running, s.Row.Name, "%s", st.OTAData.Summary)
		require.NotEqual(t, st.BootsNext, s.Row.Name, "%s", st.OTAData.Summary)
		require.NotEmpty(t, st.Running)
	}
}

// otadataStates is a set of otadata contents covering every state in
// each copy and both orders of sequence numbers.
func otadataStates() [][2]*firmware.OTAEntry {
	states := []firmware.OTAState{firmware.OTAStateNew, firmware.OTAStatePendingVerify, firmware.OTAStateValid,
		firmware.OTAStateInvalid, firmware.OTAStateAborted, firmware.OTAStateUndefined}
	out := [][2]*firmware.OTAEntry{{nil, nil}}
	for _, s0 := range states {
		out = append(out, [2]*firmware.OTAEntry{entry(1, s0), nil}, [2]*firmware.OTAEntry{nil, entry(2, s0)})
		for _, s1 := range states {
			out = append(out, [2]*firmware.OTAEntry{entry(1, s0), entry(2, s1)}, [2]*firmware.OTAEntry{entry(3, s0), entry(2, s1)})
		}
	}
	bad := firmware.NewOTAEntry(4, firmware.OTAStateValid)
	bad.CRC ^= 1
	out = append(out, [2]*firmware.OTAEntry{entry(1, firmware.OTAStateValid), &bad})
	return out
}

// Defect 4 and the shared-sentence rule: for every action × otadata
// state, the plan that the confirmation question is made from (the TUI
// shows the same Question()) predicts the app that the state read back
// after the write says boots next.
func TestDefect4PredictionMatchesReadBackForEveryActionAndState(t *testing.T) {
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	apps := map[string][]byte{"factory": appImg("1"), "ota_0": appImg("2"), "ota_1": appImg("3")}
	type action struct {
		name string
		run  func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error)
	}
	actions := []action{
		{"switch ota_0", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return SwitchBootSlot(ctxT(t), m, 0, "ota_0", o)
		}},
		{"switch ota_1", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return SwitchBootSlot(ctxT(t), m, 0, "ota_1", o)
		}},
		{"switch factory", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return SwitchBootSlot(ctxT(t), m, 0, "factory", o)
		}},
		{"erase", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return EraseOtadata(ctxT(t), m, 0, o)
		}},
		{"mark ota_0 invalid", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return MarkSlot(ctxT(t), m, 0, "ota_0", firmware.OTAStateInvalid, o)
		}},
		{"mark ota_1 invalid", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return MarkSlot(ctxT(t), m, 0, "ota_1", firmware.OTAStateInvalid, o)
		}},
		{"mark running valid", func(m *memFlash, o ChangeOptions) (*PartitionState, SlotChange, error) {
			return MarkSlot(ctxT(t), m, 0, "", firmware.OTAStateValid, o)
		}},
	}
	checked := 0
	for _, c := range otadataStates() {
		for _, a := range actions {
			m := boardWith(t, tab, apps, c[0], c[1])
			pre, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
			require.NoError(t, err)
			var asked *SlotChange
			o := ChangeOptions{Chip: firmware.ChipESP32, Confirm: func(ch SlotChange) bool { asked = &ch; return true }}
			_, ch, err := a.run(m, o)
			if err != nil || ch.NoChange {
				continue
			}
			require.NotNil(t, asked, "%s on %s: written without asking", a.name, pre.OTAData.Summary)
			require.Equal(t, asked.Question(), ch.Question())
			after, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
			require.NoError(t, err)
			require.Equal(t, after.BootsNext, ch.BootsNext, "%s on %s: predicted %s, read back %s (%s)",
				a.name, pre.OTAData.Summary, ch.BootsNext, after.BootsNext, after.BootsNextWhy)
			require.Contains(t, asked.Question(), "boots "+after.BootsNext)
			checked++
		}
	}
	require.Greater(t, checked, 100)
}

// The TUI case of defect 4: mark ota_0 invalid with factory present and
// ota_1 never selected: the prediction is factory, as the read-back says.
func TestDefect4MarkInvalidPredictsFactory(t *testing.T) {
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	m := boardWith(t, tab, map[string][]byte{"factory": appImg("1"), "ota_0": appImg("2"), "ota_1": appImg("3")}, entry(1, firmware.OTAStateValid))
	st, err := ReadPartitionState(ctxT(t), m, 0, ReadOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	ch, err := PlanMark(st, "ota_0", firmware.OTAStateInvalid, ChangeOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	require.Equal(t, "factory", ch.BootsNext)
	after, _, err := MarkSlot(ctxT(t), m, 0, "ota_0", firmware.OTAStateInvalid, ChangeOptions{Chip: firmware.ChipESP32})
	require.NoError(t, err)
	require.Equal(t, "factory", after.BootsNext)
}
