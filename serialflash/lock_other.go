//go:build !unix

package serialflash

// PortLock is one process's claim on a serial port. On this system the
// operating system's exclusive open already keeps a second program out.
type PortLock struct{}

// LockPort claims name for owner; here the exclusive open does the work.
func LockPort(name, owner string) (*PortLock, error) { return &PortLock{}, nil }

// Unlock releases the claim.
func (l *PortLock) Unlock() {}
