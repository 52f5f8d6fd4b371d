//go:build unix

package main

import (
	"errors"
	"syscall"
)

// isNotSyncable: fsync on a pipe or terminal fails with EINVAL/ENOTSUP,
// which says nothing about the data written.
func isNotSyncable(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EROFS)
}
