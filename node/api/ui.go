package api

import (
	"net/http"
	"net/url"
	"time"
)

// UI is the dashboard, served on the API's address. Its routes are not
// behind the token: the dashboard authenticates them itself with a session
// cookie that a one-time login code (minted with the token) opens. The
// Host and Origin checks apply to them as to every route.
type UI interface {
	http.Handler
	// Patterns are the routes to hand to the dashboard.
	Patterns() []string
	// Authorized reports whether a request carries a live session.
	Authorized(r *http.Request) bool
	// LoginCode mints a one-time login code and its expiry.
	LoginCode() (string, time.Time)
}

// UILogin answers POST /api/v1/ui/login: the path that logs a browser in.
type UILogin struct {
	Path    string `json:"path"`    // "/ui/login?code=..."; prefix the API's address
	Expires int64  `json:"expires"` // unix ms
}

func (s *Server) routeUI(m *http.ServeMux, ui UI) {
	for _, p := range ui.Patterns() {
		m.Handle(p, s.endOnShutdown(ui))
		s.public[p] = true
	}
	// The event stream, for the dashboard's live updates, with the
	// session instead of the token.
	m.Handle("GET /ui/events", s.endOnShutdown(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ui.Authorized(r) {
			writeError(w, http.StatusUnauthorized, "log in to the dashboard first: run `agora ui`.")
			return
		}
		s.events(w, r)
	})))
	s.public["GET /ui/events"] = true
	m.HandleFunc("POST /api/v1/ui/login", func(w http.ResponseWriter, r *http.Request) {
		code, exp := ui.LoginCode()
		writeJSON(w, http.StatusOK, UILogin{Path: "/ui/login?code=" + url.QueryEscape(code), Expires: exp.UnixMilli()})
	})
}
