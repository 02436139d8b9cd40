package ui

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// uiFakeBackend answers the overview's questions.
type uiFakeBackend struct{ api.Backend }

func (uiFakeBackend) Status(context.Context) api.Status {
	return api.Status{PeerID: "12D3Self", Version: "v9", UptimeS: 3725, Reachability: "public"}
}
func (uiFakeBackend) Netcheck(context.Context) api.Netcheck {
	return api.Netcheck{Reachability: "public", Hint: "reachable"}
}
func (uiFakeBackend) Peers(context.Context) []api.Peer {
	return []api.Peer{{PeerID: "12D3A", Path: "direct", LatencyMS: 1.5}, {PeerID: "12D3B", Path: "relayed", LatencyMS: 80}}
}
func (uiFakeBackend) Communities(context.Context) []api.Community { return nil }

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func get(s *Server, path string, cookie *http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// TestLoginCode: a login code works once and for CodeLifetime, by the
// injected clock; a refused code gets the page that says to run `agora ui`
// again; a session ends after SessionLifetime; a form without the session's
// CSRF token is refused with the page that says to reload.
func TestLoginCode(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s, err := New(Config{Backend: uiFakeBackend{}, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		page := rec.Body.String()
		if rec.Code != http.StatusUnauthorized || !strings.Contains(page, "used up or expired") || !strings.Contains(page, "Run `agora ui`") ||
			len(rec.Result().Cookies()) != 0 {
			t.Fatalf("%s: %d %v\n%s", what, rec.Code, rec.Result().Cookies(), page)
		}
	}

	// Past its expiry (by one second) a code is refused.
	code, exp := s.LoginCode()
	if !exp.Equal(c.now().Add(CodeLifetime)) {
		t.Fatalf("the code expires at %v, want %v", exp, c.now().Add(CodeLifetime))
	}
	c.add(CodeLifetime + time.Second)
	refused("an expired code", get(s, "/ui/login?code="+url.QueryEscape(code), nil))
	// Exactly at its expiry too.
	code, _ = s.LoginCode()
	c.add(CodeLifetime)
	refused("a code at its expiry", get(s, "/ui/login?code="+url.QueryEscape(code), nil))
	refused("no code", get(s, "/ui/login", nil))
	refused("an unknown code", get(s, "/ui/login?code=forged", nil))

	// Within its minute a code opens a session, once.
	code, _ = s.LoginCode()
	c.add(CodeLifetime - time.Second)
	rec := get(s, "/ui/login?code="+url.QueryEscape(code), nil)
	cookies := rec.Result().Cookies()
	if rec.Code != http.StatusSeeOther || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("a fresh code: %d %+v", rec.Code, cookies)
	}
	session := cookies[0]
	refused("a used code", get(s, "/ui/login?code="+url.QueryEscape(code), nil))
	if rec := get(s, "/", session); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "12D3Self") {
		t.Fatalf("the overview with the session: %d", rec.Code)
	}

	// A form without the session's CSRF token: refused, the session kept.
	req := httptest.NewRequest(http.MethodPost, "/ui/logout", strings.NewReader("csrf=forged"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(session)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if page := rec.Body.String(); rec.Code != http.StatusForbidden || !strings.Contains(page, "security token") || !strings.Contains(page, "Reload the page") {
		t.Fatalf("logout without the CSRF token: %d\n%s", rec.Code, page)
	}

	// The session ends after its lifetime.
	c.add(SessionLifetime)
	if rec := get(s, "/", session); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Run `agora ui`") {
		t.Fatalf("an expired session: %d\n%s", rec.Code, rec.Body.String())
	}
}

// loggedIn is a dashboard on uiFakeBackend with a session cookie.
func loggedIn(t *testing.T, cfg Config) (*Server, *http.Cookie) {
	t.Helper()
	cfg.Backend = uiFakeBackend{}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := s.LoginCode()
	cookies := get(s, "/ui/login?code="+url.QueryEscape(code), nil).Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login: %v", cookies)
	}
	return s, cookies[0]
}

// TestOverviewResources: the overview shows memory, CPU time,
// goroutines, connections and the datastore's size, and says what it
// does not know.
func TestOverviewResources(t *testing.T) {
	s, cookie := loggedIn(t, Config{})
	var gotDir string
	var gotPeers int
	s.resources = func(dir string, peers int) Resources {
		gotDir, gotPeers = dir, peers
		return Resources{RSS: 43_305_779, Heap: 9 << 20, GoMemory: 24 << 20, Goroutines: 311, CPU: 192 * time.Second,
			Files: 64, Sockets: 41, Peers: peers, Datastore: 3 << 29}
	}
	s.cfg.Datastore = "/repo/datastore"
	rec := get(s, "/", cookie)
	page := rec.Body.String()
	for _, want := range []string{
		`<h2 id="use-h">Resource use</h2>`,
		`<dd data-testid="memory">41.3 MiB resident; 9.0 MiB in live Go objects of 24.0 MiB the Go runtime holds</dd>`,
		`<dd data-testid="cpu">3 min 12 s since the start</dd>`,
		`<dd data-testid="goroutines">311</dd>`,
		`<dd data-testid="connections">2 peers connected; 41 sockets and 64 open files in all</dd>`,
		`<dd data-testid="datastore">1.50 GiB on disk</dd>`,
	} {
		if rec.Code != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("%d: no %q in\n%s", rec.Code, want, page)
		}
	}
	if gotDir != "/repo/datastore" || gotPeers != 2 {
		t.Fatalf("resources read for %q with %d peers", gotDir, gotPeers)
	}

	// What the system does not tell is left out or said to be unknown.
	s.resources = func(string, int) Resources {
		return Resources{RSS: -1, Heap: 1 << 10, GoMemory: 1 << 20, Goroutines: 5, CPU: -1, Files: -1, Sockets: -1, Peers: 1, Datastore: -1}
	}
	page = get(s, "/", cookie).Body.String()
	for _, want := range []string{
		`<dd data-testid="memory">1 KiB in live Go objects of 1.0 MiB the Go runtime holds</dd>`,
		`<dd data-testid="cpu">unknown since the start</dd>`,
		`<dd data-testid="connections">1 peer connected</dd>`,
		`<dd data-testid="datastore">size unknown</dd>`,
	} {
		if !strings.Contains(page, want) {
			t.Fatalf("no %q in\n%s", want, page)
		}
	}
}

// TestReadResources: the real reading, on this process.
func TestReadResources(t *testing.T) {
	s, _ := loggedIn(t, Config{})
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "000001.sst"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.readResources(dir, 3)
	if r.Heap <= 0 || r.GoMemory < r.Heap || r.Goroutines < 1 || r.CPU < 0 || r.Peers != 3 {
		t.Fatalf("resources %+v", r)
	}
	if r.Datastore < 64<<10 {
		t.Fatalf("a datastore with a 64 KiB file takes %d bytes", r.Datastore)
	}
	if runtime.GOOS == "linux" && (r.RSS <= 0 || r.Files < 3) {
		t.Fatalf("on Linux: RSS %d, files %d", r.RSS, r.Files)
	}
	// The size is kept for a while: a new file shows after diskUsageAge.
	if err := os.WriteFile(filepath.Join(dir, "000002.vlog"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	if again := s.readResources(dir, 3).Datastore; again != r.Datastore {
		t.Fatalf("the cached size changed: %d then %d", r.Datastore, again)
	}
	if later := s.du.size(dir, s.cfg.Now().Add(diskUsageAge)); later < 128<<10 {
		t.Fatalf("after %v the size is %d", diskUsageAge, later)
	}
	if s.readResources(filepath.Join(dir, "missing"), 0).Datastore != -1 {
		t.Fatal("a missing datastore has a size")
	}
	if s.readResources("", 0).Datastore != -1 {
		t.Fatal("no datastore has a size")
	}
}

func TestBytesIEC(t *testing.T) {
	for n, want := range map[int64]string{-1: "unknown", 0: "0 B", 1023: "1023 B", 1024: "1 KiB", 832 << 10: "832 KiB",
		43_305_779: "41.3 MiB", 3 << 29: "1.50 GiB"} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{-1: "unknown", 1240 * time.Millisecond: "1.24 s", 192 * time.Second: "3 min 12 s",
		3*time.Hour + 4*time.Minute: "3 h 4 min"} {
		if got := cpuSeconds(d); got != want {
			t.Errorf("cpuSeconds(%v) = %q, want %q", d, got, want)
		}
	}
}
