package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const (
	// MaxBodyBytes caps every request body; the largest legitimate one, an
	// invite, is a few KiB.
	MaxBodyBytes = 1 << 20
	// DefaultHeartbeat is how often an idle event stream carries a comment,
	// so that clients and middleboxes can tell a quiet stream from a dead one.
	DefaultHeartbeat = 15 * time.Second

	readHeaderTimeout = 10 * time.Second
	bodyReadTimeout   = 30 * time.Second
	writeTimeout      = 30 * time.Second // per write: an SSE stream lives longer than any one write
	idleTimeout       = 2 * time.Minute
)

// EventSource is the live event feed behind GET /api/v1/events;
// *events.Hub implements it. (It is an interface only because package events
// already imports this package for Event.)
type EventSource interface {
	// Subscribe returns the buffered events with ID > lastID, a channel of
	// later ones, a cancel func, and whether events after lastID were lost.
	// The channel is closed when the subscriber falls behind; the stream then
	// ends and the client resumes with Last-Event-ID.
	Subscribe(lastID uint64) (backlog []Event, ch <-chan Event, cancel func(), gap bool)
	// Epoch names the ID sequence; IDs from another epoch (an earlier node
	// process) are not comparable.
	Epoch() string
}

// ServerConfig configures a Server. Backend, Hub, Token and Gatherer are
// required.
type ServerConfig struct {
	Backend Backend
	// Work serves agents, skills and tasks (optional: 503 without it).
	Work Work
	// Trust serves reputation, certification and feedback (optional: 503
	// without it).
	Trust Trust
	// Governance serves proposals, votes, tallies and the policy (optional:
	// 503 without it).
	Governance Governance
	// UI, if set, is the dashboard, served on the same address.
	UI  UI
	Hub EventSource
	// Token is the bearer token (the content of repo/api.token).
	Token string
	// Gatherer serves /metrics, e.g. a registry that includes libp2p's.
	Gatherer prometheus.Gatherer
	// MetricsNoAuth lets /metrics be scraped without the token.
	MetricsNoAuth bool
	// Logger receives the request log (debug) and backend failures (error).
	Logger *slog.Logger
	// Mount, if set, adds routes; they get the same guards and auth.
	Mount func(mux *http.ServeMux)
	// MCP, if set, serves MCP over streamable HTTP at /mcp (every method),
	// behind the same guards and token as /api/v1.
	MCP http.Handler
	// Heartbeat is the event stream's idle comment interval
	// (DefaultHeartbeat when zero).
	Heartbeat time.Duration
}

// Server is the local API. Create it with NewServer, run it with Serve and
// stop it with Shutdown.
type Server struct {
	backend       Backend
	work          Work
	trust         Trust
	gov           Governance
	hub           EventSource
	token         string
	metricsNoAuth bool
	log           *slog.Logger
	heartbeat     time.Duration

	mux    *http.ServeMux
	public map[string]bool // patterns served without the token
	http   *http.Server

	// streams ends every open event stream on Shutdown, which would
	// otherwise wait for them forever.
	streams    context.Context
	stopStream context.CancelFunc
}

// NewServer checks cfg and builds the routes.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Backend == nil:
		return nil, errors.New("api: ServerConfig.Backend is required")
	case cfg.Hub == nil:
		return nil, errors.New("api: ServerConfig.Hub is required")
	case cfg.Token == "":
		return nil, errors.New("api: ServerConfig.Token is required; the API never runs without auth")
	case cfg.Gatherer == nil:
		return nil, errors.New("api: ServerConfig.Gatherer is required")
	case cfg.Heartbeat < 0:
		return nil, fmt.Errorf("api: ServerConfig.Heartbeat %v is negative", cfg.Heartbeat)
	}
	s := &Server{
		backend:       cfg.Backend,
		work:          cfg.Work,
		trust:         cfg.Trust,
		gov:           cfg.Governance,
		hub:           cfg.Hub,
		token:         cfg.Token,
		metricsNoAuth: cfg.MetricsNoAuth,
		log:           cfg.Logger,
		heartbeat:     cfg.Heartbeat,
		mux:           http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.heartbeat == 0 {
		s.heartbeat = DefaultHeartbeat
	}
	s.streams, s.stopStream = context.WithCancel(context.Background())

	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /api/v1/id", s.identity)
	m.HandleFunc("GET /api/v1/status", s.status)
	m.HandleFunc("GET /api/v1/peers", s.peers)
	m.HandleFunc("GET /api/v1/netcheck", s.netcheck)
	m.HandleFunc("GET /api/v1/communities", s.communities)
	m.HandleFunc("POST /api/v1/communities", s.createCommunity)
	m.HandleFunc("POST /api/v1/communities/join", s.joinCommunity)
	m.HandleFunc("GET /api/v1/communities/{id}", s.community)
	m.HandleFunc("DELETE /api/v1/communities/{id}", s.leaveCommunity)
	m.HandleFunc("GET /api/v1/communities/{id}/invite", s.invite)
	m.HandleFunc("GET /api/v1/events", s.events)
	m.HandleFunc("POST /api/v1/records", s.publish)
	m.HandleFunc("GET /api/v1/records", s.records)
	m.HandleFunc("GET /api/v1/records/{cid}", s.record)
	s.routeWork(m)
	s.routeTrust(m)
	s.routeGovernance(m)
	if cfg.MCP != nil {
		m.Handle("/mcp", s.endOnShutdown(cfg.MCP))
	}
	m.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.public = map[string]bool{"GET /healthz": true}
	if s.metricsNoAuth {
		s.public["GET /metrics"] = true
	}
	if cfg.UI != nil {
		s.routeUI(m, cfg.UI)
	}
	if cfg.Mount != nil {
		if err := mount(cfg.Mount, m); err != nil {
			return nil, err
		}
	}

	s.http = &http.Server{
		Handler:           s.logRequests(s.guard(http.HandlerFunc(s.route))),
		ReadHeaderTimeout: readHeaderTimeout,
		// No ReadTimeout or WriteTimeout: either would cut event streams.
		// Handlers that read a body or write a reply set their own deadlines.
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Serve answers on l until Shutdown; it then returns nil. The DNS-rebinding
// guard applies to connections whose local address is a loopback IP.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown ends open event streams, stops accepting requests and waits for
// the others to finish until ctx is done, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopStream()
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close()
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

// endOnShutdown ends the request when Shutdown begins: MCP clients hold a
// GET stream open, which Shutdown would otherwise wait for.
func (s *Server) endOnShutdown(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(s.streams, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// mount runs the Mount hook, turning the mux's panic on a conflicting
// pattern into an error at startup.
func mount(f func(*http.ServeMux), m *http.ServeMux) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("api: ServerConfig.Mount: %v", r)
		}
	}()
	f(m)
	return nil
}

// route serves the mux, answering its own 404 and 405 in JSON like every
// other error.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		probe := &headerRecorder{header: http.Header{}}
		s.mux.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if probe.status == http.StatusMethodNotAllowed {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; use %s.", r.Method, r.URL.Path, allowList(probe.header.Get("Allow"))))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("there is no API route %s; check the path (API routes start with /api/v1/) and that the CLI and the node are the same version.", r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// headerRecorder captures the status and headers of the mux's built-in
// 404/405 replies and discards their text bodies.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(code int)        { h.status = code }

// allowList words an Allow header ("GET, HEAD") for a sentence.
func allowList(allow string) string {
	methods := strings.Split(allow, ", ")
	if len(methods) < 2 {
		return allow
	}
	return strings.Join(methods[:len(methods)-1], ", ") + " or " + methods[len(methods)-1]
}
