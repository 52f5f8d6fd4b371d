//go:build !linux

package romsim

import (
	"context"
	"errors"
)

// StartPTY needs Linux: the simulator reads the host's baud rate from the
// pty master with TCGETS2. Use StartTCP elsewhere.
func StartPTY(ctx context.Context, cfg Config) (path string, rom *ROM, stop func(), err error) {
	return "", nil, nil, errors.New("romsim: the pty simulator needs Linux; use StartTCP (socket://) instead")
}
