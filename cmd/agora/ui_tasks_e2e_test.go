package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestDashboardTasks: the Tasks page shows a slow task on another member
// finish without being reloaded; the task's page shows its timeline and
// receipt; the owner rates it through the form and the feedback record is
// there; a bad score is refused at its field, and a rating without the CSRF
// token is refused.
func TestDashboardTasks(t *testing.T) {
	t.Parallel()
	ds, _ := community(t, "a", "b")
	a, b := ds["a"], ds["b"]
	idB := peerID(t, b)
	runJSON(t, &api.Agent{}, "agents", "add", sleeperAgent(t, t.TempDir(), filepath.Join(t.TempDir(), "pid"), 2), "--repo", b.dir)
	waitSkill(t, a, "slow.echo", idB)

	ctx := browser(t)
	shots := t.TempDir()
	link := loginLink(t, a)
	u, _ := url.Parse(link)
	base := u.Scheme + "://" + u.Host
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("%s: %v at %s\n%s\n%s", what, err, loc, html, a.output())
		}
	}

	// The first action starts the browser, which lives as long as the
	// context it ran with: ctx, not a step's.
	if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil {
		t.Fatal(err)
	}
	// The list is open and listening before the task starts.
	step("open the task list", chromedp.WaitVisible(chromedp.CSS(`[data-testid=peer-id]`)),
		chromedp.Navigate(base+"/tasks"), chromedp.WaitVisible(chromedp.CSS(`table.tasks-list`)))
	deadline := time.Now().Add(15 * time.Second)
	for text(t, ctx, `#live`) != "live" {
		if time.Now().After(deadline) {
			t.Fatalf("the page never went live: %q", text(t, ctx, `#live`))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.tasksPageMark = 42")); err != nil {
		t.Fatal(err)
	}
	sub, err := a.client.SubmitTask(context.Background(), api.TaskRequest{Skill: "slow.echo", Input: []byte(`{"n":7}`), Peer: idB, TimeoutMS: 60000})
	if err != nil {
		t.Fatal(err)
	}
	row := `tr[data-task="` + sub.ID + `"]`
	step("the task appears and completes live", chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(row+` .tasks-completed`)))
	if mark, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.tasksPageMark || 0")); err != nil || mark != 42 {
		t.Fatalf("the page was reloaded instead of updated in place (%d, %v)", mark, err)
	}
	if got := text(t, ctx, row); !strings.Contains(got, "slow.echo") || !strings.Contains(got, "requester") || !strings.Contains(got, idB[:8]) {
		t.Fatalf("row %q", got)
	}
	screenshot(t, ctx, shots, "tasks.png")

	// Selected text or a pressed pointer holds the live refresh (it would
	// drop the selection, or the press's click) until released; the
	// indicator says so.
	for i, h := range []struct{ what, hold, release string }{
		{"text is selected", `(() => {
			const r = document.createRange();
			r.selectNodeContents(document.querySelector("#main h1"));
			getSelection().removeAllRanges();
			getSelection().addRange(r);
			return getSelection().toString() !== "";
		})()`, `(getSelection().removeAllRanges(), true)`},
		{"a pointer is pressed", `document.querySelector("#main h1").dispatchEvent(new PointerEvent("pointerdown", {bubbles: true, isPrimary: true, button: 0}))`,
			`document.querySelector("#main h1").dispatchEvent(new PointerEvent("pointerup", {bubbles: true}))`},
	} {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.querySelector("#main h1").dataset.mark = "before", true) && `+h.hold)); err != nil || !ok {
			t.Fatalf("%s: %v", h.what, err)
		}
		next, err := a.client.SubmitTask(context.Background(), api.TaskRequest{Skill: "slow.echo", Input: []byte(fmt.Sprintf(`{"n":%d}`, 8+i)), Peer: idB, TimeoutMS: 60000})
		if err != nil {
			t.Fatal(err)
		}
		nextRow := `tr[data-task="` + next.ID + `"]`
		for deadline := time.Now().Add(15 * time.Second); text(t, ctx, `#live`) != "paused while you select"; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the live refresh did not wait: %q", h.what, text(t, ctx, `#live`))
			}
			time.Sleep(50 * time.Millisecond)
		}
		held, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("#main h1").dataset.mark || "") + "|" + !!document.querySelector('`+nextRow+`')`))
		if err != nil || held != "before|false" {
			t.Fatalf("%s: the page changed meanwhile (%q, %v)", h.what, held, err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](h.release)); err != nil {
			t.Fatal(err)
		}
		step("the refresh once "+h.what+" no more", chromedp.WaitVisible(chromedp.CSS(nextRow)))
		if got := text(t, ctx, `#live`); got != "live" {
			t.Fatalf("%s: the indicator after the refresh: %q", h.what, got)
		}
		// The task's automatic feedback is filed before the feedback
		// records are counted below.
		a.waitFor(t, "the task's feedback", func() bool {
			rs, err := a.client.Records(context.Background(), api.RecordQuery{Kind: "feedback"})
			return err == nil && slices.ContainsFunc(rs, func(r api.RecordView) bool {
				rc, _ := r.Body["receipt"].(map[string]any)
				return rc["task_id"] == next.ID
			})
		})
	}

	// The task's page: timeline, receipt, output.
	done, err := a.client.Task(context.Background(), sub.ID)
	if err != nil || done.Receipt == nil {
		t.Fatalf("task %+v %v", done, err)
	}
	step("open the task", click(row+` a`), chromedp.WaitVisible(chromedp.CSS(`[data-testid=receipt-cid]`)))
	if got := text(t, ctx, `[data-testid=receipt-cid]`); got != done.Receipt.CID {
		t.Fatalf("receipt %q, want %q", got, done.Receipt.CID)
	}
	if got := text(t, ctx, `[data-testid=receipt]`); !strings.Contains(got, idB) || !strings.Contains(got, "signature verified") || !strings.Contains(got, done.Receipt.OutputHash) {
		t.Fatalf("receipt %q", got)
	}
	marks, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll(`[data-testid=timeline] svg .tl-mark`)))
	if err != nil || len(marks) != len(done.Events) || len(marks) < 3 {
		t.Fatalf("timeline marks %d, events %d (%v)", len(marks), len(done.Events), err)
	}
	if got := text(t, ctx, `table.tasks-events`); !strings.Contains(got, "accepted") || !strings.Contains(got, "completed") {
		t.Fatalf("events %q", got)
	}
	if got := text(t, ctx, `[data-testid=output]`); !strings.Contains(got, `"n": 7`) {
		t.Fatalf("output %q", got)
	}
	// Readable on a phone: nothing wider than the screen.
	step("narrow", chromedp.EmulateViewport(390, 844))
	if fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("document.documentElement.scrollWidth <= window.innerWidth")); err != nil || !fits {
		t.Errorf("the task page is wider than 390 px (%v)", err)
	}
	step("wide", chromedp.EmulateViewport(1280, 900))

	// Rate it through the form (typing in the form holds live updates off).
	step("rate", chromedp.SendKeys(chromedp.CSS(`#comment`), "quick and right"),
		chromedp.SetValue(chromedp.CSS(`#score`), "800"),
		click(`.tasks-rate button`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=rated]`)))
	cid := text(t, ctx, `[data-testid=rated] code`)
	var recs []api.RecordView
	runJSON(t, &recs, "records", "--kind", "feedback", "--repo", a.dir)
	found := false
	for _, r := range recs {
		rc, _ := r.Body["receipt"].(map[string]any)
		if r.CID == cid && r.Body["score"] == float64(800) && r.Body["comment"] == "quick and right" && rc["task_id"] == sub.ID {
			found = true
		}
	}
	if !found {
		t.Fatalf("no feedback record %s with score 800 among %+v", cid, recs)
	}
	screenshot(t, ctx, shots, "tasks-detail.png")

	// Posted by hand: a score out of range is refused at its field; without
	// the CSRF token nothing is rated.
	csrf, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`.tasks-rate input[name=csrf]`), "value"))
	if err != nil || csrf.Value == "" {
		t.Fatalf("csrf field: %v", err)
	}
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	post := func(form url.Values) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/tasks/"+sub.ID+"/rate", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies.Cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		page, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(page)
	}
	if code, page := post(url.Values{"csrf": {csrf.Value}, "score": {"1500"}}); code != http.StatusBadRequest ||
		!strings.Contains(page, `id="score-err" class="tasks-field-error" role="alert">score must be between 0 and 1000`) {
		t.Fatalf("score 1500: %d\n%s", code, page)
	}
	if code, page := post(url.Values{"csrf": {"forged"}, "score": {"0"}}); code != http.StatusForbidden || !strings.Contains(page, "security token") {
		t.Fatalf("rating without the CSRF token: %d\n%s", code, page)
	}
	var after []api.RecordView
	runJSON(t, &after, "records", "--kind", "feedback", "--repo", a.dir)
	if len(after) != len(recs) {
		t.Fatalf("refused ratings filed records: %d then %d", len(recs), len(after))
	}
}
