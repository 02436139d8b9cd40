package mcpagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agora-p2p/agora/node/agents"
)

// Factory builds the backend of an agent with backend = "mcp". It connects
// and lists the tools before it returns, within ctx.
var Factory agents.Factory = start

const (
	// closeGrace is how long a stdio server gets to exit after its stdin is
	// closed, and again after SIGTERM, before it is killed.
	closeGrace = 2 * time.Second
	// relistTimeout bounds re-listing the tools after a change notice.
	relistTimeout = 30 * time.Second
	// reconnectPause is how long runs fail fast after a failed reconnect,
	// so that a broken server is not restarted for every task.
	reconnectPause = 10 * time.Second
	// maxTools bounds a tool list (and its pagination).
	maxTools = 1000
)

type backend struct {
	sel    selection
	newTr  func() (mcp.Transport, *exec.Cmd) // a fresh transport per connection
	client *mcp.Client
	now    func() time.Time
	log    *slog.Logger

	tools   atomic.Pointer[toolSet]
	changed chan struct{}   // Watcher; buffered 1
	relist  chan struct{}   // tool list change notices; buffered 1
	bg      context.Context // background work; canceled by Close
	stopBg  context.CancelFunc
	done    chan struct{} // closed when the relist loop ends

	mu       sync.Mutex // guards the fields below; held while reconnecting
	conn     *conn      // nil when the server is gone
	lastErr  error      // why the last reconnect failed
	lastFail time.Time
	closed   bool

	callsMu sync.Mutex
	calls   map[string]*call // progress token -> running call
	tokens  atomic.Uint64
}

// conn is one session with the server (and, for stdio, its process).
type conn struct {
	sess   *mcp.ClientSession
	pid    int         // 0 over HTTP
	stderr *stderrTail // nil over HTTP
	once   sync.Once
}

func (c *conn) close() {
	c.once.Do(func() {
		_ = c.sess.Close() // for stdio: closes stdin, waits, SIGTERM, SIGKILL
		killGroup(c.pid)   // and whatever the server started
	})
}

// why says what is known of a session's end.
func (c *conn) why() string {
	if c.stderr != nil {
		if t := c.stderr.text(); t != "" {
			return "; its last words: " + t
		}
	}
	return ""
}

func start(ctx context.Context, spec *agents.Spec, env agents.Env) (agents.Backend, error) {
	ms := spec.MCP
	switch {
	case ms == nil:
		return nil, errors.New("mcp: an mcp agent needs an [mcp] section with command or url")
	case len(ms.Command) > 0 && ms.URL != "":
		return nil, errors.New("mcp: set either command (stdio) or url (streamable HTTP), not both")
	case len(ms.Command) == 0 && ms.URL == "":
		return nil, errors.New("mcp: set command (stdio) or url (streamable HTTP)")
	}
	b := &backend{
		now:     env.Now,
		log:     slog.Default().With(slog.String("agent", spec.Name), slog.String("backend", "mcp")),
		changed: make(chan struct{}, 1),
		relist:  make(chan struct{}, 1),
		done:    make(chan struct{}),
		calls:   map[string]*call{},
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.bg, b.stopBg = context.WithCancel(context.Background())
	var err error
	if b.sel, err = newSelection(spec); err != nil {
		return nil, err
	}
	if ms.URL != "" {
		b.newTr, err = httpTransport(ms.URL)
	} else {
		b.newTr, err = stdioTransport(ms, env)
	}
	if err != nil {
		return nil, err
	}
	b.client = mcp.NewClient(&mcp.Implementation{Name: "agora", Version: "1"}, &mcp.ClientOptions{
		// No roots: agora offers the server nothing of its own.
		Capabilities:                &mcp.ClientCapabilities{},
		ToolListChangedHandler:      b.onToolsChanged,
		ProgressNotificationHandler: b.onProgress,
	})

	c, err := b.connect(ctx)
	if err != nil {
		b.stopBg()
		return nil, err
	}
	tools, err := listTools(ctx, c.sess)
	if err == nil {
		var ts *toolSet
		if ts, err = b.sel.build(tools, true); err == nil {
			b.tools.Store(ts)
		}
	}
	if err != nil {
		c.close()
		b.stopBg()
		return nil, err
	}
	b.mu.Lock()
	b.conn = c // if the server died meanwhile, the first run finds out
	b.mu.Unlock()
	go b.relistLoop()
	return b, nil
}

func httpTransport(raw string) (func() (mcp.Transport, *exec.Cmd), error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mcp.url: %q is not an http(s) URL", raw)
	}
	hc := &http.Client{}
	return func() (mcp.Transport, *exec.Cmd) {
		return &mcp.StreamableClientTransport{Endpoint: raw, HTTPClient: hc}, nil
	}, nil
}

func stdioTransport(ms *agents.MCPSpec, env agents.Env) (func() (mcp.Transport, *exec.Cmd), error) {
	c, err := agents.PrepareCommand("mcp", ms.Command, ms.Dir, ms.Env, env)
	if err != nil {
		return nil, err
	}
	path, args, dir, environ := c.Path, c.Args, c.Dir, c.Env
	return func() (mcp.Transport, *exec.Cmd) {
		cmd := exec.Command(path, args...)
		cmd.Dir, cmd.Env = dir, environ
		cmd.Stderr = &stderrTail{}
		// Stop waiting for stderr once the server is gone, even if
		// something it started still holds the pipe.
		cmd.WaitDelay = closeGrace
		ownGroup(cmd)
		return &mcp.CommandTransport{Command: cmd, TerminateDuration: closeGrace}, cmd
	}, nil
}

// connect starts a session; ctx bounds the handshake only.
func (b *backend) connect(ctx context.Context) (*conn, error) {
	tr, cmd := b.newTr()
	sess, err := b.client.Connect(ctx, tr, nil)
	c := &conn{sess: sess}
	if cmd != nil {
		c.stderr = cmd.Stderr.(*stderrTail)
		if cmd.Process != nil {
			c.pid = cmd.Process.Pid
		}
	}
	if err != nil {
		killGroup(c.pid)
		if cmd != nil && cmd.Process != nil {
			// Reap it: Connect does not on every failure path (a failed
			// subscriptions/listen). When it did, this returns at once.
			_ = cmd.Wait()
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("connecting to the MCP server: %w", cerr)
		}
		return nil, fmt.Errorf("connecting to the MCP server: %v%s", err, c.why())
	}
	go func() {
		_ = sess.Wait()
		b.lost(c)
	}()
	return c, nil
}

// lost forgets a session that ended, and cleans up after it.
func (b *backend) lost(c *conn) {
	b.mu.Lock()
	if b.conn == c {
		b.conn = nil
	}
	b.mu.Unlock()
	c.close()
}

// session returns the live session, reconnecting once if the server is
// gone (and was not found broken a moment ago).
func (b *backend) session(ctx context.Context) (*conn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, agents.Errorf(agents.CodeDisabled, "the agent is closed")
	case b.conn != nil:
		return b.conn, nil
	case b.lastErr != nil && b.now().Sub(b.lastFail) < reconnectPause:
		return nil, agents.Errorf(agents.CodeBackend, "the MCP server is gone: %v", b.lastErr)
	}
	c, err := b.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		b.lastErr, b.lastFail = err, b.now()
		return nil, agents.Errorf(agents.CodeBackend, "the MCP server is gone, and reconnecting failed: %v", err)
	}
	b.lastErr = nil
	b.conn = c
	b.log.Info("reconnected to the MCP server")
	b.notice() // the tools may have changed meanwhile
	return c, nil
}

func (b *backend) Skills() []agents.Skill {
	return append([]agents.Skill(nil), b.tools.Load().skills...)
}

func (b *backend) Changed() <-chan struct{} { return b.changed }

func (b *backend) Run(ctx context.Context, skill string, input json.RawMessage, progress agents.Progress) (json.RawMessage, error) {
	name, ok := b.tools.Load().tools[skill]
	if !ok {
		return nil, agents.Errorf(agents.CodeUnknownSkill, "this agent has no skill %q", skill)
	}
	if _, ok := jsonObject(string(input)); !ok {
		return nil, agents.Errorf(agents.CodeInvalidInput, "an MCP tool takes a JSON object as input")
	}
	c, err := b.session(ctx)
	if err != nil {
		return nil, err
	}
	params := &mcp.CallToolParams{Name: name, Arguments: input}
	if progress != nil {
		token := fmt.Sprintf("agora-%d", b.tokens.Add(1))
		params.SetProgressToken(token)
		cl := &call{progress: progress}
		b.callsMu.Lock()
		b.calls[token] = cl
		b.callsMu.Unlock()
		defer func() {
			b.callsMu.Lock()
			delete(b.calls, token)
			b.callsMu.Unlock()
			cl.finish()
		}()
	}
	res, err := c.sess.CallTool(ctx, params)
	if err != nil {
		return nil, b.callError(ctx, c, err)
	}
	return output(res)
}

func (b *backend) callError(ctx context.Context, c *conn, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("calling the MCP tool: %w", cerr)
	}
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return agents.Errorf(agents.CodeBackend, "the MCP server refused the call: %s", snippet(werr.Message, 500))
	}
	// Anything else is the transport failing (EOF when a stdio server
	// exits, a broken HTTP stream): drop the session, so that the next run
	// reconnects.
	b.lost(c)
	return agents.Errorf(agents.CodeBackend, "the MCP server went away during the call (%v)%s", err, c.why())
}

// Close ends the session and, for stdio, the server process. It waits for
// the server to exit (a few seconds at most).
func (b *backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	c := b.conn
	b.conn = nil
	b.mu.Unlock()
	b.stopBg()
	<-b.done
	if c != nil {
		c.close()
	}
	return nil
}

// onToolsChanged is the SDK's handler for tools/list_changed. It must not
// call the server itself (it runs on the session's reading side), so it
// hands the work to relistLoop.
func (b *backend) onToolsChanged(context.Context, *mcp.ToolListChangedRequest) { b.notice() }

func (b *backend) notice() {
	select {
	case b.relist <- struct{}{}:
	default: // a relist is pending already
	}
}

func (b *backend) relistLoop() {
	defer close(b.done)
	for {
		select {
		case <-b.bg.Done():
			return
		case <-b.relist:
		}
		b.mu.Lock()
		c := b.conn
		b.mu.Unlock()
		if c == nil {
			continue // the next reconnect lists again
		}
		ctx, cancel := context.WithTimeout(b.bg, relistTimeout)
		tools, err := listTools(ctx, c.sess)
		cancel()
		var ts *toolSet
		if err == nil {
			ts, err = b.sel.build(tools, false)
		}
		if err != nil {
			b.log.Warn("cannot re-list the MCP server's tools; keeping the old list", slog.Any("err", err))
			continue
		}
		if old := b.tools.Load(); reflect.DeepEqual(old, ts) {
			continue
		}
		b.tools.Store(ts)
		select {
		case b.changed <- struct{}{}:
		default: // the Manager has a signal pending
		}
	}
}

func listTools(ctx context.Context, sess *mcp.ClientSession) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	for t, err := range sess.Tools(ctx, nil) {
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, fmt.Errorf("listing the MCP server's tools: %w", cerr)
			}
			return nil, fmt.Errorf("listing the MCP server's tools: %v", err)
		}
		if len(tools) == maxTools {
			return nil, fmt.Errorf("the MCP server lists more than %d tools", maxTools)
		}
		tools = append(tools, t)
	}
	return tools, nil
}
