package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The token's location, for the messages that ask for it.
const tokenWhere = "the file api.token in the node's repo ($AGORA_REPO, default ~/.agora)"

// guard applies, in order: the DNS-rebinding Host check, the Origin check,
// then the bearer token (except on public routes).
//
// Host: a page on evil.example can make a browser send requests to
// 127.0.0.1 under its own name by re-pointing its DNS; such requests carry
// Host: evil.example. On a connection to a loopback address only loopback
// names are accepted, so that cannot reach the API.
//
// Origin: browsers send it on cross-origin requests (and same-origin
// non-GETs). Only the API's own origin is accepted, and no CORS header is
// ever sent, so pages elsewhere can neither read replies nor cause effects.
// Non-browser clients send no Origin and are unaffected.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := writeError
		if !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/mcp" {
			refuse = writePage // a person in a browser: say it in a page
		}
		if onLoopback(r) && !loopbackHost(r.Host) {
			refuse(w, http.StatusForbidden, "the local API answers only to a loopback host name (localhost, 127.0.0.1 or [::1]); this request named "+quoteHost(r.Host)+". Open the dashboard with `agora ui`.")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r) {
			refuse(w, http.StatusForbidden, "the local API does not serve requests from web pages of other origins (this one came from "+quoteHost(origin)+"); use the agora CLI or the node's own dashboard.")
			return
		}
		if _, pattern := s.mux.Handler(r); !s.public[pattern] {
			switch got, ok := bearer(r); {
			case !ok:
				w.Header().Set("WWW-Authenticate", `Bearer realm="agora"`)
				writeError(w, http.StatusUnauthorized, "this request needs the API token: send the header \"Authorization: Bearer <token>\" with the token from "+tokenWhere+".")
				return
			case !s.tokenMatches(got):
				w.Header().Set("WWW-Authenticate", `Bearer realm="agora", error="invalid_token"`)
				writeError(w, http.StatusUnauthorized, "the API token is wrong: use the one in "+tokenWhere+" of the node you are talking to.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// tokenMatches compares digests so that neither the content nor the length
// of the token leaks through timing.
func (s *Server) tokenMatches(got string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// onLoopback reports whether the request came in on a loopback address. The
// connection's address is used rather than the listener's so that a
// wildcard listener is guarded on its loopback side too.
func onLoopback(r *http.Request) bool {
	addr, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case nil:
		return true // unknown: be strict
	default:
		return false // e.g. a unix socket: not reachable by a browser
	}
}

// loopbackHost accepts "localhost", "*.localhost" (RFC 6761 keeps both on
// loopback), and loopback IP literals, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin accepts an Origin that is exactly this server's scheme and Host,
// which on a loopback connection the Host check has already made loopback.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, r.Host)
}

// quoteHost shows an attacker-chosen value in a message without letting it
// run on.
func quoteHost(s string) string {
	const max = 100
	if len(s) > max {
		s = s[:max] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// logRequests writes the request log at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
		)
	})
}

// statusWriter records the status; Unwrap keeps http.ResponseController
// (flush, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writePage refuses a browser's request with a small page that says what
// to do.
func writePage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><html lang=en><meta charset=utf-8><title>Refused · Agora</title><h1>Refused</h1><p>%s</p></html>\n", html.EscapeString(msg))
}
