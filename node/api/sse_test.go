package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/api/apitest"
	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/events"
	"github.com/prometheus/client_golang/prometheus"
)

// testTimeout bounds every wait; nothing below sleeps for correctness.
const testTimeout = 10 * time.Second

// frame is one SSE block: its fields, or a comment.
type frame struct {
	comment string
	id      string
	hasID   bool
	event   string
	data    string
}

type rawStream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openStream(t *testing.T, s *apitest.Server, headers map[string]string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &rawStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads one frame; ok is false at the end of the stream.
func (rs *rawStream) next(t *testing.T) (f frame, ok bool) {
	t.Helper()
	started := false
	for {
		line, err := rs.r.ReadString('\n')
		if err != nil {
			if started {
				t.Fatalf("stream ended inside a frame: %v", err)
			}
			return f, false
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if started {
				return f, true
			}
			continue
		}
		started = true
		if c, ok := strings.CutPrefix(line, ":"); ok {
			f.comment = strings.TrimSpace(c)
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "id":
			f.id, f.hasID = v, true
		case "event":
			f.event = v
		case "data":
			f.data = v
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func (rs *rawStream) nextEvent(t *testing.T) frame {
	t.Helper()
	for {
		f, ok := rs.next(t)
		if !ok {
			t.Fatal("stream ended")
		}
		if f.comment == "" {
			return f
		}
	}
}

func TestEventsWireFormat(t *testing.T) {
	s := apitest.Start(t)
	s.Hub.Publish("peer.connected", map[string]string{"peer_id": "12D3KooWOther"})
	rs := openStream(t, s, nil)
	if rs.resp.Header.Get(api.EpochHeader) != s.Hub.Epoch() || rs.resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers: %v", rs.resp.Header)
	}
	f := rs.nextEvent(t)
	var ev api.Event
	if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
		t.Fatal(err)
	}
	if f.id != "1" || f.event != "peer.connected" || ev.ID != 1 || ev.Type != "peer.connected" || ev.Time == 0 {
		t.Fatalf("frame %+v event %+v", f, ev)
	}
	// Live events follow the backlog on the same stream.
	s.Hub.Publish("community.joined", map[string]string{"id": "bafy"})
	if f := rs.nextEvent(t); f.id != "2" || f.event != "community.joined" {
		t.Fatalf("live frame %+v", f)
	}
}

func TestEventsHeartbeat(t *testing.T) {
	s := apitest.Start(t, func(c *api.ServerConfig) { c.Heartbeat = 5 * time.Millisecond })
	rs := openStream(t, s, nil)
	for i := 0; i < 2; i++ {
		f, ok := rs.next(t)
		if !ok || f.comment != "ping" {
			t.Fatalf("frame %d = %+v, want a ping", i, f)
		}
	}
}

func TestEventsNeedToken(t *testing.T) {
	s := apitest.Start(t)
	if r := do(t, s, "GET", "/api/v1/events", nil); r.status != 401 {
		t.Fatalf("events without token: %d", r.status)
	}
	if r := do(t, s, "GET", "/api/v1/events", nil, withToken(s.Token), withHeader("Last-Event-ID", "x")); r.status != 400 {
		t.Fatalf("bad Last-Event-ID: %d", r.status)
	}
}

// The scenario of the brief: read, disconnect, miss some, resume with
// Last-Event-ID and get exactly the missed ones.
func TestEventsResumeWithClient(t *testing.T) {
	s := apitest.Start(t)
	c := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for range 3 {
		s.Hub.Publish("task.done", nil)
	}

	stop := errors.New("disconnect")
	var got []uint64
	err := c.Events(ctx, 0, func(ev api.Event) error {
		got = append(got, ev.ID)
		if ev.ID == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !equalIDs(got, 1, 3) {
		t.Fatalf("first read: %v %v", got, err)
	}

	for range 4 {
		s.Hub.Publish("task.done", nil)
	}
	got = nil
	err = c.Events(ctx, 3, func(ev api.Event) error {
		if ev.Type == api.GapEventType {
			t.Fatal("unexpected gap")
		}
		got = append(got, ev.ID)
		if ev.ID == 7 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !equalIDs(got, 4, 7) {
		t.Fatalf("resumed: %v %v", got, err)
	}

	// The query parameter works too, for clients that cannot set headers.
	r := openStreamQuery(t, s, "last_event_id=6")
	if f := r.nextEvent(t); f.id != "7" {
		t.Fatalf("query resume: %+v", f)
	}
}

func openStreamQuery(t *testing.T, s *apitest.Server, query string) *rawStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/api/v1/events?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events?%s: %v %v", query, resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &rawStream{resp: resp, r: bufio.NewReader(resp.Body)}
}

func equalIDs(got []uint64, from, to uint64) bool {
	if uint64(len(got)) != to-from+1 {
		return false
	}
	for i, id := range got {
		if id != from+uint64(i) {
			return false
		}
	}
	return true
}

func TestEventsGapAfterEviction(t *testing.T) {
	hub := events.New(4)
	s := apitest.Start(t, func(c *api.ServerConfig) { c.Hub = hub })
	for range 10 {
		hub.Publish("x", nil)
	}
	rs := openStream(t, s, map[string]string{"Last-Event-ID": "2"})
	f := rs.nextEvent(t)
	var gap struct {
		Type string      `json:"type"`
		Data api.GapData `json:"data"`
	}
	if err := json.Unmarshal([]byte(f.data), &gap); err != nil {
		t.Fatal(err)
	}
	if f.event != api.GapEventType || f.hasID || gap.Data.After != 2 || gap.Data.Restarted {
		t.Fatalf("gap frame %+v %+v", f, gap)
	}
	for want := 7; want <= 10; want++ {
		if f := rs.nextEvent(t); f.id != strconv.Itoa(want) {
			t.Fatalf("after gap: %+v, want id %d", f, want)
		}
	}

	// A resuming client that had seen nothing hears of the gap too...
	rs = openStream(t, s, map[string]string{"Last-Event-ID": "0"})
	if f := rs.nextEvent(t); f.event != api.GapEventType {
		t.Fatalf("resume from 0: %+v", f)
	}
	// ...but a first connection just gets what is buffered.
	rs = openStream(t, s, nil)
	if f := rs.nextEvent(t); f.id != "7" {
		t.Fatalf("first connection: %+v", f)
	}
}

// An ID from another epoch (the node restarted) is a gap, and the stream
// starts from the new process's first buffered event.
func TestEventsRestartDetectedByEpoch(t *testing.T) {
	s := apitest.Start(t)
	for range 5 {
		s.Hub.Publish("x", nil)
	}
	rs := openStream(t, s, map[string]string{"Last-Event-ID": "3", api.EpochHeader: "an-earlier-process"})
	f := rs.nextEvent(t)
	if f.event != api.GapEventType || !strings.Contains(f.data, `"restarted":true`) {
		t.Fatalf("frame %+v", f)
	}
	if f := rs.nextEvent(t); f.id != "1" {
		t.Fatalf("after restart gap: %+v", f)
	}
	// The same epoch resumes normally.
	rs = openStream(t, s, map[string]string{"Last-Event-ID": "3", api.EpochHeader: s.Hub.Epoch()})
	if f := rs.nextEvent(t); f.id != "4" {
		t.Fatalf("same epoch: %+v", f)
	}
}

// closingSource is an EventSource whose subscription the test ends, as the
// hub does to a subscriber that fell behind.
type closingSource struct {
	ch chan api.Event
}

func (c *closingSource) Subscribe(uint64) ([]api.Event, <-chan api.Event, func(), bool) {
	return nil, c.ch, func() {}, false
}
func (c *closingSource) Epoch() string { return "e" }

func TestEventsStreamEndsWhenDropped(t *testing.T) {
	src := &closingSource{ch: make(chan api.Event, 1)}
	s := apitest.Start(t, func(c *api.ServerConfig) { c.Hub = src })
	rs := openStream(t, s, nil)
	src.ch <- api.Event{ID: 1, Type: "x"}
	if f := rs.nextEvent(t); f.id != "1" {
		t.Fatalf("frame %+v", f)
	}
	close(src.ch)
	if f, ok := rs.next(t); ok {
		t.Fatalf("stream went on after the drop: %+v", f)
	}
}

func TestShutdownEndsOpenStreams(t *testing.T) {
	hub := events.New(16)
	srv, err := api.NewServer(api.ServerConfig{
		Backend: apitest.NewBackend(), Hub: hub, Token: "tok", Gatherer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	hub.Publish("x", nil)
	streaming := make(chan struct{})
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- client.New(l.Addr().String(), "tok").Events(ctx, 0, func(ev api.Event) error {
			if ev.ID == 1 {
				close(streaming)
			}
			return nil
		})
	}()
	select {
	case <-streaming:
	case <-ctx.Done():
		t.Fatal("stream never opened")
	}

	sdCtx, sdCancel := context.WithTimeout(context.Background(), testTimeout)
	defer sdCancel()
	if err := srv.Shutdown(sdCtx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	// The client keeps trying to resume until its context ends.
	cancel()
	if err := <-streamDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("Events: %v", err)
	}
}
