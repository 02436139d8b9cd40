package mcpserve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/api"
)

// Defaults of Options.
const (
	DefaultRefreshEvery = 30 * time.Second
	DefaultMaxAge       = 2 * time.Second
	DefaultDebounce     = 250 * time.Millisecond
	// sessionTimeout frees the HTTP sessions of clients that went away
	// without saying so.
	sessionTimeout = 30 * time.Minute
)

const instructions = "Each tool is a skill of this Agora node or of a member of its communities. " +
	"Calling one runs it as a task on the best provider (this node first when it has the skill), " +
	"journaled with a receipt signed by the executor; the result names the executor and the task ID."

// Options configures a Server. The zero value is usable.
type Options struct {
	// Name and Version are what the server tells clients it is
	// (default "agora" and "dev").
	Name, Version string
	// Logger receives refresh failures and skipped skills; nil discards.
	Logger *slog.Logger
	// RefreshEvery is how often Watch re-reads the skills without a change
	// signal (DefaultRefreshEvery): a private agent changes without one.
	RefreshEvery time.Duration
	// MaxAge is how old the tool list may be when a client lists the
	// tools; an older list is re-read first (DefaultMaxAge). A call to a
	// tool the list lacks always re-reads it.
	MaxAge time.Duration
	// Debounce is how long Watch lets a burst of change signals settle
	// before it re-reads the skills (DefaultDebounce): in a busy community
	// adverts change many times a second, and each re-read rebuilds the
	// whole tool list.
	Debounce time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Server serves a Source's skills as MCP tools. Create it with New; serve
// it with ServeStdio, Serve or Handler. It is safe for concurrent use, and
// one Server may serve any number of sessions at once.
//
// The tool list follows the Source in two ways: a list request re-reads
// it when older than MaxAge, and a call to a tool it lacks re-reads it, so
// a client always sees the current skills; and Watch (run by Serve, to be run by whoever mounts Handler)
// re-reads it on the Source's change signals and every RefreshEvery, so
// that connected clients get notifications/tools/list_changed.
type Server struct {
	src  Source
	opts Options
	log  *slog.Logger
	mcp  *mcp.Server

	refresh sync.Mutex // one re-read at a time

	mu    sync.Mutex
	tools map[string]*toolSpec
	read  time.Time // when tools was last read; zero: never
	stale bool      // Watch skipped a change signal or tick: read on the next list
}

// New returns a Server for src; it reads no skill before it is asked.
func New(src Source, opts Options) *Server {
	if opts.Name == "" {
		opts.Name = "agora"
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = DefaultRefreshEvery
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{src: src, opts: opts, log: log, tools: map[string]*toolSpec{}}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: opts.Name, Title: "Agora", Version: opts.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		Logger:       log,
		// Advertised even while there is no tool yet, so clients list
		// tools and follow changes.
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{ListChanged: true}},
	})
	s.mcp.AddReceivingMiddleware(s.freshen)
	return s
}

// Serve serves one session over t until it ends or ctx does, keeping the
// tool list current meanwhile. A session the client closed is not an
// error.
func (s *Server) Serve(ctx context.Context, t mcp.Transport) error {
	ss, err := s.mcp.Connect(ctx, t, nil)
	if err != nil {
		return fmt.Errorf("mcp: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ss.Close() })
	defer stop()
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(wctx) })
	err = ss.Wait()
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ServeStdio serves one session on stdin and stdout: the protocol owns
// stdout, so nothing else may write there. It returns when stdin closes.
func (s *Server) ServeStdio(ctx context.Context) error {
	return s.Serve(ctx, &mcp.StdioTransport{})
}

// Handler serves MCP over streamable HTTP. It does no authentication: mount
// it behind the API's token check. Run Watch alongside it for change
// notifications.
func (s *Server) Handler() http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s.mcp }, &mcp.StreamableHTTPOptions{
		Logger:              s.log,
		SessionTimeout:      sessionTimeout,
		MaxRequestBodyBytes: api.MaxBodyBytes,
	})
}

// Watch re-reads the skills whenever the Source signals a change (if it is
// a Watcher) and every RefreshEvery, until ctx ends, as long as a client
// is connected; without one the list is read when a client asks for it.
func (s *Server) Watch(ctx context.Context) {
	kick := make(chan struct{}, 1)
	changed := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if w, ok := s.src.(Watcher); ok {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := w.Watch(ctx, changed)
				if ctx.Err() != nil {
					return
				}
				s.log.Debug("mcp: change feed ended; retrying", slog.Any("err", err))
				changed() // changes may have been missed
				if !sleep(ctx, s.opts.RefreshEvery) {
					return
				}
			}
		})
	}
	tick := time.NewTicker(s.opts.RefreshEvery)
	defer tick.Stop()
	for {
		// Without a client nobody would hear of the change: the list is
		// marked stale and read when one lists the tools. A node in a busy community would otherwise rebuild
		// every tool, with each skill's ranked providers, several times
		// a second for no one.
		if s.connected() {
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("mcp: cannot read the skills; serving the last tool list", slog.Any("err", err))
			}
		} else {
			s.mu.Lock()
			s.stale = true // the next list reads it, however recent
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
			if !sleep(ctx, s.opts.Debounce) {
				return
			}
			select { // the signals of the burst are one re-read
			case <-kick:
			default:
			}
		case <-tick.C:
		}
	}
}

// connected reports whether any client session is open.
func (s *Server) connected() bool {
	for range s.mcp.Sessions() {
		return true
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Refresh re-reads the skills and updates the tools: added, changed and
// removed tools make the SDK notify connected clients. On error the tools
// are left as they were.
func (s *Server) Refresh(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	return s.refreshLocked(ctx)
}

func (s *Server) refreshLocked(ctx context.Context) error {
	offers, err := s.src.Skills(ctx)
	if err != nil {
		return fmt.Errorf("list the skills: %w", err)
	}
	own, err := s.src.Agents(ctx)
	if err != nil {
		return fmt.Errorf("list the agents: %w", err)
	}
	specs, skipped := buildTools(offers, own)
	next := make(map[string]*toolSpec, len(specs))
	var added []*toolSpec
	s.mu.Lock()
	for _, sp := range specs {
		next[sp.tool.Name] = sp
		if old := s.tools[sp.tool.Name]; old == nil || old.key != sp.key {
			added = append(added, sp)
		}
	}
	var gone []string
	for name := range s.tools {
		if next[name] == nil {
			gone = append(gone, name)
		}
	}
	for id, why := range skipped {
		if s.tools[id] != nil || s.read.IsZero() {
			s.log.Info("mcp: skill not served as a tool", slog.String("skill", id), slog.String("reason", why))
		}
	}
	s.tools, s.read, s.stale = next, s.opts.Now(), false
	s.mu.Unlock()

	if len(gone) > 0 {
		s.mcp.RemoveTools(gone...)
	}
	for _, sp := range added {
		s.addTool(sp)
	}
	return nil
}

// addTool registers sp; the SDK panics on a schema it refuses, which
// buildTools should have ruled out, so a panic is logged, not fatal.
func (s *Server) addTool(sp *toolSpec) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Warn("mcp: tool refused by the SDK", slog.String("tool", sp.tool.Name), slog.Any("err", r))
			s.mu.Lock()
			if s.tools[sp.tool.Name] == sp {
				delete(s.tools, sp.tool.Name)
			}
			s.mu.Unlock()
		}
	}()
	s.mcp.AddTool(sp.tool, s.call)
}

// freshen re-reads a stale tool list before a client lists the tools, and
// the list before a call to a tool it lacks.
func (s *Server) freshen(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "tools/list":
			s.refreshIfStale(ctx)
		case "tools/call":
			if r, ok := req.(*mcp.CallToolRequest); ok && r.Params != nil {
				s.refreshIfUnknown(ctx, r.Params.Name)
			}
		}
		return next(ctx, method, req)
	}
}

func (s *Server) refreshIfStale(ctx context.Context) {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	s.mu.Lock()
	fresh := !s.read.IsZero() && !s.stale && s.opts.Now().Sub(s.read) < s.opts.MaxAge
	s.mu.Unlock()
	if fresh {
		return
	}
	if err := s.refreshLocked(ctx); err != nil {
		s.log.Warn("mcp: cannot read the skills; serving the last tool list", slog.Any("err", err))
	}
}

// refreshIfUnknown re-reads the list, however fresh, when it lacks name: a
// skill may have appeared since. Taking the refresh lock also waits for a
// refresh under way, which registers its tools with the SDK only after
// updating s.tools.
func (s *Server) refreshIfUnknown(ctx context.Context, name string) {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	if s.lookup(name) != nil {
		return
	}
	if err := s.refreshLocked(ctx); err != nil {
		s.log.Warn("mcp: cannot read the skills; serving the last tool list", slog.Any("err", err))
	}
}

func (s *Server) lookup(name string) *toolSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tools[name]
}

// call runs one tool call as a task. Whatever goes wrong is a tool error
// the model can read, never a protocol error.
func (s *Server) call(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	name := req.Params.Name
	sp := s.lookup(name)
	if sp == nil {
		return toolError("The skill %s is no longer offered; list the tools again.", name), nil
	}
	input, err := sp.arguments(req.Params.Arguments)
	if err != nil {
		return toolError("The arguments do not fit the input schema of %s: %v. Nothing was run.", name, err), nil
	}
	t, err := s.src.Run(ctx, name, input)
	if err != nil {
		return toolError("%s could not be run: %v", name, err), nil
	}
	return taskResult(t), nil
}

// taskResult is a finished task as a tool result: the output as structured
// content and as JSON text, then a line naming the executor and the task.
func taskResult(t api.Task) *mcp.CallToolResult {
	if t.Status != "completed" {
		why := t.Error
		if t.Code != "" {
			why = t.Code + ": " + why
		}
		if why == "" {
			why = "no reason given"
		}
		msg := fmt.Sprintf("The task %s ended %s (%s).", t.ID, t.Status, why)
		if t.Executor != "" {
			msg += " Executor: " + t.Executor + "."
		}
		return toolError("%s", msg)
	}
	out := t.Output
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	res := &mcp.CallToolResult{Content: []mcp.Content{
		&mcp.TextContent{Text: string(out)},
		&mcp.TextContent{Text: provenance(t)},
	}}
	var obj map[string]json.RawMessage
	if json.Unmarshal(out, &obj) == nil && obj != nil {
		res.StructuredContent = out
	}
	return res
}

func provenance(t api.Task) string {
	line := "Ran on " + t.Executor
	if t.Agent != "" {
		line += " (agent " + t.Agent + ")"
	}
	line += " as task " + t.ID
	if t.Receipt != nil && t.Receipt.Verified {
		line += ", receipt " + t.Receipt.CID
	}
	return line + "."
}

func toolError(format string, args ...any) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
}
