package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-p2p/agora/node/api"
)

// TestDashboardAgents: on the dashboard's Agents page, disable and enable
// the builtin agent (the CLI sees it), add an agent whose file has a typo
// (refused at the field, with its line; nothing added), run text.stats and
// json.query through the forms their input schemas make, and a form
// without the CSRF token is refused.
func TestDashboardAgents(t *testing.T) {
	t.Parallel()
	ds, _ := community(t, "a", "b")
	a := ds["a"]
	ctx := browser(t)
	shots := t.TempDir()
	link := loginLink(t, a)
	u, _ := url.Parse(link)
	base := u.Scheme + "://" + u.Host

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		for i, s := range steps {
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := chromedp.Do(sctx, s)
			cancel()
			if err != nil {
				dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				loc, _ := chromedp.Run(dctx, chromedp.Location())
				html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("body")))
				cancel()
				t.Fatalf("%s, step %d: %v at %s\n%s\n%s", what, i, err, loc, html, a.output())
			}
		}
	}
	// The page reloads its main part on node events unless the focus is
	// in it, as it is while a person reads or types there. loaded waits for
	// a page and puts the focus on its main part (retried: the part may be
	// replaced just then), so nothing the test holds is swapped under it.
	loaded := func(wait chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(wait, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			var err error
			for range 3 {
				if err = chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`#main`))); err == nil {
					return nil
				}
			}
			return err
		}))
	}
	visible := func(css string) chromedp.Action[chromedp.Void] {
		return loaded(chromedp.WaitVisible(chromedp.CSS(css)))
	}
	builtinEnabled := func() bool {
		t.Helper()
		var as []api.Agent
		runJSON(t, &as, "agents", "--repo", a.dir)
		for _, ag := range as {
			if ag.Name == "builtin" {
				return ag.Enabled
			}
		}
		t.Fatalf("the CLI lists no builtin agent: %+v", as)
		return false
	}
	// Reads retry: a node found just as a clicked form's page replaces the
	// last is gone when read ("No node with given id").
	attr := func(css, name string) string {
		t.Helper()
		v, err := readAgentsPage(ctx, chromedp.AttributeValue(chromedp.CSS(css), name))
		if err != nil {
			t.Fatalf("attribute %s of %s: %v", name, css, err)
		}
		return v.Value
	}
	value := func(css string) string {
		t.Helper()
		v, err := readAgentsPage(ctx, chromedp.Value(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("value of %s: %v", css, err)
		}
		return v
	}
	text := func(css string) string {
		t.Helper()
		v, err := readAgentsPage(ctx, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("text of %s: %v", css, err)
		}
		return strings.TrimSpace(v)
	}
	// shot takes the focus off the main part first, for a picture without
	// its focus ring.
	shot := func(name string) {
		t.Helper()
		step("blur for "+name, chromedp.Blur(chromedp.CSS(`#main`)))
		screenshot(t, ctx, shots, name)
	}
	const row = `[data-testid=agent-row][data-agent=builtin]`

	// The list, and disabling then enabling the builtin agent. (The first
	// action starts the browser, on ctx itself: the steps' contexts end.)
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	step("the agents page", chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`)),
		chromedp.Navigate(base+"/agents"), visible(row))
	if st := text(row + ` [data-testid=agent-state]`); st != "enabled" {
		t.Fatalf("builtin is %q", st)
	}
	if skills := text(row); !strings.Contains(skills, "text.stats") || !strings.Contains(skills, "community") {
		t.Fatalf("the builtin row: %q", skills)
	}
	step("disable", click(row+` [data-testid=agent-toggle]`), visible(row+` .agents-state-disabled`))
	if st := text(row + ` [data-testid=agent-state]`); st != "disabled" || builtinEnabled() {
		t.Fatalf("after disabling, the page says %q, the CLI enabled = %v", st, builtinEnabled())
	}
	step("enable", click(row+` [data-testid=agent-toggle]`), visible(row+` .agents-state-enabled`))
	if st := text(row + ` [data-testid=agent-state]`); st != "enabled" || !builtinEnabled() {
		t.Fatalf("after enabling, the page says %q, the CLI enabled = %v", st, builtinEnabled())
	}
	if n := text(`[data-testid=agents-notice]`); !strings.Contains(n, "builtin is enabled") {
		t.Fatalf("notice %q", n)
	}
	shot("agents.png")

	// Add an agent: choose a template, break it, see the error at the field.
	step("the openai template", chromedp.Navigate(base+"/agents/new"), visible(`#template`),
		chromedp.SetValue(chromedp.CSS(`#template`), "openai"), click(`form[method=get] button`),
		loaded(chromedp.WaitReady(chromedp.CSS(`#template option[value=openai][selected]`))))
	if v := value(`#toml`); !strings.Contains(v, `backend = "openai"`) {
		t.Fatalf("the openai template: %q", v)
	}
	step("the exec template", chromedp.SetValue(chromedp.CSS(`#template`), "exec"), click(`form[method=get] button`),
		loaded(chromedp.WaitReady(chromedp.CSS(`#template option[value=exec][selected]`))))
	toml := value(`#toml`)
	if !strings.Contains(toml, `backend = "exec"`) {
		t.Fatalf("the exec template: %q", toml)
	}
	step("a typo", chromedp.SetValue(chromedp.CSS(`#toml`), strings.Replace(toml, "backend =", "bakend =", 1)),
		click(`form[method=post][action="/agents/new"] button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=toml-error]`))) // the textarea in error has the focus
	msg := text(`[data-testid=toml-error]`)
	if !strings.Contains(msg, `unknown field "bakend"`) || !strings.Contains(msg, "mistake on line") ||
		text(`[data-testid=toml-error-line]`) != `bakend = "exec"` {
		t.Fatalf("the error at the field: %q", msg)
	}
	if f, err := readAgentsPage(ctx, chromedp.Evaluate[string](`document.activeElement.id`)); err != nil || f != "toml" {
		t.Fatalf("the focus is on %q, not on the field in error (%v)", f, err)
	}
	if inv := attr(`#toml`, "aria-invalid"); inv != "true" {
		t.Fatalf("the textarea is not marked invalid: %q", inv)
	}
	if v := value(`#toml`); !strings.Contains(v, "bakend") {
		t.Fatalf("the text was not kept: %q", v)
	}
	var as []api.Agent
	runJSON(t, &as, "agents", "--repo", a.dir)
	if len(as) != 1 {
		t.Fatalf("an agent with a typo was added: %+v", as)
	}
	screenshot(t, ctx, shots, "agents-new.png")

	// Try text.stats from its link, with the form its schema makes.
	step("try text.stats", chromedp.Navigate(base+"/agents"), visible(row),
		click(row+` a[href="/agents/try?skill=text.stats"]`),
		visible(`[name="in.text"]`),
		chromedp.SendKeys(chromedp.CSS(`[name="in.text"]`), "hello wide world\nbye"),
		click(`form[action="/agents/try"] button[type=submit]`),
		visible(`[data-testid=task-output]`))
	var out struct{ Chars, Lines, Words int }
	if err := json.Unmarshal([]byte(text(`[data-testid=task-output]`)), &out); err != nil || out.Chars != 20 || out.Lines != 2 || out.Words != 4 {
		t.Fatalf("text.stats output %+v (%v)", out, err)
	}
	if st, ex := text(`[data-testid=task-status]`), text(`[data-testid=try-result]`); st != "completed" || !strings.Contains(ex, "(this node)") {
		t.Fatalf("status %q, result %q", st, ex)
	}
	if href := attr(`[data-testid=task-link]`, "href"); !strings.HasPrefix(href, "/tasks/") {
		t.Fatalf("task link %q", href)
	}
	if v := value(`[name="in.text"]`); v != "hello wide world\nbye" {
		t.Fatalf("the form does not show the input it sent: %q", v)
	}
	shot("agents-try.png")

	// The skill's own schema message is shown at the field it is about.
	step("json.query with an empty query", chromedp.Navigate(base+"/agents/try?skill=json.query"),
		visible(`[name="in.data"]`),
		chromedp.SendKeys(chromedp.CSS(`[name="in.data"]`), `[1, 2]`),
		click(`form[action="/agents/try"] button[type=submit]`),
		visible(`[data-testid=field-error]`))
	msg = text(`[data-testid=field-error]`)
	if id, desc := attr(`[data-testid=field-error]`, "id"), attr(`[name="in.query"]`, "aria-describedby"); !strings.Contains(msg, "query") || !strings.Contains(desc, id) {
		t.Fatalf("the schema error %q (%s) is not at the query field (described by %q)", msg, id, desc)
	}

	// At a phone's width the pages wrap instead of scrolling sideways.
	step("a narrow window", chromedp.EmulateViewport(390, 844))
	for _, p := range []string{"/agents", "/agents/new", "/agents/try", "/agents/try?skill=json.query"} {
		step("narrow "+p, chromedp.Navigate(base+p), visible(`main h1`))
		wide, err := readAgentsPage(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		if err != nil || wide {
			t.Fatalf("%s is wider than 390 px (%v)", p, err)
		}
		if p == "/agents" {
			shot("agents-narrow.png")
		}
	}

	// A form without the CSRF token changes nothing.
	session := sessionCookie(t, ctx)
	req, _ := http.NewRequest(http.MethodPost, base+"/agents/builtin/disable", strings.NewReader("csrf=forged"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "security token") || !builtinEnabled() {
		t.Fatalf("disable without the CSRF token: %d %s", resp.StatusCode, body)
	}
}

// readAgentsPage runs a read, up to three times.
func readAgentsPage[T any](ctx context.Context, read chromedp.Action[T]) (v T, err error) {
	for range 3 {
		if v, err = chromedp.Run(ctx, read); err == nil {
			return v, nil
		}
	}
	return v, err
}
