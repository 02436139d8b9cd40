package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/agora-p2p/agora/node/api"
	"github.com/agora-p2p/agora/node/api/apitest"
	"github.com/agora-p2p/agora/node/client"
	"github.com/agora-p2p/agora/node/events"
	"github.com/prometheus/client_golang/prometheus"
)

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errorSentence(t *testing.T) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == "" {
		t.Fatalf("status %d: body %q is not an ErrorBody", r.status, r.body)
	}
	return eb.Error
}

type reqOpt func(*http.Request)

func withToken(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func withHost(h string) reqOpt { return func(r *http.Request) { r.Host = h } }
func withHeader(k, v string) reqOpt {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func do(t *testing.T, s *apitest.Server, method, path string, body []byte, opts ...reqOpt) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("%s %s sent a CORS header %q", method, path, v)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func TestNewServerRequiresConfig(t *testing.T) {
	ok := api.ServerConfig{
		Backend: apitest.NewBackend(), Hub: events.New(1), Token: "t", Gatherer: prometheus.NewRegistry(),
	}
	if _, err := api.NewServer(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, f := range map[string]func(*api.ServerConfig){
		"backend":   func(c *api.ServerConfig) { c.Backend = nil },
		"hub":       func(c *api.ServerConfig) { c.Hub = nil },
		"token":     func(c *api.ServerConfig) { c.Token = "" },
		"gatherer":  func(c *api.ServerConfig) { c.Gatherer = nil },
		"heartbeat": func(c *api.ServerConfig) { c.Heartbeat = -1 },
	} {
		c := ok
		f(&c)
		if _, err := api.NewServer(c); err == nil {
			t.Errorf("missing %s accepted", name)
		}
	}
}

func TestAuth(t *testing.T) {
	s := apitest.Start(t)

	r := do(t, s, "GET", "/api/v1/id", nil)
	if r.status != 401 || !strings.Contains(r.errorSentence(t), "api.token") || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("no token: %d %q %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	r = do(t, s, "GET", "/api/v1/id", nil, withToken("wrong"))
	if r.status != 401 || !strings.Contains(r.errorSentence(t), "api.token") || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("wrong token: %d %q", r.status, r.body)
	}
	r = do(t, s, "GET", "/api/v1/id", nil, withHeader("Authorization", "Basic "+s.Token))
	if r.status != 401 {
		t.Fatalf("basic scheme: %d", r.status)
	}
	r = do(t, s, "GET", "/api/v1/id", nil, withHeader("Authorization", "bearer "+s.Token))
	if r.status != 200 {
		t.Fatalf("lowercase scheme: %d %s", r.status, r.body)
	}
	r = do(t, s, "GET", "/healthz", nil)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	// An unknown route does not tell an anonymous caller what exists.
	if r = do(t, s, "GET", "/api/v1/nope", nil); r.status != 401 {
		t.Fatalf("unknown route without token: %d", r.status)
	}
	if n := s.Backend.Calls(); n != 1 {
		t.Fatalf("backend called %d times, want 1", n)
	}
}

func TestHostGuard(t *testing.T) {
	s := apitest.Start(t)
	port := s.Addr[strings.LastIndex(s.Addr, ":")+1:]
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, 200},
		{"localhost:" + port, 200},
		{"LOCALHOST", 200},
		{"dashboard.localhost:" + port, 200},
		{"127.0.0.2:" + port, 200},
		{"[::1]:" + port, 200},
		{"evil.example:4243", 403},
		{"evil.example", 403},
		{"localhost.evil.example:" + port, 403},
		{"127.0.0.1.nip.io:" + port, 403},
		{"192.168.1.10:" + port, 403},
		{"[::2]:" + port, 403},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			r := do(t, s, "GET", "/api/v1/id", nil, withToken(s.Token), withHost(tc.host))
			if r.status != tc.want {
				t.Fatalf("Host %q: %d %s, want %d", tc.host, r.status, r.body, tc.want)
			}
			if tc.want == 403 {
				r.errorSentence(t)
			}
		})
	}
	// The host is checked first: no token and a bad host is a 403, and
	// /healthz is guarded too.
	if r := do(t, s, "GET", "/api/v1/id", nil, withHost("evil.example")); r.status != 403 {
		t.Fatalf("bad host without token: %d", r.status)
	}
	if r := do(t, s, "GET", "/healthz", nil, withHost("evil.example")); r.status != 403 {
		t.Fatalf("healthz with bad host: %d", r.status)
	}
}

func TestOriginGuard(t *testing.T) {
	s := apitest.Start(t)
	tests := []struct {
		origin string
		want   int
	}{
		{s.URL, 200},
		{"http://evil.example", 403},
		{"null", 403},
		{"https://" + s.Addr, 403},
		{strings.Replace(s.URL, "127.0.0.1", "localhost", 1), 403}, // another origin, although loopback
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			r := do(t, s, "POST", "/api/v1/communities", []byte(`{"name":"x"}`), withToken(s.Token), withHeader("Origin", tc.origin))
			if tc.want == 200 {
				tc.want = 201
			}
			if r.status != tc.want {
				t.Fatalf("Origin %q: %d %s, want %d", tc.origin, r.status, r.body, tc.want)
			}
		})
	}
	if n := s.Backend.Calls(); n != 1 {
		t.Fatalf("backend called %d times, want 1", n)
	}
}

func TestMetrics(t *testing.T) {
	s := apitest.Start(t)
	if r := do(t, s, "GET", "/metrics", nil); r.status != 401 {
		t.Fatalf("metrics without token: %d", r.status)
	}
	r := do(t, s, "GET", "/metrics", nil, withToken(s.Token))
	if r.status != 200 || !strings.Contains(string(r.body), "agora_apitest_up 1") {
		t.Fatalf("metrics with token: %d %s", r.status, r.body)
	}

	open := apitest.Start(t, func(c *api.ServerConfig) { c.MetricsNoAuth = true })
	if r := do(t, open, "GET", "/metrics", nil); r.status != 200 || !strings.Contains(string(r.body), "agora_apitest_up") {
		t.Fatalf("MetricsNoAuth: %d", r.status)
	}
	if r := do(t, open, "GET", "/metrics", nil, withHost("evil.example")); r.status != 403 {
		t.Fatalf("MetricsNoAuth still checks the host: %d", r.status)
	}
	if r := do(t, open, "GET", "/api/v1/id", nil); r.status != 401 {
		t.Fatalf("MetricsNoAuth opened other routes: %d", r.status)
	}
}

func TestBadBodiesNeverReachBackend(t *testing.T) {
	s := apitest.Start(t)
	big := append(append([]byte(`{"name":"`), bytes.Repeat([]byte("a"), api.MaxBodyBytes)...), `"}`...)
	tests := []struct {
		name        string
		path        string
		body        []byte
		contentType string
		want        int
		mention     string
	}{
		{"syntax", "/api/v1/communities", []byte(`{"name":`), "", 400, "not valid JSON"},
		{"garbage", "/api/v1/communities", []byte(`name=x`), "", 400, "not valid JSON"},
		{"unknown field", "/api/v1/communities", []byte(`{"name":"x","nmae":"y"}`), "", 400, `"nmae"`},
		{"wrong type", "/api/v1/communities", []byte(`{"name":7}`), "", 400, `"name"`},
		{"not an object", "/api/v1/communities", []byte(`["x"]`), "", 400, "JSON object"},
		{"trailing data", "/api/v1/communities", []byte(`{"name":"x"} {"name":"y"}`), "", 400, "after its JSON object"},
		{"empty", "/api/v1/communities", []byte{}, "", 400, "empty"},
		{"missing name", "/api/v1/communities", []byte(`{"description":"d"}`), "", 400, "name"},
		{"oversize", "/api/v1/communities", big, "", 413, "limit"},
		{"form content type", "/api/v1/communities", []byte(`{"name":"x"}`), "application/x-www-form-urlencoded", 415, "application/json"},
		{"text content type", "/api/v1/communities/join", []byte(`{"invite":"x"}`), "text/plain", 415, "application/json"},
		{"missing invite", "/api/v1/communities/join", []byte(`{"invite":"  "}`), "", 400, "invite"},
		{"unknown join field", "/api/v1/communities/join", []byte(`{"invite":"x","force":true}`), "", 400, `"force"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{withToken(s.Token)}
			if tc.contentType != "" {
				opts = append(opts, withHeader("Content-Type", tc.contentType))
			}
			r := do(t, s, "POST", tc.path, tc.body, opts...)
			if r.status != tc.want || !strings.Contains(r.errorSentence(t), tc.mention) {
				t.Fatalf("%d %s, want %d mentioning %s", r.status, r.body, tc.want, tc.mention)
			}
		})
	}
	if n := s.Backend.Calls(); n != 0 {
		t.Fatalf("backend called %d times", n)
	}
	// A charset parameter is fine.
	if r := do(t, s, "POST", "/api/v1/communities", []byte(`{"name":"x"}`), withToken(s.Token), withHeader("Content-Type", "application/json; charset=utf-8")); r.status != 201 {
		t.Fatalf("json with charset: %d %s", r.status, r.body)
	}
}

// syncBuffer collects log output from request goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBackendErrors(t *testing.T) {
	var logs syncBuffer
	s := apitest.Start(t, func(c *api.ServerConfig) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := t.Context()
	c := s.Client()

	_, err := c.Community(ctx, "bafynothere")
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok || ae.Status != 404 || ae.Error() != `this node is not a member of community "bafynothere".` {
		t.Fatalf("api.Error: %#v", err)
	}

	s.Backend.Fail(fmt.Errorf("joining: %w", &api.Error{Code: 409, Message: "already a member."}))
	_, err = c.JoinCommunity(ctx, "x")
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != 409 || ae.Message != "already a member." {
		t.Fatalf("wrapped api.Error: %#v", err)
	}

	s.Backend.Fail(errors.New("badger: secret internal detail"))
	_, err = c.CreateCommunity(ctx, api.CreateCommunityRequest{Name: "x"})
	ae, ok = errors.AsType[*client.APIError](err)
	if !ok || ae.Status != 500 || ae.Message != "the node failed to create the community; see its log." {
		t.Fatalf("500: %#v", err)
	}
	if strings.Contains(ae.Message, "secret") {
		t.Fatal("500 leaked the detail")
	}
	if !strings.Contains(logs.String(), "secret internal detail") {
		t.Fatalf("detail not logged: %s", logs.String())
	}
	// The request log is at debug level with the essentials.
	if !strings.Contains(logs.String(), "method=POST path=/api/v1/communities status=500") {
		t.Fatalf("no request log line: %s", logs.String())
	}
}

func TestRoutes(t *testing.T) {
	s := apitest.Start(t)
	ctx := t.Context()
	c := s.Client()

	// Empty lists are arrays, never null.
	for _, path := range []string{"/api/v1/peers", "/api/v1/communities"} {
		if r := do(t, s, "GET", path, nil, withToken(s.Token)); r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
	}
	r := do(t, s, "GET", "/api/v1/netcheck", nil, withToken(s.Token))
	if r.status != 200 || !strings.Contains(string(r.body), `"listen_addrs":[]`) || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("netcheck: %d %s", r.status, r.body)
	}

	id, err := c.Identity(ctx)
	if err != nil || id.PeerID != "12D3KooWTestNode" {
		t.Fatalf("Identity: %+v %v", id, err)
	}
	s.Backend.SetPeers([]api.Peer{{PeerID: "12D3KooWOther", Path: "direct"}})
	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].Addrs == nil {
		t.Fatalf("Peers: %+v %v", peers, err)
	}
	if _, err := c.Netcheck(ctx); err != nil {
		t.Fatal(err)
	}

	created, err := c.CreateCommunity(ctx, api.CreateCommunityRequest{Name: "Gardeners", Description: "plants"})
	if err != nil || created.Name != "Gardeners" || created.Invite == "" {
		t.Fatalf("CreateCommunity: %+v %v", created, err)
	}
	r = do(t, s, "POST", "/api/v1/communities", []byte(`{"name":"Second"}`), withToken(s.Token))
	if r.status != 201 || r.header.Get("Location") != "/api/v1/communities/bafytest2" {
		t.Fatalf("create: %d %v", r.status, r.header)
	}
	detail, err := c.Community(ctx, created.ID)
	if err != nil || detail.Description != "plants" || len(detail.Founders) != 1 {
		t.Fatalf("Community: %+v %v", detail, err)
	}
	inv, err := c.Invite(ctx, created.ID)
	if err != nil || inv.ID != created.ID || inv.Invite == "" {
		t.Fatalf("Invite: %+v %v", inv, err)
	}
	joined, err := c.JoinCommunity(ctx, apitest.InvitePrefix+"bafyother:Cooks")
	if err != nil || joined.ID != "bafyother" {
		t.Fatalf("JoinCommunity: %+v %v", joined, err)
	}
	list, err := c.Communities(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("Communities: %+v %v", list, err)
	}
	st, err := c.Status(ctx)
	if err != nil || len(st.Communities) != 3 || st.Peers != 1 {
		t.Fatalf("Status: %+v %v", st, err)
	}
	if err := c.LeaveCommunity(ctx, "bafyother"); err != nil {
		t.Fatal(err)
	}
	r = do(t, s, "DELETE", "/api/v1/communities/"+created.ID, nil, withToken(s.Token))
	if r.status != 204 || len(r.body) != 0 {
		t.Fatalf("leave: %d %q", r.status, r.body)
	}
	if _, err := c.Community(ctx, created.ID); err == nil {
		t.Fatal("left community still readable")
	}
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownRouteAndMethodAreJSON(t *testing.T) {
	s := apitest.Start(t)
	r := do(t, s, "GET", "/api/v1/nope", nil, withToken(s.Token))
	if r.status != 404 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("404: %d %s", r.status, r.body)
	}
	r.errorSentence(t)
	r = do(t, s, "PUT", "/api/v1/peers", nil, withToken(s.Token))
	if r.status != 405 || r.header.Get("Allow") == "" || !strings.Contains(r.errorSentence(t), "GET") {
		t.Fatalf("405: %d %v %s", r.status, r.header, r.body)
	}
	if s.Backend.Calls() != 0 {
		t.Fatal("backend called")
	}
}

func TestMountAddsGuardedRoutes(t *testing.T) {
	s := apitest.Start(t, func(c *api.ServerConfig) {
		c.Mount = func(mux *http.ServeMux) {
			mux.HandleFunc("GET /api/v1/extra", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "extra")
			})
		}
	})
	if r := do(t, s, "GET", "/api/v1/extra", nil); r.status != 401 {
		t.Fatalf("mounted route without token: %d", r.status)
	}
	if r := do(t, s, "GET", "/api/v1/extra", nil, withToken(s.Token)); r.status != 200 || string(r.body) != "extra" {
		t.Fatalf("mounted route: %d %s", r.status, r.body)
	}
}

func TestClientErrorIsTheServersSentence(t *testing.T) {
	s := apitest.Start(t)
	c := client.New(s.Addr, "wrong")
	_, err := c.Status(context.Background())
	ae, ok := errors.AsType[*client.APIError](err)
	if !ok || ae.Status != 401 || !strings.HasPrefix(err.Error(), "the API token is wrong") {
		t.Fatalf("%#v", err)
	}
}

func TestMountConflictIsAnError(t *testing.T) {
	_, err := api.NewServer(api.ServerConfig{
		Backend: apitest.NewBackend(), Hub: events.New(1), Token: "t", Gatherer: prometheus.NewRegistry(),
		Mount: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /api/v1/id", func(http.ResponseWriter, *http.Request) {})
		},
	})
	if err == nil {
		t.Fatal("conflicting route accepted")
	}
}
