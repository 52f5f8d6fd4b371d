// Package ops holds the use cases that the command line and the TUI share:
// check an image against a target before sending it, upload it, read a
// board's partition state, switch its boot slot safely, flash a fleet.
//
// It is the only place where the protocol packages (espota, serialflash) and
// the firmware knowledge meet, so that espota and serialflash never import
// each other and every flash path makes the same decisions.
package ops
