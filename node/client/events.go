package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// maxEventBytes bounds one event, so a broken stream cannot exhaust memory.
const maxEventBytes = 8 << 20

// Events streams the node's events to fn, starting after lastID (0: every
// event the node still buffers, without a gap event for older ones). It
// reconnects when the connection drops or
// goes quiet, resuming with Last-Event-ID, so fn sees each event once and in
// order; when the node lost some (or restarted), fn first gets an event of
// type api.GapEventType.
//
// Events returns when ctx ends (ctx.Err()), when fn returns an error (that
// error), or when the node refuses the stream or cannot be reached on the
// first attempt. fn runs on the caller's goroutine and delays the stream
// while it runs; the node drops a stream that falls far behind, and Events
// then resumes where it was.
func (c *Client) Events(ctx context.Context, lastID uint64, fn func(api.Event) error) error {
	s := &stream{lastID: lastID}
	delay := c.retryMin
	for {
		err := c.streamOnce(ctx, s, fn)
		if fe, ok := errors.AsType[*fnError](err); ok {
			return fe.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ae, ok := errors.AsType[*APIError](err); ok && ae.Status < 500 {
			return err
		}
		if _, ok := errors.AsType[*streamError](err); ok {
			return err
		}
		if !s.everOpened {
			return err
		}
		if s.opened {
			delay = c.retryMin
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, c.retryMax)
	}
}

var errIdle = errors.New("event stream idle")

// stream is what survives a reconnection.
type stream struct {
	lastID     uint64
	epoch      string // the node's events epoch, sent back to detect restarts
	opened     bool   // the last attempt got a stream
	everOpened bool
}

// fnError carries the callback's error through the reconnect loop.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

// streamError is a stream this client cannot read; reconnecting won't help.
type streamError struct{ msg string }

func (e *streamError) Error() string { return e.msg }

func (c *Client) streamOnce(ctx context.Context, s *stream, fn func(api.Event) error) error {
	s.opened = false
	// The watchdog cancels a connection that went quiet: heartbeats arrive
	// well within eventsIdle, so silence means the path is dead.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	idle := time.AfterFunc(c.eventsIdle, func() { cancel(errIdle) })
	defer idle.Stop()

	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/events", nil)
	if err != nil {
		return &streamError{msg: err.Error()}
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.lastID > 0 || s.everOpened {
		// Even "0" on a reconnect: events this client never saw may have
		// been evicted meanwhile, and only a resuming request hears of it.
		req.Header.Set("Last-Event-ID", strconv.FormatUint(s.lastID, 10))
	}
	if s.epoch != "" {
		req.Header.Set(api.EpochHeader, s.epoch)
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), errIdle) {
			return fmt.Errorf("the daemon at %s did not open the event stream within %v", c.base.Host, c.eventsIdle)
		}
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return replyError(resp)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return &streamError{msg: fmt.Sprintf("the daemon at %s did not answer with an event stream; are the CLI and the daemon the same version?", c.base.Host)}
	}
	s.opened, s.everOpened = true, true
	if e := resp.Header.Get(api.EpochHeader); e != "" {
		s.epoch = e
	}

	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	var (
		data    strings.Builder
		hasData bool
		typ     string
		id      string
		hasID   bool
	)
	for sc.Scan() {
		idle.Reset(c.eventsIdle)
		line := sc.Text()
		if line == "" {
			if hasData {
				if err := s.dispatch(typ, data.String(), id, hasID, fn); err != nil {
					return err
				}
			}
			data.Reset()
			hasData, typ, id, hasID = false, "", "", false
			continue
		}
		if line[0] == ':' {
			continue // comment: heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "event":
			typ = value
		case "id":
			id, hasID = value, true
		}
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return &streamError{msg: fmt.Sprintf("the daemon sent an event larger than %d bytes; this client cannot read it", maxEventBytes)}
	}
	// A stream ends only when the connection does: reconnect.
	if errors.Is(context.Cause(ctx), errIdle) {
		return fmt.Errorf("the event stream from %s went silent for %v", c.base.Host, c.eventsIdle)
	}
	return fmt.Errorf("the event stream from %s ended: %v", c.base.Host, sc.Err())
}

// dispatch delivers one event and advances the resume point past it.
func (s *stream) dispatch(typ, data, id string, hasID bool, fn func(api.Event) error) error {
	var ev api.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return &streamError{msg: fmt.Sprintf("the daemon sent an event this client cannot read (%v); are the CLI and the daemon the same version?", err)}
	}
	if ev.Type == "" {
		ev.Type = typ
	}
	if hasID {
		n, err := strconv.ParseUint(strings.TrimSpace(id), 10, 64)
		if err != nil {
			return &streamError{msg: fmt.Sprintf("the daemon sent the event ID %q, which is not a number", id)}
		}
		ev.ID = n
	}
	if err := fn(ev); err != nil {
		return &fnError{err: err}
	}
	if hasID {
		s.lastID = ev.ID
	}
	return nil
}
