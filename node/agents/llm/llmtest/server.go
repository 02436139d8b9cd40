// Package llmtest is an OpenAI-compatible chat completions server for tests.
// It replays recorded answers (Exchanges, usually testdata/*.json fixtures)
// and records every request it got, so a test can run the real openai-go
// client, or a whole agora daemon, against it and check what was sent.
//
// It serves POST <URL>/chat/completions only (URL ends in /v1, as a base_url
// does). It is for tests: it must not be used by the node itself.
package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Exchange is one recorded answer: a request matcher and the response to
// replay. The first Exchange whose matcher fits a request answers it.
type Exchange struct {
	// Name is for failure messages (a fixture file's name by default).
	Name  string `json:"name,omitempty"`
	Match Match  `json:"match"`
	// Status is the HTTP status of the response (200 when zero).
	Status int `json:"status,omitempty"`
	// Header is added to the response (e.g. "retry-after-ms": "1").
	Header map[string]string `json:"header,omitempty"`
	// Body is the response body, verbatim: a chat.completion object, or an
	// error object ({"error": {"message": ...}}) or anything else a server
	// might send.
	Body json.RawMessage `json:"body,omitempty"`
	// BodyText is a body that is not JSON (used when Body is empty).
	BodyText string `json:"body_text,omitempty"`
	// Hang makes the server never answer: it holds the request until the
	// client gives up or the server closes.
	Hang bool `json:"hang,omitempty"`
}

// Match selects requests; empty fields match anything.
type Match struct {
	Model string `json:"model,omitempty"`
	// User is the exact text of the last user message; UserContains a part
	// of it.
	User         string `json:"user,omitempty"`
	UserContains string `json:"user_contains,omitempty"`
	// ResponseFormat is the requested response_format type
	// ("json_object", ...), or "none" for a request without one.
	ResponseFormat string `json:"response_format,omitempty"`
}

// Request is what the server got.
type Request struct {
	Header http.Header
	Body   json.RawMessage
	// Decoded from Body.
	Model          string
	Messages       []Message
	Temperature    *float64
	MaxTokens      *int
	ResponseFormat string // its type, "" when absent
	// Exchange is the name of the Exchange that answered, "" if none did.
	Exchange string
}

// Message is one chat message of a Request.
type Message struct {
	Role    string
	Content string // text parts joined
}

// System returns the first system (or developer) message, "" if none.
func (r Request) System() string {
	for _, m := range r.Messages {
		if m.Role == "system" || m.Role == "developer" {
			return m.Content
		}
	}
	return ""
}

// User returns the last user message, "" if none.
func (r Request) User() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Content
		}
	}
	return ""
}

// Server is a running test server; it closes when the test ends.
type Server struct {
	t         testing.TB
	srv       *httptest.Server
	exchanges []Exchange
	closing   chan struct{}

	mu       sync.Mutex
	requests []Request
}

// NewServer starts a server that answers with exchanges.
func NewServer(t testing.TB, exchanges []Exchange) *Server {
	t.Helper()
	s := &Server{t: t, exchanges: slices.Clone(exchanges), closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(s.closing) // release hanging requests, or Close waits for them
		s.srv.Close()
	})
	return s
}

// NewServerFromDir starts a server that answers with the fixtures in dir
// (see Load).
func NewServerFromDir(t testing.TB, dir string) *Server {
	t.Helper()
	ex, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return NewServer(t, ex)
}

// Load reads the *.json files of dir, in name order; each holds one
// Exchange or an array of them. An Exchange without a name is named after
// its file.
func Load(dir string) ([]Exchange, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Exchange
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var ex []Exchange
		if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "[") {
			err = json.Unmarshal(data, &ex)
		} else {
			ex = make([]Exchange, 1)
			err = json.Unmarshal(data, &ex[0])
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i := range ex {
			if ex[i].Name == "" {
				ex[i].Name = filepath.Base(f)
			}
		}
		out = append(out, ex...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no *.json fixtures", dir)
	}
	return out, nil
}

// URL is the base_url for the server, ending in /v1.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// LastRequest returns the last request; it fails the test if there was none.
func (s *Server) LastRequest() Request {
	s.t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		s.t.Fatal("llmtest: the server got no request")
	}
	return reqs[len(reqs)-1]
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the request: "+err.Error())
		return
	}
	req, err := decode(r.Header, body)
	if err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ex, ok := s.match(req)
	if ok {
		req.Exchange = ex.Name
	}
	s.record(req)
	if !ok {
		s.t.Logf("llmtest: no recorded answer for model=%q user=%q response_format=%q", req.Model, req.User(), req.ResponseFormat)
		writeError(w, http.StatusNotFound, fmt.Sprintf("llmtest: no recorded answer for model %q and this user message", req.Model))
		return
	}
	if ex.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	for k, v := range ex.Header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	status := ex.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	if len(ex.Body) > 0 {
		_, _ = w.Write(ex.Body)
	} else {
		_, _ = io.WriteString(w, ex.BodyText)
	}
}

func (s *Server) record(req Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
}

func (s *Server) match(req Request) (Exchange, bool) {
	rf := req.ResponseFormat
	if rf == "" {
		rf = "none"
	}
	user := req.User()
	for _, ex := range s.exchanges {
		m := ex.Match
		if (m.Model == "" || m.Model == req.Model) &&
			(m.User == "" || m.User == user) &&
			(m.UserContains == "" || strings.Contains(user, m.UserContains)) &&
			(m.ResponseFormat == "" || m.ResponseFormat == rf) {
			return ex, true
		}
	}
	return Exchange{}, false
}

// wireRequest is the part of a chat completion request the server reads.
type wireRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Temperature    *float64 `json:"temperature"`
	MaxTokens      *int     `json:"max_tokens"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

func decode(h http.Header, body []byte) (Request, error) {
	req := Request{Header: h.Clone(), Body: json.RawMessage(body)}
	var w wireRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return req, fmt.Errorf("the request is not a chat completion: %v", err)
	}
	req.Model, req.Temperature, req.MaxTokens = w.Model, w.Temperature, w.MaxTokens
	if w.ResponseFormat != nil {
		req.ResponseFormat = w.ResponseFormat.Type
	}
	for _, m := range w.Messages {
		req.Messages = append(req.Messages, Message{Role: m.Role, Content: contentText(m.Content)})
	}
	return req, nil
}

// contentText reads a message content: a string, or an array of parts of
// which the text ones count.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": nil},
	})
}

// Answer is a chat.completion body, in OpenAI's format with usage, whose
// one choice says content.
func Answer(model, content string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"id":                 "chatcmpl-llmtest",
		"object":             "chat.completion",
		"created":            1735689600,
		"model":              model,
		"system_fingerprint": "fp_llmtest",
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": content, "refusal": nil},
			"logprobs":      nil,
			"finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
	})
	return b
}
