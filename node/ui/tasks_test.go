package ui

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

func TestTaskDuration(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want string
	}{{-5, "0 ms"}, {0, "0 ms"}, {850, "850 ms"}, {1000, "1.0 s"}, {2140, "2.1 s"}, {59_949, "59.9 s"}, {184_400, "3m4s"}, {3_600_000, "1h0m0s"}} {
		if got := taskDuration(c.ms); got != c.want {
			t.Errorf("taskDuration(%d) = %q, want %q", c.ms, got, c.want)
		}
	}
}

func TestTaskScore(t *testing.T) {
	for _, c := range []struct {
		name             string
		num, slider, was string
		want             int64
		wantErr          string
	}{
		{"number typed", "800", "500", "500", 800, ""},
		{"slider moved", "500", "730", "500", 730, ""},
		{"both moved: the number wins", "20", "730", "500", 20, ""},
		{"nothing moved", "500", "500", "500", 500, ""},
		{"number emptied, slider moved", "", "300", "500", 300, ""},
		{"no slider (a script-free client)", "1000", "", "", 1000, ""},
		{"edges", "0", "", "", 0, ""},
		{"too high", "1001", "500", "500", 1001, taskScoreRange},
		{"negative", "-1", "", "", -1, taskScoreRange},
		{"not a number", "lots", "500", "500", 0, taskScoreNumber},
		{"a fraction", "0.5", "", "", 0, taskScoreNumber},
		{"empty", "", "", "", 0, taskScoreNumber},
	} {
		got, bad := taskScore(url.Values{"score": {c.num}, "score_range": {c.slider}, "score_was": {c.was}})
		if bad != c.wantErr || (bad == "" && got != c.want) {
			t.Errorf("%s: taskScore = %d %q, want %d %q", c.name, got, bad, c.want, c.wantErr)
		}
	}
}

func TestTaskJSON(t *testing.T) {
	if got := taskJSON(json.RawMessage(`{"a":1,"b":[2,3]}`)); got != "{\n  \"a\": 1,\n  \"b\": [\n    2,\n    3\n  ]\n}" {
		t.Errorf("pretty JSON %q", got)
	}
	if got := taskJSON(nil); got != "" {
		t.Errorf("no JSON: %q", got)
	}
	if got := taskJSON(json.RawMessage(`{broken`)); got != "{broken" {
		t.Errorf("broken JSON is shown as it is: %q", got)
	}
}

// svgMarks parses a timeline as XML (it must be well-formed) and returns
// the x of each mark's circle, its class and its title.
func svgMarks(t *testing.T, svg string) (xs []float64, classes, titles []string, label string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	var class string
	inMark, inTitle := false, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("timeline is not well-formed: %v\n%s", err, svg)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			attr := map[string]string{}
			for _, a := range e.Attr {
				attr[a.Name.Local] = a.Value
			}
			switch e.Name.Local {
			case "svg":
				label = attr["aria-label"]
				if attr["role"] != "img" {
					t.Errorf("svg role %q", attr["role"])
				}
			case "g":
				inMark, class = true, attr["class"]
			case "circle":
				x, _ := strconv.ParseFloat(attr["cx"], 64)
				xs, classes = append(xs, x), append(classes, class)
			case "title":
				inTitle = inMark
			}
		case xml.CharData:
			if inTitle {
				titles = append(titles, string(e))
			}
		case xml.EndElement:
			switch e.Name.Local {
			case "g":
				inMark = false
			case "title":
				inTitle = false
			}
		}
	}
	return xs, classes, titles, label
}

func TestTaskTimeline(t *testing.T) {
	tk := api.Task{ID: "t1", Status: "completed", Created: 1000, Updated: 3000, Events: []api.TaskEvent{
		{Seq: 1, Time: 1000, Type: "submitted"},
		{Seq: 2, Time: 1500, Type: "accepted", Peer: "12D3KooB"},
		{Seq: 3, Time: 2000, Type: "progress", Message: `half <done> & "well"`},
		{Seq: 4, Time: 3000, Type: "completed"},
	}}
	svg := string(taskTimeline(tk, 99_999))
	xs, classes, titles, label := svgMarks(t, svg)
	want := []float64{tlPad, tlPad + 0.25*(tlWidth-2*tlPad), tlPad + 0.5*(tlWidth-2*tlPad), tlWidth - tlPad}
	if len(xs) != len(want) {
		t.Fatalf("%d marks, want %d:\n%s", len(xs), len(want), svg)
	}
	for i := range want {
		if diff := xs[i] - want[i]; diff > 0.1 || diff < -0.1 {
			t.Errorf("mark %d at x=%.1f, want %.1f", i, xs[i], want[i])
		}
	}
	if strings.Join(classes, ",") != "tl-mark tl-info,tl-mark tl-good,tl-mark tl-info,tl-mark tl-good" {
		t.Errorf("classes %v", classes)
	}
	if titles[1] != "+500 ms accepted 12D3KooB" || titles[2] != `+1.0 s progress: half <done> & "well"` {
		t.Errorf("titles %q", titles)
	}
	if strings.Contains(svg, "<done>") {
		t.Errorf("an event message reaches the SVG unescaped:\n%s", svg)
	}
	if label != "Timeline of task t1: 4 events over 2.0 s, from submitted to completed" {
		t.Errorf("label %q", label)
	}
	if !strings.Contains(svg, `<rect class="tl-work" x="156.0" y="26" width="432.0"`) {
		t.Errorf("the executor's stretch (accepted to completed) is not drawn:\n%s", svg)
	}

	// A running task stretches to now and says so.
	tk.Status, tk.Events = "working", tk.Events[:2]
	svg = string(taskTimeline(tk, 5000))
	xs, _, _, label = svgMarks(t, svg)
	if !strings.Contains(svg, `<rect class="tl-work" x="84.0" y="26" width="504.0"`) || !strings.HasSuffix(label, "still running") || !strings.Contains(label, "4.0 s") {
		t.Errorf("running task: %s", svg)
	}
	if diff := xs[1] - (tlPad + 0.125*(tlWidth-2*tlPad)); diff > 0.1 || diff < -0.1 {
		t.Errorf("running task's mark at %.1f", xs[1])
	}

	// No events, or all at once: a bar without NaNs.
	for _, tk := range []api.Task{
		{ID: "t2", Status: "failed", Created: 1000, Updated: 1000},
		{ID: "t3", Status: "failed", Created: 1000, Updated: 1000, Events: []api.TaskEvent{{Time: 1000, Type: "submitted"}, {Time: 1000, Type: "failed"}}},
		{ID: "t4"},
	} {
		svg := string(taskTimeline(tk, 2000))
		if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
			t.Errorf("%s: %s", tk.ID, svg)
		}
		xs, _, _, _ := svgMarks(t, svg)
		for _, x := range xs {
			if x != tlPad {
				t.Errorf("%s: mark at %.1f", tk.ID, x)
			}
		}
	}
}

// The fakes below stand for the node behind the pages.

type tasksFakeBackend struct {
	api.Backend
	records []api.RecordView
}

func (tasksFakeBackend) Identity() api.Identity { return api.Identity{PeerID: "12D3Self"} }

func (b *tasksFakeBackend) Records(_ context.Context, q api.RecordQuery) ([]api.RecordView, error) {
	if q.Kind != "feedback" || q.Author != "12D3Self" {
		return nil, errors.New("unexpected query")
	}
	return b.records, nil
}

type tasksFakeWork struct {
	api.Work
	tasks    map[string]api.Task
	canceled []string
}

func (w *tasksFakeWork) Tasks(context.Context, int) ([]api.Task, error) {
	return []api.Task{w.tasks["done"], w.tasks["run"]}, nil
}

func (w *tasksFakeWork) Task(_ context.Context, id string) (api.Task, error) {
	t, ok := w.tasks[id]
	if !ok {
		return t, &api.Error{Code: http.StatusNotFound, Message: "there is no task \"" + id + "\" on this node; `agora tasks` lists them"}
	}
	return t, nil
}

func (w *tasksFakeWork) CancelTask(_ context.Context, id string) (api.Task, error) {
	if id != "run" {
		return api.Task{}, &api.Error{Code: http.StatusConflict, Message: "the task has already ended"}
	}
	w.canceled = append(w.canceled, id)
	return w.tasks[id], nil
}

type tasksFakeTrust struct {
	api.Trust
	b *tasksFakeBackend
}

func (tr tasksFakeTrust) Rate(_ context.Context, id string, req api.RateRequest) (api.Rated, error) {
	if id != "done" {
		return api.Rated{}, &api.Error{Code: http.StatusConflict, Message: "task " + id + " has no receipt (status working): only a task another member ran and signed for can be rated."}
	}
	if req.Comment == "too long" {
		return api.Rated{}, &api.Error{Code: http.StatusBadRequest, Message: "the feedback comment is too long."}
	}
	cid := "bafyfeedback" + strconv.Itoa(len(tr.b.records))
	tr.b.records = append(tr.b.records, api.RecordView{CID: cid, Kind: "feedback", Created: int64(1000 + len(tr.b.records)),
		Body: map[string]any{"score": float64(req.Score), "comment": req.Comment, "receipt": map[string]any{"task_id": id}}})
	return api.Rated{CID: cid, Task: id, Score: req.Score}, nil
}

// tasksServer is a dashboard on the fakes with a logged-in session: its
// cookie and CSRF token.
func tasksServer(t *testing.T) (*Server, *tasksFakeWork, *tasksFakeBackend, *http.Cookie, string) {
	t.Helper()
	now := time.UnixMilli(10_000)
	w := &tasksFakeWork{tasks: map[string]api.Task{
		"done": {ID: "done", Status: "completed", Role: "requester", Skill: "text.stats", Executor: "12D3Other", Agent: "builtin",
			Created: 1000, Updated: 3000, DurationMS: 2000, Input: json.RawMessage(`{"text":"<b>hi</b>"}`), Output: json.RawMessage(`{"words":1}`),
			Receipt: &api.Receipt{CID: "bafyreceipt", Executor: "12D3Other", Agent: "builtin", Skill: "text.stats", Status: "completed",
				InputHash: "QmIn", OutputHash: "QmOut", Verified: true},
			Events:   []api.TaskEvent{{Seq: 1, Time: 1000, Type: "submitted"}, {Seq: 2, Time: 3000, Type: "completed", Peer: "12D3Other"}},
			Children: []api.Task{{ID: "child", Status: "completed", Skill: "web.fetch", Executor: "12D3Other", DurationMS: 40}}},
		"child":      {ID: "child", Status: "completed", Skill: "web.fetch", Parent: "done", Children: []api.Task{{ID: "grandchild", Status: "failed", Skill: "deep"}}},
		"grandchild": {ID: "grandchild", Status: "failed", Skill: "deep", Parent: "child"},
		"run":        {ID: "run", Status: "working", Role: "requester", Skill: "slow.echo", Created: 4000, Updated: 4000},
	}}
	b := &tasksFakeBackend{}
	s, err := New(Config{Backend: b, Work: w, Trust: tasksFakeTrust{b: b}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := s.LoginCode()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/login?code="+url.QueryEscape(code), nil))
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login: %d %v", rec.Code, cookies)
	}
	return s, w, b, cookies[0], s.sessions[cookies[0].Value].csrf
}

func tasksDo(s *Server, c *http.Cookie, method, path string, form url.Values) (int, string, string) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header().Get("Location")
}

func TestTasksPages(t *testing.T) {
	s, w, b, cookie, csrf := tasksServer(t)

	code, page, _ := tasksDo(s, cookie, http.MethodGet, "/tasks", nil)
	for _, want := range []string{`data-task="done"`, `data-task="run"`, `href="/tasks/done"`, "2.0 s", "running 6.0 s", `aria-current="page"`} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("list: %d, no %q in\n%s", code, want, page)
		}
	}

	code, page, _ = tasksDo(s, cookie, http.MethodGet, "/tasks/done", nil)
	for _, want := range []string{`<svg class="tl"`, "bafyreceipt", "signature verified", "QmOut", `href="/tasks/child"`,
		`href="/tasks/grandchild"`, "&lt;b&gt;hi&lt;/b&gt;", `name="csrf" value="` + csrf + `"`, `<label for="score">`, `<label for="score-range">`, `<label for="comment">`} {
		if code != http.StatusOK || !strings.Contains(page, want) {
			t.Fatalf("detail: %d, no %q in\n%s", code, want, page)
		}
	}
	if strings.Contains(page, "Cancel this task") {
		t.Error("a completed task offers a cancel button")
	}

	code, page, _ = tasksDo(s, cookie, http.MethodGet, "/tasks/nope", nil)
	if code != http.StatusNotFound || !strings.Contains(page, "There is no task") {
		t.Fatalf("unknown task: %d\n%s", code, page)
	}

	// A rating is filed and shown with its record.
	code, _, loc := tasksDo(s, cookie, http.MethodPost, "/tasks/done/rate", url.Values{"csrf": {csrf}, "score": {"800"}, "score_range": {"1000"}, "score_was": {"1000"}, "comment": {"good & fast"}})
	if code != http.StatusSeeOther || loc != "/tasks/done?rated=bafyfeedback0#rating" {
		t.Fatalf("rate: %d %q", code, loc)
	}
	_, page, _ = tasksDo(s, cookie, http.MethodGet, strings.TrimSuffix(loc, "#rating"), nil) // browsers keep the fragment
	if !regexp.MustCompile(`data-testid="rated">[^<]*<code>bafyfeedback0</code>`).MatchString(page) || !strings.Contains(page, "good &amp; fast") ||
		!strings.Contains(page, `id="score" name="score" min="0" max="1000" step="1" value="800"`) {
		t.Fatalf("after rating:\n%s", page)
	}

	// Bad input is refused at its field with the API's sentence; nothing is filed.
	for _, c := range []struct {
		path, score, comment, errID, sentence string
		code                                  int
	}{
		{"/tasks/done/rate", "1500", "", "score-err", taskScoreRange, http.StatusBadRequest},
		{"/tasks/done/rate", "many", "", "score-err", taskScoreNumber, http.StatusBadRequest},
		{"/tasks/done/rate", "500", "too long", "comment-err", "the feedback comment is too long.", http.StatusBadRequest},
		{"/tasks/run/rate", "500", "", "score-err", "has no receipt", http.StatusConflict},
	} {
		code, page, _ := tasksDo(s, cookie, http.MethodPost, c.path, url.Values{"csrf": {csrf}, "score": {c.score}, "comment": {c.comment}})
		if code != c.code || !regexp.MustCompile(`id="`+c.errID+`" class="tasks-field-error" role="alert">[^<]*`+regexp.QuoteMeta(c.sentence)).MatchString(page) {
			t.Errorf("rate %s %q %q: %d\n%s", c.path, c.score, c.comment, code, page)
		}
	}
	if len(b.records) != 1 {
		t.Errorf("bad ratings filed records: %v", b.records)
	}

	// Without the session's CSRF token nothing happens.
	code, page, _ = tasksDo(s, cookie, http.MethodPost, "/tasks/done/rate", url.Values{"csrf": {"forged"}, "score": {"0"}})
	if code != http.StatusForbidden || !strings.Contains(page, "security token") || len(b.records) != 1 {
		t.Fatalf("rate without CSRF: %d\n%s", code, page)
	}
	code, _, _ = tasksDo(s, cookie, http.MethodPost, "/tasks/run/cancel", url.Values{})
	if code != http.StatusForbidden || len(w.canceled) != 0 {
		t.Fatalf("cancel without CSRF: %d", code)
	}

	// Cancel: a running task has the button; an ended one says why not.
	_, page, _ = tasksDo(s, cookie, http.MethodGet, "/tasks/run", nil)
	if !strings.Contains(page, `action="/tasks/run/cancel"`) || !strings.Contains(page, "still running") {
		t.Fatalf("running task page:\n%s", page)
	}
	code, _, loc = tasksDo(s, cookie, http.MethodPost, "/tasks/run/cancel", url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther || loc != "/tasks/run" || len(w.canceled) != 1 {
		t.Fatalf("cancel: %d %q %v", code, loc, w.canceled)
	}
	code, page, _ = tasksDo(s, cookie, http.MethodPost, "/tasks/done/cancel", url.Values{"csrf": {csrf}})
	if code != http.StatusConflict || !strings.Contains(page, `role="alert">the task has already ended`) {
		t.Fatalf("cancel an ended task: %d\n%s", code, page)
	}
}
