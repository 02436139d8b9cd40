package tasks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/agora-p2p/agora/node/agents"
	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/protocol/task"
)

// Executor limits.
const (
	// requestWait is how long a new stream may take to send its Request.
	requestWait = 10 * time.Second
	// maxTaskTime caps the deadline a requester may ask for.
	maxTaskTime = time.Hour
	// seenFor is how long a request ID is remembered against replays.
	seenFor = 10 * time.Minute
	// journalPayload is the largest input or output kept in the journal.
	journalPayload = 64 << 10
	// Heartbeat is how often an executor sends an empty Progress frame
	// while a task runs and says nothing else, and Silence how long a
	// requester waits for any frame before it takes the executor for gone
	// (a killed peer on QUIC sends nothing; its connection would only time
	// out much later).
	Heartbeat = 2 * time.Second
	Silence   = 4 * Heartbeat
	// acceptedDelay is how long Accepted may wait to share a write with
	// the Result of a quick task.
	acceptedDelay = 2 * time.Millisecond
)

// Rejection codes of the executor (besides the agents.Code* ones).
const (
	CodeNotMember   = "not-member"
	CodeRateLimited = "rate-limited"
	CodeLoop        = "loop"
	CodeExpired     = "expired"
	CodeDuplicate   = "duplicate"
	CodeShutdown    = "shutting-down"
)

// durableStart waits, for a job that is not Pure, until the task's journal
// entry is on disk, so that a crash while it runs leaves a trace the next
// start ends as failed.
func (s *Service) durableStart(ctx context.Context, job Job) error {
	if p, ok := job.(Pure); ok && p.Pure() {
		return nil
	}
	if err := s.j.durable(ctx); err != nil {
		if ctx.Err() != nil {
			return agents.Errorf(agents.CodeCanceled, "the task ended before it started: %v", err)
		}
		s.log.Error("could not journal a task before running it", "err", err)
		return agents.Errorf(agents.CodeBackend, "the node could not journal the task: %v", err)
	}
	return nil
}

// serve runs one task a peer sent on a stream.
func (s *Service) serve(st network.Stream) {
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	from := st.Conn().RemotePeer()
	fromStr := idText.peer(from)
	_ = st.SetReadDeadline(time.Now().Add(requestWait))
	rd := getReader(st)
	f, err := task.Read(rd, task.MaxFrame)
	if err != nil {
		putReader(rd)
		s.log.Debug("bad task request", "peer", from, "err", err)
		s.frameFault(from, err)
		_ = st.Reset()
		return
	}
	req, ok := f.(*task.Request)
	if !ok {
		putReader(rd)
		s.log.Debug("task stream did not start with a request", "peer", from, "frame", f.Type())
		_ = st.Reset()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	reject := func(code, reason string) {
		putReader(rd)
		s.metrics.received.WithLabelValues("rejected").Inc()
		_ = st.SetWriteDeadline(time.Now().Add(requestWait))
		_ = task.Write(st, &task.Rejected{ID: req.ID, Code: code, Reason: reason})
		_ = st.Close()
	}
	now := s.cfg.Now()
	switch {
	case !s.cfg.Member(req.Community):
		reject(CodeNotMember, "this node is not in community "+req.Community.String())
		return
	case req.Deadline <= now.UnixMilli():
		reject(CodeExpired, "the task's deadline has passed")
		return
	case s.inAncestry(req.Ancestry):
		reject(CodeLoop, "this node is already working on an ancestor of the task")
		return
	case !s.firstSeen(fromStr, req.ID, now):
		reject(CodeDuplicate, "this node has already received a task with that ID from you")
		return
	case s.known(req.ID):
		// Task IDs are random; one this node knows is a replay or an
		// attempt to overwrite a task of its own.
		reject(CodeDuplicate, "this node already has a task with that ID")
		return
	case !s.limiter(from).Allow():
		reject(CodeRateLimited, "too many tasks from your node; slow down")
		return
	}
	if s.cfg.Admit != nil {
		if code, reason := s.cfg.Admit(req.Community, from); code != "" {
			reject(code, reason)
			return
		}
	}
	job, err := s.cfg.Local.Admit(req.Skill, req.Input, from, req.Community)
	if err != nil {
		reject(agents.CodeOf(err), reasonOf(err))
		return
	}
	// The agent's slot is free as soon as it has run, before the end is
	// reported: a requester that hears the end may ask again at once.
	release := sync.OnceFunc(job.Release)
	defer release()
	deadline := time.UnixMilli(req.Deadline)
	if limit := now.Add(maxTaskTime); deadline.After(limit) {
		deadline = limit
	}
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	ms := now.UnixMilli()
	// Registered before Accepted goes out, so the loop check and the API see
	// the task as soon as the requester does.
	l, ok := s.tryBegin(api.Task{
		ID: req.ID, Status: StatusWorking, Role: "executor", Skill: req.Skill, Community: idText.community(req.Community),
		Executor: s.selfStr, Agent: job.Agent(), Requester: fromStr, Input: keep(req.Input),
		Created: ms, Updated: ms, Attempts: 1, Ancestry: req.Ancestry,
		Events: append(make([]api.TaskEvent, 0, 2), api.TaskEvent{Seq: 1, Time: ms, Type: "accepted", Peer: fromStr, Agent: job.Agent()}),
	}, cancel)
	if !ok {
		reject(CodeDuplicate, "this node already has a task with that ID")
		return
	}
	defer s.end(l)
	s.metrics.received.WithLabelValues("accepted").Inc()
	// Accepted waits a moment in the buffer: a task that ends at once goes
	// out with its Result in one write. Only a task still running then
	// gets what a longer one needs: a reader for the requester's Cancel
	// and a heartbeat. A quick task costs no goroutine and no timer firing.
	w := &frameWriter{st: st}
	if err := w.write(&task.Accepted{ID: req.ID, Agent: job.Agent()}, false); err != nil {
		_ = st.Reset()
		cancel()
	}

	// The requester may cancel, or go away (reset): both stop the work.
	var cmu sync.Mutex
	canceledBy := ""
	stopWith := func(why string) {
		cmu.Lock()
		if canceledBy == "" {
			canceledBy = why
		}
		cmu.Unlock()
		cancel()
	}
	watch := func() {
		for {
			f, err := task.Read(rd, task.MaxFrame)
			if err != nil {
				s.frameFault(from, err)
				if !errors.Is(err, io.EOF) {
					stopWith("the requester went away")
				}
				return
			}
			if c, ok := f.(*task.Cancel); ok && c.ID == req.ID {
				stopWith("canceled by the requester")
				return
			}
		}
	}
	progress := func(msg string, pct int) {
		if pct < -1 || pct > 100 {
			pct = -1
		}
		if len(msg) > task.MaxReason {
			msg = msg[:task.MaxReason]
		}
		_ = w.progress(req.ID, msg, pct)
		s.event(l, api.TaskEvent{Type: "progress", Message: msg, Percent: pct}, nil)
	}
	// An empty Progress every Heartbeat while the agent says nothing.
	var (
		slowMu   sync.Mutex
		finished bool // the agent has returned
		watching bool // watch runs: rd is its own
		beat     *time.Timer
	)
	var heartbeat func()
	heartbeat = func() {
		if err := w.progress(req.ID, "", -1); err != nil {
			stopWith("the requester went away")
			return
		}
		slowMu.Lock()
		if !finished {
			beat.Reset(Heartbeat)
		}
		slowMu.Unlock()
	}
	slow := time.AfterFunc(acceptedDelay, func() {
		slowMu.Lock()
		defer slowMu.Unlock()
		if finished {
			return
		}
		_ = w.flush()
		watching = true
		go watch()
		beat = time.AfterFunc(Heartbeat-acceptedDelay, heartbeat)
	})
	started := s.cfg.Now()
	var out json.RawMessage
	runErr := s.durableStart(ctx, job)
	if runErr == nil {
		out, runErr = job.Run(withLineage(ctx, req.ID, Request{Ancestry: req.Ancestry, HopsLeft: int(req.HopsLeft)}), progress)
	}
	release()
	ended := s.cfg.Now()
	slowMu.Lock()
	finished = true
	slow.Stop()
	if beat != nil {
		beat.Stop()
	}
	if !watching {
		// Nothing else reads the stream: the reader goes back to the pool.
		defer putReader(rd)
	}
	slowMu.Unlock()
	if runErr == nil && len(out) > task.MaxPayload {
		runErr = agents.Errorf(agents.CodeOutputTooBig, "the output is %d bytes, over the protocol's %d", len(out), task.MaxPayload)
	}
	rc := &task.Receipt{
		Task: req.ID, Community: req.Community, Requester: from, Agent: job.Agent(), Skill: req.Skill,
		Input: task.Hash(req.Input), Status: task.StatusCompleted,
		Started: started.UnixMilli(), Ended: max(ended.UnixMilli(), started.UnixMilli()),
	}
	if runErr != nil {
		rc.Status = task.StatusFailed
	} else {
		rc.Output = task.Hash(out)
	}
	raw, signErr := s.signer.Sign(rc)
	if signErr != nil {
		s.log.Error("could not sign a receipt", "task", req.ID, "err", signErr)
		raw = nil
	}

	var final api.TaskEvent
	code, reason := "", ""
	_ = st.SetWriteDeadline(time.Now().Add(requestWait))
	if runErr == nil && raw != nil {
		err = w.write(&task.Result{ID: req.ID, Output: out, Receipt: raw}, true)
		final = api.TaskEvent{Type: StatusCompleted}
	} else {
		if runErr == nil {
			runErr = signErr
		}
		code, reason = agents.CodeOf(runErr), reasonOf(runErr)
		cmu.Lock()
		if canceledBy != "" {
			code, reason = agents.CodeCanceled, canceledBy
		}
		cmu.Unlock()
		err = w.write(&task.Failed{ID: req.ID, Code: code, Reason: clipReason(reason), Receipt: raw}, true)
		final = api.TaskEvent{Type: StatusFailed, Code: code, Message: reason}
	}
	if err != nil {
		s.log.Debug("could not send a task's end", "task", req.ID, "peer", from, "err", err)
		_ = st.Reset()
	} else {
		_ = st.Close()
	}
	status := StatusCompleted
	if final.Type != StatusCompleted {
		status = StatusFailed
		if code == agents.CodeCanceled {
			status, final.Type = StatusCanceled, StatusCanceled
		}
	}
	s.event(l, final, func(t *api.Task) {
		t.Status, t.Code, t.Error = status, code, reason
		t.Output = keep(out)
		if raw != nil {
			l.rc = rc
		}
	})
}

// inAncestry reports whether any ancestor is a task in flight here: a
// request that names one would loop back into work this node is doing.
func (s *Service) inAncestry(ancestry []string) bool {
	if len(ancestry) == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(ancestry, func(id string) bool { return s.live[id] != nil })
}

// firstSeen records a request ID from a peer and reports whether it is new
// (within the last seenFor at least). Two generations of IDs are kept, so
// forgetting old ones costs nothing per request.
func (s *Service) firstSeen(from, id string, now time.Time) bool {
	k := from + "/" + id
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.seenSince) >= seenFor {
		s.seenOld, s.seen, s.seenSince = s.seen, map[string]struct{}{}, now
	}
	if _, ok := s.seen[k]; ok {
		return false
	}
	if _, ok := s.seenOld[k]; ok {
		return false
	}
	s.seen[k] = struct{}{}
	return true
}

func reasonOf(err error) string {
	var re *agents.RunError
	if errors.As(err, &re) {
		return re.Reason
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the task's deadline passed"
	case errors.Is(err, context.Canceled):
		return "the task was canceled"
	}
	return err.Error()
}

func clipReason(s string) string {
	if len(s) > task.MaxReason {
		return s[:task.MaxReason]
	}
	return s
}

// keep returns payload for the journal, or nil when it is too large.
func keep(payload json.RawMessage) json.RawMessage {
	if len(payload) > journalPayload {
		return nil
	}
	return payload
}

// frameWriter serialises the executor's frames on a stream. Frames written
// without flush wait in buf for the next flush, which sends them all in
// one stream write.
type frameWriter struct {
	mu  sync.Mutex
	st  network.Stream
	buf []byte
	seq uint64
}

// write queues f and, if flush, sends everything queued.
func (w *frameWriter) write(f task.Frame, flush bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(f, flush)
}

func (w *frameWriter) writeLocked(f task.Frame, flush bool) error {
	var err error
	if w.buf, err = task.Append(w.buf, f); err != nil {
		return err
	}
	if flush {
		return w.flushLocked()
	}
	return nil
}

// flush sends what is queued.
func (w *frameWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *frameWriter) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.st.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// progress sends a Progress frame with the next seq.
func (w *frameWriter) progress(id, msg string, pct int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return w.writeLocked(&task.Progress{ID: id, Seq: w.seq, Message: msg, Percent: int64(pct)}, true)
}

// readerSize is the buffer of a task stream's reader: frames are read
// through it for their length prefix, and one larger than it is read past
// it, straight into the frame's buffer.
const readerSize = 1 << 10

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// getReader returns a pooled reader of st.
func getReader(st io.Reader) *bufio.Reader {
	rd := readers.Get().(*bufio.Reader)
	rd.Reset(st)
	return rd
}

// putReader returns rd to the pool; nothing may use it after.
func putReader(rd *bufio.Reader) {
	rd.Reset(nil)
	readers.Put(rd)
}
