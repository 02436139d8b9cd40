package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agora-p2p/agora/node/api"
)

// TestDashboardCommunityTrust: A delegates text.stats to B and C; A's
// Community page lists both as providers, searches on the server and draws
// the delegations A → B and A → C; the Trust page ranks B, trusts B through
// its form (a bad peer ID gets the API's sentence at the field), publishes
// an attestation on B's agent and revokes it with its button; a form
// without the CSRF token is refused.
func TestDashboardCommunityTrust(t *testing.T) {
	t.Parallel()
	ds, _ := community(t, "a", "b", "c")
	a, b, c := ds["a"], ds["b"], ds["c"]
	idA, idB, idC := peerID(t, a), peerID(t, b), peerID(t, c)
	waitSkill(t, a, "text.stats", idB, idC)
	for i, id := range []string{idB, idC} {
		var got api.Task
		runJSON(t, &got, "ask", "text.stats", "--input", fmt.Sprintf(`{"text":"task %d"}`, i), "--peer", id, "--repo", a.dir)
		if got.Status != "completed" || got.Executor != id {
			t.Fatalf("ask on %s: %+v", id, got)
		}
	}
	a.waitFor(t, "feedback on both tasks and B in the personal reputation", func() bool {
		fs, err := a.client.Records(context.Background(), api.RecordQuery{Kind: "feedback"})
		if err != nil || len(fs) < 2 {
			return false
		}
		rep, err := a.client.Reputation(context.Background(), "", "personal", "")
		return err == nil && slices.ContainsFunc(rep, func(e api.RepEntry) bool { return e.PeerID == idB })
	})

	ctx := browser(t)
	shots := t.TempDir()
	link := loginLink(t, a)
	u, _ := url.Parse(link)
	base := u.Scheme + "://" + u.Host
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v at %s\n%s\n%s", what, err, loc, html, a.output())
		}
	}
	eval := func(js string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	providers := func(skill string) []string {
		return eval(`Array.from(document.querySelectorAll('[data-skill="` + skill + `"] [data-testid=provider]')).map(e => e.dataset.peer)`)
	}

	// Community: B and C offer text.stats; the search filters on the server.
	const stats = `[data-skill="text.stats"]`
	// The first action starts the browser, which must outlive a step's
	// deadline: it runs on ctx itself.
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`))); err != nil {
		t.Fatalf("log in: %v\n%s", err, a.output())
	}
	step("open the community page", chromedp.Navigate(base+"/community"), chromedp.WaitVisible(chromedp.CSS(stats)))
	if got := providers("text.stats"); !slices.Contains(got, idB) || !slices.Contains(got, idC) {
		t.Fatalf("providers of text.stats %v, want %s and %s", got, idB, idC)
	}
	if got := eval(`Array.from(document.querySelectorAll('[data-skill]')).map(e => e.dataset.skill)`); len(got) < 2 {
		t.Fatalf("skills before the search: %v", got)
	}
	// The results page is told from the page before by its "Clear the
	// search" link: the skill sections are on both, so waiting for one
	// could read the page before, or none while the browser navigates.
	step("search for text.stats", chromedp.SetValue(chromedp.CSS(`#cm-q`), "text.stats"),
		click(`form.ct-search button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`form.ct-search .ct-actions a`)), chromedp.WaitVisible(chromedp.CSS(stats)))
	if got := eval(`Array.from(document.querySelectorAll('[data-skill]')).map(e => e.dataset.skill)`); !slices.Equal(got, []string{"text.stats"}) {
		t.Fatalf("skills found for q=text.stats: %v", got)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "q=text.stats") {
		t.Fatalf("the search is not in the URL: %s", loc)
	}
	step("search for a skill nobody offers", chromedp.Navigate(base+"/community?skill=no.such.skill"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=no-skills]`)))
	if got := eval(`Array.from(document.querySelectorAll('[data-skill]')).map(e => e.dataset.skill)`); len(got) != 0 {
		t.Fatalf("skills found for skill=no.such.skill: %v", got)
	}

	// The delegation graph has the edges A → B and A → C.
	step("open the community page again", chromedp.Navigate(base+"/community"), chromedp.WaitVisible(chromedp.CSS(`svg#delegations`)))
	edges := eval(`Array.from(document.querySelectorAll('svg#delegations [data-from]')).map(e => e.dataset.from + ">" + e.dataset.to)`)
	if !slices.Contains(edges, idA+">"+idB) || !slices.Contains(edges, idA+">"+idC) {
		t.Fatalf("delegation edges %v", edges)
	}
	if label := eval(`[document.querySelector('svg#delegations').getAttribute('aria-label')]`); !strings.Contains(label[0], "this node to") {
		t.Fatalf("graph label %q", label)
	}
	screenshot(t, ctx, shots, "community.png")

	// Trust: B is in the reputation table.
	step("open the trust page", chromedp.Navigate(base+"/trust"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=rep-personal] [data-peer="`+idB+`"]`)))

	// A bad peer ID: the API's sentence at the field.
	step("trust a bad peer ID", chromedp.SetValue(chromedp.CSS(`#tr-peer`), "not-a-peer"),
		click(`form.tr-add button[type=submit]`), chromedp.WaitVisible(chromedp.CSS(`#tr-peer-err`)))
	if msg := text(t, ctx, `#tr-peer-err`); !strings.Contains(msg, `"not-a-peer" is not a peer ID`) {
		t.Fatalf("error at the peer field: %q", msg)
	}
	// Trusting B through the form.
	step("trust B", chromedp.SetValue(chromedp.CSS(`#tr-peer`), idB),
		click(`form.tr-add button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=trusted] [data-peer="`+idB+`"]`)))
	var trusted []api.TrustedPeer
	runJSON(t, &trusted, "trust", "list", "--repo", a.dir)
	if len(trusted) != 1 || trusted[0].PeerID != idB {
		t.Fatalf("agora trust list: %+v", trusted)
	}

	// Attest pass on B's builtin agent: a bad predicate first, shown at its
	// field with what was typed kept; then a good one.
	subject := "agent:" + idB + "/builtin"
	row := `[data-testid=attestations] tr[data-subject="` + subject + `"]`
	step("attest with a bad predicate", chromedp.SetValue(chromedp.CSS(`#at-type`), "agent"),
		chromedp.SetValue(chromedp.CSS(`#at-id`), idB+"/builtin"), chromedp.SetValue(chromedp.CSS(`#at-pred`), "manual check"),
		chromedp.SetValue(chromedp.CSS(`#at-verdict`), "pass"), chromedp.SetValue(chromedp.CSS(`#at-ev`), "checked by hand in the dashboard test"),
		click(`form.tr-attest button[type=submit]`), chromedp.WaitVisible(chromedp.CSS(`#at-pred-err`)))
	if msg := text(t, ctx, `#at-pred-err`); !strings.Contains(msg, "predicate") {
		t.Fatalf("error at the predicate field: %q", msg)
	}
	step("attest", chromedp.SetValue(chromedp.CSS(`#at-pred`), "agora:audit/manual/v1"),
		click(`form.tr-attest button[type=submit]`),
		chromedp.WaitVisible(chromedp.CSS(row+` [data-testid=revoke]`)))
	if got := text(t, ctx, row); !strings.Contains(got, "agora:audit/manual/v1") || !strings.Contains(got, "pass") || !strings.Contains(got, "this node") {
		t.Fatalf("the attestation's row: %q", got)
	}
	attCID, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(row), "data-cid"))
	if err != nil || attCID.Value == "" {
		t.Fatalf("the attestation's CID: %+v %v", attCID, err)
	}
	screenshot(t, ctx, shots, "trust.png")

	// Revoke it with its button.
	step("revoke", click(row+` [data-testid=revoke]`),
		chromedp.WaitVisible(chromedp.CSS(row+` [data-testid=revoked]`)))
	var revs []api.RecordView
	runJSON(t, &revs, "records", "--kind", "revocation", "--repo", a.dir)
	if len(revs) != 1 || revs[0].Author != idA || revs[0].Body["target"] != attCID.Value {
		t.Fatalf("revocations on A: %+v (want one of %s)", revs, attCID.Value)
	}

	// A form without the session's CSRF token is refused and changes nothing.
	session := sessionCookie(t, ctx)
	req, _ := http.NewRequest(http.MethodPost, base+"/trust/peers", strings.NewReader(url.Values{"peer": {idC}, "csrf": {"wrong"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(page), "security token") {
		t.Fatalf("trusting without the CSRF token: %d %s", resp.StatusCode, page)
	}
	runJSON(t, &trusted, "trust", "list", "--repo", a.dir)
	if len(trusted) != 1 {
		t.Fatalf("a refused form changed the trusted peers: %+v", trusted)
	}
}
