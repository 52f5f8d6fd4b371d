package main

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/espdeck/espdeck/firmware"
)

const imageSignUsage = `espdeck image sign / keygen — Secure Boot V2 signing

Usage:
  espdeck image sign FILE --key PRIVATE.pem [--key PRIVATE2.pem]... -o OUT [--append] [--json]
  espdeck image keygen PRIVATE.pem [--scheme ecdsa256|ecdsa384|rsa3072] [--pub PUB.pem] [--json]

sign appends a Secure Boot V2 signature sector with one block per --key,
byte for byte as espsecure sign-data --version 2 writes it: the image is
padded with FF to a 4 KB multiple, then the sector holds up to three
blocks. --append keeps the blocks of an already signed image and adds
yours after them (espsecure's --append-signatures); without it a signed
image is refused. The result is checked with the keys' public halves
before it is written.

keygen makes a signing key: ECDSA P-256 by default (ESP32-C2/C6/H2/C5/P4),
rsa3072 for the chips that only know RSA (ESP32 rev 3, S2, S3, C3). The
private key is written 0600 and never overwritten; the public key (what
espdeck image verify --key and espdeck serve --key take) goes next to it.

Examples:
  espdeck image keygen keys/fleet.pem
  espdeck image sign build/greenhouse.bin --key keys/fleet.pem -o build/greenhouse.signed.bin
  espdeck image sign build/greenhouse.signed.bin --key keys/backup.pem --append -o build/greenhouse.2keys.bin
`

func runImageSign(c *cli, args []string) int {
	fs, cm := c.newFlags("image sign", imageSignUsage)
	var keys keyList
	fs.Var(&keys, "key", "PEM private `KEY` to sign with (repeatable, up to three blocks)")
	out := fs.String("o", "", "write the signed image to `OUT`")
	fs.StringVar(out, "output", "", "same as -o")
	appendBlocks := fs.Bool("append", false, "keep the signature blocks already present and add new ones")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 1 || len(keys) == 0 || *out == "" {
		fmt.Fprintln(c.stderr, "espdeck image sign: give one FILE, --key PRIVATE.pem and -o OUT (see espdeck image sign --help)")
		return exitUsage
	}
	r := c.reporter(cm, "")
	path := pos[0]
	data, err := os.ReadFile(path)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_input", message: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)), hint: "check the path"}, nil)
	}
	var signers []crypto.Signer
	var pubs []crypto.PublicKey
	for _, kp := range keys {
		s, f := loadSigningKey(kp, r.warn)
		if f != nil {
			return r.finish(f, nil)
		}
		signers = append(signers, s)
		pubs = append(pubs, s.Public())
	}
	signed, err := firmware.Sign(data, signers, firmware.SignOptions{Append: *appendBlocks})
	if err != nil {
		var se *firmware.SignError
		hint := ""
		if errors.As(err, &se) {
			hint = se.Hint()
		}
		return r.finish(&failure{code: exitUsage, name: "sign_failed", message: fmt.Sprintf("%s: %v", path, err), hint: hint}, nil)
	}
	// Check with every new key before anything is written.
	for i, pub := range pubs {
		if _, err := firmware.VerifySignature(signed, []crypto.PublicKey{pub}); err != nil {
			return r.finish(&failure{code: exitInternal, name: "sign_failed", message: fmt.Sprintf("the block for %s does not verify: %v", keys[i], err),
				hint: "report this as a bug; nothing was written"}, nil)
		}
	}
	if err := writeHiddenThenRename(*out, signed, 0o644); err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_output", message: err.Error(), hint: "check the -o path"}, nil)
	}
	ss, _ := firmware.LocateSignature(signed)
	fields := map[string]any{"file": filepath.Base(path), "output": *out, "bytes": len(signed)}
	if ss != nil {
		fields["signature_blocks"] = signatureBlockFields(ss)
		if !cm.json {
			for _, b := range ss.Blocks {
				fmt.Fprintf(c.stdout, "block %d: %s, key digest %x\n", b.Index, b.Scheme, b.KeyDigest[:])
			}
		}
	}
	if !cm.json {
		fmt.Fprintf(c.stdout, "%s: signed, %d bytes written to %s\n", filepath.Base(path), len(signed), *out)
	}
	return r.finish(nil, fields)
}

// loadSigningKey reads a private key file. Key bytes never reach a message.
func loadSigningKey(path string, warn func(string)) (crypto.Signer, *failure) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, &failure{code: exitUsage, name: "bad_key", message: fmt.Sprintf("cannot read key %s: %v", path, errors.Unwrap(err)), hint: "check the --key path"}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		warn(fmt.Sprintf("the private key %s can be read by other users (mode %v): chmod 600 it", path, fi.Mode().Perm()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &failure{code: exitUsage, name: "bad_key", message: fmt.Sprintf("cannot read key %s: %v", path, errors.Unwrap(err)), hint: "check the --key path"}
	}
	s, err := firmware.ParseSigningKeyPEM(b)
	if err != nil {
		var se *firmware.SignError
		hint := "give an unencrypted PEM private key"
		if errors.As(err, &se) {
			hint = se.Hint()
		}
		return nil, &failure{code: exitUsage, name: "bad_key", message: fmt.Sprintf("%s: %v", path, err), hint: hint}
	}
	return s, nil
}

func runImageKeygen(c *cli, args []string) int {
	fs, cm := c.newFlags("image keygen", imageSignUsage)
	scheme := fs.String("scheme", "ecdsa256", "key `SCHEME`: ecdsa256, ecdsa384 or rsa3072")
	pubPath := fs.String("pub", "", "write the public key to `PUB.pem` (default: PRIVATE.pub.pem)")
	pos, err := parse(fs, args)
	if err != nil {
		return c.usageExit(err, args)
	}
	if len(pos) != 1 {
		fmt.Fprintln(c.stderr, "espdeck image keygen: give the PRIVATE.pem path to create (see espdeck image keygen --help)")
		return exitUsage
	}
	r := c.reporter(cm, "")
	priv := pos[0]
	if *pubPath == "" {
		*pubPath = strings.TrimSuffix(priv, ".pem") + ".pub.pem"
	}
	keyPEM, err := firmware.GenerateSigningKey(firmware.SigningScheme(*scheme), nil)
	if err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_scheme", message: err.Error(), hint: "use --scheme ecdsa256, ecdsa384 or rsa3072"}, nil)
	}
	signer, err := firmware.ParseSigningKeyPEM(keyPEM)
	if err != nil {
		return r.finish(&failure{code: exitInternal, name: "internal", message: err.Error()}, nil)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return r.finish(&failure{code: exitInternal, name: "internal", message: err.Error()}, nil)
	}
	// O_EXCL: an existing key is never replaced (boards may trust it).
	f, err := os.OpenFile(priv, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		hint := "check the folder"
		if errors.Is(err, os.ErrExist) {
			hint = "choose another name; an existing signing key is never overwritten"
		}
		return r.finish(&failure{code: exitUsage, name: "bad_output", message: fmt.Sprintf("cannot create %s: %v", priv, errors.Unwrap(err)), hint: hint}, nil)
	}
	if _, err := f.Write(keyPEM); err != nil {
		f.Close()
		os.Remove(priv)
		return r.finish(&failure{code: exitUsage, name: "bad_output", message: fmt.Sprintf("write %s: %v", priv, err)}, nil)
	}
	if err := f.Close(); err != nil {
		os.Remove(priv)
		return r.finish(&failure{code: exitUsage, name: "bad_output", message: fmt.Sprintf("write %s: %v", priv, err)}, nil)
	}
	if err := writeHiddenThenRename(*pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return r.finish(&failure{code: exitUsage, name: "bad_output", message: err.Error(), hint: "the private key was written; extract the public key with espsecure extract-public-key --version 2"}, nil)
	}
	digest, _ := firmware.PublicKeyDigest(signer.Public())
	if !cm.json {
		fmt.Fprintf(c.stdout, "private key (keep it secret, mode 0600): %s\npublic key: %s\nkey digest (eFuse SECURE_BOOT_DIGEST): %x\n", priv, *pubPath, digest[:])
	}
	return r.finish(nil, map[string]any{"private_key_file": priv, "public_key_file": *pubPath, "scheme": *scheme, "key_digest": hex.EncodeToString(digest[:])})
}

// writeHiddenThenRename writes data to path through a hidden temporary
// file and a rename, so a reader never sees half a file, and espdeck serve
// (which skips dot files) never publishes the temporary one.
func writeHiddenThenRename(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
