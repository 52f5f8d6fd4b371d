package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/firmware"
	fx "github.com/espdeck/espdeck/internal/fixture"
)

const imageFixtures = "../../../shared/fixtures"

func imageFixture(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(imageFixtures, rel)
	if _, err := os.Stat(p); err != nil {
		fx.Missing(t, "shared fixture %s not present: %v", rel, err)
	}
	return p
}

func TestImageInfoMatchesEsptool(t *testing.T) {
	bin := imageFixture(t, "images/esp_idf_blink_esp32s2.bin")
	want, err := os.ReadFile(imageFixture(t, "expected/esp_idf_blink_esp32s2.image_info.txt"))
	require.NoError(t, err)
	r := runCLI(t, nil, "image", "info", bin)
	require.Equal(t, exitOK, r.code, r.stderr)
	// Every esptool line (minus its banner and raw NUL padding) is in ours.
	for _, line := range strings.Split(strings.ReplaceAll(string(want), "\x00", ""), "\n") {
		line = strings.TrimRight(line, " ")
		if line == "" || strings.HasPrefix(line, "esptool.py") {
			continue
		}
		require.Contains(t, r.stdout, line+"\n")
	}
	require.Contains(t, r.stdout, "Summary: esp_idf_blink_esp32s2.bin · ESP32-S2 app · qa-test-v5.0-20220830-4-g4532e6")
	require.Contains(t, r.stdout, "As an OTA app: acceptable")

	// The esptool spelling works too.
	r = runCLI(t, nil, "image_info", bin)
	require.Equal(t, exitOK, r.code, r.stderr)
}

func TestImageInfoJSON(t *testing.T) {
	bin := imageFixture(t, "images/esp_idf_blink_esp32s2.bin")
	r := runCLI(t, nil, "image", "info", bin, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, true, res["ok"])
	require.Equal(t, "ESP32-S2", res["chip"])
	require.Equal(t, "app", res["kind"])
	require.Equal(t, true, res["sha256_valid"])
	require.Equal(t, "0x40022f84", res["entry"])
	require.Len(t, res["segments"], 6)
	app := res["app"].(map[string]any)
	require.Equal(t, "blink", app["project"])
	require.Equal(t, "3059e6b55a965865febd28fa9f6028ad5cd0dab311febb0a3ea79eaa223ac2b0", app["elf_sha256"])
	require.Equal(t, true, res["as_ota_app"].(map[string]any)["ok"])
}

func TestImageInfoRefusals(t *testing.T) {
	dir := t.TempDir()

	r := runCLI(t, nil, "image", "info", filepath.Join(dir, "missing.bin"))
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "cannot read")

	r = runCLI(t, nil, "image", "info", imageFixture(t, "images/partitions_singleapp.bin"), "--json")
	require.Equal(t, exitUsage, r.code)
	res := lastResult(t, r.stdout)
	require.Equal(t, "not_an_image", res["error"])
	require.Contains(t, res["hint"], "partitions show")

	// A corrupt image is still described, and exits 3.
	img := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32C3, AppDesc: &firmware.AppDesc{Version: "1.0"}})
	img[40] ^= 0xFF
	bad := filepath.Join(dir, "bad.bin")
	require.NoError(t, os.WriteFile(bad, img, 0o644))
	r = runCLI(t, nil, "image", "info", bad)
	require.Equal(t, exitRefused, r.code)
	require.Contains(t, r.stdout, "Checksum: ")
	require.Contains(t, r.stdout, "(invalid - calculated")
	require.Contains(t, r.stderr, "corrupt")

	r = runCLI(t, nil, "image", "info")
	require.Equal(t, exitUsage, r.code)
	r = runCLI(t, nil, "image", "frobnicate")
	require.Equal(t, exitUsage, r.code)
}

func TestImageVerify(t *testing.T) {
	rsaBin := imageFixture(t, "secure/bootloader_signed_v2_rsa.bin")
	ecBin := imageFixture(t, "secure/bootloader_signed_v2_ecdsa256.bin")
	unsigned := imageFixture(t, "secure/bootloader_unsigned_v2.bin")
	rsaKey := imageFixture(t, "secure/rsa_secure_boot_signing_pubkey.pem")
	ecKey := imageFixture(t, "secure/ecdsa256_secure_boot_signing_pubkey.pem")

	r := runCLI(t, nil, "image", "verify", rsaBin, "--key", rsaKey, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	res := lastResult(t, r.stdout)
	require.Equal(t, "RSA-3072 PSS", res["scheme"])
	require.Equal(t, "cb2791a371b0c0322bf7370478ba0962224cab1cf2287879e429673e7da84463", res["key_digest"])

	// Either key may match; the second one does here.
	r = runCLI(t, nil, "image", "verify", ecBin, "--key", rsaKey, "--key", ecKey)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "signature valid — ECDSA P-256")

	r = runCLI(t, nil, "image", "verify", rsaBin, "--key", ecKey, "--json")
	require.Equal(t, exitRefused, r.code)
	require.Equal(t, "signature_invalid", lastResult(t, r.stdout)["error"])

	r = runCLI(t, nil, "image", "verify", unsigned, "--key", rsaKey, "--json")
	require.Equal(t, exitRefused, r.code)
	require.Equal(t, "unsigned", lastResult(t, r.stdout)["error"])

	// image info --key reports the verification too.
	r = runCLI(t, nil, "image", "info", rsaBin, "--key", rsaKey)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Signature: verified with the given key (block 0)")

	// No key at all: usage error, with the way out.
	r = runCLI(t, nil, "image", "verify", rsaBin)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "--key")

	// A file that is not a key.
	r = runCLI(t, nil, "image", "verify", rsaBin, "--key", rsaBin)
	require.Equal(t, exitUsage, r.code)
	require.Contains(t, r.stderr, "PEM")
}

func TestImageVerifyUsesConfigKey(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "espdeck", "keys"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "espdeck", "keys", "fleet_pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "espdeck", "config.toml"), []byte("[defaults]\nsigning_key = \"keys/fleet_pub.pem\"\n"), 0o644))

	img := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32C6, AppDesc: &firmware.AppDesc{Version: "4.2"}})
	signed, err := firmware.SignImage(img, key, nil)
	require.NoError(t, err)
	path := filepath.Join(dir, "app-signed.bin")
	require.NoError(t, os.WriteFile(path, signed, 0o644))
	plain := filepath.Join(dir, "app.bin")
	require.NoError(t, os.WriteFile(plain, img, 0o644))

	env := map[string]string{"XDG_CONFIG_HOME": dir}
	r := runCLI(t, env, "image", "verify", path)
	require.Equal(t, exitOK, r.code, r.stderr)
	r = runCLI(t, env, "image", "verify", plain)
	require.Equal(t, exitRefused, r.code, r.stderr)
}

func TestImageInfoMergedFromZero(t *testing.T) {
	boot := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32, Entry: 0x40080400,
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x40080400, Data: make([]byte, 256)}}})
	app := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32, AppDesc: &firmware.AppDesc{Version: "1.2.3"}})
	merged := make([]byte, 0x10000+len(app))
	for i := range merged {
		merged[i] = 0xFF
	}
	copy(merged[0x1000:], boot)
	copy(merged[0x8000:], []byte{0xAA, 0x50, 0, 0})
	copy(merged[0x10000:], app)
	path := filepath.Join(t.TempDir(), "factory.bin")
	require.NoError(t, os.WriteFile(path, merged, 0o644))

	r := runCLI(t, nil, "image", "info", path)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "Content: merged image")
	require.Contains(t, r.stdout, "bootloader at file offset 0x1000")
	require.Contains(t, r.stdout, "As an OTA app: refused — expected an application image but found a merged image that starts with the ESP32 bootloader")
}
