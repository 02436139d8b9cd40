// Package ui is the node's dashboard: server-rendered pages on the local
// API's address, readable without JavaScript, with a small script that
// listens to the node's event stream for live updates. Assets are embedded
// in the binary; nothing is fetched from elsewhere.
//
// Login never exposes the API token to the browser: `agora ui` asks the API
// (with the token) for a one-time login code valid for a minute; the
// browser exchanges it at /ui/login for an HttpOnly, SameSite=Strict session
// cookie. State-changing requests carry the session's CSRF token. Sessions
// live in memory: a daemon restart logs everyone out (run `agora ui` again).
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

//go:embed assets
var assets embed.FS

// Lifetimes.
const (
	CodeLifetime    = time.Minute
	SessionLifetime = 12 * time.Hour
	cookieName      = "agora_session"
)

// Config wires the dashboard to the node, through the same interfaces the
// API serves.
type Config struct {
	Backend api.Backend
	Work    api.Work
	Trust   api.Trust
	Gov     api.Governance
	Hub     api.EventSource
	Version string
	Now     func() time.Time
	Log     *slog.Logger
	// Settings lists the node's configuration for the Settings page (nil:
	// the page says to use `agora config`).
	Settings func() []Setting
	// Datastore is the datastore's directory: the overview shows its size
	// on disk ("": it says unknown).
	Datastore string
}

// Server serves the dashboard. Safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages *template.Template
	// resources reads what the process uses (a test replaces it).
	resources func(datastore string, peers int) Resources

	du       diskUsage
	mu       sync.Mutex
	codes    map[string]time.Time // one-time login code → expiry
	sessions map[string]*session
}

type session struct {
	csrf    string
	expires time.Time
}

// New builds the dashboard.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, fmt.Errorf("ui: Config needs a Backend")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui: templates: %w", err)
	}
	s := &Server{cfg: cfg, log: cfg.Log, mux: http.NewServeMux(), pages: pages,
		codes: map[string]time.Time{}, sessions: map[string]*session{}}
	s.resources = s.readResources
	static, _ := fs.Sub(assets, "assets/static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /ui/login", s.login)
	s.mux.HandleFunc("POST /ui/logout", s.withSession(s.logout))
	for _, r := range routes {
		s.mux.HandleFunc(r.pattern, s.withSession(func(w http.ResponseWriter, req *http.Request, sess *session) { r.handle(s, w, req, sess) }))
	}
	return s, nil
}

// route is one dashboard route; page files register theirs in init with
// addRoute, and their navigation entry with addNav.
type route struct {
	pattern string
	handle  func(s *Server, w http.ResponseWriter, r *http.Request, sess *session)
}

var routes []route

func addRoute(pattern string, h func(s *Server, w http.ResponseWriter, r *http.Request, sess *session)) {
	routes = append(routes, route{pattern, h})
}

// navEntry is one link of the page header, in Order.
type navEntry struct {
	Order int
	Key   string // page.Nav of the pages it marks current
	Label string
	Href  string
}

var navEntries []navEntry

// styles are the page files' own style sheets under /static/, linked from
// every page (addStyle in init).
var styles []string

func addStyle(file string) { styles = append(styles, file); slices.Sort(styles) }

// apiMessage is the sentence an API error carries, for showing at a form
// field; other errors get a generic sentence (and the log the detail).
func (s *Server) apiMessage(err error) string {
	if e, ok := errors.AsType[*api.Error](err); ok && e.Message != "" {
		return e.Message
	}
	s.log.Warn("dashboard action failed", "err", err)
	return "The node could not do that; its log says why."
}

func addNav(order int, key, label, href string) {
	navEntries = append(navEntries, navEntry{order, key, label, href})
	slices.SortFunc(navEntries, func(a, b navEntry) int { return a.Order - b.Order })
}

func init() {
	addNav(0, "overview", "Overview", "/")
	addRoute("GET /{$}", (*Server).overview)
}

// Patterns implements api.UI: the routes the API server hands to the
// dashboard, which authenticates them itself (by cookie, not by token):
// its own and those the pages registered.
func (s *Server) Patterns() []string {
	ps := []string{"/ui/", "GET /static/"}
	for _, r := range routes {
		if !slices.Contains(ps, r.pattern) {
			ps = append(ps, r.pattern)
		}
	}
	return ps
}

// Authorized implements api.UI.
func (s *Server) Authorized(r *http.Request) bool { return s.session(r) != nil }

func (s *Server) session(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.sessions[c.Value]; v != nil && s.cfg.Now().Before(v.expires) {
		return v
	}
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" makes form posts say Origin: null
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

func random() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// LoginCode mints a one-time login code.
func (s *Server) LoginCode() (string, time.Time) {
	now := s.cfg.Now()
	code, exp := random(), now.Add(CodeLifetime)
	s.mu.Lock()
	for c, e := range s.codes {
		if !now.Before(e) {
			delete(s.codes, c)
		}
	}
	s.codes[code] = exp
	s.mu.Unlock()
	return code, exp
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	now := s.cfg.Now()
	s.mu.Lock()
	exp, ok := s.codes[code]
	delete(s.codes, code) // one use, good or not
	s.mu.Unlock()
	if code == "" || !ok || !now.Before(exp) {
		s.problem(w, http.StatusUnauthorized, "This login link is used up or expired",
			"Login links work once and for one minute. Run `agora ui` on the machine of the node again for a new one.")
		return
	}
	id := random()
	s.mu.Lock()
	for k, v := range s.sessions {
		if !now.Before(v.expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = &session{csrf: random(), expires: now.Add(SessionLifetime)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Expires: now.Add(SessionLifetime), Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type ctxKey struct{}

// withSession admits a request with a live session cookie and, for a POST,
// the session's CSRF token in the form field "csrf".
func (s *Server) withSession(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.session(r)
		if sess == nil {
			s.problem(w, http.StatusUnauthorized, "Log in to the dashboard",
				"Run `agora ui` on the machine of the node: it opens this page with a one-time login link. (A restarted node forgets its sessions.)")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
				s.problem(w, http.StatusForbidden, "This form is out of date",
					"The request did not carry this session's security token. Reload the page and submit the form again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)), sess)
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if c, err := r.Cookie(cookieName); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.problem(w, http.StatusOK, "Logged out", "Run `agora ui` to log in again.")
}

// page is what every page template gets.
type page struct {
	Title   string
	Nav     string
	CSRF    string
	Version string
	Data    any
	Links   []navEntry
	Styles  []string
}

func (s *Server) render(w http.ResponseWriter, status int, name string, p page) {
	p.Version, p.Links, p.Styles = s.cfg.Version, navEntries, styles
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.pages.ExecuteTemplate(w, name, p); err != nil {
		s.log.Error("dashboard template failed", "page", name, "err", err)
	}
}

func (s *Server) problem(w http.ResponseWriter, status int, title, what string) {
	s.render(w, status, "problem.html", page{Title: title, Data: what})
}

type overviewData struct {
	Status      api.Status
	Netcheck    api.Netcheck
	Peers       []api.Peer
	Communities []api.Community
	Uptime      time.Duration
	Use         Resources
}

// overview is the home page: identity, reachability, peers, communities
// and what the node uses.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	d := overviewData{
		Status: s.cfg.Backend.Status(ctx), Netcheck: s.cfg.Backend.Netcheck(ctx), Peers: s.cfg.Backend.Peers(ctx),
		Communities: s.cfg.Backend.Communities(ctx),
	}
	d.Uptime = time.Duration(d.Status.UptimeS) * time.Second
	d.Use = s.resources(s.cfg.Datastore, len(d.Peers))
	s.render(w, http.StatusOK, "overview.html", page{Title: "Overview", Nav: "overview", CSRF: sess.csrf, Data: d})
}

var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) <= 16 {
			return s
		}
		return s[:8] + "…" + s[len(s)-6:]
	},
	"ms":    func(f float64) string { return fmt.Sprintf("%.1f ms", f) },
	"bytes": bytesIEC,
	"cpu":   cpuSeconds,
}
