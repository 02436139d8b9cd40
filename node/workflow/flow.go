package workflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/agora-p2p/agora/node/agents"
)

// Limits of a workflow file.
const (
	MaxFileSize = 1 << 20  // bytes
	MaxSteps    = 256      // steps in one workflow
	MaxExprLen  = 16 << 10 // bytes of one jq expression
	MaxRetries  = 5
)

var stepIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Flow is a workflow as written in its file. Parse checks its structure;
// Plan checks its expressions and references.
type Flow struct {
	// Name is the workflow's name, a valid skill ID: the skill a workflow
	// agent offers when its file declares none.
	Name        string
	Description string
	// InputSchema is the JSON Schema of the workflow's input ({"type":
	// "object"} when the file has none).
	InputSchema json.RawMessage
	// Output is a jq expression over $input and $steps: the workflow's
	// output.
	Output string
	Steps  []Step

	file  string         // for messages
	lines map[string]int // field path ("steps[2].input") -> line
}

// Step is one step of a workflow: a skill run as a subtask.
type Step struct {
	ID    string // ^[a-z0-9][a-z0-9_-]{0,63}$, unique in the workflow
	Skill string // the skill ID to run
	// Input is a jq expression over $input and $steps giving the step's
	// input object.
	Input string
	// When, if set, is a jq expression over $input and $steps; a false or
	// null value (or none) skips the step.
	When    string
	Peer    string        // only this provider (a peer ID)
	Remote  bool          // never on this node
	Retries int           // extra attempts after a failed or rejected one, 0..5
	Timeout time.Duration // per attempt; 0 leaves it to the delegator
}

// Error is a problem in a workflow: where it is and what is wrong. Field
// is a path such as `steps[2].input`; Step is that step's ID, when known.
type Error struct {
	File  string
	Line  int
	Field string
	Step  string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		field := e.Field
		if e.Step != "" {
			// steps[2].input -> steps[2] (summarize).input
			if i := strings.IndexByte(field, ']'); strings.HasPrefix(field, "steps[") && i > 0 {
				field = field[:i+1] + " (" + e.Step + ")" + field[i+1:]
			}
		}
		b.WriteString(field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// errorf makes an Error for field of f, with its line when f was parsed.
func (f *Flow) errorf(field, step, format string, args ...any) *Error {
	return &Error{File: f.file, Line: f.line(field), Field: field, Step: step, Err: fmt.Errorf(format, args...)}
}

// line finds field's line, or its closest enclosing field's; 0 if unknown.
func (f *Flow) line(field string) int {
	for field != "" {
		if l, ok := f.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return 0
}

// The file's shape. Keys not here are errors.
type flowFile struct {
	Name        string     `yaml:"name"`
	Description string     `yaml:"description"`
	InputSchema any        `yaml:"input_schema"`
	Output      string     `yaml:"output"`
	Steps       []stepFile `yaml:"steps"`
}

type stepFile struct {
	ID      string `yaml:"id"`
	Skill   string `yaml:"skill"`
	Input   string `yaml:"input"`
	When    string `yaml:"when"`
	Peer    string `yaml:"peer"`
	Remote  bool   `yaml:"remote"`
	Retries int    `yaml:"retries"`
	Timeout string `yaml:"timeout"`
}

var defaultInputSchema = json.RawMessage(`{"type":"object"}`)

// Parse reads a workflow file, YAML or JSON. name is the file's name for
// messages. Unknown keys, duplicate keys, aliases and bad values are
// errors naming the line and field; the input schema must compile. The jq
// expressions are checked by Plan.
func Parse(name string, data []byte) (*Flow, error) {
	fail := func(line int, field string, err error) (*Flow, error) {
		return nil, &Error{File: name, Line: line, Field: field, Err: err}
	}
	if len(data) > MaxFileSize {
		return fail(0, "", fmt.Errorf("the file is %d bytes; a workflow may have at most %d", len(data), MaxFileSize))
	}
	file, err := parseYAML(data)
	if err != nil {
		return fail(yamlLine(err), "", errors.New(yamlMessage(err)))
	}
	if len(file.Docs) > 1 {
		line := 0
		if d := file.Docs[1]; d.Start != nil {
			line = d.Start.Position.Line
		} else if t := d.GetToken(); t != nil {
			line = t.Position.Line
		}
		return fail(line, "", errors.New("a workflow file holds one document, not several"))
	}
	if len(file.Docs) == 0 || file.Docs[0].Body == nil {
		return fail(0, "", errors.New("the file is empty; a workflow needs a name, steps and an output"))
	}
	body := file.Docs[0].Body
	if line := findAlias(body); line > 0 {
		return fail(line, "", errors.New("YAML aliases (*name) are not supported in workflows"))
	}
	var w flowFile
	if err := decodeYAML(body, &w); err != nil {
		line := yamlLine(err)
		return fail(line, fieldAt(body, err), errors.New(yamlMessage(err)))
	}

	f := &Flow{Name: w.Name, Description: w.Description, Output: strings.TrimSpace(w.Output), file: name, lines: fieldLines(body)}
	if err := f.fill(&w); err != nil {
		return nil, err
	}
	return f, nil
}

// fill checks the decoded file and copies it into f.
func (f *Flow) fill(w *flowFile) error {
	if !agents.ValidSkillID(f.Name) {
		if f.Name == "" {
			return f.errorf("name", "", "a workflow needs a name")
		}
		return f.errorf("name", "", "%q is not a valid workflow name (as a skill ID: lowercase letters, digits, '.', '_' and '-', at most 128, starting with a letter or digit)", f.Name)
	}
	f.InputSchema = defaultInputSchema
	if w.InputSchema != nil {
		raw, err := json.Marshal(w.InputSchema)
		if err != nil {
			return f.errorf("input_schema", "", "not a JSON value: %v", err)
		}
		if _, err := agents.CompileSchema(raw); err != nil {
			return f.errorf("input_schema", "", "%v", err)
		}
		f.InputSchema = raw
	}
	if f.Output == "" {
		return f.errorf("output", "", "a workflow needs an output: a jq expression such as $steps.<id>")
	}
	if len(w.Steps) == 0 {
		return f.errorf("steps", "", "a workflow needs at least one step")
	}
	if len(w.Steps) > MaxSteps {
		return f.errorf("steps", "", "%d steps; a workflow may have at most %d", len(w.Steps), MaxSteps)
	}
	seen := map[string]int{}
	for i, ws := range w.Steps {
		field := func(name string) string { return fmt.Sprintf("steps[%d].%s", i, name) }
		s := Step{
			ID: ws.ID, Skill: ws.Skill, Input: strings.TrimSpace(ws.Input), When: strings.TrimSpace(ws.When),
			Peer: ws.Peer, Remote: ws.Remote, Retries: ws.Retries,
		}
		switch j, dup := seen[s.ID]; {
		case s.ID == "":
			return f.errorf(field("id"), "", "a step needs an id")
		case !stepIDRE.MatchString(s.ID):
			return f.errorf(field("id"), "", "%q is not a valid step ID (lowercase letters, digits, '_' and '-', at most 64, starting with a letter or digit)", s.ID)
		case dup:
			return f.errorf(field("id"), "", "step %q is already steps[%d]", s.ID, j)
		}
		seen[s.ID] = i
		switch {
		case s.Skill == "":
			return f.errorf(field("skill"), s.ID, "a step needs a skill")
		case !agents.ValidSkillID(s.Skill):
			return f.errorf(field("skill"), s.ID, "%q is not a valid skill ID", s.Skill)
		case s.Input == "":
			return f.errorf(field("input"), s.ID, "a step needs an input: a jq expression such as $input or {text: $steps.fetch.text}")
		case s.Retries < 0 || s.Retries > MaxRetries:
			return f.errorf(field("retries"), s.ID, "%d is not between 0 and %d", s.Retries, MaxRetries)
		}
		if s.Peer != "" {
			if _, err := peer.Decode(s.Peer); err != nil {
				return f.errorf(field("peer"), s.ID, "%q is not a peer ID", s.Peer)
			}
		}
		if ws.Timeout != "" {
			d, err := time.ParseDuration(ws.Timeout)
			if err != nil || d <= 0 {
				return f.errorf(field("timeout"), s.ID, "%q is not a positive duration such as \"30s\" or \"2m\"", ws.Timeout)
			}
			s.Timeout = d
		}
		f.Steps = append(f.Steps, s)
	}
	return nil
}

// parseYAML parses data into goccy's AST. goccy is a large parser and
// workflow files come from users; a panic in it must not take the node
// down, so it becomes an error.
func parseYAML(data []byte) (file *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, fmt.Errorf("the YAML parser failed on this file: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

func decodeYAML(body ast.Node, w *flowFile) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed on this file: %v", r)
		}
	}()
	return yaml.NodeToValue(body, w, yaml.DisallowUnknownField())
}

func yamlLine(err error) int {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		return ye.GetToken().Position.Line
	}
	return 0
}

// yamlMessage is goccy's message without Go type names.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && te.DstType != nil && te.SrcType != nil {
		return fmt.Sprintf("want %s, not %s", kindName(te.DstType), kindName(te.SrcType))
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetMessage()
	}
	return err.Error()
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return "a value of another kind"
	}
}

// walkFields calls fn with the field path and node of every mapping value
// and list element under n ("steps[1].input").
func walkFields(n ast.Node, path string, fn func(path string, key, value ast.Node)) {
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, mv := range n.Values {
			walkFields(mv, path, fn)
		}
	case *ast.MappingValueNode:
		p := keyName(n.Key)
		if path != "" {
			p = path + "." + p
		}
		fn(p, n.Key, n.Value)
		walkFields(n.Value, p, fn)
	case *ast.SequenceNode:
		for i, v := range n.Values {
			p := path + "[" + strconv.Itoa(i) + "]"
			fn(p, v, v)
			walkFields(v, p, fn)
		}
	case *ast.AnchorNode:
		walkFields(n.Value, path, fn)
	case *ast.TagNode:
		walkFields(n.Value, path, fn)
	}
}

func keyName(k ast.MapKeyNode) string {
	if t := k.GetToken(); t != nil {
		return t.Value
	}
	return k.String()
}

// fieldLines maps the field paths of the workflow's own keys to their
// lines; the input schema's insides are left out.
func fieldLines(body ast.Node) map[string]int {
	lines := map[string]int{}
	walkFields(body, "", func(path string, key, _ ast.Node) {
		if strings.HasPrefix(path, "input_schema.") || strings.HasPrefix(path, "input_schema[") {
			return
		}
		if t := key.GetToken(); t != nil {
			lines[path] = t.Position.Line
		}
	})
	return lines
}

// fieldAt names the field a decoding error is about: for an unknown key,
// the mapping holding it; for a bad value, its key.
func fieldAt(body ast.Node, err error) string {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return ""
	}
	pos := ye.GetToken().Position
	_, unknown := err.(*yaml.UnknownFieldError)
	found := ""
	walkFields(body, "", func(path string, key, value ast.Node) {
		if found != "" {
			return
		}
		for _, n := range []ast.Node{key, value} {
			if t := n.GetToken(); t != nil && t.Position.Line == pos.Line && t.Position.Column == pos.Column {
				found = path
				return
			}
		}
	})
	if unknown {
		if i := strings.LastIndexAny(found, ".["); i >= 0 {
			return found[:i]
		}
		return ""
	}
	return found
}

// findAlias returns the line of the first alias under n, 0 if none.
// Aliases could make a small file decode into a huge value.
func findAlias(n ast.Node) int {
	line := 0
	ast.Walk(visitor(func(n ast.Node) bool {
		if a, ok := n.(*ast.AliasNode); ok && line == 0 {
			line = a.GetToken().Position.Line
		}
		return line == 0
	}), n)
	return line
}

type visitor func(ast.Node) bool

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if !v(n) {
		return nil
	}
	return v
}
