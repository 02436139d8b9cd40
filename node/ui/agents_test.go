package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/agora-p2p/agora/node/api"
)

const statsSchema = `{"type":"object","properties":{"text":{"type":"string","description":"the text to count"}},"required":["text"],"additionalProperties":false}`

// schemaControls sums up a form: name:control:type[:required], in order.
func schemaControls(fs []schemaField) []string {
	var out []string
	for _, f := range fs {
		s := f.Name + ":" + f.Control + ":" + f.Type
		if f.Required {
			s += ":required"
		}
		out = append(out, s)
	}
	return out
}

func TestSchemaForm(t *testing.T) {
	for _, c := range []struct {
		name, schema string
		want         []string
		bad          bool
	}{
		{"text.stats", statsSchema, []string{"text:textarea:string:required"}, false},
		{"every kind, in the schema's order",
			`{"type":"object","required":["b","n"],"properties":{
			  "s":{"type":"string","maxLength":80},"b":{"type":"boolean"},"n":{"type":"number"},"i":{"type":["integer","null"]},
			  "e":{"enum":["fast","slow",3]},"o":{"type":"object","properties":{"x":{"type":"string"}}},"a":{"type":"array"},
			  "any":{},"two":{"type":["string","number"]},"f":false}}`,
			[]string{"s:text:string", "b:checkbox:boolean:required", "n:number:number:required", "i:number:integer",
				"e:select:", "o:json:object", "a:json:array", "any:json:", "two:json:", "f:json:"}, false},
		{"no schema", ``, []string{":json:"}, false},
		{"any object", `{}`, []string{":json:"}, false},
		{"true", `true`, []string{":json:"}, false},
		{"a string input", `{"type":"string"}`, []string{":json:"}, false},
		{"no properties", `{"type":"object","properties":{}}`, []string{":json:"}, false},
		{"not JSON", `{"type":`, []string{":json:"}, true},
		{"not an object", `["type"]`, []string{":json:"}, true},
		{"properties not an object", `{"properties":[1]}`, []string{":json:"}, true},
		{"required not a list", `{"properties":{"x":{"type":"string"}},"required":"x"}`, []string{":json:"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, err := schemaForm(json.RawMessage(c.schema))
			if (err != nil) != c.bad {
				t.Fatalf("err = %v, want bad = %v", err, c.bad)
			}
			if got := schemaControls(fs); strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("fields %q, want %q", got, c.want)
			}
			ids := map[string]bool{}
			for _, f := range fs {
				if f.ID == "" || ids[f.ID] {
					t.Fatalf("field %q has id %q (unique, not empty)", f.Name, f.ID)
				}
				ids[f.ID] = true
			}
		})
	}
}

func TestSchemaFormDetails(t *testing.T) {
	fs, err := schemaForm(json.RawMessage(`{"type":"object","properties":{
	  "words":{"type":"integer","minimum":5,"maximum":100,"default":20},
	  "mode":{"enum":["fast","slow"],"default":"slow","description":"how"},
	  "on":{"type":"boolean","default":true},
	  "opts":{"type":"object","default":{"a":1}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	w, m, on, o := fs[0], fs[1], fs[2], fs[3]
	if w.Step != "1" || w.Min != "5" || w.Max != "100" || w.Value != "20" {
		t.Fatalf("integer field %+v", w)
	}
	if len(m.Options) != 2 || m.Options[1] != (schemaOption{`"slow"`, "slow"}) || m.Value != `"slow"` || m.Description != "how" {
		t.Fatalf("enum field %+v", m)
	}
	if !on.Checked || o.Value != "{\n  \"a\": 1\n}" || o.Placeholder != "{}" {
		t.Fatalf("boolean %+v, object %+v", on, o)
	}
	if d := m.DescribedBy(); d != "in-1-hint" {
		t.Fatalf("describedby %q", d)
	}
}

func TestSchemaFormInput(t *testing.T) {
	fs, err := schemaForm(json.RawMessage(`{"type":"object","required":["text","title"],"properties":{
	  "text":{"type":"string"},"title":{"type":"string"},"note":{"type":"string"},"n":{"type":"number"},"i":{"type":"integer"},
	  "b":{"type":"boolean"},"e":{"enum":["x",2]},"o":{"type":"object"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	in, out, ok := schemaFormInput(fs, url.Values{"in.text": {"a\r\nb"}, "in.title": {""}, "in.n": {" 2.5 "}, "in.i": {"-3"},
		"in.e": {"2"}, "in.o": {"{ \"k\": [1, 2] }"}})
	if !ok {
		t.Fatalf("not ok: %+v", out)
	}
	if want := `{"text":"a\nb","title":"","n":2.5,"i":-3,"b":false,"e":2,"o":{"k":[1,2]}}`; string(in) != want {
		t.Fatalf("input %s, want %s", in, want)
	}
	if out[0].Value != "a\nb" || out[4].Value != "-3" {
		t.Fatalf("the fields do not show what was sent: %+v", out)
	}

	// Fields that cannot be read say so, the first takes the focus, and
	// nothing is sent.
	in, out, ok = schemaFormInput(fs, url.Values{"in.n": {"NaN"}, "in.i": {"1.5"}, "in.e": {`"y"`}, "in.o": {"{nope"}, "in.b": {"on"}})
	if ok || in != nil {
		t.Fatalf("bad input accepted: %s", in)
	}
	errs := map[string]string{}
	for _, f := range out {
		if f.Error != "" {
			errs[f.Name] = f.Error
		}
	}
	if len(errs) != 4 || !strings.Contains(errs["n"], "number") || !strings.Contains(errs["i"], "whole") ||
		!strings.Contains(errs["e"], "listed") || !strings.HasPrefix(errs["o"], "This is not JSON") {
		t.Fatalf("errors %q", errs)
	}
	if !out[3].Focus || out[4].Focus || !out[5].Checked || out[7].Value != "{nope" {
		t.Fatalf("focus, checkbox or value lost: %+v", out)
	}

	// The whole input as JSON.
	whole, _ := schemaForm(nil)
	if in, _, ok := schemaFormInput(whole, url.Values{"input": {` {"a": 1} `}}); !ok || string(in) != `{"a":1}` {
		t.Fatalf("whole input %s %v", in, ok)
	}
	if in, _, ok := schemaFormInput(whole, url.Values{}); !ok || string(in) != `{}` {
		t.Fatalf("empty whole input %s %v", in, ok)
	}
	if _, out, ok := schemaFormInput(whole, url.Values{"input": {`[`}}); ok || out[0].Error == "" {
		t.Fatalf("bad whole input accepted")
	}
}

func TestSchemaFormFill(t *testing.T) {
	schema := json.RawMessage(`{"properties":{"s":{"type":"string"},"b":{"type":"boolean","default":true},"e":{"enum":[1,"x"]},"o":{"type":"array"},"n":{"type":"number","default":4}}}`)
	fs, _ := schemaForm(schema)
	sent := json.RawMessage(`{"s":"hi","b":false,"e":"x","o":[1]}`)
	got := schemaFormFill(fs, sent)
	if got[0].Value != "hi" || got[1].Checked || got[2].Value != `"x"` || got[3].Value != "[\n  1\n]" || got[4].Value != "" {
		t.Fatalf("fields %+v", got)
	}
	// What the form shows is what it sends again.
	form := url.Values{}
	for _, f := range got {
		if f.Control == "checkbox" {
			if f.Checked {
				form.Set(f.FormName(), "on")
			}
			continue
		}
		form.Set(f.FormName(), f.Value)
	}
	if in, _, ok := schemaFormInput(fs, form); !ok || string(in) != string(sent) {
		t.Fatalf("round trip %s, want %s", in, sent)
	}
}

func TestSchemaErrorField(t *testing.T) {
	fs, _ := schemaForm(json.RawMessage(`{"properties":{"data":{},"query":{"type":"string"},"a/b":{}}}`))
	for msg, want := range map[string]int{
		"at '/query': minLength: got 0, want 1":        1,
		"at '/data/0': got string, want number":        0,
		"at '/a~1b': wrong":                            2,
		"at '': missing property 'query'":              1,
		"missing properties 'data', 'query'":           0,
		"at '': additional properties 'x' not allowed": -1,
		"the query does not parse":                     -1,
	} {
		if got := schemaErrorField(msg, fs); got != want {
			t.Errorf("%q: field %d, want %d", msg, got, want)
		}
	}
	whole, _ := schemaForm(nil)
	if schemaErrorField("anything", whole) != 0 {
		t.Error("an error about the whole input is not shown at its field")
	}
}

func TestSpecErrorLine(t *testing.T) {
	for msg, want := range map[string]int{
		`line 2: unknown field "bakend"`:                         2,
		`x.toml:12: skills[0].input_schema: invalid JSON`:        12,
		`/home/me/.agora/agents/x.toml:3: name: bad`:             3,
		`skill math.eval is already offered by agent builtin`:    0,
		`exec.command: "/nope" is not a program: a line 4: here`: 0,
	} {
		if got := specErrorLine(msg); got != want {
			t.Errorf("%q: line %d, want %d", msg, got, want)
		}
	}
}

// Fakes of the node for the handlers: only what the agents pages call.

type agentsFakeBackend struct{ api.Backend }

func (agentsFakeBackend) Identity() api.Identity { return api.Identity{PeerID: "12D3KooWSelf"} }
func (agentsFakeBackend) Communities(context.Context) []api.Community {
	return []api.Community{{ID: "bafyc", Name: "garden"}}
}

type agentsFakeWork struct {
	api.Work
	agents []api.Agent
	tasks  map[string]api.Task
	added  []string
}

func (f *agentsFakeWork) Agents(context.Context) []api.Agent { return f.agents }
func (f *agentsFakeWork) EnableAgent(_ context.Context, name string, on bool) (api.Agent, error) {
	for i := range f.agents {
		if f.agents[i].Name == name {
			f.agents[i].Enabled = on
			return f.agents[i], nil
		}
	}
	return api.Agent{}, &api.Error{Code: http.StatusNotFound, Message: "there is no agent " + name}
}
func (f *agentsFakeWork) AddAgent(_ context.Context, req api.AddAgentRequest) (api.Agent, error) {
	if strings.Contains(req.TOML, "bakend") {
		return api.Agent{}, &api.Error{Code: http.StatusBadRequest, Message: `line 2: unknown field "bakend"`}
	}
	f.added = append(f.added, req.TOML)
	f.agents = append(f.agents, api.Agent{Name: "echo", Backend: "exec", Enabled: true})
	return f.agents[len(f.agents)-1], nil
}
func (f *agentsFakeWork) Skills(context.Context, string, string) ([]api.SkillOffer, error) {
	return []api.SkillOffer{{Skill: "far.away", Description: "remote", Providers: []api.Provider{{PeerID: "12D3KooWOther"}}}}, nil
}
func (f *agentsFakeWork) SubmitTask(_ context.Context, req api.TaskRequest) (api.Task, error) {
	var in struct{ Text string }
	json.Unmarshal(req.Input, &in)
	t := api.Task{ID: "t1", Skill: req.Skill, Status: "completed", Executor: "12D3KooWSelf", Agent: "builtin", Input: req.Input,
		Output: json.RawMessage(`{"words":2}`)}
	if in.Text == "" {
		t.Status, t.Code, t.Error, t.Output = "failed", "invalid-input", "at '/text': minLength: got 0, want 1", nil
	}
	f.tasks[t.ID] = t
	return t, nil
}
func (f *agentsFakeWork) Task(_ context.Context, id string) (api.Task, error) {
	if t, ok := f.tasks[id]; ok {
		return t, nil
	}
	return api.Task{}, &api.Error{Code: http.StatusNotFound, Message: "there is no task " + id}
}

// agentsBrowser logs in and keeps the session cookie.
type agentsBrowser struct {
	t    *testing.T
	s    *Server
	c    *http.Cookie
	csrf string
}

func agentsLogin(t *testing.T, s *Server) *agentsBrowser {
	code, _ := s.LoginCode()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/ui/login?code="+url.QueryEscape(code), nil))
	c := w.Result().Cookies()[0]
	return &agentsBrowser{t: t, s: s, c: c, csrf: s.sessions[c.Value].csrf}
}

func (b *agentsBrowser) do(method, path string, form url.Values) (int, string, string) {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.AddCookie(b.c)
	w := httptest.NewRecorder()
	b.s.ServeHTTP(w, r)
	return w.Code, w.Body.String(), w.Header().Get("Location")
}

func TestAgentsPages(t *testing.T) {
	schema := json.RawMessage(statsSchema)
	work := &agentsFakeWork{tasks: map[string]api.Task{}, agents: []api.Agent{{Name: "builtin", Backend: "builtin", Enabled: true, Shared: true,
		Skills: []api.Skill{{ID: "text.stats", Description: "Counts <words>", InputSchema: schema}}}}}
	s, err := New(Config{Backend: agentsFakeBackend{}, Work: work})
	if err != nil {
		t.Fatal(err)
	}
	b := agentsLogin(t, s)
	must := func(code int, body string, wantCode int, wants ...string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("status %d, want %d:\n%s", code, wantCode, body)
		}
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Fatalf("page lacks %q:\n%s", w, body)
			}
		}
	}

	code, body, _ := b.do("GET", "/agents", nil)
	must(code, body, 200, `data-agent="builtin"`, "community: every community of this node", `href="/agents/try?skill=text.stats"`, ">Disable<")

	// A form without the token changes nothing.
	code, body, _ = b.do("POST", "/agents/builtin/disable", url.Values{"csrf": {"nope"}})
	must(code, body, http.StatusForbidden, "security token")
	if !work.agents[0].Enabled {
		t.Fatal("disabled without the CSRF token")
	}
	code, _, loc := b.do("POST", "/agents/builtin/disable", url.Values{"csrf": {b.csrf}})
	if code != http.StatusSeeOther || loc != "/agents?done=disabled&agent=builtin" || work.agents[0].Enabled {
		t.Fatalf("disable: %d %q %v", code, loc, work.agents[0].Enabled)
	}
	code, body, _ = b.do("GET", loc, nil)
	must(code, body, 200, "Agent builtin is disabled", ">Enable<")
	code, body, _ = b.do("POST", "/agents/nobody/enable", url.Values{"csrf": {b.csrf}})
	must(code, body, http.StatusNotFound, "There is no agent &#34;nobody&#34;")
	// A notice is only ever about an agent that exists.
	code, body, _ = b.do("GET", "/agents?done=added&agent=%3Cscript%3E", nil)
	must(code, body, 200)
	if strings.Contains(body, "Added agent") {
		t.Fatal("a notice about an agent that does not exist")
	}

	// Every template renders; a typo is shown at the field with its line.
	for _, tpl := range agentTemplates {
		code, body, _ = b.do("GET", "/agents/new?template="+tpl.Key, nil)
		must(code, body, 200, `<option value="`+tpl.Key+`" selected>`, "backend = &#34;"+tpl.Key+"&#34;")
	}
	code, body, _ = b.do("GET", "/agents/new?template=cobol", nil)
	must(code, body, http.StatusNotFound, "exec, openai, mcp, workflow, builtin")
	typo := strings.Replace(agentTemplates[0].Text, "backend =", "bakend =", 1)
	code, body, _ = b.do("POST", "/agents/new", url.Values{"csrf": {b.csrf}, "toml": {typo}, "template": {"exec"}})
	must(code, body, http.StatusUnprocessableEntity, "line 2: unknown field &#34;bakend&#34;", `aria-invalid="true" autofocus`, "mistake on line 2")
	if len(work.added) != 0 {
		t.Fatal("an agent with a typo was added")
	}
	code, body, _ = b.do("POST", "/agents/new", url.Values{"csrf": {b.csrf}, "toml": {"  "}})
	must(code, body, http.StatusUnprocessableEntity, "Write the agent file here")
	code, _, loc = b.do("POST", "/agents/new", url.Values{"csrf": {b.csrf}, "toml": {agentTemplates[0].Text}})
	if code != http.StatusSeeOther || loc != "/agents?done=added&agent=echo" {
		t.Fatalf("add: %d %q", code, loc)
	}

	// Trying a skill: the list, the form, a run, a validation error.
	code, body, _ = b.do("GET", "/agents/try", nil)
	must(code, body, 200, "text.stats", "far.away", "1 member of your communities")
	code, body, _ = b.do("GET", "/agents/try?skill=text.stats", nil)
	must(code, body, 200, `name="in.text"`, `aria-required="true"`, "Counts &lt;words&gt;", "the text to count")
	code, body, _ = b.do("GET", "/agents/try?skill=no.such", nil)
	must(code, body, http.StatusNotFound, "There is no skill")
	code, _, loc = b.do("POST", "/agents/try", url.Values{"csrf": {b.csrf}, "skill": {"text.stats"}, "in.text": {"hello world"}})
	if code != http.StatusSeeOther || loc != "/agents/try?task=t1" {
		t.Fatalf("run: %d %q", code, loc)
	}
	code, body, _ = b.do("GET", loc, nil)
	must(code, body, 200, `href="/tasks/t1"`, "completed", "(this node)", "&#34;words&#34;: 2", ">hello world</textarea>")
	code, body, _ = b.do("POST", "/agents/try", url.Values{"csrf": {b.csrf}, "skill": {"text.stats"}, "in.text": {""}})
	must(code, body, http.StatusUnprocessableEntity, `id="in-0-error"`, "minLength", `aria-describedby="in-0-hint in-0-error"`)
	code, body, _ = b.do("GET", "/agents/try?task=nope", nil)
	must(code, body, http.StatusNotFound, "there is no task nope")
}

func TestAgentsWithoutWork(t *testing.T) {
	s, err := New(Config{Backend: agentsFakeBackend{}})
	if err != nil {
		t.Fatal(err)
	}
	b := agentsLogin(t, s)
	for _, p := range []string{"/agents", "/agents/new", "/agents/try"} {
		if code, body, _ := b.do("GET", p, nil); code != http.StatusServiceUnavailable || !strings.Contains(body, "does not run agents") {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
}
