package mcpagent

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
)

// call is a running tool call that asked for progress. finish makes sure
// progress is never reported after Run returned.
type call struct {
	mu       sync.Mutex
	progress agents.Progress // nil once finished
}

func (c *call) report(msg string, pct int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.progress != nil {
		c.progress(msg, pct)
	}
}

func (c *call) finish() {
	c.mu.Lock()
	c.progress = nil
	c.mu.Unlock()
}

// onProgress is the SDK's handler for notifications/progress; the token
// says which call it is about.
func (b *backend) onProgress(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p := req.Params
	if p == nil {
		return
	}
	token, ok := p.ProgressToken.(string)
	if !ok {
		return // not one of ours: we only send string tokens
	}
	b.callsMu.Lock()
	cl := b.calls[token]
	b.callsMu.Unlock()
	if cl == nil {
		return
	}
	msg := strings.TrimSpace(p.Message)
	if msg == "" {
		msg = fmt.Sprintf("progress %g", p.Progress)
	}
	cl.report(snippet(msg, 200), percent(p.Progress, p.Total))
}

// percent maps MCP's progress/total to 0..100, or -1 without a total.
func percent(progress, total float64) int {
	if !(total > 0) || math.IsNaN(progress) || math.IsInf(total, 0) {
		return -1
	}
	return int(math.Round(100 * min(max(progress/total, 0), 1)))
}

// stderrTail keeps the end of a stdio server's stderr, for messages when it
// dies.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

const stderrKeep = 2 << 10

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	if len(s.buf) > stderrKeep {
		s.buf = append(s.buf[:0], s.buf[len(s.buf)-stderrKeep:]...)
	}
	return len(p), nil
}

// text is the last few lines, on one line.
func (s *stderrTail) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(s.buf)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return snippet(strings.Join(lines, " | "), 500)
}
