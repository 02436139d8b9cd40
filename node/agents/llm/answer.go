package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// errNotJSON is returned by parseAnswer when no JSON value can be found.
var errNotJSON = errors.New("the model's answer is not JSON")

// parseAnswer extracts the JSON value from a model's answer and returns it
// compacted. Models asked for JSON still wrap it in prose, Markdown fences
// or a reasoning block now and then, so it tries, in order: the whole text,
// the first fenced block, and the span from the first '{' to the last '}'.
func parseAnswer(content string) (json.RawMessage, error) {
	text := strings.TrimSpace(stripThink(content))
	if v, ok := compact(text); ok {
		return v, nil
	}
	if block, ok := fenced(text); ok {
		if v, ok := compact(block); ok {
			return v, nil
		}
	}
	if i, j := strings.IndexByte(text, '{'), strings.LastIndexByte(text, '}'); i >= 0 && j > i {
		if v, ok := compact(text[i : j+1]); ok {
			return v, nil
		}
	}
	return nil, errNotJSON
}

func compact(text string) (json.RawMessage, bool) {
	if text == "" || !json.Valid([]byte(text)) {
		return nil, false
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(text)); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// fenced returns the body of the first ``` block, without its info string
// (```json).
func fenced(text string) (string, bool) {
	const fence = "```"
	start := strings.Index(text, fence)
	if start < 0 {
		return "", false
	}
	rest := text[start+len(fence):]
	nl := strings.IndexByte(rest, '\n')
	if nl < 0 {
		return "", false
	}
	rest = rest[nl+1:]
	end := strings.Index(rest, fence)
	if end < 0 {
		// An unterminated fence: the answer was probably cut off, but the
		// JSON may be whole.
		return rest, true
	}
	return rest[:end], true
}

// stripThink drops a leading <think>...</think> block, which some reasoning
// models served through an OpenAI-compatible API put before the answer.
func stripThink(text string) string {
	t := strings.TrimSpace(text)
	if !strings.HasPrefix(t, "<think>") {
		return text
	}
	if end := strings.Index(t, "</think>"); end >= 0 {
		return t[end+len("</think>"):]
	}
	return text
}

// snippet is the start of s for error messages: at most n runes, valid UTF-8.
func snippet(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
