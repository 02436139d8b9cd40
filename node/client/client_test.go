package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/api/apitest"
	"github.com/agora-p2p/agora/node/client"
)

const testTimeout = 10 * time.Second

func TestFromRepoWithoutAPIFileIsNotRunning(t *testing.T) {
	dir := t.TempDir()
	_, err := client.FromRepo(dir)
	if !client.IsNotRunning(err) {
		t.Fatalf("IsNotRunning(%v) = false", err)
	}
	want := "the Agora daemon is not running for repo " + dir + "; start it with `agora daemon` (or `agora up`)"
	if err.Error() != want {
		t.Fatalf("error %q\nwant  %q", err, want)
	}
}

func TestRefusedConnectionIsNotRunning(t *testing.T) {
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	dir := t.TempDir()
	write(t, dir, "api", addr+"\n")
	write(t, dir, "api.token", "tok")
	c, err := client.FromRepo(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(t.Context())
	if !client.IsNotRunning(err) || !strings.Contains(err.Error(), "for repo "+dir) {
		t.Fatalf("stale api file: %v", err)
	}
	// Events fails the same way when it never got a stream.
	err = c.Events(t.Context(), 0, func(api.Event) error { return nil })
	if !client.IsNotRunning(err) {
		t.Fatalf("Events: %v", err)
	}
	// Without a repo, the message names the address.
	err = client.New(addr, "tok").Healthz(t.Context())
	if !client.IsNotRunning(err) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("by address: %v", err)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFromRepoFindsTheDaemon(t *testing.T) {
	s := apitest.Start(t)
	for name, content := range map[string]string{
		"url":     "  " + s.URL + "/\n",
		"address": s.Addr + "\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "api", content)
			write(t, dir, "api.token", s.Token+"\n")
			c, err := client.FromRepo(dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.BaseURL() != s.URL {
				t.Fatalf("BaseURL %q, want %q", c.BaseURL(), s.URL)
			}
			if _, err := c.Identity(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
	dir := t.TempDir()
	s.WriteRepo(t, dir)
	if c, err := client.FromRepo(dir); err != nil {
		t.Fatal(err)
	} else if err := c.Healthz(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestFromRepoBadFiles(t *testing.T) {
	tests := map[string]map[string]string{
		"no token":    {"api": "127.0.0.1:4243"},
		"empty token": {"api": "127.0.0.1:4243", "api.token": "\n"},
		"bad address": {"api": "ftp://x", "api.token": "t"},
		"empty api":   {"api": " \n", "api.token": "t"},
	}
	for name, files := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, c := range files {
				write(t, dir, f, c)
			}
			_, err := client.FromRepo(dir)
			if err == nil || client.IsNotRunning(err) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestDoGeneric(t *testing.T) {
	s := apitest.Start(t)
	c := s.Client()
	var out []api.Community
	if err := c.Do(t.Context(), "POST", "/api/v1/communities", api.CreateCommunityRequest{Name: "n"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(t.Context(), "GET", "/api/v1/communities", nil, &out); err != nil || len(out) != 1 {
		t.Fatalf("%v %v", out, err)
	}
	err := c.Do(t.Context(), "GET", "/api/v1/nope", nil, nil)
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != 404 {
		t.Fatalf("%#v", err)
	}
	if _, err := c.Community(t.Context(), " "); err == nil {
		t.Fatal("empty ID accepted")
	}
}

func TestNonAgoraServerError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "teapot", http.StatusTeapot)
	}))
	defer ts.Close()
	err := client.New(ts.URL, "t").Healthz(t.Context())
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok || ae.Status != http.StatusTeapot || !strings.Contains(ae.Message, "Agora daemon") {
		t.Fatalf("%#v", err)
	}
}

// A stream that drops is resumed with Last-Event-ID and the node's epoch,
// and the events reach fn once each, in order.
func TestEventsReconnectsWithLastEventID(t *testing.T) {
	var conns atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set(api.EpochHeader, "E1")
		switch conns.Add(1) {
		case 1:
			if r.Header.Get("Last-Event-ID") != "" || r.Header.Get("Authorization") != "Bearer tok" {
				http.Error(w, "bad first request", 400)
				return
			}
			fmt.Fprint(w, ": ping\n\nid: 1\nevent: a\ndata: {\"id\":1,\"type\":\"a\",\"time\":5}\n\n")
			fmt.Fprint(w, "id: 2\nevent: b\ndata: {\"id\":2,\"type\":\"b\",\"time\":6,\n")
			fmt.Fprint(w, "data: \"data\":{\"k\":\"v\"}}\n\n")
			// ...then the connection drops.
		case 2:
			if r.Header.Get("Last-Event-ID") != "2" || r.Header.Get(api.EpochHeader) != "E1" {
				http.Error(w, "bad resume: "+r.Header.Get("Last-Event-ID"), 400)
				return
			}
			fmt.Fprint(w, "event: events.gap\ndata: {\"type\":\"events.gap\",\"time\":7}\n\n")
			fmt.Fprint(w, "id: 3\r\nevent: c\r\ndata: {\"id\":3,\"type\":\"c\",\"time\":8}\r\n\r\n")
		default:
			http.Error(w, "too many connections", 500)
		}
	}))
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := client.New(ts.URL, "tok", client.WithReconnectDelay(time.Millisecond, 10*time.Millisecond))
	var got []string
	done := errors.New("done")
	err := c.Events(ctx, 0, func(ev api.Event) error {
		got = append(got, fmt.Sprintf("%d:%s", ev.ID, ev.Type))
		if ev.ID == 2 && ev.Data.(map[string]any)["k"] != "v" {
			t.Errorf("multi-line data: %+v", ev)
		}
		if ev.ID == 3 {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		t.Fatalf("Events: %v (got %v)", err, got)
	}
	if want := "1:a 2:b 0:events.gap 3:c"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

// A connection that goes silent (no heartbeat) is dropped and resumed.
func TestEventsReconnectsWhenIdle(t *testing.T) {
	var conns atomic.Int32
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if conns.Add(1) == 1 {
			fmt.Fprint(w, "id: 1\ndata: {\"id\":1,\"type\":\"a\"}\n\n")
			w.(http.Flusher).Flush()
			select { // silent until the client gives up on it
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		if r.Header.Get("Last-Event-ID") != "1" {
			http.Error(w, "bad resume", 400)
			return
		}
		fmt.Fprint(w, "id: 2\ndata: {\"id\":2,\"type\":\"b\"}\n\n")
	}))
	defer ts.Close()
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c := client.New(ts.URL, "tok", client.WithEventsIdle(50*time.Millisecond), client.WithReconnectDelay(time.Millisecond, time.Millisecond))
	done := errors.New("done")
	var got []uint64
	err := c.Events(ctx, 0, func(ev api.Event) error {
		got = append(got, ev.ID)
		if ev.ID == 2 {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) || len(got) != 2 {
		t.Fatalf("Events: %v %v", got, err)
	}
}

func TestEventsStopsOnAuthError(t *testing.T) {
	s := apitest.Start(t)
	err := client.New(s.URL, "wrong").Events(t.Context(), 0, func(api.Event) error { return nil })
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != 401 {
		t.Fatalf("%#v", err)
	}
}

// End to end against the real server: a live stream sees events published
// after it opened.
func TestEventsLive(t *testing.T) {
	s := apitest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s.Hub.Publish("first", nil)
	done := errors.New("done")
	err := s.Client().Events(ctx, 0, func(ev api.Event) error {
		switch ev.ID {
		case 1:
			s.Hub.Publish("second", map[string]int{"n": 2})
			return nil
		case 2:
			if ev.Type != "second" || ev.Data.(map[string]any)["n"] != float64(2) {
				t.Errorf("event %+v", ev)
			}
			return done
		}
		return fmt.Errorf("unexpected %+v", ev)
	})
	if !errors.Is(err, done) {
		t.Fatal(err)
	}
}
