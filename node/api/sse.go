package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	// GapEventType is sent first on a stream when events after the client's
	// Last-Event-ID are gone; the client should then refresh whatever state
	// it builds from events. It carries no SSE id, so it does not move the
	// client's Last-Event-ID.
	GapEventType = "events.gap"
	// EpochHeader carries the event source's Epoch on every stream reply.
	// A client that sends it back (header, or the epoch query parameter) with
	// Last-Event-ID is told about a gap when the node has restarted since,
	// instead of silently skipping events whose IDs it thinks it has seen.
	EpochHeader = "Agora-Events-Epoch"
)

// GapData is the Data of a GapEventType event.
type GapData struct {
	// After is the Last-Event-ID the client asked to resume from.
	After uint64 `json:"after"`
	// Restarted is true when the node restarted since After was issued.
	Restarted bool `json:"restarted,omitempty"`
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	lastID, resuming, ok := lastEventID(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "Last-Event-ID must be the decimal ID of an event this stream sent.")
		return
	}
	epoch := s.hub.Epoch()
	clientEpoch := r.Header.Get(EpochHeader)
	if clientEpoch == "" {
		clientEpoch = r.URL.Query().Get("epoch")
	}
	restarted := resuming && clientEpoch != "" && clientEpoch != epoch
	subscribeFrom := lastID
	if restarted {
		subscribeFrom = 0
	}
	backlog, ch, cancel, gap := s.hub.Subscribe(subscribeFrom)
	defer cancel()
	// A first connection has no state that missing events could make stale:
	// it gets what is buffered without being told that older ones are gone.
	gap = gap && resuming

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set(EpochHeader, epoch)
	w.WriteHeader(http.StatusOK)

	bw := bufio.NewWriter(w)
	send := func(write func()) bool {
		// A per-write deadline drops a client that stopped reading, which no
		// server-wide WriteTimeout could do for a long-lived stream.
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		write()
		if bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}

	if !send(func() {
		if gap || restarted {
			s.writeEvent(bw, Event{Type: GapEventType, Time: time.Now().UnixMilli(), Data: GapData{After: lastID, Restarted: restarted}}, false)
		}
		for _, ev := range backlog {
			s.writeEvent(bw, ev, true)
		}
	}) {
		return
	}

	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.Done():
			return
		case <-tick.C:
			if !send(func() { _, _ = bw.WriteString(": ping\n\n") }) {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				// Dropped for falling behind: ending the response makes the
				// client reconnect and resume from Last-Event-ID.
				return
			}
			if !send(func() {
				s.writeEvent(bw, ev, true)
				for n := len(ch); n > 0; n-- { // batch what is queued into one flush
					if ev, ok = <-ch; !ok {
						return
					}
					s.writeEvent(bw, ev, true)
				}
			}) || !ok {
				return
			}
		}
	}
}

// writeEvent writes one event in SSE framing; withID is false only for
// synthetic events that must not move the client's Last-Event-ID.
func (s *Server) writeEvent(bw *bufio.Writer, ev Event, withID bool) {
	data, err := json.Marshal(ev)
	if err != nil {
		// Keep the ID sequence whole: deliver the event without its data.
		s.log.Error("event data cannot be encoded as JSON", "id", ev.ID, "type", ev.Type, "err", err)
		ev.Data = nil
		data, _ = json.Marshal(ev)
	}
	if withID {
		bw.WriteString("id: ")
		bw.WriteString(strconv.FormatUint(ev.ID, 10))
		bw.WriteByte('\n')
	}
	bw.WriteString("event: ")
	bw.WriteString(oneLine(ev.Type))
	bw.WriteString("\ndata: ")
	bw.Write(data) // compact JSON has no raw newlines
	bw.WriteString("\n\n")
}

// oneLine keeps a type with a line break from ending the event early.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// lastEventID reads the resume point: the Last-Event-ID header that
// EventSource sends on reconnect, or the last_event_id query parameter for a
// first connection that resumes. resuming is false when neither is present.
func lastEventID(r *http.Request) (id uint64, resuming, ok bool) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		v = strings.TrimSpace(r.URL.Query().Get("last_event_id"))
	}
	if v == "" {
		return 0, false, true
	}
	id, err := strconv.ParseUint(v, 10, 64)
	return id, true, err == nil
}
