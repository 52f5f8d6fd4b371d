package firmware

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	fx "github.com/espdeck/espdeck/internal/fixture"
)

const fixtures = "../../shared/fixtures"

func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, rel))
	if errors.Is(err, os.ErrNotExist) {
		fx.Missing(t, "fixture %s not present (the shared fixtures folder is optional)", rel)
	}
	require.NoError(t, err)
	return b
}

// The ESP-IDF "factory app, two OTA definitions" table (§7 vector 6).
const twoOTACSV = `# Name,   Type, SubType, Offset,   Size, Flags
nvs,      data, nvs,     0x9000,  0x4000,
otadata,  data, ota,     0xd000,  0x2000,
phy_init, data, phy,     0xf000,  0x1000,
factory,  app,  factory, 0x10000, 1M,
ota_0,    app,  ota_0,   0x110000, 1M,
ota_1,    app,  ota_1,   0x210000, 1M,
`

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestPartitionTableSpecVectors(t *testing.T) {
	tab, err := ParsePartitionCSV([]byte(twoOTACSV), CSVOptions{})
	require.NoError(t, err)
	require.NoError(t, tab.Verify(VerifyOptions{}))
	bin, err := tab.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, bin, TableMaxLength)
	require.Equal(t, mustHex(t, "aa500000 00000100 00001000 666163746f7279000000000000000000 00000000"), bin[3*32:4*32])
	require.Equal(t, mustHex(t, "aa500100 00d00000 00200000 6f746164617461000000000000000000 00000000"), bin[1*32:2*32])
	require.Equal(t, mustHex(t, "bf25822c0fa6d8641bd930251e06b4c4"), bin[6*32+16:7*32])
	require.Equal(t, []byte{0xEB, 0xEB}, bin[6*32:6*32+2])
	sum := sha256.Sum256(bin)
	require.Equal(t, "d1c0e9d02fa9d26cd2e1984e7b5dd20157204f501ddc83ce82229e5f3175ee8b", hex.EncodeToString(sum[:]))

	single, err := ParsePartitionCSV([]byte("nvs,data,nvs,0x9000,0x6000\nphy_init,data,phy,0xf000,0x1000\nfactory,app,factory,0x10000,1M\n"), CSVOptions{})
	require.NoError(t, err)
	sb, err := single.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, "f4ad4f4538564b5d7435b62c75b69524", hex.EncodeToString(sb[3*32+16:4*32]))

	flags, err := ParsePartitionCSV([]byte("nvs_key, data, nvs_keys, 0x320000, 0x1000, encrypted"), CSVOptions{})
	require.NoError(t, err)
	fb, err := flags.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, mustHex(t, "aa500104 00003200 00100000 6e76735f6b6579000000000000000000 01000000"), fb[:32])
}

func TestPartitionCSVMatchesGenEsp32part(t *testing.T) {
	for _, name := range []string{"partitions_singleapp", "partitions_two_ota", "partitions_two_ota_coredump"} {
		t.Run(name, func(t *testing.T) {
			csv := readFixture(t, "partitions/"+name+".csv")
			want := readFixture(t, "expected/"+name+".bin")
			tab, err := ParsePartitionCSV(csv, CSVOptions{})
			require.NoError(t, err)
			require.NoError(t, tab.Verify(VerifyOptions{}))
			got, err := tab.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, want, got, "CSV → binary must equal gen_esp32part's output byte for byte")

			// binary → CSV → binary round trip
			back, err := ParsePartitionTable(want)
			require.NoError(t, err)
			require.True(t, back.HasMD5)
			require.True(t, back.EndMarker)
			require.Equal(t, tab.Partitions, back.Partitions)
			again, err := ParsePartitionCSV([]byte(back.CSV()), CSVOptions{})
			require.NoError(t, err)
			againBin, err := again.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, want, againBin)
		})
	}
}

func TestPartitionTableWithoutEndRow(t *testing.T) {
	// esptool's test table: three rows, no MD5, no end row (§7 vector 9).
	b := readFixture(t, "images/partitions_singleapp.bin")
	tab, err := ParsePartitionTable(b)
	require.NoError(t, err)
	require.False(t, tab.HasMD5)
	require.False(t, tab.EndMarker)
	require.Equal(t, []Partition{
		{Name: "factory", Type: TypeApp, SubType: 0, Offset: 0x10000, Size: 0x100000},
		{Name: "rfdata", Type: TypeData, SubType: 1, Offset: 0x110000, Size: 0x40000},
		{Name: "wifidata", Type: TypeData, SubType: 2, Offset: 0x150000, Size: 0x40000},
	}, tab.Partitions)
	require.NoError(t, tab.Verify(VerifyOptions{}))
	require.Contains(t, tab.CSV(), "factory,app,factory,0x10000,1M,\n")
	require.Contains(t, tab.CSV(), "rfdata,data,phy,0x110000,256K,\n")
}

func TestParsePartitionTableRejects(t *testing.T) {
	good, err := ParsePartitionCSV([]byte(twoOTACSV), CSVOptions{})
	require.NoError(t, err)
	bin, err := good.MarshalBinary()
	require.NoError(t, err)

	badMD5 := bytes.Clone(bin)
	badMD5[6*32+20] ^= 1
	_, err = ParsePartitionTable(badMD5)
	var te *TableError
	require.ErrorAs(t, err, &te)
	require.Contains(t, err.Error(), "MD5 mismatch")

	corruptRow := bytes.Clone(bin)
	corruptRow[2*32+5] ^= 0x10 // a changed offset no longer matches the MD5
	_, err = ParsePartitionTable(corruptRow)
	require.ErrorContains(t, err, "MD5 mismatch")

	badMagic := bytes.Clone(bin)
	badMagic[32] = 0x00
	_, err = ParsePartitionTable(badMagic)
	require.ErrorContains(t, err, "row 1")

	_, err = ParsePartitionTable(bytes.Repeat([]byte{0xFF}, 0x1000))
	require.ErrorIs(t, err, ErrNotPartitionTable)
	_, err = ParsePartitionTable([]byte{0xE9, 0x03, 0x02, 0x20})
	require.ErrorIs(t, err, ErrNotPartitionTable)
	_, err = ParsePartitionTable(bin[:40])
	require.ErrorContains(t, err, "multiple of 32")

	// 96 rows and no end: the bootloader gives up.
	full := bytes.Repeat(bin[:32], TableMaxLength/32)
	_, err = ParsePartitionTable(full)
	require.ErrorContains(t, err, "no end row")

	// Only the first 0xC00 bytes count: a whole sector reads the same.
	sector := append(bytes.Clone(bin), bytes.Repeat([]byte{0x00}, 0x400)...)
	tab, err := ParsePartitionTable(sector)
	require.NoError(t, err)
	require.Len(t, tab.Partitions, 6)
}

func TestVerifyRejectsWithReason(t *testing.T) {
	cases := map[string]struct{ csv, want string }{
		"overlap":         {"a,data,nvs,0x9000,0x6000\nb,data,phy,0xc000,0x1000\n", "overlap"},
		"misaligned app":  {"nvs,data,nvs,0x9000,0x6000\nfactory,app,factory,0x18000,1M\n", "not aligned to 0x10000"},
		"misaligned data": {"nvs,data,nvs,0x9800,0x6000\n", "not aligned to 0x1000"},
		"app size":        {"factory,app,factory,0x10000,0x10800\n", "not a multiple of 0x1000"},
		"duplicate":       {"a,data,nvs,0x9000,0x3000\na,data,phy,0xc000,0x1000\n", "unique"},
		"otadata size":    {"otadata,data,ota,0x9000,0x1000\n", "0x2000"},
		"two otadata":     {"o1,data,ota,0x9000,0x2000\no2,data,ota,0xb000,0x2000\n", "second otadata"},
		"readonly ota":    {"otadata,data,ota,0x9000,0x2000,readonly\n", "readonly"},
		"small nvs":       {"nvs,data,nvs,0x9000,0x2000\n", "must be flagged readonly"},
		"below table":     {"nvs,data,nvs,0x7000,0x3000\n", "use 0x9000 or higher"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tab, err := ParsePartitionCSV([]byte(c.csv), CSVOptions{})
			if err == nil {
				err = tab.Verify(VerifyOptions{})
			}
			var te *TableError
			require.ErrorAs(t, err, &te)
			require.Contains(t, err.Error(), c.want)
			require.NotEmpty(t, te.Hint())
		})
	}
	// A binary table is checked the same way (no CSV offset pass).
	low := &PartitionTable{Partitions: []Partition{{Name: "nvs", Type: TypeData, SubType: 2, Offset: 0x7000, Size: 0x3000}}}
	require.ErrorContains(t, low.Verify(VerifyOptions{}), "below 0x9000")
	require.NoError(t, low.Verify(VerifyOptions{TableOffset: 0x6000}))
	// Readonly small NVS is fine; the flash size check is optional.
	tab, err := ParsePartitionCSV([]byte("nvs,data,nvs,,0x1000,readonly\nfactory,app,factory,,4M\n"), CSVOptions{})
	require.NoError(t, err)
	require.NoError(t, tab.Verify(VerifyOptions{}))
	require.ErrorContains(t, tab.Verify(VerifyOptions{FlashSize: 4 << 20}), "flash is only")
}

func TestCSVRules(t *testing.T) {
	getenv := func(k string) (string, bool) {
		if k == "APP_SIZE" {
			return "0x100000", true
		}
		return "", false
	}
	csv := "\ufeff# comment\n\n  nvs , DATA , NVS ,, 24K\r\nphy,1,1,,0x1000\nfactory,app,factory,,$APP_SIZE\nstore, data, spiffs, , -0x400000, \ncustom,0x40,7,,4K\n"
	tab, err := ParsePartitionCSV([]byte(csv), CSVOptions{LookupEnv: getenv})
	require.NoError(t, err)
	require.NoError(t, tab.Verify(VerifyOptions{}))
	want := []Partition{
		{Name: "nvs", Type: TypeData, SubType: 2, Offset: 0x9000, Size: 0x6000},
		{Name: "phy", Type: TypeData, SubType: 1, Offset: 0xF000, Size: 0x1000},
		{Name: "factory", Type: TypeApp, SubType: 0, Offset: 0x10000, Size: 0x100000},
		{Name: "store", Type: TypeData, SubType: 0x82, Offset: 0x110000, Size: 0x400000 - 0x110000},
		{Name: "custom", Type: 0x40, SubType: 7, Offset: 0x400000, Size: 0x1000},
	}
	require.Equal(t, want, tab.Partitions)

	// A table flashed elsewhere moves the automatic offsets.
	tab, err = ParsePartitionCSV([]byte("nvs,data,nvs,,0x4000\n"), CSVOptions{TableOffset: 0x10000})
	require.NoError(t, err)
	require.Equal(t, uint32(0x11000), tab.Partitions[0].Offset)

	bl := uint32(0x1000)
	tab, err = ParsePartitionCSV([]byte("bootloader,bootloader,primary,N/A,N/A\npartition_table,partition_table,primary,N/A,N/A\nnvs,data,nvs,,0x4000\n"), CSVOptions{BootloaderOffset: &bl})
	require.NoError(t, err)
	require.Equal(t, Partition{Name: "bootloader", Type: TypeBootloader, Offset: 0x1000, Size: 0x7000}, tab.Partitions[0])
	require.Equal(t, Partition{Name: "partition_table", Type: TypePartitionTable, Offset: 0x8000, Size: 0x1000}, tab.Partitions[1])
	require.NoError(t, tab.Verify(VerifyOptions{}))

	for csv, want := range map[string]string{
		"factory,app,,,1M":          "needs a subtype",
		",,nvs,,0x4000":             "type field is empty",
		"x,data,nvs,,":              "size field is empty",
		"x,data,nvs,,0x4000,secret": "unknown flag",
		"x,blob,nvs,,0x4000":        "neither a number nor one of",
		"x,data,nvs,,$NOPE":         "unknown variable $NOPE",
		"x,data,nvs,0x9000,0x4000\ny,data,phy,0xa000,0x1000": "line 2",
		"x,data,nvs,010,0x4000":                              "not a number",
		"bootloader,bootloader,primary,,":                    "bootloader offset",
	} {
		_, err := ParsePartitionCSV([]byte(csv), CSVOptions{})
		require.ErrorContains(t, err, want, csv)
	}

	// Long names are cut to 16 bytes, with a warning.
	tab, err = ParsePartitionCSV([]byte("a_very_long_partition_name,data,nvs,,0x4000\n"), CSVOptions{})
	require.NoError(t, err)
	require.Equal(t, "a_very_long_part", tab.Partitions[0].Name)
	require.NotEmpty(t, tab.Warnings)
	b, err := tab.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, []byte("a_very_long_part"), b[12:28], "a 16-byte label has no NUL")
	back, err := ParsePartitionTable(b)
	require.NoError(t, err)
	require.Equal(t, "a_very_long_part", back.Partitions[0].Name)
}

func TestCSVUTF16(t *testing.T) {
	text := "nvs,data,nvs,,0x4000\n"
	b := []byte{0xFF, 0xFE}
	for _, r := range text {
		b = append(b, byte(r), 0)
	}
	tab, err := ParsePartitionCSV(b, CSVOptions{})
	require.NoError(t, err)
	require.Equal(t, "nvs", tab.Partitions[0].Name)
}

func TestTooManyPartitions(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 95; i++ {
		sb.WriteString("p" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ",data,0x40,,4K\n")
	}
	tab, err := ParsePartitionCSV([]byte(sb.String()), CSVOptions{})
	require.NoError(t, err)
	_, err = tab.MarshalBinary()
	require.ErrorContains(t, err, "more than")
	tab.Partitions = tab.Partitions[:94]
	b, err := tab.MarshalBinary()
	require.NoError(t, err)
	sum := md5.Sum(b[:94*32])
	require.Equal(t, sum[:], b[94*32+16:95*32])
}

func FuzzParsePartitionTable(f *testing.F) {
	tab, _ := ParsePartitionCSV([]byte(twoOTACSV), CSVOptions{})
	bin, _ := tab.MarshalBinary()
	f.Add(bin)
	f.Add(bin[:96])
	f.Add([]byte{0xAA, 0x50})
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParsePartitionTable(data)
		if err != nil {
			return
		}
		_ = tab.Verify(VerifyOptions{})
		_ = tab.CSV()
		_ = tab.Format()
		enc, err := tab.Encode(tab.HasMD5)
		if err != nil {
			return
		}
		again, err := ParsePartitionTable(enc)
		if err != nil {
			t.Fatalf("re-encoded table does not parse: %v", err)
		}
		if len(again.Partitions) != len(tab.Partitions) {
			t.Fatalf("round trip lost rows: %d → %d", len(tab.Partitions), len(again.Partitions))
		}
	})
}

func FuzzParsePartitionCSV(f *testing.F) {
	f.Add([]byte(twoOTACSV))
	f.Add([]byte("store, data, spiffs, , -0x400000, encrypted:readonly\n"))
	f.Add([]byte("x,0x40,7,0x20000,4K\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParsePartitionCSV(data, CSVOptions{})
		if err != nil {
			return
		}
		if tab.Verify(VerifyOptions{}) != nil {
			return
		}
		bin, err := tab.MarshalBinary()
		if err != nil {
			return
		}
		back, err := ParsePartitionTable(bin)
		if err != nil {
			t.Fatalf("our own binary does not parse: %v", err)
		}
		if len(back.Partitions) != len(tab.Partitions) {
			t.Fatalf("rows: %d → %d", len(tab.Partitions), len(back.Partitions))
		}
	})
}

func TestParsePartitionTableAsTheBootloader(t *testing.T) {
	tab, err := ParsePartitionCSV([]byte("nvs,data,nvs,,0x4000\nfactory,app,factory,,1M\n"), CSVOptions{})
	require.NoError(t, err)
	bin, err := tab.MarshalBinary()
	require.NoError(t, err)
	// A row after the MD5 row is accepted (the bootloader and
	// gen_esp32part do) but flagged: the MD5 does not cover it.
	extra := append(bytes.Clone(bin[:3*32]), bin[32:64]...)
	extra[3*32+12] = 'x'
	extra = append(extra, bytes.Repeat([]byte{0xFF}, 32)...)
	got, err := ParsePartitionTable(extra)
	require.NoError(t, err)
	require.Len(t, got.Partitions, 3)
	require.Contains(t, got.Warnings[0], "after the MD5 row")
	// The end row is recognised by magic, type and subtype, as the bootloader does.
	end := append(bytes.Clone(bin[:3*32]), 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3)
	end = append(end, make([]byte, 25)...)
	got, err = ParsePartitionTable(end)
	require.NoError(t, err)
	require.True(t, got.EndMarker)
	require.Len(t, got.Partitions, 2)
}
