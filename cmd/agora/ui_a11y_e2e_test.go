package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/agora-p2p/agora/node/api"
)

// focused describes document.activeElement: what it is and whether its
// focus shows (an outline or a box shadow).
type focused struct {
	Tag     string `json:"tag"`
	ID      string `json:"id"`
	Key     string `json:"key"` // the same string as focusables gives it
	Text    string `json:"text"`
	InView  bool   `json:"inView"`
	Visible bool   `json:"visible"`
}

// focusKey names an element the same way in focusedJS and focusablesJS.
const focusKey = `function key(e) { return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.getAttribute("href") ? "[href=" + e.getAttribute("href") + "]" : "") + (e.name ? "[name=" + e.name + "]" : "") + "|" + (e.textContent || "").trim().slice(0, 30); }`

const focusedJS = `(function () {` + focusKey + `
  var e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
  var outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  return { tag: e.tagName.toLowerCase(), id: e.id, key: key(e), text: (e.textContent || "").trim().slice(0, 40),
    inView: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth,
    visible: outline || s.boxShadow !== "none" };
})()`

// focusablesJS lists, in document order, the keys of the elements under a
// selector that Tab should reach.
func focusablesJS(css string) string {
	return `(function () {` + focusKey + `
  var root = document.querySelector(` + fmt.Sprintf("%q", css) + `);
  return Array.prototype.filter.call(root.querySelectorAll("a[href], button, input, select, textarea, [tabindex]"), function (e) {
    return e.type !== "hidden" && !e.disabled && e.tabIndex >= 0 && e.getClientRects().length > 0;
  }).map(key);
})()`
}

// unlabelledJS lists the form controls that have no label: no label[for],
// no wrapping label, no aria-label or aria-labelledby.
const unlabelledJS = `Array.prototype.filter.call(document.querySelectorAll("input, select, textarea"), function (e) {
  return e.type !== "hidden" && !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby");
}).map(function (e) { return e.outerHTML.slice(0, 160); })`

// TestDashboardKeyboard: on every page of a node that has a task, a
// ranked proposal and a community, each form control has a label and
// nothing needs a sideways scroll at 390 px; Tab walks from a "Skip to
// content" link through the navigation and through a form in document
// order, each focused control showing its focus; the skip link moves the
// focus to the page's content.
func TestDashboardKeyboard(t *testing.T) {
	t.Parallel()
	ds, _ := community(t, "a")
	a := ds["a"]
	var task api.Task
	runJSON(t, &task, "ask", "text.stats", "--input", `{"text":"hello there"}`, "--repo", a.dir)
	if task.Status != "completed" {
		t.Fatalf("the task: %+v", task)
	}
	var prop api.Proposed
	runJSON(t, &prop, "propose", "--title", "Which colour", "--choices", "red,green,blue", "--method", "ranked",
		"--duration", "7d", "--repo", a.dir)

	ctx := browser(t)
	link := loginLink(t, a)
	u, _ := url.Parse(link)
	base := u.Scheme + "://" + u.Host
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`))); err != nil {
		t.Fatalf("log in: %v\n%s", err, a.output())
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v at %s\n%s", what, err, loc, html)
		}
	}
	eval := func(what, js string, out any) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		raw, err := chromedp.Run(sctx, chromedp.Evaluate[[]byte](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := jsonUnmarshal(string(raw), out); err != nil {
			t.Fatalf("%s: %v in %s", what, err, raw)
		}
	}
	active := func() focused {
		t.Helper()
		var f focused
		eval("the focused element", focusedJS, &f)
		return f
	}
	tab := func() focused {
		t.Helper()
		do("Tab", chromedp.KeyEvent("\t"))
		return active()
	}

	pages := []string{"/", "/agents", "/agents/new", "/agents/try?skill=text.stats", "/community", "/tasks",
		"/tasks/" + task.ID, "/trust", "/governance", "/governance/" + prop.ID, "/settings"}

	// Labels, at 1280 px.
	for _, p := range pages {
		do(p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		var bare []string
		eval(p+": unlabelled controls", unlabelledJS, &bare)
		if len(bare) > 0 {
			t.Errorf("%s: controls without a label:\n%s", p, strings.Join(bare, "\n"))
		}
	}

	// The navigation by keyboard: the skip link first, shown when focused,
	// then the pages' links and the logout button, each with its focus
	// showing.
	do("the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	var want []string
	eval("the header's controls", focusablesJS("header"), &want)
	if len(want) < 8 {
		t.Fatalf("the header has %d controls: %q", len(want), want)
	}
	skip := tab()
	if skip.Text != "Skip to content" || !skip.InView || !skip.Visible {
		t.Fatalf("the first Tab reaches %+v, not a visible skip link", skip)
	}
	for i, w := range want {
		got := tab()
		if got.Key != w {
			t.Fatalf("Tab %d in the header reaches %q, want %q", i+2, got.Key, w)
		}
		if !got.Visible || !got.InView {
			t.Errorf("%q has focus but shows no focus ring (%+v)", got.Key, got)
		}
	}
	// The skip link takes the focus to the content: the next Tab reaches
	// the first control in main (the overview has none: Governance has).
	do("governance", chromedp.Navigate(base+"/governance"), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
	var inside []string
	eval("main's controls", focusablesJS("main"), &inside)
	if f := tab(); f.Text != "Skip to content" {
		t.Fatalf("the first Tab reaches %+v", f)
	}
	do("follow the skip link", chromedp.KeyEvent("\r"), poll(`location.hash === "#main"`),
		chromedp.KeyEvent("\t"))
	if f := active(); len(inside) == 0 || f.Key != inside[0] || !f.Visible {
		t.Fatalf("after the skip link, Tab reaches %+v, want %q", f, inside)
	}

	// A form by keyboard: from its first field, Tab visits every control in
	// document order, each showing its focus.
	do("the governance form", chromedp.Navigate(base+"/governance"), chromedp.WaitVisible(chromedp.CSS(`#p-title`)),
		chromedp.Click(chromedp.CSS(`#p-title`)))
	eval("the form's controls", focusablesJS(`form.gov-form[action="/governance"]`), &want)
	if len(want) < 6 {
		t.Fatalf("the proposal form has %d controls: %q", len(want), want)
	}
	if f := active(); f.Key != want[0] || !f.Visible {
		t.Fatalf("focused %+v, want %q with its focus showing", f, want[0])
	}
	for i, w := range want[1:] {
		got := tab()
		if got.Key != w {
			t.Fatalf("Tab %d in the form reaches %q, want %q", i+1, got.Key, w)
		}
		if !got.Visible {
			t.Errorf("%q has focus but shows no focus ring (%+v)", got.Key, got)
		}
	}

	// At a phone's width nothing needs a sideways scroll.
	do("390 px", chromedp.EmulateViewport(390, 844))
	for _, p := range pages {
		do(p+" at 390 px", chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS(`main h1`)))
		w, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if err != nil || w > 390+1 {
			wide, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.prototype.filter.call(document.querySelectorAll("main *"), function (e) {
			  return e.getBoundingClientRect().right > innerWidth + 1; }).slice(0, 8).map(function (e) { return e.outerHTML.slice(0, 160); })`))
			t.Errorf("%s at 390 px is %d px wide (%v); too wide:\n%s", p, w, err, strings.Join(wide, "\n"))
		}
	}
}

// poll waits until a JavaScript expression is true.
func poll(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](js)(ctx, t)
		return err
	})
}

// darkLight sets prefers-color-scheme ("" for none) and returns the
// relative luminance of the page's background.
func darkLight(t *testing.T, ctx context.Context, scheme string) float64 {
	t.Helper()
	p := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, p); err != nil {
		t.Fatal(err)
	}
	lum, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(function () {
	  var m = getComputedStyle(document.body).backgroundColor.match(/[\d.]+/g).map(Number);
	  var lin = function (c) { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
	  return 0.2126 * lin(m[0]) + 0.7152 * lin(m[1]) + 0.0722 * lin(m[2]); })()`))
	if err != nil {
		t.Fatal(err)
	}
	return lum
}
