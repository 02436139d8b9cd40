package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/agora-p2p/agora/node/api"
)

// TestDashboardGovernance: in a's browser, a proposal with a policy
// action is created through the form (after the form refuses a quorum
// under the policy, at the field), a votes through the ballot, b and c vote
// with the CLI; the proposal page follows the tally live until the result
// is final, and the policy shows the key the proposal set. A vote without
// the CSRF token is refused; Settings lists api.listen.
func TestDashboardGovernance(t *testing.T) {
	t.Parallel()
	ds, _ := communityWith(t, nil, []string{"--policy", "vote.grace_s=1", "--policy", "vote.duration_s=5"}, "a", "b", "c")
	a, b, c := ds["a"], ds["b"], ds["c"]
	idB, idC := peerID(t, b), peerID(t, c)
	// a delegates to b and c: its feedback gives them the community trust
	// that member weighting asks of voters.
	waitSkill(t, a, "text.stats", idB, idC)
	for _, id := range []string{idB, idC} {
		var got api.Task
		runJSON(t, &got, "ask", "text.stats", "--input", `{"text":"hello"}`, "--peer", id, "--repo", a.dir)
		if got.Status != "completed" {
			t.Fatalf("task on %s: %+v", id, got)
		}
	}
	for _, x := range []*daemon{a, b, c} {
		x.waitFor(t, "a's feedback", func() bool {
			rs, err := x.client.Records(context.Background(), api.RecordQuery{Kind: "feedback"})
			return err == nil && len(rs) == 2
		})
	}

	ctx := browser(t)
	shots := t.TempDir()
	link := loginLink(t, a)
	u, _ := url.Parse(link)
	base := u.Scheme + "://" + u.Host
	do := func(what string, limit time.Duration, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v at %s\n%s\n%s", what, err, loc, html, a.output())
		}
	}
	// The first run starts the browser, so it gets no deadline of its own.
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`))); err != nil {
		t.Fatalf("log in: %v\n%s", err, a.output())
	}

	// A quorum under the policy's is refused, at the field.
	do("a proposal with quorum 0", 20*time.Second,
		chromedp.Navigate(base+"/governance"),
		chromedp.WaitVisible(chromedp.CSS(`#p-title`)),
		chromedp.SendKeys(chromedp.CSS(`#p-title`), "One audit is enough"),
		chromedp.SetValue(chromedp.CSS(`#p-body`), "Our auditors are few.\n# not a heading"),
		chromedp.SetValue(chromedp.CSS(`#p-choices`), "yes,no"),
		chromedp.SetValue(chromedp.CSS(`#p-duration`), "6s"),
		chromedp.SetValue(chromedp.CSS(`#p-quorum`), "0"),
		chromedp.SetValue(chromedp.CSS(`#p-action`), "set-policy certify.min_attestations=1"),
		click(`form.gov-form button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`#p-quorum-err`)),
	)
	if msg := text(t, ctx, `#p-quorum-err`); !strings.Contains(msg, "quorum 0 is under the community's vote.quorum=200") {
		t.Fatalf("the quorum error: %q", msg)
	}
	// The form kept what was typed; with the policy's quorum it goes through.
	do("the proposal", 20*time.Second,
		chromedp.Clear(chromedp.CSS(`#p-quorum`)),
		click(`form.gov-form button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=status]`)),
	)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(loc)
	id := strings.TrimPrefix(pu.Path, "/governance/")
	if got := text(t, ctx, `[data-testid=action]`); got != "set-policy certify.min_attestations=1" || id == "" {
		t.Fatalf("proposal %q at %s shows action %q", id, loc, got)
	}
	if got := text(t, ctx, `[data-testid=body]`); got != "Our auditors are few.\n# not a heading" {
		t.Fatalf("the body: %q", got)
	}

	// a votes yes through the ballot; b and c with the CLI. The page
	// follows the tally as their votes arrive.
	do("a's vote", 20*time.Second,
		click(`#v-0`),
		click(`form.gov-form button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`.gov-tally rect[data-choice="yes"][data-count="1000"]`)),
	)
	for _, x := range []*daemon{b, c} {
		x.waitFor(t, "the proposal", func() bool {
			ps, err := x.client.Proposals(context.Background(), "", "open")
			return err == nil && len(ps) == 1
		})
		run(t, "vote", id, "yes", "--repo", x.dir)
	}
	do("the live tally", 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS(`.gov-tally rect[data-choice="yes"][data-count="3000"]`)))
	do("the final result", 30*time.Second, chromedp.WaitVisible(chromedp.CSS(`[data-testid=final]`)))
	if st, voters := text(t, ctx, `[data-testid=status]`), text(t, ctx, `[data-testid=voters]`); st != "passed" || voters != "3" {
		t.Fatalf("final status %q with %q voters", st, voters)
	}
	screenshot(t, ctx, shots, "governance-proposal.png")

	// Without the CSRF token a vote is refused.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/governance/"+id, strings.NewReader("choice=0"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies.Cookies {
		if ck.Name == "agora_session" {
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(page), "security token") {
		t.Fatalf("a vote without the CSRF token: %d %s", resp.StatusCode, page)
	}

	// The policy now has the key the proposal set, linked to it.
	setBy := `tr[data-key="certify.min_attestations"] a[href="/governance/` + id + `"]`
	do("the policy", 30*time.Second, chromedp.Navigate(base+"/governance"), chromedp.WaitVisible(chromedp.CSS(setBy)))
	if v := text(t, ctx, `tr[data-key="certify.min_attestations"] td`); v != "1" {
		t.Fatalf("certify.min_attestations shows %q", v)
	}
	if row := text(t, ctx, `[data-testid=proposal]`); !strings.Contains(row, "One audit is enough") || !strings.Contains(row, "passed") {
		t.Fatalf("the proposals list: %q", row)
	}
	screenshot(t, ctx, shots, "governance.png")

	// Settings: read-only, the values this run uses.
	do("settings", 20*time.Second, chromedp.Navigate(base+"/settings"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="api.listen"]`)))
	if v := text(t, ctx, `tr[data-key="api.listen"] [data-testid=value]`); v != "127.0.0.1:0" {
		t.Fatalf("api.listen shows %q", v)
	}
	if row := text(t, ctx, `tr[data-key="api.listen"]`); !strings.Contains(row, "AGORA_API_LISTEN") || !strings.Contains(row, "--api-listen") {
		t.Fatalf("api.listen row: %q", row)
	}
	screenshot(t, ctx, shots, "settings.png")

	// At a phone's width nothing needs a sideways scroll.
	do("a narrow window", 10*time.Second, chromedp.EmulateViewport(390, 844))
	for _, path := range []string{"/governance/" + id, "/governance", "/settings"} {
		do(path+" at 390 px", 20*time.Second, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		w, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if err != nil || w > 390 {
			t.Errorf("%s at 390 px is %d px wide (%v)", path, w, err)
		}
	}
}

// TestDashboardRankedBallot: a ranked ballot put in order by dragging a
// choice and by its up and down buttons from the keyboard is published in
// that order; with JavaScript off, the numbers alone make the ballot.
func TestDashboardRankedBallot(t *testing.T) {
	t.Parallel()
	ds, _ := community(t, "a")
	a := ds["a"]
	var prop api.Proposed
	runJSON(t, &prop, "propose", "--title", "Which colour", "--choices", "red,green,blue", "--method", "ranked",
		"--duration", "7d", "--repo", a.dir)

	ctx := browser(t)
	shots := t.TempDir()
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
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v\n%s\n%s", what, err, html, a.output())
		}
	}
	// order is the ballot as shown: each choice's name and number, top down.
	const order = `Array.prototype.map.call(document.querySelectorAll("ol.gov-ranked li"), function (li) {
	  return li.getAttribute("data-name") + "=" + li.querySelector("input").value; }).join(" ")`
	ordered := func(want string) chromedp.Action[chromedp.Void] { return poll(order + ` === "` + want + `"`) }
	// posted is what the ballot form sends: the rank of each choice.
	posted := func(want string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function () {
		  var f = new FormData(document.querySelector("form.gov-form")), out = [];
		  f.forEach(function (v, k) { if (k.indexOf("rank-") === 0) { out.push(k + "=" + v); } });
		  return out.join(" "); })()`))
		if err != nil || got != want {
			t.Fatalf("the ballot form sends %q, want %q (%v)", got, want, err)
		}
	}
	// first waits for the tally to show a's ballot (the only one) with its
	// first preference: all the first round's weight. (The API shows no
	// vote's body, so the rest of the order is checked as the form sends it.)
	first := func(want string) {
		t.Helper()
		var tv api.TallyView
		a.waitFor(t, "a's ballot for "+want, func() bool {
			var err error
			tv, err = a.client.Tally(context.Background(), "", prop.ID)
			if err != nil || tv.Voters != 1 || len(tv.Rounds) == 0 {
				return false
			}
			for c, n := range tv.Rounds[0] {
				if (c == want) != (n > 0) {
					return false
				}
			}
			return true
		})
	}

	do("the ballot", chromedp.Navigate(base+"/governance/"+prop.ID),
		chromedp.WaitVisible(chromedp.CSS(`ol.gov-ranked li[data-index="2"] button.gov-up`)), ordered("red= green= blue="))
	// Drag blue onto red: blue takes first place, and every choice its number.
	do("drag blue to the top",
		chromedp.DragAndDrop(chromedp.CSS(`li.gov-rank[data-index="2"] .gov-grip`), chromedp.CSS(`li.gov-rank[data-index="0"] label`)),
		ordered("blue=1 red=2 green=3"))
	// From the keyboard: green up (Enter), then blue down (Space); the
	// focus stays on the button pressed.
	do("green up by keyboard", chromedp.Focus(chromedp.CSS(`li.gov-rank[data-index="1"] .gov-up`)), chromedp.KeyEvent("\r"),
		ordered("blue=1 green=2 red=3"), poll(`document.activeElement === document.querySelector('li[data-index="1"] .gov-up')`))
	do("blue down by keyboard", chromedp.Focus(chromedp.CSS(`li.gov-rank[data-index="2"] .gov-down`)), chromedp.KeyEvent(" "),
		ordered("green=1 blue=2 red=3"), poll(`document.activeElement === document.querySelector('li[data-index="2"] .gov-down')`),
		poll(`document.getElementById("v-rank-status").textContent === "blue: rank 2 of 3."`))
	do("blur", chromedp.Blur(chromedp.CSS(`li.gov-rank[data-index="2"] .gov-down`)))
	screenshot(t, ctx, shots, "governance-ranked.png")
	posted("rank-1=1 rank-2=2 rank-0=3")
	do("vote", click(`form.gov-form button[type=submit]`), chromedp.WaitVisible(chromedp.CSS(`.gov-notice`)))
	first("green")

	// Without JavaScript: no buttons, no dragging; the numbers still vote.
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	do("the ballot without JavaScript", chromedp.Navigate(base+"/governance/"+prop.ID), chromedp.WaitVisible(chromedp.CSS(`#v-0`)))
	if shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector(".gov-move")).display !== "none" || document.querySelector("li.gov-rank").draggable`)); err != nil || shown {
		t.Fatalf("without JavaScript the buttons show or the choices drag (%v)", err)
	}
	do("rank by number", chromedp.SendKeys(chromedp.CSS(`#v-0`), "1"), chromedp.SendKeys(chromedp.CSS(`#v-2`), "2"),
		click(`form.gov-form button[type=submit]`), chromedp.WaitVisible(chromedp.CSS(`.gov-notice`)))
	// The latest ballot counts: red first now.
	first("red")
}
