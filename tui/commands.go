package tui

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
)

// maxBatch bounds how many queued events one message carries.
const maxBatch = 512

// watchDevices starts discovery and returns the channel to drain.
func watchDevices(ctx context.Context, src DeviceSource) <-chan DeviceEvent {
	if src == nil {
		return nil
	}
	return src.Watch(ctx)
}

// waitDevices waits for the next device event and takes every event already
// queued behind it. The model re-arms it after each message.
func waitDevices(ctx context.Context, ch <-chan DeviceEvent) tea.Cmd {
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		var msg deviceEventsMsg
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-ch:
			if !ok {
				msg.closed = true
				return msg
			}
			msg.events = append(msg.events, ev)
		}
		for len(msg.events) < maxBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					msg.closed = true
					return msg
				}
				msg.events = append(msg.events, ev)
			default:
				return msg
			}
		}
		return msg
	}
}

// waitProgress drains the fan-in progress channel: it waits for one update,
// then takes whatever else is queued, keeping only each job's latest.
func waitProgress(ctx context.Context, ch <-chan progressUpdate) tea.Cmd {
	return func() tea.Msg {
		var msg jobProgressMsg
		select {
		case <-ctx.Done():
			return nil
		case u := <-ch:
			msg.updates = append(msg.updates, u)
		}
		for len(msg.updates) < maxBatch {
			select {
			case u := <-ch:
				msg.updates = append(msg.updates, u)
			default:
				return msg
			}
		}
		return msg
	}
}

// progressSink returns the progress callback for one job. It runs on the
// flash worker and never blocks it: reports are sent at most every interval
// (or at once when the stage changes) and dropped when the channel is full —
// the next report carries the newer state anyway.
func progressSink(job int, ch chan<- progressUpdate, interval time.Duration, now func() time.Time) func(Progress) {
	var mu sync.Mutex
	var lastStage string
	var lastSent time.Time
	return func(p Progress) {
		t := now()
		mu.Lock()
		due := p.Stage != lastStage || t.Sub(lastSent) >= interval || (p.Total > 0 && p.Done >= p.Total)
		if due {
			lastStage, lastSent = p.Stage, t
		}
		mu.Unlock()
		if !due {
			return
		}
		select {
		case ch <- progressUpdate{job: job, p: p, at: t}:
		default:
		}
	}
}

// runFlash runs one job to its end.
func runFlash(ctx context.Context, f Flasher, job int, req FlashRequest, sink func(Progress)) tea.Cmd {
	return func() tea.Msg {
		start := time.Now()
		res := f.Flash(ctx, req, sink)
		if res.Duration == 0 {
			res.Duration = time.Since(start)
		}
		if ctx.Err() != nil && !res.OK() {
			res.Canceled = true
		}
		return jobFinishedMsg{job: job, result: res}
	}
}

// inspect reads the file's facts and the verdict for every target.
func inspect(ctx context.Context, in ImageInspector, seq int, path string, targets map[string]Device) tea.Cmd {
	return func() tea.Msg {
		msg := inspectedMsg{seq: seq, path: path, verdicts: map[string]Verdict{}}
		keys := make([]string, 0, len(targets))
		for k := range targets {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			facts, v, err := in.Inspect(ctx, path, targets[k])
			if err != nil {
				msg.err = err
				return msg
			}
			msg.facts = facts
			msg.verdicts[k] = v
		}
		return msg
	}
}

// complete lists the paths that complete input: entries of its directory
// whose names start with its last element; directories end in "/".
func complete(input string) tea.Cmd {
	return func() tea.Msg {
		dir, prefix := filepath.Split(input)
		readDir := dir
		if readDir == "" {
			readDir = "."
		}
		if strings.HasPrefix(readDir, "~/") {
			if home, err := os.UserHomeDir(); err == nil {
				readDir = filepath.Join(home, readDir[2:])
			}
		}
		entries, err := os.ReadDir(readDir)
		if err != nil {
			return completionsMsg{input: input}
		}
		var out []string
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, prefix) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(prefix, ".")) {
				continue
			}
			if e.IsDir() {
				name += "/"
			}
			out = append(out, dir+name)
			if len(out) >= 200 {
				break
			}
		}
		return completionsMsg{input: input, paths: out}
	}
}

func readChipInfo(ctx context.Context, s SerialInfo, row string, d Device) tea.Cmd {
	return func() tea.Msg {
		info, err := s.ChipInfo(ctx, d)
		return chipInfoMsg{row: row, info: info, err: err}
	}
}

func readPartitions(ctx context.Context, p PartitionControl, row string, d Device) tea.Cmd {
	return func() tea.Msg {
		st, err := p.ReadPartitions(ctx, d)
		return partitionsMsg{row: row, state: st, err: err}
	}
}

func addHost(ctx context.Context, src DeviceSource, addr string) tea.Cmd {
	return func() tea.Msg {
		return hostAddedMsg{addr: addr, err: src.AddHost(ctx, addr)}
	}
}

func openMonitor(ctx context.Context, m MonitorSource, session int, d Device) tea.Cmd {
	return func() tea.Msg {
		ch, err := m.Monitor(ctx, d)
		return monitorOpenedMsg{session: session, lines: ch, err: err}
	}
}

func waitMonitor(ctx context.Context, session int, ch <-chan LogLine) tea.Cmd {
	return func() tea.Msg {
		msg := monitorLinesMsg{session: session}
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-ch:
			if !ok {
				msg.closed = true
				return msg
			}
			msg.lines = append(msg.lines, l)
		}
		for len(msg.lines) < maxBatch {
			select {
			case l, ok := <-ch:
				if !ok {
					msg.closed = true
					return msg
				}
				msg.lines = append(msg.lines, l)
			default:
				return msg
			}
		}
		return msg
	}
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}
