package ui

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

// The tasks pages: the node's task journal, live, and one task with its
// timeline, subtasks, receipt, rating and cancel.

func init() {
	addNav(30, "tasks", "Tasks", "/tasks")
	addRoute("GET /tasks", (*Server).tasks)
	addRoute("GET /tasks/{id}", (*Server).task)
	addRoute("POST /tasks/{id}/rate", (*Server).rateTask)
	addRoute("POST /tasks/{id}/cancel", (*Server).cancelTask)
	addStyle("tasks.css")
}

// Bounds of what the pages fetch.
const (
	taskListLimit = 200
	taskTreeDepth = 8   // as `agora task ID`
	taskTreeNodes = 200 // subtasks fetched for one page at most
	taskRatings   = 500 // feedback records searched for this task's ratings
)

// Score bounds of a rating, in thousandths (as the API's).
const (
	taskScoreMin = 0
	taskScoreMax = 1000
)

// The API's sentences for a bad score (POST /api/v1/tasks/{id}/rate).
const (
	taskScoreRange  = "score must be between 0 and 1000 (thousandths)."
	taskScoreNumber = "score must be a whole number between 0 and 1000 (thousandths)."
)

// taskRow is one task as the list and the subtask tree show it.
type taskRow struct {
	ID        string
	Status    string
	Skill     string
	Role      string
	Executor  string
	Agent     string
	Parent    string
	Created   string
	Duration  string
	Running   bool
	Subtasks  []taskRow // in the tree only
	Truncated bool      // the tree stops here (too deep or too many)
}

func taskRunning(status string) bool { return status == "submitted" || status == "working" }

func (s *Server) taskRow(t api.Task) taskRow {
	return taskRow{ID: t.ID, Status: t.Status, Skill: t.Skill, Role: t.Role, Executor: t.Executor, Agent: t.Agent,
		Parent: t.Parent, Created: taskTime(t.Created), Duration: taskElapsed(t, s.cfg.Now().UnixMilli()), Running: taskRunning(t.Status)}
}

// taskTime is a journal time as the pages print it: local, to the second.
func taskTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).Format(time.DateTime)
}

// taskDuration words a duration in milliseconds: "850 ms", "2.1 s", "3m4s".
func taskDuration(ms int64) string {
	switch {
	case ms < 0:
		return "0 ms"
	case ms < 1000:
		return fmt.Sprintf("%d ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.1f s", float64(ms)/1000)
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Second).String()
}

// taskElapsed is a task's duration, or for a running task how long it has
// been running so far (the journal fills DurationMS only at the end).
func taskElapsed(t api.Task, now int64) string {
	if taskRunning(t.Status) {
		return "running " + taskDuration(now-t.Created)
	}
	return taskDuration(t.DurationMS)
}

// tasks is the list: newest first, refreshed live by agora.js on the
// "task.updated" events.
func (s *Server) tasks(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.cfg.Work == nil {
		s.problem(w, http.StatusServiceUnavailable, "This node runs no tasks", "Its API serves no agents or tasks; check the daemon's log.")
		return
	}
	ts, err := s.cfg.Work.Tasks(r.Context(), taskListLimit)
	if err != nil {
		s.problem(w, http.StatusInternalServerError, "The tasks cannot be listed", s.apiMessage(err))
		return
	}
	rows := make([]taskRow, 0, len(ts))
	running := 0
	for _, t := range ts {
		rows = append(rows, s.taskRow(t))
		if taskRunning(t.Status) {
			running++
		}
	}
	d := struct {
		Tasks   []taskRow
		Running int
		Limit   int
	}{rows, running, taskListLimit}
	s.render(w, http.StatusOK, "tasks.html", page{Title: "Tasks", Nav: "tasks", CSRF: sess.csrf, Data: d})
}

// taskEvent is one line of a task's timeline table.
type taskEvent struct {
	api.TaskEvent
	Clock  string // 15:04:05.000
	Offset string // since the task was created
}

// taskRating is a feedback record this node filed about the task.
type taskRating struct {
	CID     string
	Score   int64
	Comment string
	Created string
	at      int64
}

// taskRateForm is the rating form's state: what was typed and what is
// wrong with it, at each field.
type taskRateForm struct {
	Score, Comment       string
	ScoreErr, CommentErr string
}

type taskPage struct {
	Task     api.Task
	Created  string
	Updated  string
	Duration string
	Running  bool
	Timeline template.HTML
	Events   []taskEvent
	Subtasks []taskRow
	Input    string
	Output   string
	Receipt  *api.Receipt
	Started  string // the receipt's
	Ended    string
	// CanRate says this node asked another member for the task and holds
	// its receipt; Ratings are its feedback records about it, newest first,
	// and Rated the one just filed.
	CanRate   bool
	Ratings   []taskRating
	Rated     string
	Form      taskRateForm
	CancelErr string
}

// task is one task's page.
func (s *Server) task(w http.ResponseWriter, r *http.Request, sess *session) {
	s.renderTask(w, r, sess, http.StatusOK, taskRateForm{}, "")
}

// renderTask renders the task page with the rating form's state and the
// cancel button's error.
func (s *Server) renderTask(w http.ResponseWriter, r *http.Request, sess *session, status int, form taskRateForm, cancelErr string) {
	t, ok := s.lookupTask(w, r)
	if !ok {
		return
	}
	now := s.cfg.Now().UnixMilli()
	d := taskPage{Task: t, Created: taskTime(t.Created), Updated: taskTime(t.Updated), Duration: taskElapsed(t, now),
		Running: taskRunning(t.Status), Timeline: taskTimeline(t, now), Input: taskJSON(t.Input), Output: taskJSON(t.Output),
		Receipt: t.Receipt, Form: form, CancelErr: cancelErr}
	for _, e := range t.Events {
		d.Events = append(d.Events, taskEvent{TaskEvent: e, Clock: time.UnixMilli(e.Time).Format("15:04:05.000"), Offset: "+" + taskDuration(e.Time-t.Created)})
	}
	budget := taskTreeNodes
	d.Subtasks = s.taskTree(r, t.Children, 0, &budget)
	if rc := t.Receipt; rc != nil {
		d.Started, d.Ended = taskTime(rc.Started), taskTime(rc.Ended)
		self := s.cfg.Backend.Identity().PeerID
		d.CanRate = s.cfg.Trust != nil && t.Role == "requester" && rc.Executor != self
		if d.CanRate {
			d.Ratings = s.taskRatings(r, t, self)
		}
	}
	if rated := r.URL.Query().Get("rated"); rated != "" {
		for _, rt := range d.Ratings {
			if rt.CID == rated {
				d.Rated = rated
			}
		}
	}
	if d.Form.Score == "" {
		d.Form.Score = "1000"
		if len(d.Ratings) > 0 {
			d.Form.Score = strconv.FormatInt(d.Ratings[0].Score, 10)
		}
	}
	s.render(w, status, "tasks-detail.html", page{Title: "Task " + t.ID, Nav: "tasks", CSRF: sess.csrf, Data: d})
}

// lookupTask reads the task named in the path, or answers the problem.
func (s *Server) lookupTask(w http.ResponseWriter, r *http.Request) (api.Task, bool) {
	if s.cfg.Work == nil {
		s.problem(w, http.StatusServiceUnavailable, "This node runs no tasks", "Its API serves no agents or tasks; check the daemon's log.")
		return api.Task{}, false
	}
	t, err := s.cfg.Work.Task(r.Context(), r.PathValue("id"))
	if err != nil {
		if e, ok := errors.AsType[*api.Error](err); ok && e.Code == http.StatusNotFound {
			s.problem(w, http.StatusNotFound, "No such task", upperFirst(e.Message)+". The Tasks page lists the tasks this node knows.")
			return api.Task{}, false
		}
		s.problem(w, http.StatusInternalServerError, "The task cannot be read", s.apiMessage(err))
		return api.Task{}, false
	}
	return t, true
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// taskTree fetches each subtask's own subtasks, as `agora task ID` does,
// within a depth and a total budget.
func (s *Server) taskTree(r *http.Request, children []api.Task, depth int, budget *int) []taskRow {
	var out []taskRow
	for _, c := range children {
		row := s.taskRow(c)
		switch {
		case *budget <= 0 || depth >= taskTreeDepth:
			row.Truncated = true
		default:
			*budget--
			if full, err := s.cfg.Work.Task(r.Context(), c.ID); err == nil && len(full.Children) > 0 {
				row.Subtasks = s.taskTree(r, full.Children, depth+1, budget)
			}
		}
		out = append(out, row)
	}
	return out
}

// taskRatings finds the feedback records this node filed about the task,
// newest first: the newest one counts.
func (s *Server) taskRatings(r *http.Request, t api.Task, self string) []taskRating {
	recs, err := s.cfg.Backend.Records(r.Context(), api.RecordQuery{Community: t.Community, Kind: "feedback", Author: self, Limit: taskRatings})
	if err != nil {
		s.log.Debug("cannot list the task's ratings", "task", t.ID, "err", err)
		return nil
	}
	var out []taskRating
	for _, rec := range recs {
		rc, _ := rec.Body["receipt"].(map[string]any)
		if rec.Revoked || rc == nil || rc["task_id"] != t.ID {
			continue
		}
		score, _ := rec.Body["score"].(float64)
		comment, _ := rec.Body["comment"].(string)
		out = append(out, taskRating{CID: rec.CID, Score: int64(score), Comment: comment, Created: taskTime(rec.Created), at: rec.Created})
	}
	// Newest first, whatever order the store keeps.
	slices.SortStableFunc(out, func(a, b taskRating) int { return cmp.Compare(b.at, a.at) })
	return out
}

// taskJSON pretty-prints a task's input or output.
func taskJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

// taskScore reads the rating form's score. The form has a slider
// (score_range) and a number field (score), which cannot follow each other
// without a script; both start at score_was, so the one the owner moved
// wins, the number field when both moved.
func taskScore(form url.Values) (int64, string) {
	num, slider, was := strings.TrimSpace(form.Get("score")), strings.TrimSpace(form.Get("score_range")), form.Get("score_was")
	v := num
	if (num == was || num == "") && slider != "" && slider != was {
		v = slider
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, taskScoreNumber
	}
	if n < taskScoreMin || n > taskScoreMax {
		return n, taskScoreRange
	}
	return n, ""
}

// rateTask files the owner's rating of a task through the node's trust
// service, then shows the task with the new feedback record.
func (s *Server) rateTask(w http.ResponseWriter, r *http.Request, sess *session) {
	id := r.PathValue("id")
	form := taskRateForm{Score: strings.TrimSpace(r.PostFormValue("score")), Comment: r.PostFormValue("comment")}
	score, bad := taskScore(r.PostForm)
	if bad == "" {
		form.Score = strconv.FormatInt(score, 10)
	}
	if bad != "" {
		form.ScoreErr = bad
		s.renderTask(w, r, sess, http.StatusBadRequest, form, "")
		return
	}
	if s.cfg.Trust == nil {
		s.problem(w, http.StatusServiceUnavailable, "This node does not rate tasks", "Its API serves no reputation; check the daemon's log.")
		return
	}
	if s.cfg.Work != nil {
		if _, ok := s.lookupTask(w, r); !ok {
			return
		}
	}
	rated, err := s.cfg.Trust.Rate(r.Context(), id, api.RateRequest{Score: score, Comment: form.Comment})
	if err != nil {
		msg := s.apiMessage(err)
		if strings.Contains(msg, "comment") {
			form.CommentErr = msg
		} else {
			form.ScoreErr = msg
		}
		s.renderTask(w, r, sess, taskErrStatus(err), form, "")
		return
	}
	http.Redirect(w, r, "/tasks/"+url.PathEscape(id)+"?rated="+url.QueryEscape(rated.CID)+"#rating", http.StatusSeeOther)
}

// cancelTask stops a running task (the executor is told), then shows it.
func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request, sess *session) {
	if _, ok := s.lookupTask(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	if _, err := s.cfg.Work.CancelTask(r.Context(), id); err != nil {
		s.renderTask(w, r, sess, taskErrStatus(err), taskRateForm{}, s.apiMessage(err))
		return
	}
	http.Redirect(w, r, "/tasks/"+url.PathEscape(id), http.StatusSeeOther)
}

// taskErrStatus is the status a page re-rendered with an error answers:
// the API's own, else 500.
func taskErrStatus(err error) int {
	if e, ok := errors.AsType[*api.Error](err); ok && e.Code >= 400 {
		return e.Code
	}
	return http.StatusInternalServerError
}

// Geometry of the timeline picture, in its viewBox units; it scales to
// the page's width.
const (
	tlWidth  = 600
	tlHeight = 64
	tlPad    = 12
	tlBarY   = 26
)

// taskTimeline draws a task's events as marks on a horizontal bar from its
// creation to its end (or now, while it runs), the executor's part of it
// filled. The picture carries a title and a label that say the same in
// words; each mark has its own title.
func taskTimeline(t api.Task, now int64) template.HTML {
	start, end := t.Created, t.Updated
	if taskRunning(t.Status) && now > end {
		end = now
	}
	for _, e := range t.Events {
		if start == 0 || e.Time < start {
			start = e.Time
		}
		if e.Time > end {
			end = e.Time
		}
	}
	if end < start {
		end = start
	}
	span := end - start
	x := func(ms int64) float64 {
		if span <= 0 {
			return tlPad
		}
		return tlPad + float64(ms-start)*float64(tlWidth-2*tlPad)/float64(span)
	}
	esc := template.HTMLEscapeString
	label := fmt.Sprintf("Timeline of task %s: %d events over %s", t.ID, len(t.Events), taskDuration(span))
	if n := len(t.Events); n > 0 {
		label += fmt.Sprintf(", from %s to %s", t.Events[0].Type, t.Events[n-1].Type)
	}
	if taskRunning(t.Status) {
		label += ", still running"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="tl" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>`, tlWidth, tlHeight, esc(label), esc(label))
	fmt.Fprintf(&b, `<rect class="tl-bar" x="%d" y="%d" width="%d" height="8" rx="4"/>`, tlPad, tlBarY, tlWidth-2*tlPad)
	// The stretch the executor worked: from its acceptance to the end.
	for _, e := range t.Events {
		if e.Type == "accepted" {
			fmt.Fprintf(&b, `<rect class="tl-work" x="%.1f" y="%d" width="%.1f" height="8" rx="4"/>`, x(e.Time), tlBarY, x(end)-x(e.Time))
			break
		}
	}
	for _, e := range t.Events {
		tip := fmt.Sprintf("+%s %s", taskDuration(e.Time-start), e.Type)
		if e.Peer != "" {
			tip += " " + e.Peer
		}
		if e.Message != "" {
			tip += ": " + e.Message
		}
		fmt.Fprintf(&b, `<g class="tl-mark tl-%s"><title>%s</title><line x1="%.1f" y1="%d" x2="%.1f" y2="%d"/><circle cx="%.1f" cy="%d" r="5"/></g>`,
			taskEventKind(e.Type), esc(tip), x(e.Time), tlBarY-10, x(e.Time), tlBarY+18, x(e.Time), tlBarY+4)
	}
	fmt.Fprintf(&b, `<text class="tl-axis" x="%d" y="%d">0 s</text><text class="tl-axis" x="%d" y="%d" text-anchor="end">%s</text></svg>`,
		tlPad, tlHeight-4, tlWidth-tlPad, tlHeight-4, esc(taskDuration(span)))
	return template.HTML(b.String()) // every text above is escaped
}

// taskEventKind sorts an event type into the marks' three colours.
func taskEventKind(typ string) string {
	switch typ {
	case "completed", "accepted":
		return "good"
	case "failed", "rejected", "canceled", "retry":
		return "bad"
	}
	return "info"
}
