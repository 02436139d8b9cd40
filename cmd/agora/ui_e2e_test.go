package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium, which `make test` and .ci/run install.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("the dashboard tests need Debian's chromium: run `make test`, which installs it (apt-get install chromium)")
	return ""
}

// browser starts a headless chromium for t, with the flags this machine's
// closed network needs.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelTimeout)
	return ctx
}

// screenshot saves a full-page PNG under dir and checks it is not blank.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 10_000 {
		t.Fatalf("screenshot %s is only %d bytes", name, len(png))
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	// With AGORA_UPDATE_SCREENSHOTS=1 the run refreshes the pictures in
	// docs/dashboard.md.
	if os.Getenv("AGORA_UPDATE_SCREENSHOTS") == "1" {
		doc := filepath.Join("..", "..", "docs", "img", "dashboard-"+name)
		if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(doc, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func loginLink(t *testing.T, d *daemon) string {
	t.Helper()
	var out struct {
		URL string `json:"url"`
	}
	runJSON(t, &out, "ui", "--json", "--repo", d.dir)
	if !strings.Contains(out.URL, "/ui/login?code=") {
		t.Fatalf("login link %q", out.URL)
	}
	return out.URL
}

// TestDashboard: log in through the one-time link and see the node and its
// community; the link works once; a form without the CSRF token and a
// request from another origin are refused; logging out ends the session.
func TestDashboard(t *testing.T) {
	t.Parallel()
	ds, created := community(t, "a", "b")
	a, b := ds["a"], ds["b"]
	idA, idB := peerID(t, a), peerID(t, b)
	ctx := browser(t)
	shots := t.TempDir()

	link := loginLink(t, a)
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`))); err != nil {
		t.Fatalf("overview: %v\n%s", err, a.output())
	}
	peerText := text(t, ctx, `[data-testid=peer-id]`)
	peers := text(t, ctx, `#peers-h + table`)
	comm := text(t, ctx, `[data-testid=community]`)
	if peerText != idA || !strings.Contains(peers, idB) || comm != "registry-test" {
		t.Fatalf("overview shows peer %q, peers %q, community %q (want %s, %s, %s)", peerText, peers, comm, idA, idB, created.Name)
	}
	// The overview, with the resources the node uses.
	for _, id := range []string{"memory", "cpu", "goroutines", "connections", "datastore"} {
		if v := text(t, ctx, `[data-testid=`+id+`]`); v == "" {
			t.Fatalf("the overview shows no %s", id)
		}
	}
	if v := text(t, ctx, `[data-testid=connections]`); !strings.HasPrefix(v, "1 peer connected") {
		t.Fatalf("connections: %q", v)
	}
	screenshot(t, ctx, shots, "overview.png")
	// Light and dark follow the system's setting.
	if lum := darkLight(t, ctx, "dark"); lum > 0.05 {
		t.Fatalf("with prefers-color-scheme: dark the background's luminance is %.2f", lum)
	}
	screenshot(t, ctx, shots, "overview-dark.png")
	if lum := darkLight(t, ctx, "light"); lum < 0.8 {
		t.Fatalf("with prefers-color-scheme: light the background's luminance is %.2f", lum)
	}
	if lum := darkLight(t, ctx, ""); lum < 0.8 {
		t.Fatalf("by default the background's luminance is %.2f", lum)
	}

	// The cookie is HttpOnly and SameSite=Strict; the page never saw the token.
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	cookies := got.Cookies
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "agora_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v", session)
	}

	// The link works once.
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	body := text(t, ctx, `main`)
	if !strings.Contains(body, "agora ui") || !strings.Contains(body, "once") {
		t.Fatalf("a second use of the link: %q", body)
	}

	// Without the CSRF token, or from another origin, a form is refused.
	base, _ := url.Parse(link)
	logout := base.Scheme + "://" + base.Host + "/ui/logout"
	post := func(origin, form string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, logout, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(page)
	}
	if code, page := post("", "csrf=wrong"); code != http.StatusForbidden || !strings.Contains(page, "security token") {
		t.Fatalf("logout without the CSRF token: %d %s", code, page)
	}
	if code, page := post("http://evil.example", "csrf=wrong"); code != http.StatusForbidden || !strings.Contains(page, "other origins") {
		t.Fatalf("logout from another origin: %d %s", code, page)
	}

	// Logging out with the button ends the session.
	for i, step := range []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base.Scheme + "://" + base.Host + "/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`)),
		click(`form.logout button`),
		chromedp.WaitVisible(chromedp.CSS(`.problem`)),
		chromedp.Navigate(base.Scheme + "://" + base.Host + "/"),
	} {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := chromedp.Do(sctx, step)
		cancel()
		if err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("logout step %d: %v at %s\n%s", i, err, loc, html)
		}
	}
	body = text(t, ctx, `main`)
	if !strings.Contains(body, "agora ui") {
		t.Fatalf("after logging out: %q", body)
	}
	// The API itself still wants its token.
	resp, err := http.Get(base.Scheme + "://" + base.Host + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the API without a token: %d", resp.StatusCode)
	}
}

// text is the text of the first element matching a CSS selector.
func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// click waits until an element matching a CSS selector is visible, then
// finds and clicks the first match in one script. chromedp.Click finds the
// node, then sends mouse events to it; the dashboard's live refresh
// (agora.js) replaces #main's content when an event arrives, and a refresh
// in between detaches the node ("Could not find node with given id"). The
// script finds the element as it is when it clicks. (Unlike a mouse click,
// it does not check that nothing covers the element.)
func click(css string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if _, err := chromedp.WaitVisible(chromedp.CSS(css))(ctx, tg); err != nil {
			return chromedp.Void{}, err
		}
		sel, err := json.Marshal(css) // a JavaScript string literal
		if err != nil {
			return chromedp.Void{}, err
		}
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%s); if (!e) { return false; } e.click(); return true; })()`, sel)
		ok, err := chromedp.Evaluate[bool](js)(ctx, tg)
		if err == nil && !ok {
			err = fmt.Errorf("no element matches %s", css)
		}
		return chromedp.Void{}, err
	}
}

// sessionCookie is the browser's dashboard session cookie.
func sessionCookie(t *testing.T, ctx context.Context) *network.Cookie {
	t.Helper()
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Cookies {
		if c.Name == "agora_session" {
			return c
		}
	}
	t.Fatal("no session cookie")
	return nil
}
