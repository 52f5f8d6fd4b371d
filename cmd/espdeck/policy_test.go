package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/espdeck/espdeck/espota/otasim"
	"github.com/espdeck/espdeck/firmware"
)

// An OTA upload knows nothing of the board's chip, so an app for any chip
// goes through; with a signing key in the config file, only images signed
// by it do — and --force does not override that.
func TestOTAUploadPolicy(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)

	img := firmware.BuildImage(firmware.ImageSpec{Chip: firmware.ChipESP32S3, AppDesc: &firmware.AppDesc{Version: "4.2"},
		Segments: []firmware.SegmentSpec{{LoadAddr: 0x42000020, Data: make([]byte, 4096)}}})
	plain := filepath.Join(dir, "s3.bin")
	require.NoError(t, os.WriteFile(plain, img, 0o644))
	signedImg, err := firmware.SignImage(img, key, nil)
	require.NoError(t, err)
	signed := filepath.Join(dir, "s3-signed.bin")
	require.NoError(t, os.WriteFile(signed, signedImg, 0o644))

	dev := otaSim(t, otasim.Config{})
	r := runCLI(t, map[string]string{"XDG_CONFIG_HOME": dir}, "ota", "upload", "--host", dev.Addr().String(), "--file", plain, "--json")
	require.Equal(t, exitOK, r.code, "an ESP32-S3 app is not refused as 'not an ESP32': %s", r.stdout)

	cfgDir := filepath.Join(dir, "espdeck")
	require.NoError(t, os.MkdirAll(cfgDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "config.toml"), []byte("[defaults]\nsigning_key = \"pub.pem\"\n"), 0o644))
	env := map[string]string{"XDG_CONFIG_HOME": dir}

	r = runCLI(t, env, "ota", "upload", "--host", dev.Addr().String(), "--file", plain, "--force", "--json")
	require.Equal(t, exitRefused, r.code, "unsigned under a key policy is refused even with --force: %s", r.stdout)
	require.Equal(t, "refused", lastResult(t, r.stdout)["error"])

	r = runCLI(t, env, "ota", "upload", "--host", dev.Addr().String(), "--file", signed, "--json")
	require.Equal(t, exitOK, r.code, r.stdout)
}
