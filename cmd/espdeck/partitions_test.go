package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	fx "github.com/espdeck/espdeck/internal/fixture"
	"github.com/espdeck/espdeck/internal/ops"
)

func fixture(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join("../../../shared/fixtures", rel)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		fx.Missing(t, "fixture %s not present (the shared fixtures folder is optional)", rel)
	}
	return p
}

func TestPartitionsConvertMatchesGenEsp32part(t *testing.T) {
	for _, name := range []string{"partitions_singleapp", "partitions_two_ota", "partitions_two_ota_coredump"} {
		t.Run(name, func(t *testing.T) {
			csv := fixture(t, "partitions/"+name+".csv")
			want, err := os.ReadFile(fixture(t, "expected/"+name+".bin"))
			require.NoError(t, err)
			dir := t.TempDir()
			bin := filepath.Join(dir, "t.bin")
			r := runCLI(t, nil, "partitions", "convert", csv, bin)
			require.Equal(t, exitOK, r.code, r.stderr)
			got, err := os.ReadFile(bin)
			require.NoError(t, err)
			require.Equal(t, want, got)

			back := filepath.Join(dir, "back.csv")
			r = runCLI(t, nil, "partitions", "convert", bin, back, "--json")
			require.Equal(t, exitOK, r.code, r.stderr)
			res := lastResult(t, r.stdout)
			require.Equal(t, "binary", res["from"])
			require.Equal(t, "CSV", res["to"])
			again := filepath.Join(dir, "again.bin")
			r = runCLI(t, nil, "partitions", "convert", back, again)
			require.Equal(t, exitOK, r.code, r.stderr)
			got, err = os.ReadFile(again)
			require.NoError(t, err)
			require.Equal(t, want, got, "binary → CSV → binary is the identity")
		})
	}
}

func TestPartitionsShowFile(t *testing.T) {
	r := runCLI(t, nil, "partitions", "show", fixture(t, "expected/partitions_two_ota.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "binary partition table, 6 partitions, MD5 ok")
	require.Contains(t, r.stdout, "ota_1")

	r = runCLI(t, nil, "partitions", "show", "--json", fixture(t, "partitions/partitions_two_ota_coredump.csv"))
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	parts := res["partitions"].([]any)
	require.Len(t, parts, 7)
	require.Equal(t, "coredump", parts[4].(map[string]any)["subtype"])
	require.Equal(t, float64(0x110000), parts[4].(map[string]any)["offset"])

	// esptool's bare table: three rows, no MD5, no end row.
	r = runCLI(t, nil, "partitions", "show", fixture(t, "images/partitions_singleapp.bin"))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "wifidata")
}

func TestPartitionsShowFlashDump(t *testing.T) {
	flash, err := ops.DemoFlash(firmware.ChipESP32)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "dump.bin")
	require.NoError(t, os.WriteFile(path, flash, 0o644))
	r := runCLI(t, nil, "partitions", "show", path)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "flash dump")
	require.Contains(t, r.stdout, "Boots next: ota_0")
	require.Contains(t, r.stdout, "copy 0 (0xd000): seq 1 → ota_0, state valid, CRC ok")
	require.Contains(t, r.stdout, "greenhouse · 2.1.0")
}

func TestPartitionsRejectsBadTables(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o644))
		return p
	}
	tab, err := firmware.ParsePartitionCSV([]byte(ops.DemoLayoutCSV), firmware.CSVOptions{})
	require.NoError(t, err)
	bin, err := tab.MarshalBinary()
	require.NoError(t, err)
	bin[6*32+17] ^= 1
	r := runCLI(t, nil, "partitions", "show", "--json", write("bad.bin", bin))
	require.Equal(t, exitUsage, r.code)
	res := lastResult(t, r.stdout)
	require.Equal(t, "bad_table", res["error"])
	require.Contains(t, res["message"], "MD5 mismatch")

	overlap := write("overlap.csv", []byte("a,data,nvs,0x9000,0x6000\nb,data,phy,0xc000,0x1000\n"))
	r = runCLI(t, nil, "partitions", "convert", overlap, filepath.Join(dir, "o.bin"))
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "overlap")

	misaligned := write("mis.csv", []byte("nvs,data,nvs,0x9000,0x6000\nfactory,app,factory,0x18000,1M\n"))
	r = runCLI(t, nil, "partitions", "convert", misaligned, filepath.Join(dir, "m.bin"))
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "not aligned to 0x10000")
	require.Contains(t, r.stderr, "--force")
	r = runCLI(t, nil, "partitions", "convert", misaligned, filepath.Join(dir, "m.bin"), "--force")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "converting anyway")

	// Direction and extension disagree.
	r = runCLI(t, nil, "partitions", "convert", write("ok.csv", []byte(ops.DemoLayoutCSV)), filepath.Join(dir, "x.csv"))
	require.Equal(t, exitUsage, r.code)

	r = runCLI(t, nil, "partitions", "show", filepath.Join(dir, "missing.bin"))
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "partitions", "show")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "partitions", "frobnicate")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "slot", "mark", "--port", "/dev/null", "--valid", "--invalid")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "slot", "switch")
	require.Equal(t, exitUsage, r.code)
}

func TestPartitionsConvertToStdout(t *testing.T) {
	csv := filepath.Join(t.TempDir(), "p.csv")
	require.NoError(t, os.WriteFile(csv, []byte(ops.DemoLayoutCSV), 0o644))
	r := runCLI(t, nil, "partitions", "convert", csv, "-")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Len(t, r.stdout, firmware.TableMaxLength)
}
