package ops

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
)

func demoTable(t *testing.T) *firmware.PartitionTable {
	t.Helper()
	tab, err := firmware.ParsePartitionCSV([]byte(DemoLayoutCSV+"storage, data, spiffs, , 0x80000,\n"), firmware.CSVOptions{})
	require.NoError(t, err)
	return tab
}

func serialTarget(t *testing.T, addr uint32) Target {
	return Target{Route: RouteSerial, Chip: firmware.ChipESP32, ChipRevision: 300, FlashSize: 4 << 20, Address: addr, Table: demoTable(t)}
}

// Defect 5: `serial write 0x10000 README.md` wrote a text file into the
// factory app slot and exited 0. It is refused, naming the partition and
// what was found; --force writes it with a warning.
func TestDefect5TextFileIntoAppPartitionIsRefused(t *testing.T) {
	readme := []byte("# espdeck\n\nThe workbench for ESP32 boards.\n")
	_, err := Preflight(readme, serialTarget(t, 0x10000), Policy{})
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), `"factory"`)
	require.Contains(t, err.Error(), "text file")
	require.Equal(t, CodeRefused, CodeOf(err))

	v, err := Preflight(readme, serialTarget(t, 0x10000), Policy{Force: true})
	require.NoError(t, err)
	require.NotEmpty(t, v.Warnings)
}

func TestAppImageIntoDataPartitionIsRefused(t *testing.T) {
	tab := demoTable(t)
	st, _ := tab.Find("storage")
	_, err := Preflight(app(firmware.ChipESP32, "1", 512), serialTarget(t, st.Offset), Policy{})
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), `"storage"`)
	nvs, _ := tab.Find("nvs")
	_, err = Preflight(app(firmware.ChipESP32, "1", 512), serialTarget(t, nvs.Offset), Policy{})
	require.ErrorIs(t, err, ErrRefused)
	// Raw data into a data partition is fine.
	_, err = Preflight([]byte{1, 2, 3, 4}, serialTarget(t, st.Offset), Policy{})
	require.NoError(t, err)
	// An app into an app partition is fine.
	_, err = Preflight(app(firmware.ChipESP32, "1", 512), serialTarget(t, 0x110000), Policy{})
	require.NoError(t, err)
}

func TestWriteRunningPastPartitionEndIsRefused(t *testing.T) {
	tab := demoTable(t)
	phy, _ := tab.Find("phy_init")
	_, err := Preflight(make([]byte, 0x2000), serialTarget(t, phy.Offset), Policy{})
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), "past the end")
}

// Defect 5, OTA side: `ota upload --fs` sent an app image as a filesystem
// without a word.
func TestDefect5AppImageAsFilesystemIsRefused(t *testing.T) {
	_, err := Preflight(app(firmware.ChipESP32, "1", 512), NewTarget(RouteOTAFilesystem), Policy{})
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), "not a filesystem image")
	_, err = Preflight(make([]byte, 4096), NewTarget(RouteOTAFilesystem), Policy{})
	require.NoError(t, err)
}

// Defect 11: `serial write 0x0 bootloader_esp32c3.bin` on an ESP32 said "a
// bootloader image at 0x0, but this chip's bootloader lives at 0x0".
func TestDefect11BootloaderOfAnotherChipNamesThisChipsOffset(t *testing.T) {
	tg := NewTarget(RouteSerial)
	tg.Chip, tg.Address = firmware.ChipESP32, 0
	_, err := Preflight(bootloader(firmware.ChipESP32C3), tg, Policy{})
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), "0x1000")
	require.NotContains(t, err.Error(), "lives at 0x0")
}
