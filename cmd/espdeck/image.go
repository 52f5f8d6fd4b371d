package main

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/espdeck/espdeck/firmware"
	"github.com/espdeck/espdeck/internal/config"
	"github.com/espdeck/espdeck/internal/ops"
)

const imageUsage = `espdeck image — what is in a firmware image; signature check

Usage:
  espdeck image info FILE [--key PUB.pem] [--json]
  espdeck image verify FILE [--key PUB.pem]... [--json]
  espdeck image sign FILE --key PRIVATE.pem -o OUT [--append]   (see espdeck image sign --help)
  espdeck image keygen PRIVATE.pem [--scheme ecdsa256|rsa3072]

info prints everything esptool's image_info --version 2 reports (header,
extended header, segments with memory types, checksum, SHA-256, app or
bootloader description) and espdeck's verdicts: what the file is, whether it
is intact, whether it could be sent as an OTA app, and its signature blocks.
It exits 3 when the checksum or SHA-256 is wrong.

verify checks a Secure Boot V2 signature (RSA-3072, ECDSA P-192/P-256/P-384)
against public keys: exit 0 when a signature block verifies, 3 when the image
is unsigned or signed by another key, 2 when the file or key is unusable.
Without --key the signing_key of the config file is used.

Examples:
  espdeck image info build/greenhouse.bin
  espdeck image info build/bootloader/bootloader.bin --json
  espdeck image verify build/greenhouse.bin --key keys/fleet_pub.pem
`

func runImage(c *cli, args []string) int {
	// esptool spellings: "espdeck image_info FILE" arrives with the alias first.
	if len(args) > 0 && (args[0] == "image-info" || args[0] == "image_info") {
		return runImageInfo(c, args[1:])
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(c.stderr, imageUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "info", "show":
		return runImageInfo(c, args[1:])
	case "verify", "verify-signature", "verify_signature":
		return runImageVerify(c, args[1:])
	case "sign", "sign-data", "sign_data":
		return runImageSign(c, args[1:])
	case "keygen", "generate-signing-key", "generate_signing_key":
		return runImageKeygen(c, args[1:])
	}
	fmt.Fprintf(c.stderr, "espdeck image: unknown verb %q (info, verify, sign, keygen)\n", args[0])
	return exitUsage
}

// keyList collects repeated --key flags.
type keyList []string

func (k *keyList) String() string     { return strings.Join(*k, ",") }
func (k *keyList) Set(v string) error { *k = append(*k, v); return nil }

func runImageInfo(c *cli, args []string) int {
	fs, cm := c.newFlags("image info", imageUsage)
	var keys keyList
	fs.Var(&keys, "key", "also verify the signature with this PEM public `KEY` (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 1 {
		fmt.Fprintln(c.stderr, "espdeck image info: give exactly one FILE (see espdeck image --help)")
		return exitUsage
	}
	r := c.reporter(cm, "")
	path := pos[0]
	data, im, f := readImageFile(path)
	mergedAt := -1
	if f != nil {
		// A merged file that starts at flash 0 with padding: describe the
		// bootloader inside it rather than refusing the file.
		raw, err := ops.ReadInputFile(path, ops.MaxImageFile)
		if mergedAt = firmware.MergedImageStart(raw); err != nil || mergedAt <= 0 {
			return r.finish(f, nil)
		}
		inner, err := firmware.ParseImage(raw[mergedAt:])
		if err != nil {
			return r.finish(f, nil)
		}
		data, im = raw, inner
	} else {
		mergedAt = firmware.MergedImageStart(data)
	}
	pubs, f := loadKeys(keys)
	if f != nil {
		return r.finish(f, nil)
	}

	// As an OTA app with nothing known about the target: says whether the
	// file is the kind of thing an OTA upload takes.
	verdict, pfErr := ops.Preflight(data, ops.Target{Route: ops.RouteOTAApp, Chip: firmware.ChipUnknown, ChipRevision: -1}, ops.Policy{})
	var sigRes *firmware.SignatureResult
	var sigErr error
	if len(pubs) > 0 {
		res, err := firmware.VerifySignature(data, pubs)
		if err == nil {
			sigRes = &res
		}
		sigErr = err
	}

	fields := imageFields(filepath.Base(path), im)
	fields["as_ota_app"] = checkFields(verdict, pfErr)
	if mergedAt >= 0 {
		fields["merged"] = true
		fields["first_image_offset"] = mergedAt
	}
	if len(pubs) > 0 {
		fields["signature_verified"] = sigErr == nil
		if sigRes != nil {
			fields["signature_block"] = sigRes.Block
		}
	}
	if !cm.json {
		printImageInfo(c.stdout, filepath.Base(path), im, verdict, pfErr, sigRes, sigErr)
		if mergedAt >= 0 {
			fmt.Fprintf(c.stdout, "Merged image: the report above is the bootloader at file offset 0x%x; 'espdeck partitions show %s' shows the partition table and apps inside\n", mergedAt, path)
		}
	}
	if err := im.Verify(); err != nil {
		return r.finish(&failure{code: exitRefused, name: "invalid_image", message: fmt.Sprintf("%s is corrupt: %v", path, err),
			hint: "download or build the image again; a flasher would refuse it"}, fields)
	}
	if sigErr != nil {
		return r.finish(signatureFailure(path, sigErr), fields)
	}
	return r.finish(nil, fields)
}

func runImageVerify(c *cli, args []string) int {
	fs, cm := c.newFlags("image verify", imageUsage)
	var keys keyList
	fs.Var(&keys, "key", "PEM public `KEY` to verify with (repeatable; default: signing_key from the config file)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 1 {
		fmt.Fprintln(c.stderr, "espdeck image verify: give exactly one FILE and --key PUB.pem")
		return exitUsage
	}
	r := c.reporter(cm, "")
	if len(keys) == 0 {
		cfg, err := config.Load(cm.config, c.getenv)
		if err != nil {
			return r.finish(&failure{code: exitUsage, name: "bad_config", message: err.Error(), hint: "fix the config file or pass --key PUB.pem"}, nil)
		}
		if cfg.Defaults.SigningKey == "" {
			return r.finish(&failure{code: exitUsage, name: "no_key", message: "no public key to verify with",
				hint: "pass --key PUB.pem (espsecure.py extract_public_key --version 2 makes one), or set signing_key in the config file"}, nil)
		}
		keys = keyList{cfg.Defaults.SigningKey}
	}
	path := pos[0]
	data, im, f := readImageFile(path)
	if f != nil {
		return r.finish(f, nil)
	}
	pubs, f := loadKeys(keys)
	if f != nil {
		return r.finish(f, nil)
	}
	res, err := firmware.VerifySignature(data, pubs)
	fields := map[string]any{"file": filepath.Base(path), "chip": im.Chip.String(), "kind": im.Kind()}
	if im.Signature != nil {
		fields["signature_blocks"] = signatureBlockFields(im.Signature)
	}
	if err != nil {
		return r.finish(signatureFailure(path, err), fields)
	}
	fields["signature_block"] = res.Block
	fields["scheme"] = res.Scheme.String()
	fields["key"] = keys[res.KeyIndex]
	fields["key_digest"] = hex.EncodeToString(res.KeyDigest[:])
	if !cm.json {
		fmt.Fprintf(c.stdout, "%s: signature valid — %s, block %d, key %s (digest %x)\n",
			filepath.Base(path), res.Scheme, res.Block, keys[res.KeyIndex], res.KeyDigest[:])
	}
	return r.finish(nil, fields)
}

// readImageFile reads and parses an image, turning problems into the
// usage-class failure (exit 2) with a hint for what the file is instead.
func readImageFile(path string) ([]byte, *firmware.Image, *failure) {
	data, err := ops.ReadInputFile(path, ops.MaxImageFile)
	if err != nil {
		return nil, nil, &failure{code: exitUsage, name: "bad_input", message: err.Error(), hint: ops.HintOf(err)}
	}
	im, err := firmware.ParseImage(data)
	if err != nil {
		hint := "give an app or bootloader .bin as built by ESP-IDF, Arduino or PlatformIO"
		if firmware.Classify(data) == firmware.ContentPartitionTable {
			hint = "this is a partition table: espdeck partitions show " + path
		}
		return nil, nil, &failure{code: exitUsage, name: "not_an_image", message: fmt.Sprintf("%s: %v", path, err), hint: hint}
	}
	return data, im, nil
}

func loadKeys(paths []string) ([]crypto.PublicKey, *failure) {
	var out []crypto.PublicKey
	for _, p := range paths {
		b, err := ops.ReadInputFile(p, ops.MaxKeyFile)
		if err != nil {
			return nil, &failure{code: exitUsage, name: "bad_key", message: err.Error(), hint: "check the --key path"}
		}
		k, err := firmware.ParsePublicKeyPEM(b)
		if err != nil {
			return nil, &failure{code: exitUsage, name: "bad_key", message: fmt.Sprintf("%s: %v", p, err),
				hint: "give the PEM public key (espsecure.py extract_public_key --version 2 --keyfile PRIV.pem PUB.pem)"}
		}
		out = append(out, k)
	}
	return out, nil
}

func signatureFailure(path string, err error) *failure {
	name := "signature_invalid"
	hint := "compare the key digests above with your key's (espsecure.py digest_sbv2_public_key); --key must be the public half of the signing key"
	if errors.Is(err, firmware.ErrUnsigned) {
		name = "unsigned"
		hint = "check that you picked the signed .bin (ESP-IDF writes one when CONFIG_SECURE_BOOT_BUILD_SIGNED_BINARIES is on)"
	}
	return &failure{code: exitRefused, name: name, message: fmt.Sprintf("%s: %v", path, err), hint: hint}
}

func hexOrEmpty(b []byte) string { return hex.EncodeToString(b) }

// imageFields is the --json description of an image: esptool's facts plus
// ours. Names are stable once released.
func imageFields(name string, im *firmware.Image) map[string]any {
	segs := make([]map[string]any, 0, len(im.Segments))
	for i, s := range im.Segments {
		segs = append(segs, map[string]any{"index": i + 1, "length": s.Length, "load_addr": fmt.Sprintf("0x%08x", s.LoadAddr),
			"file_offset": fmt.Sprintf("0x%08x", s.HeaderOffset), "memory_types": nonNil(s.MemoryTypes)})
	}
	f := map[string]any{
		"file":            name,
		"file_size":       im.FileSize,
		"image_length":    im.Length,
		"summary":         im.Summary(name),
		"chip":            im.Chip.String(),
		"kind":            im.Kind(),
		"format":          formatName(im.Format),
		"entry":           fmt.Sprintf("0x%08x", im.Entry),
		"flash_mode":      im.FlashMode.String(),
		"flash_size":      im.FlashSizeName(),
		"flash_freq":      im.FlashFreqName(),
		"segments":        segs,
		"checksum":        fmt.Sprintf("0x%02x", im.Checksum),
		"checksum_valid":  im.ChecksumValid(),
		"hash_appended":   im.HashAppended,
		"sha256_computed": hexOrEmpty(im.ComputedSHA256[:]),
	}
	if im.Format == firmware.FormatESP32 {
		f["chip_id"] = im.ChipID
		f["wp_pin"] = fmt.Sprintf("0x%02x", im.WPPin)
		f["drive"] = map[string]any{"clk": im.DriveCLK, "q": im.DriveQ, "d": im.DriveD, "cs0": im.DriveCS, "hd": im.DriveHD, "wp": im.DriveWP}
		f["min_rev_legacy"] = im.MinRevLegacy
		f["min_rev_full"] = im.MinRevFull
		f["max_rev_full"] = im.MaxRevFull
		f["min_revision"] = fmt.Sprintf("v%d.%d", im.MinRevFull/100, im.MinRevFull%100)
		f["max_revision"] = fmt.Sprintf("v%d.%d", im.MaxRevFull/100, im.MaxRevFull%100)
	}
	if im.HashAppended {
		f["sha256"] = hexOrEmpty(im.StoredSHA256[:])
		f["sha256_valid"] = im.SHA256Valid()
	}
	if d := im.AppDesc; d != nil {
		f["app"] = map[string]any{"project": d.ProjectName, "version": d.Version, "compile_date": d.Date, "compile_time": d.Time,
			"idf_version": d.IDFVersion, "elf_sha256": hexOrEmpty(d.ELFSHA256[:]), "secure_version": d.SecureVersion,
			"min_efuse_blk_rev_full": d.MinEfuseBlk, "max_efuse_blk_rev_full": d.MaxEfuseBlk}
	}
	if d := im.BootloaderDesc; d != nil {
		f["bootloader"] = map[string]any{"version": d.Version, "idf_version": d.IDFVersion, "date_time": d.DateTime, "secure_version": d.SecureVersion}
	}
	if im.Signature != nil {
		f["signature_blocks"] = signatureBlockFields(im.Signature)
		f["signed_length"] = im.Signature.Offset
	}
	return f
}

func signatureBlockFields(ss *firmware.SignatureSector) []map[string]any {
	out := make([]map[string]any, 0, len(ss.Blocks))
	for _, b := range ss.Blocks {
		out = append(out, map[string]any{"block": b.Index, "scheme": b.Scheme.String(), "key_digest": hexOrEmpty(b.KeyDigest[:])})
	}
	return out
}

func checkFields(v ops.Verdict, err error) map[string]any {
	checks := make([]map[string]any, 0, len(v.Checks))
	for _, c := range v.Checks {
		checks = append(checks, map[string]any{"check": c.Name, "status": c.Status.String(), "detail": c.Detail})
	}
	out := map[string]any{"ok": err == nil, "content": v.Content.String(), "checks": checks}
	if err != nil {
		out["message"] = err.Error()
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func formatName(f firmware.ImageFormat) string {
	switch f {
	case firmware.FormatESP8266:
		return "esp8266"
	case firmware.FormatESP8266V2:
		return "esp8266-v2"
	}
	return "esp32"
}

// printImageInfo prints esptool's report, then espdeck's verdicts.
func printImageInfo(w io.Writer, name string, im *firmware.Image, v ops.Verdict, pfErr error, sigRes *firmware.SignatureResult, sigErr error) {
	fmt.Fprint(w, im.EsptoolReport())
	fmt.Fprintln(w)
	fmt.Fprintln(w, "espdeck verdicts")
	fmt.Fprintln(w, "================")
	fmt.Fprintf(w, "Summary: %s\n", im.Summary(name))
	fmt.Fprintf(w, "Content: %s\n", v.Content)
	integrity := "checksum ok"
	switch {
	case !im.ChecksumValid():
		integrity = fmt.Sprintf("checksum BAD (stored 0x%02x, computed 0x%02x)", im.Checksum, im.ComputedChecksum)
	case im.HashAppended && !im.SHA256Valid():
		integrity = "checksum ok, SHA-256 BAD (stored " + hexOrEmpty(im.StoredSHA256[:]) + ")"
	case im.HashAppended:
		integrity = "checksum ok, SHA-256 ok"
	}
	fmt.Fprintf(w, "Integrity: %s\n", integrity)
	if im.Length != im.FileSize {
		fmt.Fprintf(w, "Length: image %d bytes, file %d bytes (%d bytes after the image)\n", im.Length, im.FileSize, im.FileSize-im.Length)
	}
	if pfErr == nil {
		fmt.Fprintln(w, "As an OTA app: acceptable (chip and slot size are checked against the board when sending)")
	} else {
		fmt.Fprintf(w, "As an OTA app: refused — %v\n", pfErr)
	}
	switch {
	case im.Signature == nil:
		fmt.Fprintln(w, "Signature: none (no Secure Boot V2 signature sector after the image)")
	default:
		for _, b := range im.Signature.Blocks {
			fmt.Fprintf(w, "Signature block %d: %s, key digest %x\n", b.Index, b.Scheme, b.KeyDigest[:])
		}
		switch {
		case sigRes != nil:
			fmt.Fprintf(w, "Signature: verified with the given key (block %d)\n", sigRes.Block)
		case sigErr != nil:
			fmt.Fprintf(w, "Signature: NOT verified — %v\n", sigErr)
		default:
			fmt.Fprintln(w, "Signature: not verified (pass --key PUB.pem to check it)")
		}
	}
}
