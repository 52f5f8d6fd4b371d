package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/espdeck/espdeck/internal/ops"
)

// writeOutput writes data to path safely: through a temporary file in the
// same directory, renamed over path only when path is missing or a regular
// file. A device node, a directory or a symlink is refused, never replaced
// (and never followed silently). perm is the new file's mode: 0600 for
// flash dumps and backups (they may hold Wi-Fi credentials), 0644 for
// tables and images.
func writeOutput(path string, data []byte, perm fs.FileMode) error {
	if fi, err := os.Lstat(path); err == nil {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: refusing to replace it; give the real path (%s)", path, linkTarget(path))
		case !fi.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file (%s): refusing to replace it; give a file name", path, fi.Mode().Type())
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

func linkTarget(path string) string {
	if t, err := os.Readlink(path); err == nil {
		return "it points to " + t
	}
	return "it is a link"
}

// writeStdout writes data to w and reports a short or failed write: a
// full disk or closed pipe behind stdout fails the command.
func writeStdout(w io.Writer, data []byte) error {
	n, err := w.Write(data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("cannot write to stdout: %w", err)
	}
	if sw, ok := w.(*stickyWriter); ok {
		w = sw.w
	}
	if f, ok := w.(*os.File); ok {
		if err := f.Sync(); err != nil && !isNotSyncable(err) {
			return fmt.Errorf("cannot write to stdout: %w", err)
		}
	}
	return nil
}

// stickyWriter remembers the first error writing stdout, so that output
// lost to a full disk or a closed pipe fails the command instead of
// passing for success.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	s.err = err
	return n, err
}

// stdoutChecked runs a command with stdout behind a stickyWriter; a
// command that succeeded but could not write its output exits with the
// write_failed status.
func stdoutChecked(c *cli, run func() int) int {
	sw := &stickyWriter{w: c.stdout}
	c.stdout = sw
	code := run()
	if sw.err != nil && code == exitOK {
		fmt.Fprintf(c.stderr, "espdeck: cannot write to stdout: %v\n", sw.err)
		return exitFor(ops.CodeWriteFile)
	}
	return code
}
