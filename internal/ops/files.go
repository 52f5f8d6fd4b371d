package ops

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Size limits for files read whole. The largest ESP flash is 128 MiB; an
// image, dump or table bigger than that is a mistake (or /dev/zero).
const (
	MaxImageFile  = 128 << 20
	MaxSecretFile = 4 << 10
	// MaxKeyFile bounds a PEM key file (a few KB; generous for chains).
	MaxKeyFile = 1 << 20
)

// ReadInputFile reads a file that is to be read whole (an image, a table,
// a key): it must be a regular file of at most limit bytes, checked before
// reading and enforced while reading (a file that grows is cut off and
// refused), so /dev/zero or a 1 GB mistake costs nothing.
func ReadInputFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errorf(CodeBadInput, "check the path", "cannot read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, Errorf(CodeBadInput, "check the path", "cannot read %s: %w", path, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, Errorf(CodeBadInput, "give a regular file (an image, table or key file), not a device, pipe or directory",
			"%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > limit {
		return nil, Errorf(CodeBadInput, "check that this is the right file", "%s is %d bytes, more than the %d bytes such a file can be", path, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, Errorf(CodeBadInput, "check the file", "cannot read %s: %w", path, unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return nil, Errorf(CodeBadInput, "check that this is the right file", "%s grew past %d bytes while being read", path, limit)
	}
	return data, nil
}

// ReadSecretFile reads a password or API key from a file: at most 4 KiB,
// the first line without its line ending. warning is non-empty when other
// users can read the file (the secret is then no secret).
func ReadSecretFile(path string) (secret, warning string, err error) {
	data, err := ReadInputFile(path, MaxSecretFile)
	if err != nil {
		// Never echo the content; ReadInputFile does not.
		return "", "", err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o044 != 0 {
		warning = fmt.Sprintf("%s can be read by other users (mode %04o): chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	}
	return string(bytes.TrimRight(data, "\r")), warning, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
