package tui

import "time"

// Messages are named for what happened. They are unexported: only the
// model's own commands produce them (tests in this package build them too).

// deviceEventsMsg carries every device event that was waiting, so a burst
// of discovery answers costs one repaint.
type deviceEventsMsg struct {
	events []DeviceEvent
	closed bool // the source closed its channel
}

// jobProgressMsg carries the latest progress of one or more jobs.
type jobProgressMsg struct {
	updates []progressUpdate
}

// progressUpdate is one job's progress as sent through the fan-in channel.
type progressUpdate struct {
	job int
	p   Progress
	at  time.Time
}

// jobFinishedMsg says a job's Flash call returned.
type jobFinishedMsg struct {
	job    int
	result FlashResult
}

// inspectedMsg carries the facts and verdicts for the chosen file.
type inspectedMsg struct {
	seq      int // which inspection this answers; stale answers are ignored
	path     string
	facts    ImageFacts
	verdicts map[string]Verdict // by row key
	err      error
}

// completionsMsg carries path completions for the file input.
type completionsMsg struct {
	input string
	paths []string
}

// chipInfoMsg carries a serial board's chip facts.
type chipInfoMsg struct {
	row  string
	info ChipInfo
	err  error
}

// partitionsMsg carries a serial board's partition state, read or after a change.
type partitionsMsg struct {
	row    string
	action string // "" for a plain read, else what was done ("switched boot to ota_0")
	state  PartitionState
	err    error
}

// hostAddedMsg says AddHost returned.
type hostAddedMsg struct {
	addr string
	err  error
}

// monitorOpenedMsg says the monitor opened (or failed to).
type monitorOpenedMsg struct {
	session int
	lines   <-chan LogLine
	err     error
}

// monitorLinesMsg carries the lines that were waiting.
type monitorLinesMsg struct {
	session int
	lines   []LogLine
	closed  bool
}

// resetDoneMsg says ResetIntoApp returned.
type resetDoneMsg struct{ err error }

// tickMsg refreshes ages ("online 2s") and ETAs once a second.
type tickMsg time.Time

// noticeMsg is a one-line outcome for the status line (and the log).
type noticeMsg struct {
	text string
	err  error
}
