package tasks

import "time"

// idleWorker is how long a worker goroutine waits for its next task before
// it exits.
const idleWorker = 10 * time.Second

// workers runs functions on goroutines that outlive them. A task's own
// work (decoding, JSON Schema validation, Ed25519 in curve25519-voi) needs
// a deeper stack than a new goroutine starts with, and growing it
// (runtime.copystack) cost about 12 µs of each side's round trip; a worker
// keeps the stack it grew for the next task, until a garbage collection
// finds it idle and shrinks it. A worker with no task for idleWorker
// exits, so an idle node keeps none; nothing ticks meanwhile.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds only into an idle worker
	stop chan struct{}
}

func newWorkers() *workers {
	return &workers{jobs: make(chan func()), stop: make(chan struct{})}
}

// run runs f on an idle worker, or on a new one.
func (w *workers) run(f func()) {
	select {
	case w.jobs <- f:
	default:
		go w.work(f)
	}
}

func (w *workers) work(f func()) {
	f()
	idle := time.NewTimer(idleWorker)
	defer idle.Stop()
	for {
		select {
		case f := <-w.jobs:
			f()
			idle.Reset(idleWorker)
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close ends the idle workers; busy ones end after their task.
func (w *workers) close() { close(w.stop) }
