package ui

// The agents page: the node's agents with their state, sharing and skills;
// enabling and disabling them; adding one from a template of each backend;
// and trying a skill through a form generated from its input schema.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agora-p2p/agora/node/api"
)

func init() {
	addNav(10, "agents", "Agents", "/agents")
	addRoute("GET /agents", (*Server).agentList)
	addRoute("POST /agents/{name}/enable", func(s *Server, w http.ResponseWriter, r *http.Request, sess *session) {
		s.agentToggle(w, r, sess, true)
	})
	addRoute("POST /agents/{name}/disable", func(s *Server, w http.ResponseWriter, r *http.Request, sess *session) {
		s.agentToggle(w, r, sess, false)
	})
	addRoute("GET /agents/new", (*Server).agentNew)
	addRoute("POST /agents/new", (*Server).agentAdd)
	addRoute("GET /agents/try", (*Server).skillTry)
	addRoute("POST /agents/try", (*Server).skillRun)
	addStyle("agents.css")
}

// tryTimeout bounds a task started from the "Try a skill" form: the page
// waits for its end.
const tryTimeout = 30 * time.Second

// agentsNoWork answers 503 on a node that runs no agents.
func (s *Server) agentsNoWork(w http.ResponseWriter) bool {
	if s.cfg.Work != nil {
		return false
	}
	s.problem(w, http.StatusServiceUnavailable, "This node does not run agents",
		"Its daemon was started without agents, so there is nothing to list or try here.")
	return true
}

// --- the list ---

// agentRow is one agent as the list shows it.
type agentRow struct {
	api.Agent
	State   string // enabled | disabled | failing
	Sharing string
	Problem string // why the last enable or disable failed
	Focus   bool
}

type agentListData struct {
	Agents []agentRow
	Notice string
}

func (s *Server) agentRows(r *http.Request) []agentRow {
	names := map[string]string{}
	for _, c := range s.cfg.Backend.Communities(r.Context()) {
		names[c.ID] = c.Name
	}
	var rows []agentRow
	for _, a := range s.cfg.Work.Agents(r.Context()) {
		row := agentRow{Agent: a, State: "enabled"}
		switch {
		case !a.Enabled:
			row.State = "disabled"
		case a.Error != "":
			row.State = "failing"
		}
		switch {
		case !a.Shared:
			row.Sharing = "private: this node only"
		case len(a.Communities) == 0:
			row.Sharing = "community: every community of this node"
		default:
			var in []string
			for _, id := range a.Communities {
				if n := names[id]; n != "" {
					in = append(in, n)
				} else {
					in = append(in, id)
				}
			}
			row.Sharing = "community: " + strings.Join(in, ", ")
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b agentRow) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

func (s *Server) agentList(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.agentsNoWork(w) {
		return
	}
	d := agentListData{Agents: s.agentRows(r)}
	// The notice after a redirect is made from fixed sentences and an agent
	// that exists, never from the query's text.
	q := r.URL.Query()
	for _, a := range d.Agents {
		if a.Name != q.Get("agent") {
			continue
		}
		switch q.Get("done") {
		case "enabled":
			d.Notice = fmt.Sprintf("Agent %s is enabled: it runs tasks and its skills are offered.", a.Name)
		case "disabled":
			d.Notice = fmt.Sprintf("Agent %s is disabled: it runs no tasks and its skills are not offered; its file stays.", a.Name)
		case "added":
			d.Notice = fmt.Sprintf("Added agent %s with %d skills.", a.Name, len(a.Skills))
		}
	}
	s.render(w, http.StatusOK, "agents.html", page{Title: "Agents", Nav: "agents", CSRF: sess.csrf, Data: d})
}

func (s *Server) agentToggle(w http.ResponseWriter, r *http.Request, sess *session, enable bool) {
	if s.agentsNoWork(w) {
		return
	}
	name := r.PathValue("name")
	_, err := s.cfg.Work.EnableAgent(r.Context(), name, enable)
	if e, ok := errors.AsType[*api.Error](err); ok && e.Code == http.StatusNotFound {
		s.problem(w, http.StatusNotFound, "There is no agent "+strconv.Quote(name),
			e.Message+" The Agents page lists this node's agents.")
		return
	}
	if err != nil {
		d := agentListData{Agents: s.agentRows(r)}
		for i := range d.Agents {
			if d.Agents[i].Name == name {
				d.Agents[i].Problem, d.Agents[i].Focus = s.apiMessage(err), true
			}
		}
		s.render(w, http.StatusUnprocessableEntity, "agents.html", page{Title: "Agents", Nav: "agents", CSRF: sess.csrf, Data: d})
		return
	}
	done := "disabled"
	if enable {
		done = "enabled"
	}
	http.Redirect(w, r, "/agents?done="+done+"&agent="+url.QueryEscape(name), http.StatusSeeOther)
}

// --- adding an agent ---

// agentTemplate is a starting point for an agent file, one per backend;
// docs/agents.md explains every field.
type agentTemplate struct {
	Key, Label, Text string
}

var agentTemplates = []agentTemplate{
	{"exec", "exec: a script or program", `# An exec agent runs a program without a shell: the task's input JSON on
# stdin, one JSON value on stdout. Replace the command with yours.
name = "echo"
description = "Returns its input unchanged"
version = "1"
backend = "exec"

[exec]
command = ["/bin/cat"]          # argv; the skill's args are appended
env = ["LANG"]                  # NAME passes the node's value; NAME=VALUE sets one

[sharing]
mode = "private"                # "community" offers it to your communities

[limits]
timeout = "20s"

[[skills]]
id = "util.echo"
description = "Returns its input"
input_schema = '{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}'
output_schema = '{"type":"object"}'
`},
	{"openai", "openai: a local or hosted LLM", `# An openai agent asks any OpenAI-compatible chat endpoint: Ollama,
# llama.cpp, vLLM, LM Studio or a hosted API.
name = "ollama"
description = "A local Llama 3.2 that summarises text"
version = "1"
backend = "openai"

[openai]
base_url = "http://127.0.0.1:11434/v1"   # Ollama's OpenAI-compatible endpoint
model = "llama3.2"
api_key_env = ""                         # the variable holding the key; empty = no key
persona = "You are a careful assistant. Be brief and factual."
temperature = 0.2
max_tokens = 512

[sharing]
mode = "private"

[limits]
concurrency = 1                          # one generation at a time on a home GPU
timeout = "120s"

[[skills]]
id = "text.summarize"
description = "Summarise a text in at most N words"
prompt = "Summarise this in at most the given number of words: {{input}}"
input_schema = '{"type":"object","properties":{"text":{"type":"string"},"words":{"type":"integer","minimum":5}},"required":["text"]}'
output_schema = '{"type":"object","properties":{"summary":{"type":"string"}},"required":["summary"]}'
`},
	{"mcp", "mcp: the tools of an MCP server", `# An mcp agent shares the tools of a Model Context Protocol server: each
# tool is a skill. Either command (stdio) or url (streamable HTTP).
name = "files"
description = "Reads files of a shared folder"
version = "1"
backend = "mcp"

[mcp]
command = ["npx", "-y", "@modelcontextprotocol/server-filesystem", "/home/me/shared"]
env = ["PATH", "HOME"]
tools = ["read_file", "list_directory"]   # share only these (empty = all)
# url = "http://127.0.0.1:8808/mcp"      # instead of command

[sharing]
mode = "private"
`},
	{"workflow", "workflow: a workflow file as one skill", `# A workflow agent runs a workflow file (docs/workflows.md) as its one
# skill. The file must already be in the node's agents directory.
name = "digest"
description = "Word counts, doubled"
version = "1"
backend = "workflow"

[workflow]
file = "digest.yaml"            # relative to the agents directory

[limits]
timeout = "300s"                # the whole workflow

[exit]
delegate = "community"          # where the steps may send their input: never | community | peers

[[skills]]
id = "text.digest"              # default: the workflow's name
description = "Counts a text's words and doubles the count"
`},
	{"builtin", "builtin: skills in the agora binary", `# A builtin agent offers skills that ship in the binary: text.stats,
# json.query, math.eval. A skill is offered by one agent only: disable
# (or edit) the builtin agent first to offer one of its skills here.
name = "calc"
description = "Arithmetic, for this node only"
version = "1"
backend = "builtin"

[sharing]
mode = "private"

[[skills]]
id = "math.eval"
`},
}

type newAgentData struct {
	Templates []agentTemplate
	Template  string
	TOML      string
	Replace   bool
	Error     string
	Line      int    // the line the error names, 0 if none
	LineText  string // that line of the text
}

func findTemplate(key string) (agentTemplate, bool) {
	for _, t := range agentTemplates {
		if t.Key == key {
			return t, true
		}
	}
	return agentTemplate{}, false
}

func (s *Server) agentNew(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.agentsNoWork(w) {
		return
	}
	key := r.URL.Query().Get("template")
	if key == "" {
		key = agentTemplates[0].Key
	}
	t, ok := findTemplate(key)
	if !ok {
		var keys []string
		for _, t := range agentTemplates {
			keys = append(keys, t.Key)
		}
		s.problem(w, http.StatusNotFound, "There is no template "+strconv.Quote(key),
			"The templates are "+strings.Join(keys, ", ")+": choose one on the Add an agent page.")
		return
	}
	s.render(w, http.StatusOK, "agents-new.html", page{Title: "Add an agent", Nav: "agents", CSRF: sess.csrf,
		Data: newAgentData{Templates: agentTemplates, Template: t.Key, TOML: t.Text}})
}

func (s *Server) agentAdd(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.agentsNoWork(w) {
		return
	}
	d := newAgentData{Templates: agentTemplates, Template: r.PostFormValue("template"),
		TOML: r.PostFormValue("toml"), Replace: r.PostFormValue("replace") != ""}
	// Browsers send a textarea's line breaks as CRLF.
	d.TOML = strings.ReplaceAll(d.TOML, "\r\n", "\n")
	var err error
	if strings.TrimSpace(d.TOML) == "" {
		d.Error = "Write the agent file here, or start from a template."
	} else {
		var a api.Agent
		a, err = s.cfg.Work.AddAgent(r.Context(), api.AddAgentRequest{TOML: d.TOML, Replace: d.Replace})
		if err == nil {
			http.Redirect(w, r, "/agents?done=added&agent="+url.QueryEscape(a.Name), http.StatusSeeOther)
			return
		}
		d.Error = s.apiMessage(err)
	}
	if d.Line = specErrorLine(d.Error); d.Line > 0 {
		if lines := strings.Split(d.TOML, "\n"); d.Line <= len(lines) {
			d.LineText = lines[d.Line-1]
		}
	}
	status := http.StatusUnprocessableEntity
	if e, ok := errors.AsType[*api.Error](err); ok && e.Code == http.StatusConflict {
		status = http.StatusConflict
	}
	s.render(w, status, "agents-new.html", page{Title: "Add an agent", Nav: "agents", CSRF: sess.csrf, Data: d})
}

// specLineRE finds the line an agent file error names: "x.toml:2: ..."
// or, for text without a file name, "line 2: ...".
var specLineRE = regexp.MustCompile(`^(?:line (\d+)|[^\s:]+:(\d+)):`)

// specErrorLine is the line number an agent file error names, or 0.
func specErrorLine(msg string) int {
	m := specLineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1] + m[2])
	return n
}

// --- trying a skill ---

// skillChoice is a skill the try page offers.
type skillChoice struct {
	ID, Description, Where string
	Schema                 json.RawMessage
}

// agentSkills lists what the node can run: its own agents' skills, then those
// its communities offer.
func (s *Server) agentSkills(r *http.Request) ([]skillChoice, error) {
	seen := map[string]int{}
	var out []skillChoice
	for _, a := range s.cfg.Work.Agents(r.Context()) {
		for _, sk := range a.Skills {
			where := "agent " + a.Name + " of this node"
			if !a.Enabled || a.Error != "" {
				where += " (not running)"
			}
			if i, ok := seen[sk.ID]; ok {
				// A running agent's schema wins over a stopped one's.
				if a.Enabled && a.Error == "" {
					out[i] = skillChoice{sk.ID, sk.Description, where, sk.InputSchema}
				}
				continue
			}
			seen[sk.ID] = len(out)
			out = append(out, skillChoice{sk.ID, sk.Description, where, sk.InputSchema})
		}
	}
	offers, err := s.cfg.Work.Skills(r.Context(), "", "")
	for _, o := range offers {
		var others int
		for _, p := range o.Providers {
			if !p.Self {
				others++
			}
		}
		if i, ok := seen[o.Skill]; ok {
			if others > 0 {
				out[i].Where += ", and " + agentProviders(others, "other member")
			}
			continue
		}
		seen[o.Skill] = len(out)
		out = append(out, skillChoice{o.Skill, o.Description, agentProviders(others, "member") + " of your communities", o.InputSchema})
	}
	slices.SortFunc(out, func(a, b skillChoice) int { return strings.Compare(a.ID, b.ID) })
	return out, err
}

func agentProviders(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

type tryData struct {
	Skills []skillChoice // when no skill is chosen
	Skill  skillChoice
	Fields []schemaField
	Note   string // why the form is one JSON field, if the schema is bad
	Error  string // an error not about one field
	Result *tryResult
}

// tryResult is a task the form started.
type tryResult struct {
	ID, Status, Executor, Agent, Error, Code, Output, Duration string
	Self                                                       bool
}

func (s *Server) agentFindSkill(w http.ResponseWriter, r *http.Request, id string) (skillChoice, bool) {
	all, err := s.agentSkills(r)
	for _, c := range all {
		if c.ID == id {
			return c, true
		}
	}
	what := "No agent of this node or of its communities' members offers it. The Try a skill page lists those that do."
	if err != nil {
		what = s.apiMessage(err)
	}
	s.problem(w, http.StatusNotFound, "There is no skill "+strconv.Quote(id), what)
	return skillChoice{}, false
}

func (s *Server) tryPage(w http.ResponseWriter, status int, sess *session, d tryData) {
	title := "Try a skill"
	if d.Skill.ID != "" {
		title = "Try " + d.Skill.ID
	}
	s.render(w, status, "agents-try.html", page{Title: title, Nav: "agents", CSRF: sess.csrf, Data: d})
}

func (s *Server) skillTry(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.agentsNoWork(w) {
		return
	}
	q := r.URL.Query()
	id := q.Get("skill")
	var t *api.Task
	if tid := q.Get("task"); tid != "" {
		task, err := s.cfg.Work.Task(r.Context(), tid)
		if err != nil {
			s.problem(w, http.StatusNotFound, "There is no task "+strconv.Quote(tid), s.apiMessage(err))
			return
		}
		t, id = &task, task.Skill
	}
	if id == "" {
		all, err := s.agentSkills(r)
		d := tryData{Skills: all}
		if err != nil {
			d.Error = s.apiMessage(err)
		}
		s.tryPage(w, http.StatusOK, sess, d)
		return
	}
	c, ok := s.agentFindSkill(w, r, id)
	if !ok {
		return
	}
	d := tryData{Skill: c}
	var err error
	if d.Fields, err = schemaForm(c.Schema); err != nil {
		d.Note = err.Error()
	}
	if t != nil {
		d.Fields = schemaFormFill(d.Fields, t.Input)
		d.Result = s.tryResultOf(r, *t)
	}
	s.tryPage(w, http.StatusOK, sess, d)
}

func (s *Server) skillRun(w http.ResponseWriter, r *http.Request, sess *session) {
	if s.agentsNoWork(w) {
		return
	}
	c, ok := s.agentFindSkill(w, r, r.PostFormValue("skill"))
	if !ok {
		return
	}
	d := tryData{Skill: c}
	var err error
	if d.Fields, err = schemaForm(c.Schema); err != nil {
		d.Note = err.Error()
	}
	input, fields, ok := schemaFormInput(d.Fields, r.PostForm)
	d.Fields = fields
	if !ok {
		s.tryPage(w, http.StatusUnprocessableEntity, sess, d)
		return
	}
	t, err := s.cfg.Work.SubmitTask(r.Context(), api.TaskRequest{Skill: c.ID, Input: input, Wait: true, TimeoutMS: tryTimeout.Milliseconds()})
	msg := ""
	switch {
	case err != nil:
		msg = s.apiMessage(err)
	case t.Code == "invalid-input":
		msg, d.Result = t.Error, s.tryResultOf(r, t)
	default:
		http.Redirect(w, r, "/agents/try?task="+url.QueryEscape(t.ID), http.StatusSeeOther)
		return
	}
	// The focus goes into the form, on the field in error or the first:
	// the page then shows this answer until the person leaves the form.
	if i := schemaErrorField(msg, d.Fields); i >= 0 {
		d.Fields[i].Error, d.Fields[i].Focus = msg, true
	} else {
		d.Error, d.Fields[0].Focus = msg, true
	}
	s.tryPage(w, http.StatusUnprocessableEntity, sess, d)
}

func (s *Server) tryResultOf(r *http.Request, t api.Task) *tryResult {
	res := &tryResult{ID: t.ID, Status: t.Status, Executor: t.Executor, Agent: t.Agent, Error: t.Error, Code: t.Code,
		Self: t.Executor != "" && t.Executor == s.cfg.Backend.Identity().PeerID}
	if t.DurationMS > 0 {
		res.Duration = (time.Duration(t.DurationMS) * time.Millisecond).String()
	}
	if len(t.Output) > 0 {
		res.Output = agentsIndent(t.Output)
	}
	return res
}

func agentsIndent(raw json.RawMessage) string {
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(out)
}

// --- the form a JSON Schema makes ---

// schemaField is one control of a form generated from a skill's input
// schema: one per top-level property, or one JSON field for the whole
// input (Name "") when the schema gives no properties to build from.
type schemaField struct {
	Name        string // the property
	ID          string // the control's HTML id
	Control     string // text | textarea | number | checkbox | select | json
	Type        string // the property's JSON type, "" when any or several
	Step        string // number: "1" for integers, "any" otherwise
	Min, Max    string
	Required    bool
	Description string
	Placeholder string
	Options     []schemaOption // select: each value is the enum value's JSON text
	Value       string
	Checked     bool
	Error       string
	Focus       bool
}

type schemaOption struct {
	Value, Label string
}

// FormName is the field's name in the posted form.
func (f schemaField) FormName() string {
	if f.Name == "" {
		return "input"
	}
	return "in." + f.Name
}

// schemaProp is what the form reads of a property's schema.
type schemaProp struct {
	Type        json.RawMessage   `json:"type"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Enum        []json.RawMessage `json:"enum"`
	Default     json.RawMessage   `json:"default"`
	Format      string            `json:"format"`
	MaxLength   *int              `json:"maxLength"`
	Minimum     *float64          `json:"minimum"`
	Maximum     *float64          `json:"maximum"`
}

// schemaLongText is the maxLength above which a string gets a textarea.
const schemaLongText = 1024

// schemaWholeInput is the form of a schema without properties: the input as JSON.
func schemaWholeInput() []schemaField {
	return []schemaField{{ID: "in-input", Control: "json", Value: "{}", Placeholder: "{}",
		Description: "The whole input, as a JSON object."}}
}

// schemaForm builds the form for a skill's input schema: one field per
// top-level property, in the schema's order. A schema that gives no
// properties (none, any object, not an object type) makes one JSON field
// for the whole input; so does a schema that cannot be read, with the
// error saying why.
func schemaForm(schema json.RawMessage) ([]schemaField, error) {
	if len(strings.TrimSpace(string(schema))) == 0 {
		return schemaWholeInput(), nil
	}
	var top struct {
		Type       json.RawMessage `json:"type"`
		Properties json.RawMessage `json:"properties"`
		Required   []json.RawMessage
	}
	var anySchema any
	if err := json.Unmarshal(schema, &anySchema); err != nil {
		return schemaWholeInput(), fmt.Errorf("the skill's input schema is not JSON (%v), so the input is asked for as JSON", err)
	}
	switch anySchema.(type) {
	case map[string]any:
	case bool:
		return schemaWholeInput(), nil
	default:
		return schemaWholeInput(), errors.New("the skill's input schema is not a JSON object, so the input is asked for as JSON")
	}
	if err := json.Unmarshal(schema, &top); err != nil {
		return schemaWholeInput(), fmt.Errorf("the skill's input schema cannot be read (%v), so the input is asked for as JSON", err)
	}
	if t := schemaType(top.Type); t != "" && t != "object" || len(top.Properties) == 0 {
		return schemaWholeInput(), nil
	}
	props, err := schemaProperties(top.Properties)
	if err != nil {
		return schemaWholeInput(), fmt.Errorf("the skill's input schema has properties that cannot be read (%v), so the input is asked for as JSON", err)
	}
	if len(props) == 0 {
		return schemaWholeInput(), nil
	}
	required := map[string]bool{}
	for _, r := range top.Required {
		var name string
		if json.Unmarshal(r, &name) == nil {
			required[name] = true
		}
	}
	fields := make([]schemaField, 0, len(props))
	for i, p := range props {
		fields = append(fields, schemaPropField(i, p.key, p.value, required[p.key]))
	}
	return fields, nil
}

func schemaPropField(i int, name string, raw json.RawMessage, required bool) schemaField {
	f := schemaField{Name: name, ID: "in-" + strconv.Itoa(i), Required: required, Control: "json"}
	var p schemaProp
	if json.Unmarshal(raw, &p) != nil {
		return f // true, false or not an object: any JSON
	}
	f.Description = p.Description
	if p.Title != "" && p.Description == "" {
		f.Description = p.Title
	}
	f.Type = schemaType(p.Type)
	switch {
	case len(p.Enum) > 0:
		f.Control = "select"
		for _, v := range p.Enum {
			label := agentsCompact(v)
			var s string
			if json.Unmarshal(v, &s) == nil {
				label = s
			}
			f.Options = append(f.Options, schemaOption{Value: agentsCompact(v), Label: label})
		}
	case f.Type == "string":
		f.Control = "textarea"
		if p.Format != "" || p.MaxLength != nil && *p.MaxLength <= schemaLongText {
			f.Control = "text"
		}
	case f.Type == "number" || f.Type == "integer":
		f.Control, f.Step = "number", "any"
		if f.Type == "integer" {
			f.Step = "1"
		}
		if p.Minimum != nil {
			f.Min = strconv.FormatFloat(*p.Minimum, 'g', -1, 64)
		}
		if p.Maximum != nil {
			f.Max = strconv.FormatFloat(*p.Maximum, 'g', -1, 64)
		}
	case f.Type == "boolean":
		f.Control = "checkbox"
	case f.Type == "array":
		f.Placeholder = "[]"
	case f.Type == "object":
		f.Placeholder = "{}"
	}
	if len(p.Default) > 0 {
		f = schemaFieldValue(f, p.Default)
	}
	return f
}

// schemaType is a schema's one type, "" when absent or several ("null"
// aside: an optional field is left out rather than sent as null).
func schemaType(raw json.RawMessage) string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	var many []string
	if json.Unmarshal(raw, &many) != nil {
		return ""
	}
	many = slices.DeleteFunc(many, func(t string) bool { return t == "null" })
	if len(many) == 1 {
		return many[0]
	}
	return ""
}

type schemaKV struct {
	key   string
	value json.RawMessage
}

// schemaProperties decodes a JSON object keeping its keys' order.
func schemaProperties(raw json.RawMessage) ([]schemaKV, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("\"properties\" is not an object")
	}
	var out []schemaKV
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, schemaKV{key, v})
	}
	return out, nil
}

func agentsCompact(raw json.RawMessage) string {
	out, err := json.Marshal(raw) // a json.RawMessage marshals compacted
	if err != nil {
		return string(raw)
	}
	return string(out)
}

// schemaFieldValue sets a field's control to show a JSON value.
func schemaFieldValue(f schemaField, v json.RawMessage) schemaField {
	switch f.Control {
	case "text", "textarea":
		var s string
		if json.Unmarshal(v, &s) == nil {
			f.Value = s
			return f
		}
	case "checkbox":
		f.Checked = strings.TrimSpace(string(v)) == "true"
		return f
	case "number", "select":
		f.Value = agentsCompact(v)
		return f
	}
	f.Value = agentsIndent(v)
	return f
}

// schemaFormFill fills the fields with an input the form sent before
// (a task's), so the page shows what was asked.
func schemaFormFill(fields []schemaField, input json.RawMessage) []schemaField {
	out := slices.Clone(fields)
	if len(input) == 0 {
		return out
	}
	if len(out) == 1 && out[0].Name == "" {
		out[0].Value = agentsIndent(input)
		return out
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(input, &obj) != nil {
		return out
	}
	for i, f := range out {
		v, ok := obj[f.Name]
		switch {
		case ok:
			out[i] = schemaFieldValue(f, v)
		case f.Control == "checkbox":
			out[i].Checked = false
		default:
			out[i].Value = ""
		}
	}
	return out
}

// schemaFormInput builds the input JSON from a posted form, field by field in
// order. Empty optional fields are left out; an empty required string is
// sent as "" (a valid value), other empty required fields are left out for
// the schema to name. Fields that cannot be read get an Error, and ok is
// false. The returned fields show what was posted.
func schemaFormInput(fields []schemaField, form url.Values) (input json.RawMessage, out []schemaField, ok bool) {
	out = slices.Clone(fields)
	ok = true
	var b strings.Builder
	b.WriteByte('{')
	n := 0
	add := func(name, value string) {
		if n > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(name)
		b.Write(key)
		b.WriteByte(':')
		b.WriteString(value)
		n++
	}
	for i := range out {
		f := &out[i]
		f.Error, f.Focus = "", false
		v := form.Get(f.FormName())
		f.Value, f.Checked = v, v != ""
		switch f.Control {
		case "text", "textarea":
			v = strings.ReplaceAll(v, "\r\n", "\n") // browsers send a textarea's line breaks as CRLF
			f.Value = v
			if v != "" || f.Required {
				s, _ := json.Marshal(v)
				add(f.Name, string(s))
			}
		case "checkbox":
			f.Value = ""
			add(f.Name, strconv.FormatBool(f.Checked))
		case "number":
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if f.Step == "1" {
				if _, err := strconv.ParseInt(v, 10, 64); err != nil || !json.Valid([]byte(v)) {
					f.Error = "Enter a whole number, such as 3 or -12."
					continue
				}
			} else if _, err := strconv.ParseFloat(v, 64); err != nil || !json.Valid([]byte(v)) {
				f.Error = "Enter a number, such as 3 or 2.5."
				continue
			}
			add(f.Name, v)
		case "select":
			if v == "" {
				continue
			}
			if !slices.ContainsFunc(f.Options, func(o schemaOption) bool { return o.Value == v }) {
				f.Error = "Choose one of the listed values."
				continue
			}
			add(f.Name, v)
		default: // json
			v = strings.TrimSpace(v)
			f.Value = v
			if v == "" {
				if f.Name == "" {
					v = "{}"
				} else {
					continue
				}
			}
			var x any
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				f.Error = "This is not JSON: " + err.Error() + "."
				continue
			}
			if f.Name == "" {
				return json.RawMessage(agentsCompact(json.RawMessage(v))), out, true
			}
			add(f.Name, agentsCompact(json.RawMessage(v)))
		}
	}
	for i := range out {
		if out[i].Error != "" {
			if ok {
				out[i].Focus = true
			}
			ok = false
		}
	}
	if !ok {
		return nil, out, false
	}
	b.WriteByte('}')
	return json.RawMessage(b.String()), out, true
}

var (
	// The schema validator's messages: "at '/text': got number, want
	// string", "missing property 'text'".
	schemaErrAtRE      = regexp.MustCompile(`at '/([^'/]*)`)
	schemaErrMissingRE = regexp.MustCompile(`missing propert(?:y|ies) '([^']*)'`)
)

// schemaErrorField is the index of the field an input error is about, or -1.
func schemaErrorField(msg string, fields []schemaField) int {
	if len(fields) == 1 && fields[0].Name == "" {
		return 0 // the whole input
	}
	name := ""
	if m := schemaErrAtRE.FindStringSubmatch(msg); m != nil {
		name = strings.NewReplacer("~1", "/", "~0", "~").Replace(m[1])
	} else if m := schemaErrMissingRE.FindStringSubmatch(msg); m != nil {
		name = m[1]
	} else {
		return -1
	}
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// DescribedBy is the ids of the field's hint and error, for
// aria-describedby.
func (f schemaField) DescribedBy() string {
	var ids []string
	if f.Description != "" {
		ids = append(ids, f.ID+"-hint")
	}
	if f.Error != "" {
		ids = append(ids, f.ID+"-error")
	}
	return strings.Join(ids, " ")
}

// TypeNote says in words what the field takes.
func (f schemaField) TypeNote() string {
	switch {
	case f.Control == "select":
		return "one of the values"
	case f.Control == "checkbox":
		return "yes or no"
	case f.Type == "string":
		return "text"
	case f.Type == "integer":
		return "whole number"
	case f.Type == "number":
		return "number"
	case f.Name == "" || f.Type == "object":
		return "JSON object"
	case f.Type == "array":
		return "JSON array"
	}
	return "any JSON value"
}
