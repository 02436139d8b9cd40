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

// Match selects requests; empty fields match anything. A conversation
// (a planner's tool calls) is replayed turn by turn with Messages or
// ToolContains.
type Match struct {
	Model string `json:"model,omitempty"`
	// User is the exact text of the last user message; UserContains a part
	// of it.
	User         string `json:"user,omitempty"`
	UserContains string `json:"user_contains,omitempty"`
	// ResponseFormat is the requested response_format type
	// ("json_object", ...), or "none" for a request without one.
	ResponseFormat string `json:"response_format,omitempty"`
	// Messages is the number of messages in the request, which tells the
	// turns of a conversation apart (2: system and user; 4: the first tool
	// call and its result...).
	Messages int `json:"messages,omitempty"`
	// ToolContains is a part of the last tool message's content; a request
	// with no tool message does not match it.
	ToolContains string `json:"tool_contains,omitempty"`
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
	Tools          []Tool
	// Exchange is the name of the Exchange that answered, "" if none did.
	Exchange string
}

// Message is one chat message of a Request.
type Message struct {
	Role    string
	Content string // text parts joined
	// ToolCalls are an assistant message's calls; ToolCallID is the call a
	// tool message answers.
	ToolCalls  []ToolCall
	ToolCallID string
}

// Tool is a function tool a request offered.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
}

// ToolCall is a function call, in a response (AnswerToolCalls) or in an
// assistant message the client sent back.
type ToolCall struct {
	ID        string `json:"id,omitempty"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// Tool returns the tool named name.
func (r Request) Tool(name string) (Tool, bool) {
	for _, t := range r.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

// ToolMessages returns the tool messages, in order.
func (r Request) ToolMessages() []Message {
	var out []Message
	for _, m := range r.Messages {
		if m.Role == "tool" {
			out = append(out, m)
		}
	}
	return out
}

// LastTool returns the content of the last tool message, "" if none.
func (r Request) LastTool() string {
	tm := r.ToolMessages()
	if len(tm) == 0 {
		return ""
	}
	return tm[len(tm)-1].Content
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
		s.t.Logf("llmtest: no recorded answer for model=%q user=%q response_format=%q messages=%d last tool message=%q",
			req.Model, req.User(), req.ResponseFormat, len(req.Messages), req.LastTool())
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
	user, tool := req.User(), req.LastTool()
	for _, ex := range s.exchanges {
		m := ex.Match
		if (m.Model == "" || m.Model == req.Model) &&
			(m.User == "" || m.User == user) &&
			(m.UserContains == "" || strings.Contains(user, m.UserContains)) &&
			(m.ResponseFormat == "" || m.ResponseFormat == rf) &&
			(m.Messages == 0 || m.Messages == len(req.Messages)) &&
			(m.ToolContains == "" || strings.Contains(tool, m.ToolContains)) {
			return ex, true
		}
	}
	return Exchange{}, false
}

// wireRequest is the part of a chat completion request the server reads.
type wireRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []wireToolCall  `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	Temperature    *float64 `json:"temperature"`
	MaxTokens      *int     `json:"max_tokens"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

type wireToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
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
		msg := Message{Role: m.Role, Content: contentText(m.Content), ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		req.Messages = append(req.Messages, msg)
	}
	for _, t := range w.Tools {
		if t.Type == "function" {
			req.Tools = append(req.Tools, Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
		}
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
	return completion(model, map[string]any{"role": "assistant", "content": content, "refusal": nil}, "stop")
}

// AnswerToolCalls is a chat.completion body whose one choice calls
// functions, as OpenAI sends it: no content, finish_reason "tool_calls".
// A call without an ID gets "call_<n>", n counting from 1.
func AnswerToolCalls(model string, calls ...ToolCall) json.RawMessage {
	wire := make([]any, len(calls))
	for i, c := range calls {
		id := c.ID
		if id == "" {
			id = fmt.Sprintf("call_%d", i+1)
		}
		wire[i] = map[string]any{
			"id":       id,
			"type":     "function",
			"function": map[string]any{"name": c.Name, "arguments": c.Arguments},
		}
	}
	msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil, "tool_calls": wire}
	return completion(model, msg, "tool_calls")
}

func completion(model string, message map[string]any, finish string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"id":                 "chatcmpl-llmtest",
		"object":             "chat.completion",
		"created":            1735689600,
		"model":              model,
		"system_fingerprint": "fp_llmtest",
		"choices": []any{map[string]any{
			"index":         0,
			"message":       message,
			"logprobs":      nil,
			"finish_reason": finish,
		}},
		"usage": map[string]any{"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
	})
	return b
}
