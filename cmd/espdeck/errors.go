package main

import (
	"context"
	"errors"

	"github.com/espdeck/espdeck/internal/ops"
	"github.com/espdeck/espdeck/serialflash"
)

// exitCodes is the one table from error codes (ops.Code*, answered by every
// error's Code()) to exit statuses. docs/cli.md and README list the same.
var exitCodes = map[string]int{
	ops.CodeInternal:        exitInternal,
	ops.CodeUsage:           exitUsage,
	ops.CodeBadInput:        exitUsage,
	ops.CodeRefused:         exitRefused,
	ops.CodeWrongChip:       exitRefused,
	ops.CodeTooBig:          exitRefused,
	ops.CodeNotConfirmed:    exitRefused,
	ops.CodeInvalidSlot:     exitRefused,
	ops.CodeNoFreeSlot:      exitRefused,
	ops.CodeBadTable:        exitDevice,
	ops.CodeNoTable:         exitDevice,
	ops.CodeUnknownPart:     exitUsage,
	ops.CodeNoOTAData:       exitRefused,
	ops.CodeSlotWriteRefuse: exitRefused,
	ops.CodeUnreachable:     exitUnreachable,
	ops.CodeNoSync:          exitUnreachable,
	ops.CodeWrongBootMode:   exitUnreachable,
	ops.CodeBaudChange:      exitUnreachable,
	ops.CodePortNotFound:    exitUnreachable,
	ops.CodePortBusy:        exitPermission,
	ops.CodePermission:      exitPermission,
	ops.CodeAuthFailed:      exitAuth,
	ops.CodeNoConnectBack:   exitNoConnect,
	ops.CodeListen:          exitUsage,
	ops.CodeNoAnswer:        exitUnreachable,
	ops.CodeNotAnApp:        exitRefused,
	ops.CodeTransfer:        exitTransfer,
	ops.CodeTimeout:         exitTransfer,
	ops.CodeDevice:          exitDevice,
	ops.CodeVerify:          exitVerify,
	ops.CodeNotVerified:     exitVerify,
	ops.CodeInterrupted:     exitInterrupted,
	ops.CodeWriteFile:       exitInternal,
}

// exitFor is the exit status for an error code (1 for an unknown one).
func exitFor(code string) int {
	if n, ok := exitCodes[code]; ok {
		return n
	}
	return exitInternal
}

// failureOf turns any error of a use case into the failure the command
// reports: code and hint from the error itself, the exit status from the
// table, doing as the sentence's context. A cancelled command is 130.
func failureOf(c *cli, err error, doing string) *failure {
	if c.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return interrupted(doing)
	}
	ce := ops.Classify(err).(ops.Coded)
	msg := serialflash.Message(err)
	if doing != "" {
		msg = doing + ": " + msg
	}
	return &failure{code: exitFor(ops.Class(err)), name: ce.Code(), message: msg, hint: ce.Hint()}
}
