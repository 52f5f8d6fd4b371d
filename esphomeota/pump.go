package esphomeota

import "sync"

// pump delivers progress events in order on a goroutine of its own, so a
// slow callback never blocks the transfer. Transfer events pending while
// the callback runs are coalesced into the newest one.
type pump struct {
	fn      func(Progress)
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Progress
	closed  bool
	stopped chan struct{}
}

func newPump(fn func(Progress)) *pump {
	p := &pump{fn: fn, stopped: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	if fn == nil {
		close(p.stopped)
		return p
	}
	go p.run()
	return p
}

func (p *pump) send(ev Progress) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.queue); n > 0 && ev.Stage == StageTransfer && p.queue[n-1].Stage == StageTransfer {
		p.queue[n-1] = ev
	} else {
		p.queue = append(p.queue, ev)
	}
	p.cond.Signal()
}

func (p *pump) run() {
	defer close(p.stopped)
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.cond.Wait()
		}
		if len(p.queue) == 0 {
			p.mu.Unlock()
			return
		}
		ev := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		p.fn(ev)
	}
}

// close delivers what is queued and waits for the callback to return.
func (p *pump) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Signal()
	p.mu.Unlock()
	<-p.stopped
}
